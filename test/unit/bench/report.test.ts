/** The Markdown and SVG renderings of bench results, and the target verdicts. */
import type { BenchResults, Series } from '../../../bench/model';
import { evaluateTargets, logScale, renderMarkdown, renderSvg } from '../../../bench/report';
import { summarize } from '../../../bench/stats';
import { TARGET_IDS, buildTargets, measuredTargets } from '../../../bench/targets';

function series(p50: number, misses = 0): Series {
  const samples = [p50, p50, p50, p50 * 1.5, p50 * 2];
  return { wall: summarize(samples), cpu: summarize(samples.map((x) => x / 2)), misses };
}

function results(overrides: { a?: number; c?: number; lost?: number } = {}): BenchResults {
  const a = overrides.a ?? 2.4;
  const c = overrides.c ?? 2.6;
  const byKind = (p50: number) => ({ obo: series(p50), app: series(p50) });
  const s = {
    a: byKind(a),
    b: byKind(0.5),
    c: byKind(c),
    d: byKind(20),
    e: byKind(2),
    f: byKind(2.1),
    g: byKind(a + 0.3),
  };
  const ratio = (x: number) => ({
    obo: { p50: x / 2, p95: x / 2, p99: x / 2 },
    app: { p50: x / 2, p95: x / 2, p99: x / 2 },
  });
  const contended = {
    rounds: 10,
    writersPerRound: 32,
    tokensAcquired: 330,
    requestErrors: 0,
    writes: 320,
    conflicts: 900,
    conflictsPerWrite: 2.8,
    writeAttempts: summarize([1, 3, 5]),
    writeFailures: 0,
    mergedUnchanged: 1,
    latency: summarize([100, 200]),
  };
  return {
    environment: {
      startedAt: '2026-11-25T00:00:00.000Z',
      durationSeconds: 200,
      node: 'v20.20.2',
      platform: 'linux x64',
      cpus: 2,
      cpuModel: 'test <cpu> & co',
      loadAverageStart: [1, 1, 1],
      loadAverageEnd: [1, 1, 1],
      commit: 'abc1234',
      msalNode: '7.2.3',
      command: 'npm run bench',
    },
    latency: {
      users: 50,
      warmupPerSeries: 30,
      blockSize: 10,
      rounds: 30,
      series: s,
      ratios: {
        a: ratio(a),
        b: ratio(0.5),
        c: ratio(c),
        d: ratio(20),
        e: ratio(2),
        f: ratio(2.1),
        g: ratio(a + 0.3),
      },
      cpuRatioP50: {
        a: { obo: 1, app: 1 },
        b: { obo: 1, app: 1 },
        c: { obo: 1, app: 1 },
        d: { obo: 1, app: 1 },
        e: { obo: 1, app: 1 },
        f: { obo: 1, app: 1 },
        g: { obo: 1, app: 1 },
      },
      callsPerThousand: {
        a: { requests: 600, storeReads: 1000, storeWrites: 0, kmsCalls: 0, tokenCalls: 0 },
        b: { requests: 600, storeReads: 0, storeWrites: 0, kmsCalls: 0, tokenCalls: 0 },
      },
      peerUnprimedObo: { requests: 20, tokenCallsPerThousand: 1000 },
    },
    scale: {
      levels: [100, 10_000].map((users) => ({
        users,
        a: series(2.4),
        floor: series(2),
        aRatio: { p50: 1.2, p95: 1.2, p99: 1.2 },
        dMemory: series(users / 10),
        dMemoryRatio: { p50: users / 20, p95: 1, p99: 1 },
        naiveBlobBytes: users * 4800,
        dDynamoRejected: 'item of 480000 bytes > 409600',
      })),
      growthP50: { a: 1, aRatio: 1, dMemory: 100 },
    },
    contention: {
      a: { ...contended, tokensLost: overrides.lost ?? 0 },
      c: { ...contended, tokensLost: 290 },
    },
    blobSizes: [
      { partition: 'OBO', plainJsonBytes: 4800, envelopeBytes: 2300, itemBytes: 2380, peerItemBytes: 4850 },
    ],
    notes: ['a note'],
  };
}

