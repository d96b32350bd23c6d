/**
 * Faults of the Redis store on a real redis-server (issue 18): the server down at start,
 * killed mid-run and restarted, slow past the store's timeout, a black hole, connections
 * reset. Each case states what the caller gets (its token, from the authority when the
 * store cannot help), how long the store may cost, and that nothing stored is served wrong,
 * lost or overwritten.
 */
import { GrantType } from '../../local/authority';
import { startLocalRedis, type LocalRedis } from '../../local/redis';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { ErrorCode, StoreUnavailableError } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { RedisStore } from '../../shared/redis';
import type { StoredItem } from '../../shared/store/store';
import { DOWNSTREAM_SCOPE } from '../support/cache-harness';
import {
  accessTokensIn,
  linesWithCode,
  startSecureWorld,
  storedDocument,
  userAssertion,
} from '../support/security-world';
import { startTcpFaultProxy, type TcpFaultProxy } from '../support/tcp-fault-proxy';
import { freePort } from '../../local/net';
import { useWorld } from '../support/use-world';

const OTHER_SCOPE = 'api://other-downstream/.default';
/** The store's per-operation budget in these tests. */
const TIMEOUT_MS = 300;

const world = useWorld(startSecureWorld);
const stores: RedisStore[] = [];

afterAll(() => {
  for (const store of stores) store.destroy();
});
beforeEach(() => {
  world.authority.counters.reset();
});

function redisStore(url: string): RedisStore {
  const store = new RedisStore({ clientOptions: { url }, commandTimeoutMs: TIMEOUT_MS });
  stores.push(store);
  return store;
}

async function failureOf(action: Promise<unknown>): Promise<{ error: Error; ms: number }> {
  const started = performance.now();
  const error = await action.then(
    () => {
      throw new Error('expected the store call to fail, it succeeded');
    },
    (e: unknown) => e as Error,
  );
  return { error, ms: performance.now() - started };
}

/** Retries `read` until it stops failing (the client reconnects by itself), within `ms`. */
async function readOnceBack(store: RedisStore, key: string, ms = 10_000): Promise<StoredItem | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await store.read(key);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function expectSameItem(after: StoredItem | undefined, before: StoredItem | undefined): void {
  expect(before).toBeDefined();
  expect(after?.version).toBe(before?.version);
  expect(Buffer.from(after!.blob).equals(Buffer.from(before!.blob))).toBe(true);
}

/** A user whose partition holds one token, written through `store`. */
async function seededUser(store: RedisStore, oid: string) {
  const assertion = await userAssertion(world, oid);
  const { cache } = world.instance({ store });
  const seeded = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
  const key = cache.storeKeyOf({ kind: 'obo', assertion });
  return { assertion, seeded, key, before: await store.read(key) };
}

/** The caller's view while the store is failing: a fresh token, the failure logged and counted. */
async function acquireDuringFault(store: RedisStore, assertion: string) {
  world.authority.counters.reset();
  const { cache, metrics, logger } = world.instance({ store });
  const started = performance.now();
  const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });
  const ms = performance.now() - started;
  expect(result.fromCache).toBe(false);
  expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
  expect(metrics.get(Metric.StoreError, { kind: 'obo', operation: 'read' })).toBe(1);
  expect(metrics.get(Metric.WriteFailed, { kind: 'obo', reason: 'store-unavailable' })).toBe(1);
  expect(metrics.get(Metric.StoreWrite)).toBe(0);
  const [readLine] = linesWithCode(logger, 'warn', ErrorCode.StoreUnavailable);
  expect(readLine?.message).toBe('token cache read failed; acquiring without the cache');
  return { result, ms, readLine };
}

