/**
 * The herd (issue 12): P processes x C concurrent cold requests for one caller and scope,
 * with coalescing on (single flight and the store lease, the default) and off (every
 * request straight to the authority, as before). Each process is a separate instance
 * (bench/herd-worker.ts: DynamoDB store, KMS envelope, L1 off), warmed up on a caller of
 * its own; every cell uses a fresh caller, so every request is a cold miss, and all
 * processes start their burst at the same instant. The authority answers after a fixed
 * latency, as a remote one does. Per cell: token-endpoint calls (the goal: 1), p50/p99
 * of all requests, and store calls per request.
 */
import path from 'node:path';
import type { Summary } from '../stats';
import { progress } from '../measure';
import { forkTs, WorkerProcess } from '../worker-process';
import { summarize } from '../stats';
import { BENCH_CLIENT_ID, type World } from '../world';
import type { HerdBenchIn, HerdBenchOut, StoreCalls } from '../herd-worker';

export type HerdMode = 'coalesced' | 'direct';

export interface HerdCell {
  readonly mode: HerdMode;
  readonly processes: number;
  readonly concurrency: number;
  readonly requests: number;
  readonly failures: number;
  /** Token-endpoint requests the burst caused. */
  readonly tokenCalls: number;
  readonly latencyMs: Summary;
  /** Store calls of the burst, all processes summed. */
  readonly store: StoreCalls;
}

export interface HerdResult {
  readonly authorityLatencyMs: number;
  readonly cells: readonly HerdCell[];
}

export interface HerdOptions {
  readonly world: World;
  readonly processes: readonly number[];
  readonly concurrency: readonly number[];
  readonly authorityLatencyMs: number;
}

const SCOPE = 'api://bench-herd/.default';
const WORKER = path.join(__dirname, '..', 'herd-worker.ts');

class BenchWorker extends WorkerProcess<HerdBenchIn, HerdBenchOut> {
  static start(): BenchWorker {
    return new BenchWorker(forkTs(WORKER), 'herd worker');
  }
  stop(): void {
    if (this.child.connected) this.send({ type: 'stop' });
  }
}

let callers = 0;

async function freshAssertions(world: World, n: number): Promise<string[]> {
  const oids = Array.from(
    { length: n },
    () => `00000000-0000-4000-8000-${String(++callers).padStart(12, '0')}`,
  );
  return world.mint(oids, BENCH_CLIENT_ID);
}

/** Runs every cell in both modes; workers are started once per mode and reused. */
export async function runHerd(options: HerdOptions): Promise<HerdResult> {
  const { world } = options;
  const maxP = Math.max(...options.processes);
  await world.setTokenLatency(options.authorityLatencyMs);
  const cells: HerdCell[] = [];
  try {
    for (const mode of ['direct', 'coalesced'] as const) {
      progress(`herd: starting ${maxP} instances (${mode})`);
      const workers = Array.from({ length: maxP }, () => BenchWorker.start());
      try {
        const warm = await freshAssertions(world, maxP);
        workers.forEach((w, i) =>
          w.send({
            type: 'setup',
            info: world.info,
            coalescing: mode === 'coalesced',
            warmAssertion: warm[i],
            scope: SCOPE,
          }),
        );
        await Promise.all(workers.map((w) => w.next('ready')));
        for (const processes of options.processes) {
          for (const concurrency of options.concurrency) {
            cells.push(await runCell(world, workers.slice(0, processes), mode, concurrency));
            const c = cells[cells.length - 1];
            progress(
              `herd ${mode} P=${processes} C=${concurrency}: ${c.tokenCalls} token call(s), ` +
                `p50 ${c.latencyMs.p50.toFixed(0)} ms, p99 ${c.latencyMs.p99.toFixed(0)} ms, ` +
                `store r${c.store.reads}/w${c.store.writes}/lease${c.store.leases}/conflict${c.store.conflicts}`,
            );
          }
        }
      } finally {
        for (const w of workers) w.stop();
      }
    }
  } finally {
    await world.setTokenLatency(0);
  }
  return { authorityLatencyMs: options.authorityLatencyMs, cells };
}

