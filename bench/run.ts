/**
 * `npm run bench`: the cost of a warm token, side by side with the alternatives, in one
 * run on the same store (issue 6). Writes bench/results/latest.{json,md,svg}.
 *
 * Everything is loopback: dynalite, the local KMS and the local authority run in a child
 * process (bench/servers.ts). Every loop is bounded by a count and a time budget; the
 * whole run stays under 6 minutes on 2 cores. `BENCH_TIME_FACTOR=0.3 npm run bench`
 * shortens every budget for a quick look (the committed results use 1).
 *
 * `npx tsx bench/run.ts herd` runs only the herd section (issue 12) and writes
 * bench/results/herd.{json,md}, leaving latest.* alone. `npx tsx bench/run.ts cold-start`
 * runs only the cold-start section (about 30 s) and prints it, writing nothing.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HttpsNetworkClient } from '../shared/cache/http';
import type { BenchResults, Environment } from './model';
import { progress } from './measure';
import { addAltEnvelopes, addSyntheticCallers, partitionsOf, populate } from './population';
import { renderMarkdown, renderSvg } from './report';
import { runActiveCallers } from './scenarios/active-callers';
import { blobSizes } from './scenarios/blob-size';
import { runColdStart } from './scenarios/cold-start';
import { runContention } from './scenarios/contention';
import { runLatency } from './scenarios/latency';
import { runNetwork } from './scenarios/network';
import { renderHerd, runHerd } from './scenarios/herd';
import { runScale } from './scenarios/scale';
import { buildTargets, measuredTargets } from './targets';
import {
  DynamoCacheClient,
  ItemFloorVariant,
  NAIVE_KEY,
  StoreFloorVariant,
  PluginVariant,
  ProjectVariant,
  msalSetup,
  peerKey,
  PEER_APP_KEY,
  type Kind,
} from './variants';
import { startWorld } from './world';
import { runScaleSection } from './capacity/section';

const factor = Number(process.env['BENCH_TIME_FACTOR'] ?? '1');
if (!(factor > 0 && factor <= 1)) throw new Error('BENCH_TIME_FACTOR must be in (0, 1]');
const seconds = (s: number): number => Math.round(s * 1000 * factor);

/** Iteration counts and budgets: the report states them. */
const PLAN = {
  users: 50,
  latency: { warmupPerSeries: 30, blockSize: 10, maxRounds: 200, budgetMs: seconds(50), unprimed: 20 },
  network: { delaysMs: [1, 5], warmup: 10, blockSize: 10, maxRounds: 100, budgetMsPerDelay: seconds(15) },
  activeCallers: { levels: [100, 5_000], warmup: 50, blockSize: 10, maxRounds: 200, budgetMs: seconds(30) },
  scale: {
    levels: [100, 1_000, 10_000],
    blockSize: 10,
    maxRounds: 50,
    levelBudgetMs: seconds(8),
    naiveMaxRequests: 60,
    naiveBudgetMs: seconds(6),
  },
  contention: {
    writers: 32,
    rounds: 10,
    /** The proposed default: as many attempts as writers, and more. */
    tuned: { retries: { maxAttempts: 40 }, rounds: 5 },
    variantBudgetMs: seconds(30),
  },
  coldStart: { runs: 5, budgetMs: seconds(40) },
  herd: { processes: [1, 4, 8], concurrency: [1, 5, 20], authorityLatencyMs: 100 },
} as const;

const HERD_ONLY = process.argv.slice(2).includes('herd');
const COLD_START_ONLY = process.argv.slice(2).includes('cold-start');

const RESULTS_DIR = path.join(__dirname, 'results');

/** Only the herd section: bench/results/herd.{json,md}. */
async function herdOnly(): Promise<void> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const started = new Date();
  const loadStart = os.loadavg();
  progress(`bench herd: node ${process.version}, ${os.cpus().length} cpus, load ${fmtLoad(loadStart)}`);
  const world = await startWorld();
  try {
    const herd = await runHerd({ world, ...PLAN.herd });
    const command = 'npx tsx bench/run.ts herd';
    const environment = {
      startedAt: started.toISOString(),
      durationSeconds: Math.round((Date.now() - started.getTime()) / 100) / 10,
      node: process.version,
      cpus: os.cpus().length,
      loadAverageStart: loadStart.map(round2),
      loadAverageEnd: os.loadavg().map(round2),
      commit: gitCommit(),
      command,
    };
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(
      path.join(RESULTS_DIR, 'herd.json'),
      `${JSON.stringify({ plan: PLAN.herd, environment, herd }, null, 2)}\n`,
    );
    await writeFile(
      path.join(RESULTS_DIR, 'herd.md'),
      `${renderHerd(herd, command)}\nRun ${environment.startedAt}, commit ${environment.commit}, ` +
        `node ${environment.node}, ${environment.cpus} cpus, load ${fmtLoad(loadStart)} -> ${fmtLoad(os.loadavg())}.\n`,
    );
    progress(`done in ${environment.durationSeconds} s: bench/results/herd.{json,md}`);
  } finally {
    await world.stop();
  }
}

