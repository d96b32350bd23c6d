/**
 * Faults of the Redis store on a real redis-server (issue 18): the server down at start,
 * killed mid-run and restarted, slow past the store's timeout, a black hole, connections
 * reset. Each case states what the caller gets (its token, from the authority when the
 * store cannot help), how long the store may cost, and that nothing stored is served wrong,
 * lost or overwritten.
 */
import { startLocalRedis, type LocalRedis } from '../../local/redis';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { StoreUnavailableError } from '../../shared/errors';
import { RedisStore } from '../../shared/redis';
import type { StoredItem } from '../../shared/store/store';
import {
  accessTokensIn,
  acquireDuringStoreFault,
  expectSameItem,
  OTHER_SCOPE,
  seededUser,
  storedDocument,
  userAssertion,
  useSecureWorld,
} from '../support/security-world';
import { startTcpFaultProxy } from '../support/tcp-fault-proxy';
import { freePort } from '../../local/net';
import { startGroup, useWorld } from '../support/use-world';
import { expectReadRefused } from '../support/expect-errors';

/** The store's per-operation budget in these tests. */
const TIMEOUT_MS = 300;

const world = useSecureWorld();
const stores: RedisStore[] = [];

afterAll(() => {
  for (const store of stores) store.destroy();
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

/** A redis-server, a TCP fault proxy in front of it, and a store client through each. */
const startNetworkRig = () =>
  startGroup(async (own) => {
    const redis = own(await startLocalRedis());
    const proxy = own(await startTcpFaultProxy(redis.port));
    return { proxy, direct: redisStore(redis.url), proxied: redisStore(`redis://127.0.0.1:${proxy.port}`) };
  });

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
      const { readLine } = await acquireDuringStoreFault(world, store, assertion);

      expectReadRefused(error);
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
      const { assertion, seeded, key, before } = await seededUser(world, store, 'redis-killed');

      await redis.kill();
      const read = await failureOf(store.read(key));
      const write = await failureOf(
        store.write(key, Uint8Array.of(9), {
          condition: { expectedVersion: before!.version },
          expiresAt: 4e9,
        }),
      );
      const { ms } = await acquireDuringStoreFault(world, store, assertion);

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
    const net = useWorld(startNetworkRig);

    afterEach(() => {
      net.proxy.setFault(undefined);
    });

    it('slow past the timeout: StoreUnavailableError naming commandTimeoutMs after about that long, the caller gets its token, nothing is overwritten', async () => {
      const { assertion, key, before } = await seededUser(world, net.direct, 'redis-slow');
      await net.proxied.read(key);
      net.proxy.setFault({ kind: 'delay', ms: TIMEOUT_MS * 2 });

      const { error, ms } = await failureOf(net.proxied.read(key));
      const { readLine } = await acquireDuringStoreFault(world, net.proxied, assertion);

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/within 300 ms \(commandTimeoutMs\)/);
      expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(ms).toBeLessThan(TIMEOUT_MS + 200);
      expect(String(readLine?.fields?.['detail'])).toMatch(/commandTimeoutMs/);
      // Let the delayed commands reach the server: the blind write they carried could only
      // create the item, and it exists, so it was refused there.
      net.proxy.setFault(undefined);
      await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS * 3));
      expectSameItem(await net.direct.read(key), before);
      expectSameItem(await net.proxied.read(key), before);
    });

    it('a black hole (connection up, nothing answers): each operation costs its timeout, and the store recovers once the network heals', async () => {
      const { key, before } = await seededUser(world, net.direct, 'redis-black-hole');
      await net.proxied.read(key);
      net.proxy.setFault({ kind: 'hang' });

      const read = await failureOf(net.proxied.read(key));
      const write = await failureOf(
        net.proxied.write(key, Uint8Array.of(1), {
          condition: { expectedVersion: before!.version },
          expiresAt: 4e9,
        }),
      );

      for (const { error, ms } of [read, write]) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/commandTimeoutMs/);
        expect(ms).toBeLessThan(TIMEOUT_MS + 200);
      }
      net.proxy.setFault(undefined);
      expectSameItem(await readOnceBack(net.proxied, key), before);
      expectSameItem(await net.direct.read(key), before);
    });

    it('connections reset: StoreUnavailableError at once, and the client reconnects by itself', async () => {
      const { key, before } = await seededUser(world, net.direct, 'redis-reset');
      await net.proxied.read(key);
      const connectionsBefore = net.proxy.counts.connections;
      net.proxy.setFault({ kind: 'reset' });
      await new Promise((resolve) => setTimeout(resolve, 20));

      const { error, ms } = await failureOf(net.proxied.read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/connection to Redis is down|Socket closed|ECONNRESET/);
      expect(ms).toBeLessThan(100);
      net.proxy.setFault(undefined);
      expectSameItem(await readOnceBack(net.proxied, key), before);
      expect(net.proxy.counts.connections).toBeGreaterThan(connectionsBefore);
    });
  });
});
