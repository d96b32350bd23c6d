/**
 * Shared store reads (issue 19): concurrent requests of one instance loading one partition
 * send one GetItem, counted at the wire by a proxy in front of dynalite. Reads that must
 * see a newer write (a conflict's re-read) still go to the store themselves.
 */
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { Metric } from '../../shared/observability';
import { startLocalDynamo } from '../../local/dynamodb';
import { startCountingProxy } from '../../bench/capacity/counting-proxy';
import { startSecureWorld, userAssertion } from '../support/security-world';
import { startGroup, useDestroyables, useWorld } from '../support/use-world';

const N = 20;
const scopeOf = (i: number) => `api://downstream-${i}/.default`;

/** dynalite and a proxy in front of it that counts the operations it forwards. */
const startCountedDynamo = () =>
  startGroup(async (own) => {
    const dynamo = own(await startLocalDynamo({ tableName: 'shared-reads' }));
    return { dynamo, proxy: own(await startCountingProxy(dynamo.endpoint)) };
  });

const destroyAfterAll = useDestroyables();
const rig = useWorld(startCountedDynamo);
const world = useWorld(startSecureWorld);

function store(): DynamoDbStore {
  return destroyAfterAll(
    new DynamoDbStore({
      tableName: rig.dynamo.tableName,
      clientConfig: { ...rig.dynamo.clientConfig, endpoint: rig.proxy.endpoint },
    }),
  );
}

const getItems = () => rig.proxy.counts().operations['GetItem'] ?? 0;

describe('shared store reads', () => {
  it(`serves ${N} concurrent requests for one partition, each for its own scope, with 1 GetItem`, async () => {
    // Prepare: one caller's partition holding a token for each of the N scopes.
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a001');
    const seeder = world.instance({ store: store() });
    for (let i = 0; i < N; i++)
      await seeder.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] });
    const fresh = world.instance({ store: store() });
    rig.proxy.reset();
    const tokenCallsBefore = world.authority.counters.token();

    // Act: N different requests (distinct single flights) on a cold instance, L1 off.
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] }),
      ),
    );

    // Assert: one read at the wire, every request served from the store.
    expect(getItems()).toBe(1);
    expect(results.every((r) => r.fromCache && r.cache.tokenSource === 'store')).toBe(true);
    expect(results.reduce((n, r) => n + r.cache.storeReads, 0)).toBe(1);
    expect(fresh.metrics.get(Metric.StoreRead)).toBe(1);
    expect(world.authority.counters.token() - tokenCallsBefore).toBe(0);
  });

  it(`without shared reads the same ${N} requests send ${N} GetItems (the baseline)`, async () => {
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a002');
    const seeder = world.instance({ store: store() });
    for (let i = 0; i < N; i++)
      await seeder.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] });
    const fresh = world.instance({ store: store(), sharedReads: false });
    rig.proxy.reset();

    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] }),
      ),
    );

    expect(getItems()).toBe(N);
  });

  it('shares the read with single flight off, too (N identical requests, one GetItem)', async () => {
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a003');
    await world
      .instance({ store: store() })
      .cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });
    const fresh = world.instance({ store: store(), coalescing: false });
    rig.proxy.reset();

    const results = await Promise.all(
      Array.from({ length: N }, () =>
        fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] }),
      ),
    );

    expect(getItems()).toBe(1);
    expect(results.every((r) => r.fromCache)).toBe(true);
  });

  it('a later request after the shared read settled reads again (nothing is remembered)', async () => {
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a004');
    await world
      .instance({ store: store() })
      .cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });
    const fresh = world.instance({ store: store() });
    rig.proxy.reset();

    await fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });
    await fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });

    expect(getItems()).toBe(2);
  });

  it('a cold partition: N concurrent misses for N scopes read once, and every token is stored', async () => {
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a005');
    const one = world.instance({ store: store() });
    rig.proxy.reset();

    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        one.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] }),
      ),
    );
    const firstLoads = rig.proxy.counts().operations['GetItem'] ?? 0;
    // A new instance finds all five tokens in the store: the merged writes lost none.
    const again = world.instance({ store: store() });
    const served = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        again.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] }),
      ),
    );

    expect(results.every((r) => r.cache.tokenSource === 'authority')).toBe(true);
    // The first load is shared; any further reads are lease polls or conflict re-reads,
    // which never join (so they can see the writes they wait for).
    expect(results.reduce((n, r) => n + r.cache.storeReads, 0)).toBe(firstLoads);
    expect(served.every((r) => r.fromCache)).toBe(true);
  });
});