/** Only the cold-start section, printed (a quick look after a bundling change). */
async function coldStartOnly(): Promise<void> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  progress(`bench cold start: node ${process.version}, load ${fmtLoad(os.loadavg())}`);
  const world = await startWorld();
  try {
    const result = await runColdStart({ world, ...PLAN.coldStart });
    const ratio = result.importVsSdkFloor;
    progress(
      `import of the shipped web API / import of the SDK floor: ${ratio === undefined ? 'not measured' : `${ratio.toFixed(2)}x`}; ` +
        `load ${fmtLoad(os.loadavg())}`,
    );
  } finally {
    await world.stop();
  }
}

async function main(): Promise<void> {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const started = new Date();
  const loadStart = os.loadavg();
  const notes: string[] = [];
  progress(`bench: node ${process.version}, ${os.cpus().length} cpus, load ${fmtLoad(loadStart)}`);
  const world = await startWorld();
  const network = new HttpsNetworkClient({ ca: world.info.authority.ca });
  const setup = msalSetup(world, network);
  const table = world.info.dynamo.tableName;
  const a = new ProjectVariant('a', world, network);
  const b = new ProjectVariant('b', world, network);
  const peerClient = new DynamoCacheClient(world.dynamoConfig, table);
  const naiveClient = new DynamoCacheClient(world.dynamoConfig, table);
  const c = new PluginVariant('c', setup, peerClient, (kind: Kind, assertion: string) =>
    kind === 'obo' ? peerKey(assertion) : PEER_APP_KEY,
  );
  const d = new PluginVariant('d', setup, naiveClient, () => NAIVE_KEY);
  const tenantId = world.info.authority.tenantId;
  // Both floors read (a)'s own items: (e) with a default SDK client, (f) through (a)'s store.
  const aKeyOf = (kind: Kind, assertion: string): string => a.keyOf(kind, assertion, tenantId);
  const e = new ItemFloorVariant(world.dynamoConfig, table, aKeyOf);
  const f = new StoreFloorVariant(a.store, aKeyOf);
  const g = new ProjectVariant('g', world, network);
  const unprimed = new PluginVariant(
    'c',
    setup,
    new DynamoCacheClient(world.dynamoConfig, table),
    (kind: Kind, assertion: string) => (kind === 'obo' ? peerKey(assertion) : PEER_APP_KEY),
    'none',
  );
  const results: { -readonly [K in keyof BenchResults]: BenchResults[K] } = {
    environment: undefined as unknown as Environment,
    notes,
  };
  try {
    progress(`setup: ${PLAN.users} users' OBO partitions and the app partition, through (a)`);
    // A separate seeding container, so (a) and (b) start measured sections warm but unprimed.
    const seeder = new ProjectVariant('a', world, network);
    const population = await populate({
      world,
      seeder,
      peer: peerClient,
      naive: naiveClient,
      count: PLAN.users,
    }).finally(() => seeder.close());
    results.blobSizes = blobSizes(population);
    const assertions = population.users.map((u) => u.assertion);
    // (g)'s second envelope of every partition it reads.
    await addAltEnvelopes(world, partitionsOf(population, aKeyOf));

    progress('latency (items 1 and 2)');
    results.latency = await runLatency({
      world,
      variants: { a, b, c, d, e, f, g },
      assertions,
      warmupPerSeries: PLAN.latency.warmupPerSeries,
      blockSize: PLAN.latency.blockSize,
      maxRounds: PLAN.latency.maxRounds,
      budgetMs: PLAN.latency.budgetMs,
      unprimedPeer: unprimed,
      unprimedRequests: PLAN.latency.unprimed,
    });
    logLatency(results.latency);

    await section(notes, 'delayed network (issue 16)', async () => {
      results.network = await runNetwork({ world, network, assertions, ...PLAN.network });
    });

    await section(notes, 'contention (item 4)', async () => {
      const { result, blobSizes: rows } = await runContention({
        world,
        setup,
        network,
        writers: PLAN.contention.writers,
        rounds: PLAN.contention.rounds,
        tuned: PLAN.contention.tuned,
        variantBudgetMs: PLAN.contention.variantBudgetMs,
      });
      results.contention = result;
      results.blobSizes = [...(results.blobSizes ?? []), ...rows];
    });

    await section(notes, 'scale (item 3)', async () => {
      results.scale = await runScale({
        world,
        a,
        floor: e,
        setup,
        population,
        levels: PLAN.scale.levels,
        blockSize: PLAN.scale.blockSize,
        maxRounds: PLAN.scale.maxRounds,
        levelBudgetMs: PLAN.scale.levelBudgetMs,
        naiveMaxRequests: PLAN.scale.naiveMaxRequests,
        naiveBudgetMs: PLAN.scale.naiveBudgetMs,
      });
    });

    await section(notes, 'active callers (issue 16)', async () => {
      const top = Math.max(...PLAN.activeCallers.levels);
      progress(`active callers: storing ${top} callers' partitions`);
      const callers = await addSyntheticCallers(world, {
        template: population.users[0],
        count: top,
        keyOf: (assertion) => aKeyOf('obo', assertion),
      });
      results.activeCallers = await runActiveCallers({ world, network, callers, ...PLAN.activeCallers });
    });

    await section(notes, 'cold start (item 5)', async () => {
      results.coldStart = await runColdStart({
        world,
        runs: PLAN.coldStart.runs,
        budgetMs: PLAN.coldStart.budgetMs,
      });
      if (results.coldStart.note) notes.push(`cold start: ${results.coldStart.note}`);
    });

    await section(notes, 'herd (issue 12)', async () => {
      results.herd = await runHerd({ world, ...PLAN.herd });
    });
  } finally {
    for (const v of [a, b, c, d, e, f, g, unprimed]) v.close();
    network.destroy();
    await world.stop();
  }
  // Issue 19: the capacity simulation against the model. It starts its own services and
  // instance processes, so it runs after the world above has stopped (nothing else loads the cores).
  await section(notes, 'capacity model (issue 19)', async () => {
    results.scaleModel = await runScaleSection({ timeFactor: factor, log: progress });
  });

  results.environment = {
    startedAt: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 100) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadAverageStart: loadStart.map(round2),
    loadAverageEnd: os.loadavg().map(round2),
    commit: gitCommit(),
    msalNode: msalVersion(),
    command: factor === 1 ? 'npm run bench' : `BENCH_TIME_FACTOR=${factor} npm run bench`,
  };
  results.targets = buildTargets(measuredTargets(results));
  const final = results as BenchResults;
  await mkdir(RESULTS_DIR, { recursive: true });
  await writeFile(
    path.join(RESULTS_DIR, 'latest.json'),
    `${JSON.stringify({ plan: PLAN, ...final }, null, 2)}\n`,
  );
  await writeFile(
    path.join(RESULTS_DIR, 'latest.md'),
    renderMarkdown(final, PLAN) +
      (final.herd ? `\n${renderHerd(final.herd, final.environment.command)}` : ''),
  );
  await writeFile(path.join(RESULTS_DIR, 'latest.svg'), renderSvg(final));
  for (const t of final.targets ?? []) {
    progress(
      `target ${t.id}: ${t.value === null ? 'not measured' : round3(t.value)} (goal ${t.goal}) ${t.met ? 'met' : 'MISSED'}`,
    );
  }
  progress(`done in ${final.environment.durationSeconds} s: bench/results/latest.{json,md,svg}`);
}

/** Runs one section; a failure is reported in the results instead of ending the run. */
async function section(notes: string[], name: string, fn: () => Promise<void>): Promise<void> {
  progress(name);
  try {
    await fn();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    notes.push(`${name} failed: ${message}`);
    progress(`${name} FAILED: ${message}`);
  }
}

function logLatency(latency: NonNullable<BenchResults['latency']>): void {
  for (const kind of ['obo', 'app'] as const) {
    const line = (['a', 'b', 'c', 'd', 'e', 'f', 'g'] as const)
      .map(
        (id) =>
          `${id} ${latency.series[id][kind].wall.p50.toFixed(2)}ms x${latency.ratios[id][kind].p50.toFixed(2)}`,
      )
      .join(' | ');
    progress(`latency ${kind} p50: ${line}`);
  }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function msalVersion(): string {
  try {
    const file = path.join(path.dirname(require.resolve('@azure/msal-node')), '..', 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
const fmtLoad = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join(' ');

(HERD_ONLY ? herdOnly() : COLD_START_ONLY ? coldStartOnly() : main()).catch((e: unknown) => {
  console.error('bench failed:', e);
  process.exitCode = 1;
});