async function runCell(
  world: World,
  workers: readonly BenchWorker[],
  mode: HerdMode,
  concurrency: number,
): Promise<HerdCell> {
  const [assertion] = await freshAssertions(world, 1);
  const before = (await world.counters()).tokenCalls;
  const startAt = Date.now() + 100;
  for (const w of workers)
    w.send({ type: 'burst', assertion: assertion, scope: SCOPE, count: concurrency, startAt });
  const done = await Promise.all(workers.map((w) => w.next('burst-done')));
  const tokenCalls = (await world.counters()).tokenCalls - before;
  const sum = (f: (s: StoreCalls) => number) => done.reduce((n, d) => n + f(d.store), 0);
  return {
    mode,
    processes: workers.length,
    concurrency,
    requests: workers.length * concurrency,
    failures: done.reduce((n, d) => n + d.failures, 0),
    tokenCalls,
    latencyMs: summarize(done.flatMap((d) => d.latenciesMs)),
    store: {
      reads: sum((s) => s.reads),
      writes: sum((s) => s.writes),
      conflicts: sum((s) => s.conflicts),
      leases: sum((s) => s.leases),
    },
  };
}

/** The herd table, Markdown. */
export function renderHerd(result: HerdResult, command: string): string {
  const find = (mode: HerdMode, p: number, c: number) =>
    result.cells.find((x) => x.mode === mode && x.processes === p && x.concurrency === c);
  const calls = (s: StoreCalls) => s.reads + s.writes + s.leases;
  const rows: string[] = [];
  const seen = new Set<string>();
  for (const cell of result.cells) {
    const id = `${cell.processes}x${cell.concurrency}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const on = find('coalesced', cell.processes, cell.concurrency);
    const off = find('direct', cell.processes, cell.concurrency);
    if (!on || !off) continue;
    const perReq = (x: HerdCell) => calls(x.store) / x.requests;
    rows.push(
      `| ${cell.processes} | ${cell.concurrency} | ${on.requests} | **${on.tokenCalls}** | ${off.tokenCalls} | ` +
        `${on.latencyMs.p50.toFixed(0)} / ${on.latencyMs.p99.toFixed(0)} | ${off.latencyMs.p50.toFixed(0)} / ${off.latencyMs.p99.toFixed(0)} | ` +
        `x${(on.latencyMs.p50 / off.latencyMs.p50).toFixed(2)} / x${(on.latencyMs.p99 / off.latencyMs.p99).toFixed(2)} | ` +
        `${perReq(on).toFixed(2)} (lease ${(on.store.leases / on.requests).toFixed(2)}) | ${perReq(off).toFixed(2)} | ` +
        `${(perReq(on) - perReq(off)).toFixed(2)} | ${on.store.conflicts} / ${off.store.conflicts} | ${on.failures + off.failures} |`,
    );
  }
  return [
    '## Herd: P processes x C concurrent cold requests for one caller (issue 12)',
    '',
    `Command: \`${command}\`. The authority answers each token request after ${result.authorityLatencyMs} ms. ` +
      'Every cell is a fresh caller, so every request is a cold miss; each process is a warm instance ' +
      '(DynamoDB store on dynalite, KMS envelope, L1 off); all processes start their burst at once. ' +
      '"coalesced" is the default (single flight + store lease); "direct" is `coalescing: false`, ' +
      'every request straight to the authority. Latency: all P x C requests of the cell, one run.',
    '',
    '| P | C | requests | token calls, coalesced | token calls, direct | p50 / p99 ms, coalesced | p50 / p99 ms, direct | ratio p50 / p99 | store calls per request, coalesced | store calls per request, direct | extra store calls per request | conflicts coalesced / direct | failed requests |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}
