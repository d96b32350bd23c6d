/**
 * Generates docs/scale.md from the capacity model: `npx tsx bench/capacity/capacity-table.ts`.
 * Every figure in that page is printed here from shared/capacity/model.ts and prices.ts,
 * and each row names the `msal-cloud-cache capacity` flags that reproduce it.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { breakPoint, DEFAULT_INPUT, estimateCapacity, withInput } from '../../shared/capacity/model';
import type { CapacityEstimate, CapacityInput } from '../../shared/capacity/model';
import { PRICES, PRICES_READ_ON, type Cited } from '../../shared/capacity/prices';

const CALLERS = [10_000, 1_000_000, 10_000_000] as const;
const RATES = [1_000, 10_000, 50_000] as const;
/** Instances a fleet needs: about 100 ms of work per request (Lambda concurrency = rps x duration). */
const instancesFor = (rps: number): number => Math.max(10, Math.round(rps * 0.1));

const MIXES = {
  'daemon-heavy': {
    mix: { app: 0.8, obo: 0.2, user: 0 },
    apps: 10,
    flags: '--app-share 0.8 --obo-share 0.2 --app-callers 10',
  },
  'OBO-heavy': {
    mix: { app: 0.05, obo: 0.95, user: 0 },
    apps: 1,
    flags: '--app-share 0.05 --obo-share 0.95 --app-callers 1',
  },
} as const;

function inputFor(mixName: keyof typeof MIXES, callers: number, rps: number, zipf = 1): CapacityInput {
  const m = MIXES[mixName];
  return withInput(DEFAULT_INPUT, {
    requestsPerSecond: rps,
    mix: m.mix,
    callers: { app: m.apps, obo: callers, user: 0 },
    instances: instancesFor(rps),
    zipfExponent: zipf,
  });
}

const n = (x: number): string =>
  !Number.isFinite(x)
    ? '∞'
    : x >= 1000
      ? Math.round(x).toLocaleString('en-US')
      : x >= 10
        ? x.toFixed(0)
        : x >= 1
          ? x.toFixed(1)
          : x.toFixed(2);
const usd = (x: number): string => `$${n(x)}`;
const pct = (x: number): string => `${(x * 100).toFixed(x < 0.01 ? 2 : 0)}%`;

function row(mixName: keyof typeof MIXES, callers: number, rps: number): string {
  const e = estimateCapacity(inputFor(mixName, callers, rps));
  const low = estimateCapacity(inputFor(mixName, callers, rps, 0.8));
  const high = estimateCapacity(inputFor(mixName, callers, rps, 1.2));
  const costs = [low.cost.perMonth, e.cost.perMonth, high.cost.perMonth];
  const hot = e.hottestKey;
  return (
    `| ${n(callers)} | ${n(rps)} | ${instancesFor(rps)} | ${n(e.store.readUnits)} + ${n(e.store.writeUnits)} | ` +
    `${hot.kind}: ${n(hot.readUnits)} RRU + ${n(hot.writeUnits)} WRU, ${pct(hot.utilisation)} | ${n(e.tokenCalls.total)} | ` +
    `${n(e.keyService.calls)} (${pct(e.keyService.utilisation)}) | ${usd(Math.min(...costs))} – ${usd(Math.max(...costs))} | ` +
    `\`--rps ${rps} --obo-callers ${callers} --instances ${instancesFor(rps)} ${MIXES[mixName].flags}\` |`
  );
}

