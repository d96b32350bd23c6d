/**
 * Contention across processes (issue 7, item 3): several Node processes, each a separately
 * built TokenCache (test/security/workers/contention-worker.ts), acquire app tokens on one
 * shared partition at once, round after round, against dynalite, cosmosdb-server and
 * redis-server. No
 * token may be lost: every token any worker received is in the stored blob at the end.
 * The conflict rate is measured and reported.
 */
import { createHash } from 'node:crypto';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { Metric } from '../../shared/observability';
import { accessTokensIn, startSecureWorld, storedDocument } from '../support/security-world';
import { cacheWorkerSetup, cosmosRig, dynamoRig, finishWorkers, redisRig } from '../support/worker-process';
import { killedAfterAll, WorkerProcess } from '../support/worker-process';
import type { Acquired, ParentMessage, WorkerMessage } from './workers/contention-worker';
import { useWorld } from '../support/use-world';

type Worker = WorkerProcess<ParentMessage, WorkerMessage>;
const WORKERS = 4;
const ROUNDS = 4;
/** Acquisitions each worker starts at once in a round. */
const PER_ROUND = 3;
const WORKER = 'test/security/workers/contention-worker.ts';

const world = useWorld(startSecureWorld);

describe.each([
  ['DynamoDB (dynalite)', dynamoRig],
  ['Cosmos DB (cosmosdb-server)', cosmosRig],
  ['Redis (redis-server)', redisRig],
])('contention across processes: %s', (name, startRig) => {
  const workers = killedAfterAll<Worker>();
  const rig = useWorld(startRig);

  it(`${WORKERS} processes x ${ROUNDS} rounds x ${PER_ROUND} concurrent acquisitions on one partition lose no token`, async () => {
    const tenantId = world.authority.tenantId;
    const setup = cacheWorkerSetup(world, rig);
    for (let i = 0; i < WORKERS; i++) workers.push(WorkerProcess.start<ParentMessage, WorkerMessage>(WORKER));
    for (const w of workers) w.send(setup);
    await Promise.all(workers.map((w) => w.next('ready')));

    const acquired: Acquired[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      workers.forEach((w, i) =>
        w.send({
          type: 'round',
          round,
          scopes: Array.from(
            { length: PER_ROUND },
            (_, j) => `api://${rig.setup.kind}-w${i}-r${round}-${j}/.default`,
          ),
        }),
      );
      for (const done of await Promise.all(workers.map((w) => w.next('round-done')))) {
        acquired.push(...done.acquired);
      }
    }
    // The workers' log records go through the secret scan like this file's own.
    const { total, errors } = await finishWorkers(workers);

    const writes = total(Metric.StoreWrite);
    const conflicts = total(Metric.StoreConflict);
    const failed = total(Metric.WriteFailed);
    const key = storeKeyOfApp(tenantId);
    const stored = accessTokensIn(
      await storedDocument(rig.store, key, new LocalKeyRing({ masterKey: world.masterKey })),
    ).map((t) => createHash('sha256').update(t).digest('hex'));

    const missing = acquired.filter((a) => !stored.includes(a.tokenHash));
    console.log(
      `contention ${name}: ${WORKERS} processes x ${ROUNDS} rounds x ${PER_ROUND} at once = ${acquired.length} tokens; ` +
        `${writes} writes, ${conflicts} conflicts (conflict rate ${((100 * conflicts) / (writes + conflicts)).toFixed(1)}% ` +
        `of write attempts, ${(conflicts / acquired.length).toFixed(2)} per token), ${failed} failed writes, ${missing.length} tokens lost`,
    );
    expect(acquired).toHaveLength(WORKERS * ROUNDS * PER_ROUND);
    expect(acquired.every((a) => !a.fromCache)).toBe(true);
    expect(missing).toEqual([]);
    expect(new Set(stored).size).toBe(acquired.length);
    expect(failed).toBe(0);
    // Contention really happened across processes: some writes lost the race and merged.
    expect(conflicts).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  }, 120_000);
});

function storeKeyOfApp(tenantId: string): string {
  return world.instance().cache.storeKeyOf({ kind: 'app', tenantId });
}
