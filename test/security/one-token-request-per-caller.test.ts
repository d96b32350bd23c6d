/**
 * One token request per caller, however many requests and instances ask at once (issue 12),
 * with real OS processes as instances (test/security/workers/herd-worker.ts) on dynalite
 * and cosmosdb-server, against the local authority whose counters tell how many token
 * requests reached it.
 */
import { createHash } from 'node:crypto';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { Metric } from '../../shared/observability';
import { registerSecret } from '../support/secret-registry';
import { accessTokensIn, startSecureWorld, storedDocument, userAssertion } from '../support/security-world';
import { cacheWorkerSetup, cosmosRig, dynamoRig, finishWorkers } from '../support/worker-process';
import { killedAfterAll, WorkerProcess } from '../support/worker-process';
import type { HerdOutcome, HerdParentMessage, HerdSetup, HerdWorkerMessage } from './workers/herd-worker';
import { useWorld } from '../support/use-world';

type Worker = WorkerProcess<HerdParentMessage, HerdWorkerMessage>;
const WORKER = 'test/security/workers/herd-worker.ts';

const world = useWorld(startSecureWorld);
let users = 0;
let bursts = 0;

/** A fresh caller: an incoming assertion nobody has a token for yet. */
async function freshCaller(): Promise<string> {
  const assertion = await userAssertion(world, `herd-user-${process.pid}-${++users}`);
  registerSecret('assertion', assertion);
  return assertion;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((done) => setTimeout(done, ms));
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe.each([
  ['DynamoDB (dynalite)', dynamoRig],
  ['Cosmos DB (cosmosdb-server)', cosmosRig],
])('one token request per caller across processes: %s', (name, startRig) => {
  const started = killedAfterAll<Worker>();
  const rig = useWorld(startRig);
  beforeEach(() => {
    world.authority.setFault(undefined);
    world.authority.setTokenLatency(0);
  });

  async function startWorkers(n: number, coalescing?: HerdSetup['coalescing']): Promise<Worker[]> {
    const setup: HerdSetup = {
      ...cacheWorkerSetup(world, rig),
      ...(coalescing !== undefined ? { coalescing } : {}),
    };
    const workers = Array.from({ length: n }, () =>
      WorkerProcess.start<HerdParentMessage, HerdWorkerMessage>(WORKER),
    );
    started.push(...workers);
    for (const w of workers) w.send(setup);
    await Promise.all(workers.map((w) => w.next('ready')));
    return workers;
  }

  function burst(
    w: Worker,
    assertion: string,
    scope: string,
    count: number,
  ): Promise<readonly HerdOutcome[]> {
    const id = ++bursts;
    w.send({ type: 'burst', id, assertion, scope, count });
    return w.next('burst-done').then((m) => {
      if (m.id !== id) throw new Error(`burst ${id} answered as ${m.id}`);
      return m.outcomes;
    });
  }

  /** Ends the workers; their log records go through this file's secret scan; returns summed counters. */
  const finish = finishWorkers;

  async function storedTokenHashes(assertion: string): Promise<string[]> {
    const key = world.instance().cache.storeKeyOf({ kind: 'obo', assertion });
    const doc = await storedDocument(rig.store, key, new LocalKeyRing({ masterKey: world.masterKey }));
    return accessTokensIn(doc).map((t) => createHash('sha256').update(t).digest('hex'));
  }

  const served = (outcomes: readonly HerdOutcome[]) => outcomes.flatMap((o) => (o.ok ? [o.tokenHash] : []));

  /** Expects all `count` requests served, with one and the same token, and that token the only one stored for the caller. */
  async function expectOneTokenServed(outcomes: readonly HerdOutcome[], count: number, assertion: string) {
    const tokens = served(outcomes);
    expect(tokens).toHaveLength(count);
    expect(new Set(tokens).size).toBe(1);
    expect(await storedTokenHashes(assertion)).toEqual([tokens[0]]);
  }

  /** Ends `workers`, expecting no errors and the lease outcomes counted as `expected` (`{ holder: 1 }`: one holder). */
  async function expectLeaseOutcomes(workers: Worker[], expected: Readonly<Record<string, number>>) {
    const { total, errors } = await finish(workers);
    for (const [outcome, count] of Object.entries(expected)) {
      expect({ outcome, count: total(`${Metric.Lease}{kind=obo,outcome=${outcome}}`) }).toEqual({
        outcome,
        count,
      });
    }
    expect(errors).toEqual([]);
  }

  it('1 process x 20 concurrent cold requests for one caller: 1 token request, 20 served', async () => {
    const [w] = await startWorkers(1);
    const assertion = await freshCaller();
    const scope = `api://${rig.setup.kind}-herd-1x20/.default`;
    world.authority.counters.reset();

    const outcomes = await burst(w, assertion, scope, 20);

    await expectOneTokenServed(outcomes, 20, assertion);
    expect(world.authority.counters.token()).toBe(1);
    const { total, errors } = await finish([w]);
    expect(total(Metric.FlightJoined)).toBe(19);
    expect(errors).toEqual([]);
  }, 60_000);

  it('4 processes x 5 concurrent cold requests for one caller: 1 token request, 20 served from the store', async () => {
    const workers = await startWorkers(4);
    const assertion = await freshCaller();
    const scope = `api://${rig.setup.kind}-herd-4x5/.default`;
    world.authority.counters.reset();
    // A remote authority takes a while; the lease matters while the holder waits for it.
    world.authority.setTokenLatency(150);

    const outcomes = (await Promise.all(workers.map((w) => burst(w, assertion, scope, 5)))).flat();

    console.log(
      `herd ${name}: 4 x 5 cold requests -> ${world.authority.counters.token()} token request(s); ` +
        `p50 ${percentile(
          outcomes.map((o) => o.ms),
          50,
        ).toFixed(0)} ms, p99 ${percentile(
          outcomes.map((o) => o.ms),
          99,
        ).toFixed(0)} ms`,
    );
    await expectOneTokenServed(outcomes, 20, assertion);
    expect(world.authority.counters.token()).toBe(1);
    await expectLeaseOutcomes(workers, { holder: 1, served: 3 });
  }, 60_000);

  it('without coalescing (the baseline), the same 4 x 5 burst sends several token requests', async () => {
    const workers = await startWorkers(4, false);
    const assertion = await freshCaller();
    world.authority.counters.reset();
    world.authority.setTokenLatency(150);

    const outcomes = (
      await Promise.all(
        workers.map((w) => burst(w, assertion, `api://${rig.setup.kind}-herd-off/.default`, 5)),
      )
    ).flat();

    console.log(
      `herd ${name}: 4 x 5 cold requests, coalescing off -> ${world.authority.counters.token()} token requests`,
    );
    expect(served(outcomes)).toHaveLength(20);
    expect(world.authority.counters.token()).toBeGreaterThan(4);
    await finish(workers);
  }, 60_000);

  it('the lease holder killed mid-request: the others proceed after its lease, one takes over, all are served', async () => {
    const [holder] = await startWorkers(1);
    const others = await startWorkers(3);
    const assertion = await freshCaller();
    const scope = `api://${rig.setup.kind}-herd-kill/.default`;
    world.authority.counters.reset();
    world.authority.setTokenLatency(10_000);

    // The holder's token request reaches the authority, which holds it...
    const holderBurst = burst(holder, assertion, scope, 5).catch(() => 'killed' as const);
    await until(() => world.authority.counters.token() === 1, 20_000, "the holder's token request");
    const t0 = Date.now();
    const waiting = Promise.all(others.map((w) => burst(w, assertion, scope, 5)));
    await sleep(300);
    // ...and the holder dies without a word (SIGKILL), its lease still in the store.
    await holder.killHard();
    world.authority.setTokenLatency(0);
    const outcomes = (await waiting).flat();
    const elapsed = Date.now() - t0;

    await expect(holderBurst).resolves.toBe('killed');
    await expectOneTokenServed(outcomes, 15, assertion);
    // The killed holder's request, and one takeover after its lease ran out.
    expect(world.authority.counters.token()).toBe(2);
    expect(elapsed).toBeGreaterThanOrEqual(2_000); // they waited for the lease (3 s from the holder's take)
    await expectLeaseOutcomes(others, { takeover: 1, served: 2 });
  }, 60_000);

  it('the authority fails: every waiter gets its error, once per process, and the failure is not remembered', async () => {
    const workers = await startWorkers(4);
    const assertion = await freshCaller();
    const scope = `api://${rig.setup.kind}-herd-fail/.default`;
    world.authority.counters.reset();
    world.authority.setFault({ status: 500 });
    world.authority.setTokenLatency(100);

    const outcomes = (await Promise.all(workers.map((w) => burst(w, assertion, scope, 5)))).flat();

    expect(outcomes.filter((o) => !o.ok)).toHaveLength(20);
    expect(new Set(outcomes.map((o) => (o.ok ? 'ok' : `${o.error}:${o.code}`)))).toEqual(
      new Set(['TokenAcquisitionError:server_error']),
    );
    // At most one token request per process: the five of each share one call.
    const failedCalls = world.authority.counters.token();
    console.log(`herd ${name}: 4 x 5 cold requests, authority failing -> ${failedCalls} token requests`);
    expect(failedCalls).toBeGreaterThanOrEqual(1);
    expect(failedCalls).toBeLessThanOrEqual(4);

    world.authority.setFault(undefined);
    world.authority.counters.reset();
    const retry = (await Promise.all(workers.map((w) => burst(w, assertion, scope, 5)))).flat();

    expect(served(retry)).toHaveLength(20);
    expect(world.authority.counters.token()).toBe(1);
    await finish(workers);
  }, 60_000);
});

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}