describe('bench report', () => {
  describe('evaluateTargets', () => {
    it('marks each target met when the figures meet it', () => {
      const targets = evaluateTargets(results());
      expect(targets).toHaveLength(6);
      expect(targets.every((t) => t.met === true)).toBe(true);
    });

    it('marks the ratio, the peer comparison and lost tokens missed when they are', () => {
      const targets = evaluateTargets(results({ a: 3, c: 2.8, lost: 2 }));
      const missed = targets.filter((t) => t.met === false).map((t) => t.target);
      expect(missed).toEqual([
        '(a) within 1.25x of the floor at p50',
        '(a) no slower than the peer (c) (p50)',
        '0 tokens lost by (a) under contention',
      ]);
    });

    it('leaves out what the run did not measure', () => {
      const { environment, notes } = results();
      expect(evaluateTargets({ environment, notes })).toEqual([]);
    });
  });

  describe('renderMarkdown', () => {
    it('has a section per item, the ratios and the plan', () => {
      const md = renderMarkdown(results(), { users: 50 });
      for (const heading of [
        '## Earlier targets (issue 6)',
        '## 1.',
        '## 2.',
        '## 3.',
        '## 4.',
        '## 6.',
        '## Notes',
        '## Plan',
      ]) {
        expect(md).toContain(heading);
      }
      expect(md).toContain('| (a) this project, KMS envelope, L1 off | OBO | 5 | 2.40 |');
      expect(md).toContain('1.20x');
      expect(md).toContain('"users": 50');
      expect(md).not.toMatch(/NaN|undefined/);
    });
  });

  describe('renderMarkdown, issue 16 sections', () => {
    /** `results()` plus the delayed network, active callers, cold start and the targets. */
    function full(): BenchResults {
      const base = results();
      const byKind = (p50: number) => ({ obo: series(p50), app: series(p50) });
      const withSections: BenchResults = {
        ...base,
        network: {
          levels: [1, 5].map((delayMs) => ({
            delayMs,
            rounds: 10,
            series: { a: byKind(2.2 * delayMs), e: byKind(2 * delayMs), f: byKind(2.05 * delayMs) },
            aVsStoreFloorP50: { obo: 1.07, app: 1.06 },
            aVsSdkFloorP50: { obo: 1.1, app: 1.09 },
          })),
        },
        activeCallers: {
          levels: [100, 5000],
          rounds: 20,
          series: [
            { variant: 'a', callers: 100, series: series(1.4), storeReadsPerRequest: 1 },
            { variant: 'a', callers: 5000, series: series(1.7), storeReadsPerRequest: 1 },
          ],
          growthP50: { a: 1.7 / 1.4, b: 9 },
        },
        coldStart: {
          esbuild: { target: 'node24', plugins: ['lambda-slimming'] },
          entries: [
            {
              id: 'web-api',
              entry: 'web api, as shipped',
              bundleBytes: 644 * 1024,
              bundleGzipBytes: 180 * 1024,
              sourceMapBytes: 0,
              nodeOptions: '',
              importMs: summarize([100, 110, 120]),
            },
            {
              id: 'sdk-floor',
              entry: 'SDK floor',
              bundleBytes: 400 * 1024,
              bundleGzipBytes: 120 * 1024,
              sourceMapBytes: 0,
              nodeOptions: '',
              importMs: summarize([80, 90]),
            },
          ],
          importVsSdkFloor: 110 / 80,
        },
      };
      return { ...withSections, targets: buildTargets(measuredTargets(withSections)) };
    }

    it('renders the targets table with every id, its value, goal and verdict', () => {
      const md = renderMarkdown(full(), {});
      for (const id of TARGET_IDS) expect(md).toContain(`| \`${id}\` |`);
      expect(md).toContain('| `bundle-kib` | 644 KiB | ≤ 700 KiB | met |');
      expect(md).toContain('| `scale-model-error` | not measured | ≤ 0.05 | **missed** |');
      expect(md).toContain('| `tokens-lost` | 0 tokens | = 0 tokens | met |');
    });

    it('renders the delayed network, active callers and cold start sections', () => {
      const md = renderMarkdown(full(), {});
      expect(md).toContain('## 7. Delayed network');
      expect(md).toContain('| 5 ms | OBO |');
      expect(md).toContain('## 8. Active callers');
      expect(md).toContain('| 5,000 |');
      expect(md).toContain('## 5. Cold start');
      expect(md).toContain('Import of the shipped web API / import of the SDK floor: 1.38x');
      expect(md).not.toMatch(/NaN|undefined/);
    });
  });

  describe('renderSvg', () => {
    it('is one well-formed svg element with escaped text', () => {
      const svg = renderSvg(results());
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      expect(svg).not.toMatch(/NaN|undefined|Infinity/);
      expect(svg.match(/<text /g)?.length).toBe(svg.match(/<\/text>/g)?.length);
    });

    it('says so when latency was not measured', () => {
      const { environment, notes } = results();
      expect(renderSvg({ environment, notes })).toContain('latency not measured');
    });
  });

  describe('logScale', () => {
    it('maps decades evenly and widens the range to whole decades', () => {
      const scale = logScale(0.3, 40, 0, 300);
      expect(scale.ticks).toEqual([0.1, 1, 10, 100]);
      expect(scale.x(0.1)).toBeCloseTo(0);
      expect(scale.x(1)).toBeCloseTo(100);
      expect(scale.x(100)).toBeCloseTo(300);
    });
  });
});