function table(mixName: keyof typeof MIXES): string[] {
  const lines = [
    `### ${mixName} (${MIXES[mixName].mix.app * 100}% daemon requests over ${MIXES[mixName].apps} app partition(s), ${MIXES[mixName].mix.obo * 100}% OBO)`,
    '',
    '| OBO callers | rps | instances | store units/s (read + write) | hottest key: units/s, share of its limit | token calls/s | KMS calls/s (share of 10,000/s) | monthly cost, Zipf 0.8 – 1.2 | `msal-cloud-cache capacity` flags |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const callers of CALLERS) for (const rps of RATES) lines.push(row(mixName, callers, rps));
  return [...lines, ''];
}

interface Break {
  readonly what: string;
  readonly input: CapacityInput;
  readonly measure: (e: CapacityEstimate) => number;
  readonly flags: string;
  readonly setting: string;
}

function breaks(): string[] {
  const daemon = (changes: Parameters<typeof withInput>[1]) =>
    withInput(inputFor('daemon-heavy', 1_000_000, 1000), changes);
  const list: Break[] = [
    {
      what: 'daemon key, L1 off, no shared reads: read units of the one app item reach 3,000/s',
      input: daemon({
        mix: { app: 1, obo: 0, user: 0 },
        callers: { app: 1 },
        l1: { enabled: false },
        sharedReads: false,
      }),
      measure: (e) => e.hottestKey.utilisation,
      flags: '--app-share 1 --obo-share 0 --app-callers 1 --l1 off --shared-reads off --instances 100',
      setting:
        'L1 on (the default) removes it; with L1 off, shared reads (default on) cap each instance at 1 / read time',
    },
    {
      what: 'daemon key, L1 off, shared reads on (5 ms reads), 100 instances',
      input: daemon({ mix: { app: 1, obo: 0, user: 0 }, callers: { app: 1 }, l1: { enabled: false } }),
      measure: (e) => e.hottestKey.utilisation,
      flags: '--app-share 1 --obo-share 0 --app-callers 1 --l1 off --instances 100',
      setting: '`l1` on; eventually consistent reads would double it (`--consistency eventual`, see below)',
    },
    {
      what: 'OBO-heavy, 10 M callers: KMS calls reach the 10,000/s quota as the fleet grows (instances = rps / 10)',
      input: inputFor('OBO-heavy', 10_000_000, 1000),
      measure: (e) => e.keyService.utilisation,
      flags: '--obo-callers 10000000 --app-share 0.05 --obo-share 0.95 (instances grow with rps)',
      setting:
        '`dataKeys.maxAgeMs` (each instance seals with one key per kind for this long; every other instance unwraps it once)',
    },
  ];
  const lines = ['| break point | reached at | flags | the setting that moves it |', '|---|---|---|---|'];
  for (const b of list) {
    const scaled = b.what.includes('fleet grows');
    const at = scaled
      ? breakPoint(b.input, b.measure, {
          at: (rps) => ({ requestsPerSecond: rps, instances: instancesFor(rps) }),
          from: 100,
        })
      : breakPoint(b.input, b.measure);
    lines.push(
      `| ${b.what} | ${at === undefined ? 'not below 10 M rps' : `${n(at)} rps`} | \`${b.flags}\` | ${b.setting} |`,
    );
  }
  return [...lines, ''];
}

function kmsByAge(): string[] {
  const lines = [
    '| `dataKeys.maxAgeMs` | KMS calls/s at 50,000 rps, 10 M OBO callers, 5,000 instances | flags |',
    '|---|---|---|',
  ];
  for (const age of [300, 900, 3600]) {
    const e = estimateCapacity(
      withInput(inputFor('OBO-heavy', 10_000_000, 50_000), {
        dataKeys: { maxAgeSeconds: age, maxUnwrappedAgeSeconds: Math.max(900, age * 3) },
      }),
    );
    lines.push(
      `| ${age * 1000} | ${n(e.keyService.calls)} | \`--rps 50000 --obo-callers 10000000 --instances 5000 --app-share 0.05 --obo-share 0.95 --data-key-max-age ${age}\` |`,
    );
  }
  return [...lines, ''];
}

async function main(): Promise<void> {
  const out = path.join(__dirname, '..', '..', 'docs', 'scale.md');
  const template = await readFile(path.join(__dirname, 'scale.template.md'), 'utf8');
  const prices = Object.entries(PRICES).flatMap(([service, items]) =>
    (Object.entries(items) as Array<[string, Cited]>).map(
      ([name, c]) =>
        `| ${service}.${name} | ${c.value < 0.001 ? c.value.toExponential(3) : c.value} | ${c.unit} | ${c.asOf} | ${c.source} |`,
    ),
  );
  // The simulation's worst-count error, from the committed run (bench/results/scale.json).
  const scale = JSON.parse(await readFile(path.join(__dirname, '..', 'results', 'scale.json'), 'utf8')) as {
    error: number;
  };
  const generated = template
    .replace('{{SIM_ERROR}}', `${(scale.error * 100).toFixed(1)}%`)
    .replace('{{TABLES}}', [...table('daemon-heavy'), ...table('OBO-heavy')].join('\n'))
    .replace('{{BREAKS}}', breaks().join('\n'))
    .replace('{{KMS_BY_AGE}}', kmsByAge().join('\n'))
    .replace('{{PRICES_READ_ON}}', PRICES_READ_ON)
    .replace(
      '{{PRICES}}',
      ['| figure | value | unit | as of | source |', '|---|---|---|---|---|', ...prices].join('\n'),
    );
  // Formatted as `npm run lint` checks it, so a regenerated page passes unchanged.
  const options = (await resolveConfig(out)) ?? {};
  await writeFile(out, await format(generated, { ...options, filepath: out }));
  console.error(`wrote ${path.relative(process.cwd(), out)}`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
