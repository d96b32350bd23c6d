/**
 * Coalescing inside one process and across instances on one MemoryStore (issue 12): the
 * single flight, the store lease on a miss, its bounds and faults, and the local merging
 * of concurrent writes to one partition. The cross-process acceptance is in
 * test/security/one-token-request-per-caller.test.ts.
 */
import { SingleFlight } from '../../shared/cache/coalescing';
import { StoreUnavailableError, TokenAcquisitionError } from '../../shared/errors';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { Metric } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import type { LeaseOptions, LeaseStore, TokenStore } from '../../shared/store/store';
import { startCacheWorld, type CacheWorld } from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';
import { accessTokensIn, storedDocument, userAssertion } from '../support/security-world';

describe('SingleFlight', () => {
  it('shares one call among concurrent callers of a key and forgets it when it settles', async () => {
    const flights = new SingleFlight<number>(10);
    let calls = 0;
    let finish: (n: number) => void = () => undefined;
    const fn = () => {
      calls++;
      return new Promise<number>((done) => (finish = done));
    };

    const first = flights.run('k', fn);
    const second = flights.run('k', fn);
    expect(flights.size).toBe(1);
    finish(7);

    await expect(Promise.all([first.promise, second.promise])).resolves.toEqual([7, 7]);
    expect([first.joined, second.joined]).toEqual([false, true]);
    expect(calls).toBe(1);
    expect(flights.size).toBe(0);
  });

  it('hands every caller the same error, and does not remember the failure', async () => {
    const flights = new SingleFlight<number>(10);
    const boom = new Error('authority down');
    const failing = () => Promise.reject(boom);

    const results = await Promise.allSettled([
      flights.run('k', failing).promise,
      flights.run('k', failing).promise,
    ]);

    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as unknown) : r.value))).toEqual([
      boom,
      boom,
    ]);
    expect(flights.size).toBe(0);
    await expect(flights.run('k', () => Promise.resolve(1)).promise).resolves.toBe(1);
  });

  it('is bounded: past maxInFlight keys, a call runs on its own', async () => {
    const flights = new SingleFlight<string>(2);
    const pending = () => new Promise<string>(() => undefined);
    flights.run('a', pending);
    flights.run('b', pending);

    const third = flights.run('c', () => Promise.resolve('alone'));
    const again = flights.run('c', () => Promise.resolve('alone too'));

    expect(flights.size).toBe(2);
    expect([third.joined, again.joined]).toEqual([false, false]);
    await expect(again.promise).resolves.toBe('alone too');
  });
});

