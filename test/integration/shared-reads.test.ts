/**
 * Shared store reads (issue 19): concurrent requests of one instance loading one partition
 * send one GetItem, counted at the wire by a proxy in front of dynalite. Reads that must
 * see a newer write (a conflict's re-read) still go to the store themselves.
 */
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { Metric } from '../../shared/observability';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startCountingProxy, type CountingProxy } from '../../bench/capacity/counting-proxy';
import { startSecureWorld, userAssertion } from '../support/security-world';
import type { CacheWorld } from '../support/cache-harness';

const N = 20;
const scopeOf = (i: number) => `api://downstream-${i}/.default`;

let world: CacheWorld;
let dynamo: LocalDynamo;
let proxy: CountingProxy;
const stores: DynamoDbStore[] = [];

function store(): DynamoDbStore {
  const s = new DynamoDbStore({
    tableName: dynamo.tableName,
    clientConfig: { ...dynamo.clientConfig, endpoint: proxy.endpoint },
  });
  stores.push(s);
  return s;
}

const getItems = () => proxy.counts().operations['GetItem'] ?? 0;

beforeAll(async () => {
  world = await startSecureWorld();
  dynamo = await startLocalDynamo({ tableName: 'shared-reads' });
  proxy = await startCountingProxy(dynamo.endpoint);
});

afterAll(async () => {
  for (const s of stores) s.destroy();
  await proxy.stop();
  await dynamo.stop();
  await world.stop();
});

describe('shared store reads', () => {
  it(`serves ${N} concurrent requests for one partition, each for its own scope, with 1 GetItem`, async () => {
    // Prepare: one caller's partition holding a token for each of the N scopes.
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a001');
    const seeder = world.instance({ store: store() });
    for (let i = 0; i < N; i++)
      await seeder.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] });
    const fresh = world.instance({ store: store() });
    proxy.reset();
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
    proxy.reset();

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
    proxy.reset();

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
    proxy.reset();

    await fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });
    await fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(0)] });

    expect(getItems()).toBe(2);
  });

  it('a cold partition: N concurrent misses for N scopes read once, and every token is stored', async () => {
    const assertion = await userAssertion(world, '00000000-0000-4000-8000-00000000a005');
    const one = world.instance({ store: store() });
    proxy.reset();

    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        one.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scopeOf(i)] }),
      ),
    );
    const firstLoads = proxy.counts().operations['GetItem'] ?? 0;
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