describe('Redis store faults (redis-server)', () => {
  describe('server down at start', () => {
    let port: number;
    let redis: LocalRedis | undefined;

    beforeAll(async () => {
      port = await freePort();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('fails fast with StoreUnavailableError naming the refused connection, the caller still gets its token, and the store connects once the server is up', async () => {
      const store = redisStore(`redis://127.0.0.1:${port}`);
      const assertion = await userAssertion(world, 'redis-down-at-start');

      const { error, ms } = await failureOf(store.read('some-key'));
      const again = await failureOf(
        store.write('some-key', Uint8Array.of(1), { condition: { mustNotExist: true }, expiresAt: 4e9 }),
      );
      const { readLine } = await acquireDuringFault(store, assertion);

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ operation: 'read', throttled: false });
      expect(error.message).toMatch(/ECONNREFUSED/);
      expect(ms).toBeLessThan(TIMEOUT_MS + 200);
      // While the client retries in the background, later operations fail at once.
      expect(again.error).toBeInstanceOf(StoreUnavailableError);
      expect(again.ms).toBeLessThan(100);
      expect(String(readLine?.fields?.['detail'])).toMatch(/redis/);

      redis = await startLocalRedis({ port });
      await expect(readOnceBack(store, 'some-key')).resolves.toBeUndefined();
      const version = await store.write('some-key', Uint8Array.of(2), {
        condition: { mustNotExist: true },
        expiresAt: 4e9,
      });
      await expect(store.read('some-key')).resolves.toMatchObject({ version });
    });
  });

  describe('killed mid-run, then restarted', () => {
    let redis: LocalRedis;

    beforeAll(async () => {
      // Persistent (AOF, fsync always), so the restarted server has what it acknowledged.
      redis = await startLocalRedis({ persist: true });
    });
    afterAll(async () => {
      await redis.stop();
    });

    it('fails fast while down, the caller gets its token, a write during the outage is refused, and after the restart the client reconnects and serves the previous item intact', async () => {
      const store = redisStore(redis.url);
      const { assertion, seeded, key, before } = await seededUser(store, 'redis-killed');

      await redis.kill();
      const read = await failureOf(store.read(key));
      const write = await failureOf(
        store.write(key, Uint8Array.of(9), {
          condition: { expectedVersion: before!.version },
          expiresAt: 4e9,
        }),
      );
      const { ms } = await acquireDuringFault(store, assertion);

      expect(read.error).toBeInstanceOf(StoreUnavailableError);
      expect(read.ms).toBeLessThan(TIMEOUT_MS + 200);
      expect(write.error).toBeInstanceOf(StoreUnavailableError);
      expect(write.error).toMatchObject({ operation: 'write' });
      // The store cost the request at most its timeout on each of the read and the write.
      expect(ms).toBeLessThan(2 * TIMEOUT_MS + 1500);

      await redis.restart();
      expectSameItem(await readOnceBack(store, key), before);

      // Healed: the next request stores both tokens, merged into the item that survived.
      const { cache } = world.instance({ store });
      const healed = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });
      const keyRing = new LocalKeyRing({ masterKey: world.masterKey });
      const stored = accessTokensIn(await storedDocument(store, key, keyRing));
      expect(stored).toEqual(expect.arrayContaining([seeded.accessToken, healed.accessToken]));
    });
  });

  describe('through a faulty network', () => {
    let redis: LocalRedis;
    let proxy: TcpFaultProxy;
    let direct: RedisStore;
    let proxied: RedisStore;

    beforeAll(async () => {
      redis = await startLocalRedis();
      proxy = await startTcpFaultProxy(redis.port);
      direct = redisStore(redis.url);
      proxied = redisStore(`redis://127.0.0.1:${proxy.port}`);
    });
    afterEach(() => {
      proxy.setFault(undefined);
    });
    afterAll(async () => {
      await proxy.stop();
      await redis.stop();
    });

    it('slow past the timeout: StoreUnavailableError naming commandTimeoutMs after about that long, the caller gets its token, nothing is overwritten', async () => {
      const { assertion, key, before } = await seededUser(direct, 'redis-slow');
      await proxied.read(key);
      proxy.setFault({ kind: 'delay', ms: TIMEOUT_MS * 2 });

      const { error, ms } = await failureOf(proxied.read(key));
      const { readLine } = await acquireDuringFault(proxied, assertion);

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/within 300 ms \(commandTimeoutMs\)/);
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(ms).toBeLessThan(TIMEOUT_MS + 200);
      expect(String(readLine?.fields?.['detail'])).toMatch(/commandTimeoutMs/);
      // Let the delayed commands reach the server: the blind write they carried could only
      // create the item, and it exists, so it was refused there.
      proxy.setFault(undefined);
      await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3));
      expectSameItem(await direct.read(key), before);
      expectSameItem(await proxied.read(key), before);
    });

    it('a black hole (connection up, nothing answers): each operation costs its timeout, and the store recovers once the network heals', async () => {
      const { key, before } = await seededUser(direct, 'redis-black-hole');
      await proxied.read(key);
      proxy.setFault({ kind: 'hang' });

      const read = await failureOf(proxied.read(key));
      const write = await failureOf(
        proxied.write(key, Uint8Array.of(1), {
          condition: { expectedVersion: before!.version },
          expiresAt: 4e9,
        }),
      );

      for (const { error, ms } of [read, write]) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/commandTimeoutMs/);
        expect(ms).toBeLessThan(TIMEOUT_MS + 200);
      }
      proxy.setFault(undefined);
      expectSameItem(await readOnceBack(proxied, key), before);
      expectSameItem(await direct.read(key), before);
    });

    it('connections reset: StoreUnavailableError at once, and the client reconnects by itself', async () => {
      const { key, before } = await seededUser(direct, 'redis-reset');
      await proxied.read(key);
      const connectionsBefore = proxy.counts.connections;
      proxy.setFault({ kind: 'reset' });
      await new Promise((resolve) => setTimeout(resolve, 20));

      const { error, ms } = await failureOf(proxied.read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/connection to Redis is down|Socket closed|ECONNRESET/);
      expect(ms).toBeLessThan(100);
      proxy.setFault(undefined);
      expectSameItem(await readOnceBack(proxied, key), before);
      expect(proxy.counts.connections).toBeGreaterThan(connectionsBefore);
    });
  });
});