describe('TokenCache coalescing (local authority, MemoryStore)', () => {
  let world: CacheWorld;
  let store: MemoryStore;
  let users = 0;

  beforeAll(async () => {
    world = await startCacheWorld();
    store = world.store;
  });
  afterAll(async () => {
    await world.stop();
  });
  beforeEach(() => {
    world.authority.setFault(undefined);
    world.authority.setTokenLatency(0);
    world.authority.counters.reset();
  });

  async function freshCaller(): Promise<string> {
    const assertion = await userAssertion(world, `coalescing-${++users}`);
    registerSecret('assertion', assertion);
    return assertion;
  }

  const obo = (assertion: string, scope = 'api://downstream/.default') => ({ assertion, scopes: [scope] });

  it('20 concurrent cold requests in one instance: 1 token request, the same token for all', async () => {
    const { cache, metrics } = world.instance();
    const assertion = await freshCaller();

    const results = await Promise.all(
      Array.from({ length: 20 }, () => cache.acquireTokenOnBehalfOf(obo(assertion))),
    );

    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(new Set(results).size).toBe(20); // each caller its own result object
    expect(world.authority.counters.token()).toBe(1);
    expect(metrics.get(Metric.FlightJoined)).toBe(19);
  });

  it('the authority fails: every waiter gets the same error from 1 token request; the next request tries again', async () => {
    const { cache } = world.instance();
    const assertion = await freshCaller();
    world.authority.setFault({ status: 503 });

    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => cache.acquireTokenOnBehalfOf(obo(assertion))),
    );

    const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as unknown) : undefined));
    expect(reasons[0]).toBeInstanceOf(TokenAcquisitionError);
    expect(new Set(reasons).size).toBe(1);
    expect(world.authority.counters.token()).toBe(1);

    world.authority.setFault(undefined);
    await expect(cache.acquireTokenOnBehalfOf(obo(assertion))).resolves.toMatchObject({ fromCache: false });
    expect(world.authority.counters.token()).toBe(2);
  });

  it('4 instances x 5 concurrent cold requests on one store: 1 token request, the others served from the store', async () => {
    const instances = Array.from({ length: 4 }, () => world.instance());
    const assertion = await freshCaller();
    world.authority.setTokenLatency(100);
    const itemsBefore = store.size;

    const results = await Promise.all(
      instances.flatMap(({ cache }) =>
        Array.from({ length: 5 }, () => cache.acquireTokenOnBehalfOf(obo(assertion))),
      ),
    );

    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
    expect(world.authority.counters.token()).toBe(1);
    const outcomes = (outcome: string) =>
      instances.reduce((n, i) => n + i.metrics.get(Metric.Lease, { kind: 'obo', outcome }), 0);
    expect(outcomes('holder')).toBe(1);
    expect(outcomes('served')).toBe(3);
    // One partition item was added; the lease was released and is no item.
    expect(store.size).toBe(itemsBefore + 1);
    expect(store.leaseCount).toBe(0);
  });

  it('without the lease, each instance sends its own token request', async () => {
    const instances = Array.from({ length: 4 }, () => world.instance({ coalescing: { lease: false } }));
    const assertion = await freshCaller();
    world.authority.setTokenLatency(100);

    await Promise.all(
      instances.flatMap(({ cache }) =>
        Array.from({ length: 5 }, () => cache.acquireTokenOnBehalfOf(obo(assertion))),
      ),
    );

    expect(world.authority.counters.token()).toBe(4);
  });

  it('costs one lease acquire and one release on a miss, and no lease call on a hit', async () => {
    const { cache, metrics } = world.instance();
    const assertion = await freshCaller();

    await cache.acquireTokenOnBehalfOf(obo(assertion));
    const afterMiss = metrics.snapshot();
    const hit = await cache.acquireTokenOnBehalfOf(obo(assertion));

    expect(afterMiss[`${Metric.StoreLease}{kind=obo,operation=acquire}`]).toBe(1);
    expect(afterMiss[`${Metric.StoreLease}{kind=obo,operation=release}`]).toBe(1);
    expect(hit.fromCache).toBe(true);
    expect(metrics.get(Metric.StoreLease)).toBe(2);
  });

  it('a lease that is never freed bounds the wait: the request calls the authority itself after maxWaitMs', async () => {
    const stuck = new MemoryStore();
    stuck.acquireLease = async () => false; // a holder that never writes, never releases
    const { cache, metrics } = world.instance({
      store: stuck,
      coalescing: { maxWaitMs: 300, pollBaseMs: 10, pollMaxMs: 50 },
    });
    const assertion = await freshCaller();
    const t0 = Date.now();

    const result = await cache.acquireTokenOnBehalfOf(obo(assertion));

    expect(result.fromCache).toBe(false);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(world.authority.counters.token()).toBe(1);
    expect(metrics.get(Metric.Lease, { kind: 'obo', outcome: 'timeout' })).toBe(1);
  });

  it('the store failing to lease: straight to the authority, reported, never failing the request', async () => {
    const broken = new MemoryStore();
    broken.acquireLease = async (_key: string, _options: LeaseOptions) => {
      throw new StoreUnavailableError('memory', 'write', 'lease table unreachable');
    };
    const { cache, metrics, logger } = world.instance({ store: broken });
    const assertion = await freshCaller();

    const result = await cache.acquireTokenOnBehalfOf(obo(assertion));

    expect(result.fromCache).toBe(false);
    expect(world.authority.counters.token()).toBe(1);
    expect(metrics.get(Metric.Lease, { kind: 'obo', outcome: 'unavailable' })).toBe(1);
    expect(metrics.get(Metric.StoreError, { kind: 'obo', operation: 'lease-acquire' })).toBe(1);
    expect(logger.lines.filter((l) => l.level === 'warn' && /lease/.test(l.message))).toHaveLength(1);
  });

  it('a lease freed just after the waiter re-read: the waiter re-reads once more and is served, not a second call', async () => {
    const shared = new MemoryStore();
    const { cache: holder } = world.instance({ store: shared, coalescing: { lease: false } });
    const assertion = await freshCaller();
    let attempts = 0;
    // The holder writes and releases between the waiter's re-read and its next lease attempt.
    const racing: TokenStore & LeaseStore = {
      name: shared.name,
      maxItemBytes: shared.maxItemBytes,
      read: (key) => shared.read(key),
      write: (key, blob, options) => shared.write(key, blob, options),
      delete: (key, options) => shared.delete(key, options),
      acquireLease: async () => {
        if (++attempts === 1) return false;
        await holder.acquireTokenOnBehalfOf(obo(assertion));
        return true;
      },
      releaseLease: async () => undefined,
    };
    const { cache, metrics } = world.instance({
      store: racing,
      coalescing: { pollBaseMs: 5, pollMaxMs: 10 },
    });

    const result = await cache.acquireTokenOnBehalfOf(obo(assertion));

    expect(result.fromCache).toBe(true);
    expect(world.authority.counters.token()).toBe(1);
    expect(metrics.get(Metric.Lease, { kind: 'obo', outcome: 'served' })).toBe(1);
    expect(metrics.get(Metric.Lease, { kind: 'obo', outcome: 'takeover' })).toBe(0);
  });

  it('a lease release that fails costs nothing but a warning: the lease expires on its own', async () => {
    const store = new MemoryStore();
    store.releaseLease = async () => {
      throw new StoreUnavailableError('memory', 'delete', 'lease table unreachable');
    };
    const { cache, metrics, logger } = world.instance({ store });
    const assertion = await freshCaller();

    await expect(cache.acquireTokenOnBehalfOf(obo(assertion))).resolves.toMatchObject({ fromCache: false });

    expect(metrics.get(Metric.StoreError, { kind: 'obo', operation: 'lease-release' })).toBe(1);
    expect(logger.lines.filter((l) => l.level === 'warn' && /lease/.test(l.message))).toHaveLength(1);
    expect(store.leaseCount).toBe(1);
  });

  it.each([
    ['an instant store', 0],
    ['a store taking 30 ms a write', 30],
  ])(
    'concurrent requests for different scopes of one partition write it without conflicting, and keep every token (%s)',
    async (_name, writeDelayMs) => {
      const slow = new MemoryStore();
      const write = slow.write.bind(slow);
      slow.write = async (...args) => {
        await new Promise((done) => setTimeout(done, writeDelayMs));
        return write(...args);
      };
      const { cache, metrics } = world.instance({ store: slow });
      const scopes = Array.from({ length: 8 }, (_, i) => `api://local-merge-${i}/.default`);
      const tenantId = `coalesce-tenant-${++users}`;
      world.authority.setTokenLatency(20);

      const results = await Promise.all(
        scopes.map((s) => cache.acquireTokenForApp({ scopes: [s], tenantId })),
      );

      expect(world.authority.counters.token()).toBe(8);
      expect(metrics.get(Metric.StoreConflict)).toBe(0);
      // While a write is in flight, the changes behind it wait and go out together.
      if (writeDelayMs > 0) expect(metrics.get(Metric.StoreWrite)).toBeLessThan(8);
      const stored = accessTokensIn(
        await storedDocument(
          slow,
          cache.storeKeyOf({ kind: 'app', tenantId }),
          new LocalKeyRing({ masterKey: world.masterKey }),
        ),
      );
      expect(stored.sort()).toEqual(results.map((r) => r.accessToken).sort());
    },
  );
});
