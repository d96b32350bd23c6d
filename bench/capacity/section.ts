/**
 * The scale section of the benchmark (issue 19): the capacity simulation against the
 * model, and the shared-reads row. `bench/run.ts` runs it as target `scale-model-error`
 * (goal <= 0.05); `npx tsx bench/capacity/section.ts` runs it alone. Both write
 * bench/results/scale.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PLAN, runSimulation, type SimulationPlan, type SimulationResult } from './simulate';
import { measureSharedReads, type SharedReadsRow } from './shared-reads-row';

/** What the section found; `error` is the target's value. */
export interface ScaleSection {
  readonly error: number;
  readonly goal: number;
  readonly met: boolean;
  readonly simulation: SimulationResult;
  readonly sharedReads: SharedReadsRow;
  readonly environment: Record<string, unknown>;
}

/** The target's goal: the model within 5% of every measured count. */
export const SCALE_MODEL_ERROR_GOAL = 0.05;

const RESULTS = path.join(__dirname, '..', 'results');

/** The plan for a time factor in (0, 1]: the measured window shrinks, the warm-up stays. */
export function planFor(timeFactor: number): SimulationPlan {
  if (!(timeFactor > 0 && timeFactor <= 1))
    throw new Error(`timeFactor must be in (0, 1], got ${timeFactor}`);
  return {
    ...DEFAULT_PLAN,
    measureSeconds: Math.max(20, Math.round(DEFAULT_PLAN.measureSeconds * timeFactor)),
  };
}

/**
 * Runs the simulation and the shared-reads row, writes bench/results/scale.{json,md} and
 * returns the model's error.
 */
export async function runScaleSection(options: {
  readonly timeFactor: number;
  readonly log: (line: string) => void;
}): Promise<ScaleSection> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const started = new Date();
  const loadStart = os.loadavg();
  const simulation = await runSimulation(planFor(options.timeFactor), options.log);
  options.log(
    `capacity sim: error ${(simulation.error * 100).toFixed(1)}% ` +
      `(reads ${pct(simulation.relativeError.storeReads)}, writes ${pct(simulation.relativeError.storeWrites)}, ` +
      `token calls ${pct(simulation.relativeError.tokenCalls)}, KMS ${pct(simulation.relativeError.kmsCalls)})`,
  );
  const sharedReads = await measureSharedReads();
  options.log(
    `shared reads: ${sharedReads.on.getItemsPerBurst} GetItem per ${sharedReads.concurrency} concurrent requests ` +
      `(off: ${sharedReads.off.getItemsPerBurst})`,
  );
  const environment = {
    startedAt: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 100) / 10,
    node: process.version,
    cpus: os.cpus().length,
    loadAverageStart: loadStart.map((x) => Math.round(x * 100) / 100),
    loadAverageEnd: os.loadavg().map((x) => Math.round(x * 100) / 100),
    commit: gitCommit(),
    command:
      options.timeFactor === 1
        ? 'npx tsx bench/capacity/section.ts'
        : `BENCH_TIME_FACTOR=${options.timeFactor} npx tsx bench/capacity/section.ts`,
  };
  const section: ScaleSection = {
    error: simulation.error,
    goal: SCALE_MODEL_ERROR_GOAL,
    met: simulation.error <= SCALE_MODEL_ERROR_GOAL,
    simulation,
    sharedReads,
    environment,
  };
  await mkdir(RESULTS, { recursive: true });
  await writeFile(path.join(RESULTS, 'scale.json'), `${JSON.stringify(section, jsonSafe, 2)}\n`);
  await writeFile(path.join(RESULTS, 'scale.md'), renderScale(section));
  return section;
}

