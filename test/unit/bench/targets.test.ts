/** The targets table latest.json carries (issue 16 point 5, issue 19's scale-model-error). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { TARGETS, TARGET_IDS, buildTargets, measuredTargets, meets } from '../../../bench/targets';

describe('bench targets', () => {
  describe('TARGET_IDS', () => {
    it("are exactly the ids of bench/README.md's targets table, in its order", () => {
      // The table is written by hand from the issues' text; the ids are its first column.
      const readme = readFileSync(join(__dirname, '../../../bench/README.md'), 'utf8');
      const section = readme.slice(readme.indexOf("## Issue 16's targets"));
      const table = section.slice(0, section.indexOf('\n## '));
      const ids = [...table.matchAll(/^\| `([a-z0-9-]+)` +\|/gm)].map((m) => m[1]);
      expect(ids).toHaveLength(10);
      expect(TARGET_IDS).toEqual(ids);
    });

    it("carry the issues' goals", () => {
      expect(Object.fromEntries(TARGET_IDS.map((id) => [id, TARGETS[id].goal]))).toEqual({
        'warm-hit-cpu-vs-getitem': 1.0,
        'warm-hit-wall-1ms-network-vs-floor': 1.02,
        'l1-hit-p50-us': 25,
        'memo-off-penalty-ms': 0.1,
        'active-callers-5000-flat': 1.1,
        'herd-token-calls': 1,
        'bundle-kib': 700,
        'cold-import-vs-sdk-floor': 1.3,
        'tokens-lost': 0,
        'scale-model-error': 0.05,
      });
      for (const id of TARGET_IDS) expect(TARGETS[id].id).toBe(id);
    });
  });

  describe('meets', () => {
    it('accepts a value at or under an at-most goal and rejects one over it', () => {
      expect(meets('bundle-kib', 700)).toBe(true);
      expect(meets('bundle-kib', 643.7)).toBe(true);
      expect(meets('bundle-kib', 700.1)).toBe(false);
    });

    it('accepts only the exact value of an equal goal', () => {
      expect(meets('tokens-lost', 0)).toBe(true);
      expect(meets('tokens-lost', 1)).toBe(false);
    });

    it('never counts a value not measured as met', () => {
      expect(meets('tokens-lost', null)).toBe(false);
      expect(meets('herd-token-calls', Number.NaN)).toBe(false);
    });
  });

  describe('buildTargets', () => {
    it('gives every id once, in order, with its goal, a value and a verdict', () => {
      const targets = buildTargets({
        'warm-hit-cpu-vs-getitem': 1.4,
        'herd-token-calls': 1,
        'tokens-lost': 0,
        'scale-model-error': 0.03,
      });
      expect(targets.map((t) => t.id)).toEqual([...TARGET_IDS]);
      expect(targets.find((t) => t.id === 'warm-hit-cpu-vs-getitem')).toEqual({
        id: 'warm-hit-cpu-vs-getitem',
        value: 1.4,
        goal: 1.0,
        met: false,
      });
      expect(targets.find((t) => t.id === 'herd-token-calls')).toMatchObject({ value: 1, met: true });
      expect(targets.find((t) => t.id === 'scale-model-error')).toMatchObject({ value: 0.03, met: true });
    });

    it('marks a target whose section did not run as null and not met', () => {
      const targets = buildTargets({ 'bundle-kib': undefined, 'l1-hit-p50-us': Number.POSITIVE_INFINITY });
      for (const t of targets) expect(t).toMatchObject({ value: null, met: false });
    });

    it('refuses an id that is not a target, naming it', () => {
      expect(() => buildTargets({ 'bundle-kb': 600 })).toThrow(/unknown target id "bundle-kb"/);
    });
  });
});

describe('measuredTargets', () => {
  const hit = (wall: number, cpu: number) => ({ wall: { p50: wall }, cpu: { p50: cpu } });
  const both = (wall: number, cpu: number, appWall = wall, appCpu = cpu) => ({
    obo: hit(wall, cpu),
    app: hit(appWall, appCpu),
  });

  it('reads every target from its section, taking the worse kind', () => {
    const values = measuredTargets({
      latency: {
        series: {
          a: both(1.5, 1.2, 1.4, 1.3),
          b: both(0.2, 0.2, 0.15, 0.15),
          e: both(1.0, 1.0),
          g: both(1.8, 1.5, 1.6, 1.5),
        },
      },
      network: {
        levels: [
          { delayMs: 1, aVsStoreFloorP50: { obo: 1.08, app: 1.05 } },
          { delayMs: 5, aVsStoreFloorP50: { obo: 1.03, app: 1.02 } },
        ],
      },
      activeCallers: { levels: [100, 5000], growthP50: { a: 1.12 } },
      herd: {
        cells: [
          { mode: 'direct', tokenCalls: 160 },
          { mode: 'coalesced', tokenCalls: 1 },
          { mode: 'coalesced', tokenCalls: 2 },
        ],
      },
      coldStart: {
        entries: [
          { id: 'sdk-floor', bundleBytes: 1 },
          { id: 'web-api', bundleBytes: 660 * 1024 },
        ],
        importVsSdkFloor: 1.25,
      },
      contention: { a: { tokensLost: 0 } },
      scaleModel: { error: 0.02 },
    });
    expect(values['warm-hit-cpu-vs-getitem']).toBeCloseTo(1.3);
    expect(values['warm-hit-wall-1ms-network-vs-floor']).toBe(1.08);
    expect(values['l1-hit-p50-us']).toBeCloseTo(200);
    expect(values['memo-off-penalty-ms']).toBeCloseTo(0.3);
    expect(values['active-callers-5000-flat']).toBe(1.12);
    expect(values['herd-token-calls']).toBe(2);
    expect(values['bundle-kib']).toBe(660);
    expect(values['cold-import-vs-sdk-floor']).toBe(1.25);
    expect(values['tokens-lost']).toBe(0);
    expect(values['scale-model-error']).toBe(0.02);
    expect(
      buildTargets(values)
        .filter((t) => t.met)
        .map((t) => t.id),
    ).toEqual(['bundle-kib', 'cold-import-vs-sdk-floor', 'tokens-lost', 'scale-model-error']);
  });

  it('gives null for every section that did not run', () => {
    expect(Object.values(measuredTargets({})).every((v) => v === null)).toBe(true);
    expect(
      measuredTargets({ activeCallers: { levels: [100, 1000], growthP50: { a: 1 } } })[
        'active-callers-5000-flat'
      ],
    ).toBeNull();
  });
});