/** Infinity is not JSON: written as the string "Infinity". */
function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** scale.md: the simulation against the model, and the shared-reads row. */
export function renderScale(s: ScaleSection): string {
  const sim = s.simulation;
  const p = sim.plan;
  const row = (
    name: string,
    key: keyof SimulationResult['measured'],
    errorKey?: keyof SimulationResult['relativeError'],
  ) =>
    `| ${name} | ${sim.measured[key]} | ${sim.predicted[key].toFixed(1)} | ${errorKey ? pct(sim.relativeError[errorKey]) : ''} |`;
  const on = s.sharedReads.on;
  const off = s.sharedReads.off;
  return [
    '# Scale: the capacity model against a real run (issue 19)',
    '',
    `Command: \`${String(s.environment['command'])}\`. Target \`scale-model-error\`: **${pct(s.error)}** ` +
      `(goal <= ${pct(s.goal)}: ${s.met ? 'met' : 'missed'}).`,
    '',
    `The workload of shared/capacity/model.ts, scaled down: ${p.instances} instances (processes, one TokenCache each: ` +
      `DynamoDB store on dynalite, KMS key ring on the local KMS, L1 ttl ${p.l1TtlSeconds} s with jitter ${p.l1Jitter}` +
      (p.instanceLifetimeSeconds === undefined
        ? '), '
        : `; each instance ends after an exponential lifetime of mean ${p.instanceLifetimeSeconds} s and a new ` +
          `TokenCache, with an empty L1 and no data keys, takes its place: ${sim.instancesServed} instances in all), `) +
      `${p.requestsPerSecond} requests/s in Poisson arrivals, ${Math.round(p.appShare * 100)}% for one daemon app partition, ` +
      `the rest on behalf of ${p.oboCallers} callers of Zipf(${p.zipfExponent}) popularity, each presenting a new ` +
      `incoming token every ${p.assertionWindowSeconds} s. Tokens live ${p.tokenLifetimeSeconds} s (MSAL renews them ` +
      `300 s early: ${p.tokenLifetimeSeconds - 300} s of use); data keys ${p.dataKeyMaxAgeSeconds} s. Warm-up ` +
      `${p.warmupSeconds} s, then ${sim.measuredSeconds} s measured: ${sim.requests} requests, ${sim.failures} failed. ` +
      'Store and KMS calls are counted by proxies at the wire, token calls by the authority. The model is given the ' +
      `measured request rate and the measured mean store read (${sim.storeReadMsMean.toFixed(1)} ms) and token call ` +
      `with its write (${sim.tokenCallMsMean.toFixed(1)} ms).`,
    '',
    '| count (measured window) | measured | model | error |',
    '|---|---|---|---|',
    row('store reads (GetItem)', 'storeReads', 'storeReads'),
    row(
      'store writes (PutItem, DeleteItem; leases and failed conditional writes included)',
      'storeWrites',
      'storeWrites',
    ),
    row('of which lease take/release', 'leaseWrites'),
    row('token calls', 'tokenCalls', 'tokenCalls'),
    row('of which client credentials (the app partition)', 'tokenCallsApp'),
    row('of which on-behalf-of', 'tokenCallsObo'),
    row('KMS calls', 'kmsCalls', 'kmsCalls'),
    row('of which GenerateDataKey', 'kmsGenerate'),
    row('of which Decrypt', 'kmsDecrypt'),
    '',
    'Key-ring calls by partition kind, counted in the instances (the KMS rows above are counted at the wire):',
    '',
    '| call:kind | measured | model |',
    '|---|---|---|',
    ...Object.keys(sim.predictedKeyCallsByKind).map(
      (k) => `| ${k} | ${sim.keyCallsByKind[k] ?? 0} | ${sim.predictedKeyCallsByKind[k].toFixed(1)} |`,
    ),
    '',
    `A count n varies from run to run by about 1/sqrt(n) (token calls: ${pct(1 / Math.sqrt(Math.max(1, sim.measured.tokenCalls)))} ` +
      `for ${sim.measured.tokenCalls}), which is why the window is ${sim.measuredSeconds} s.`,
    '',
    `## Shared store reads: ${s.sharedReads.concurrency} concurrent requests for one partition in one instance`,
    '',
    'A cold instance (L1 off) gets the requests at once, each for its own scope of one caller (so each is its own ' +
      'single flight and loads the partition itself); GetItems counted at the wire, ' +
      `${on.trials} bursts per series, alternating.`,
    '',
    '| shared reads | GetItem per burst | burst wall time, median |',
    '|---|---|---|',
    `| on (the default) | **${on.getItemsPerBurst}** | ${on.burstMsMedian.toFixed(1)} ms |`,
    `| off (\`sharedReads: false\`) | ${off.getItemsPerBurst} | ${off.burstMsMedian.toFixed(1)} ms |`,
    '',
    `Run ${String(s.environment['startedAt'])}, commit ${String(s.environment['commit'])}, node ${String(s.environment['node'])}, ` +
      `${String(s.environment['cpus'])} cpus, load ${(s.environment['loadAverageStart'] as number[]).join(' ')} -> ` +
      `${(s.environment['loadAverageEnd'] as number[]).join(' ')}.`,
    '',
  ].join('\n');
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

if (require.main === module) {
  const factor = Number(process.env['BENCH_TIME_FACTOR'] ?? '1');
  runScaleSection({ timeFactor: factor, log: (line) => console.error(line) }).then(
    (s) => {
      console.error(
        `scale: error ${pct(s.error)} (${s.met ? 'met' : 'missed'}); bench/results/scale.{json,md}`,
      );
    },
    (e: unknown) => {
      console.error('scale section failed:', e);
      process.exitCode = 1;
    },
  );
}
