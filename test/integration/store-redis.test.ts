import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, createCluster } from '@redis/client';
import { startLocalRedis, type LocalRedis } from '../../local/redis';
import { createDevCertificate, type DevCertificate } from '../../local/tls';
import { SizeLimitError, StoreUnavailableError, VersionConflictError } from '../../shared/errors';
import {
  REDIS_ACL,
  REDIS_DEFAULT_MAX_ITEM_BYTES,
  RedisStore,
  redisItemSize,
  type RedisStoreOptions,
} from '../../shared/redis';
import { loadCacheConfig } from '../../shared/config';
import { CounterMetrics, silentLogger } from '../../shared/observability';
import { createTokenCacheFromConfig } from '../../shared/aws/from-env';
import { clockedFixture, runStoreContract } from '../contract/store-contract';
import { API_CLIENT_ID, API_CLIENT_SECRET, startCacheWorld } from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';
import { expectConfigurationError, failureOf } from '../support/expect-errors';

runStoreContract('redis', async () => {
  const redis = await startLocalRedis();
  return clockedFixture((now) => new RedisStore({ clientOptions: { url: redis.url }, now }), redis);
});

/** An hour from the wall clock (these tests use the real clock: Redis expires by it too). */
const live = (): { condition: { mustNotExist: true }; expiresAt: number } => ({
  condition: { mustNotExist: true },
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
});
const freshKey = (): string => `redis-test.${randomBytes(9).toString('base64url')}`;

describe('RedisStore', () => {
  let redis: LocalRedis;
  let admin: ReturnType<typeof createClient>;
  const stores: RedisStore[] = [];

  function newStore(overrides: Partial<RedisStoreOptions> = {}): RedisStore {
    const store = new RedisStore({ clientOptions: { url: redis.url }, ...overrides } as RedisStoreOptions);
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    redis = await startLocalRedis();
    admin = createClient({ url: redis.url });
    await admin.connect();
  });

  afterAll(async () => {
    for (const store of stores) store.destroy();
    admin.destroy();
    await redis.stop();
  });

  describe('constructor', () => {
    const clientOptions = { url: 'redis://127.0.0.1:1' };

    it.each([
      ['none of the client options', {}, 'clientOptions'],
      ['both client and clientOptions', { clientOptions, client: createClient() }, 'client'],
      [
        'both clientOptions and clusterOptions',
        { clientOptions, clusterOptions: { rootNodes: [clientOptions] } },
        'clientOptions',
      ],
      [
        'connectTimeoutMs with a client',
        { client: createClient(), connectTimeoutMs: 10 },
        'connectTimeoutMs',
      ],
      ['a zero commandTimeoutMs', { clientOptions, commandTimeoutMs: 0 }, 'commandTimeoutMs'],
      ['a zero budgetMs', { clientOptions, budgetMs: 0 }, 'budgetMs'],
      [
        'budgetMs with commandTimeoutMs, its deprecated name',
        { clientOptions, budgetMs: 100, commandTimeoutMs: 100 },
        'budgetMs',
      ],
      ['a negative connectTimeoutMs', { clientOptions, connectTimeoutMs: -1 }, 'connectTimeoutMs'],
      ['a fractional maxItemBytes', { clientOptions, maxItemBytes: 1.5 }, 'maxItemBytes'],
      ['a maxItemBytes over 512 MB', { clientOptions, maxItemBytes: 513 * 1024 * 1024 }, 'maxItemBytes'],
      ['a keyPrefix that is not a string', { clientOptions, keyPrefix: 7 }, 'keyPrefix'],
    ])('rejects %s with a ConfigurationError naming the option', (_case, options, setting) => {
      expectConfigurationError(() => new RedisStore(options as unknown as RedisStoreOptions), setting);
    });

    it('defaults to a 400 KiB item limit', () => {
      expect(newStore().maxItemBytes).toBe(REDIS_DEFAULT_MAX_ITEM_BYTES);
      expect(REDIS_DEFAULT_MAX_ITEM_BYTES).toBe(409_600);
    });

    it('uses a client passed in, and leaves it open on destroy', async () => {
      const client = createClient({ url: redis.url });
      await client.connect();
      const store = new RedisStore({ client });
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(1), live());
      store.destroy();

      expect(client.isOpen).toBe(true);
      await expect(store.read(key)).resolves.toMatchObject({ version });
      client.destroy();
    });

    it('reports a client passed in that is not connected, rather than connecting it', async () => {
      const client = createClient({ url: redis.url });
      const store = new RedisStore({ client });

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/client\.connect\(\)/);
      expect(client.isOpen).toBe(false);
    });

    it('fails every operation after destroy', async () => {
      const store = newStore();
      await store.read(freshKey());
      store.destroy();

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/destroyed/);
    });
  });

  describe('item layout', () => {
    it('writes one hash under keyPrefix + key: v, e and b, and expires the key at expiresAt', async () => {
      const store = newStore();
      const key = freshKey();
      const options = live();

      const version = await store.write(key, Uint8Array.of(0, 254, 255), options);

      const stored = await admin.withTypeMapping({ [RESP_BLOB]: Buffer }).hGetAll(`msal-cloud-cache:${key}`);
      expect(Object.keys(stored).sort()).toEqual(['b', 'e', 'v']);
      expect(stored.v?.toString()).toBe(version);
      expect(stored.e?.toString()).toBe(String(options.expiresAt));
      expect(stored.b).toEqual(Buffer.from([0, 254, 255]));
      await expect(admin.expireTime(`msal-cloud-cache:${key}`)).resolves.toBe(options.expiresAt);
      await expect(admin.exists(key)).resolves.toBe(0);
    });

    it('moves the key expiry forward on every replace', async () => {
      const store = newStore();
      const key = freshKey();
      const first = await store.write(key, Uint8Array.of(1), live());

      const expiresAt = Math.floor(Date.now() / 1000) + 7200;
      await store.write(key, Uint8Array.of(2), { condition: { expectedVersion: first }, expiresAt });

      await expect(admin.expireTime(`msal-cloud-cache:${key}`)).resolves.toBe(expiresAt);
    });

    it('lets Redis free an item written with an expiry already past', async () => {
      const store = newStore();
      const key = freshKey();

      await store.write(key, Uint8Array.of(1), {
        condition: { mustNotExist: true },
        expiresAt: Math.floor(Date.now() / 1000) - 5,
      });

      await expect(admin.exists(`msal-cloud-cache:${key}`)).resolves.toBe(0);
      await expect(store.read(key)).resolves.toBeUndefined();
    });

    it('uses the configured keyPrefix, and stores under different prefixes do not see each other', async () => {
      const tenantA = newStore({ keyPrefix: 'a:' });
      const tenantB = newStore({ keyPrefix: 'b:' });
      const key = freshKey();

      await tenantA.write(key, Uint8Array.of(1), live());

      await expect(admin.exists(`a:${key}`)).resolves.toBe(1);
      await expect(tenantB.read(key)).resolves.toBeUndefined();
    });

    it('sends the scripts by SHA-1 and loads them again after SCRIPT FLUSH', async () => {
      const store = newStore();
      const key = freshKey();
      const first = await store.write(key, Uint8Array.of(1), live());
      await admin.scriptFlush();

      const second = await store.write(key, Uint8Array.of(2), {
        ...live(),
        condition: { expectedVersion: first },
      });
      await admin.scriptFlush();
      await store.delete(key, { expectedVersion: second });

      await expect(store.read(key)).resolves.toBeUndefined();
    });
  });

  describe('values it did not write', () => {
    /** Read, write and delete (of `expectedVersion`) under `key`: each refused, saying the store did not write the value. */
    async function refusalsUnder(store: RedisStore, key: string, expectedVersion: string): Promise<Error[]> {
      const errors: Error[] = [];
      for (const act of [
        () => store.read(key),
        () => store.write(key, Uint8Array.of(1), live()),
        () => store.delete(key, { expectedVersion }),
      ]) {
        const error = await failureOf(act());
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/did not write/);
        errors.push(error);
      }
      return errors;
    }

    it.each([
      ['a string', (key: string) => admin.set(key, 'foreign')],
      ['a list', (key: string) => admin.rPush(key, 'foreign')],
    ])(
      'reports %s under its key as StoreUnavailableError on read, write and delete, and leaves it',
      async (_kind, put) => {
        const store = newStore();
        const key = freshKey();
        await put(`msal-cloud-cache:${key}`);

        for (const error of await refusalsUnder(store, key, 'x')) {
          expect((error.cause as Error).message).toMatch(/^WRONGTYPE/);
        }
        await expect(admin.type(`msal-cloud-cache:${key}`)).resolves.not.toBe('hash');
      },
    );

    it.each([
      ['without e', { v: '1', b: 'x' }],
      ['without v', { e: '4000000000', b: 'x' }],
      ['with a non-numeric e', { v: '1', e: 'soon', b: 'x' }],
    ])(
      'reports a hash %s as StoreUnavailableError on read, write and delete, and leaves it',
      async (_kind, fields) => {
        const store = newStore();
        const key = freshKey();
        await admin.hSet(`msal-cloud-cache:${key}`, fields);

        await refusalsUnder(store, key, '1');
        await expect(admin.hGetAll(`msal-cloud-cache:${key}`)).resolves.toEqual(fields);
      },
    );

    it('reads a hash of none of its fields as absent, but never writes over it or deletes it conditionally', async () => {
      const store = newStore();
      const key = freshKey();
      const fields = { name: 'someone else' };
      await admin.hSet(`msal-cloud-cache:${key}`, fields);

      const read = await store.read(key);
      const write = await failureOf(store.write(key, Uint8Array.of(1), live()));
      const remove = await failureOf(store.delete(key, { expectedVersion: '1' }));

      expect(read).toBeUndefined();
      for (const error of [write, remove]) {
        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/did not write/);
      }
      await expect(admin.hGetAll(`msal-cloud-cache:${key}`)).resolves.toEqual(fields);
    });
  });

  describe('size check', () => {
    it('counts key, fields, version and expiry: the largest blob it allows is accepted, one more byte is not', async () => {
      const store = newStore({ maxItemBytes: 2048 });
      const key = freshKey();
      const options = live();
      const overhead = redisItemSize(
        `msal-cloud-cache:${key}`,
        new Uint8Array(0),
        'x'.repeat(16),
        String(options.expiresAt),
      );
      const largest = new Uint8Array(2048 - overhead).fill(7);

      const version = await store.write(key, largest, options);
      const error = await failureOf(
        store.write(key, new Uint8Array(largest.length + 1), {
          ...options,
          condition: { expectedVersion: version },
        }),
      );

      expect(error).toBeInstanceOf(SizeLimitError);
      expect(error).toMatchObject({ limit: 2048, size: 2049 });
      expect((await store.read(key))?.blob.byteLength).toBe(largest.length);
    });

    it('takes a configured limit above the default, e.g. 1 MiB', async () => {
      const store = newStore({ maxItemBytes: 1024 * 1024 });
      const key = freshKey();
      const blob = randomBytes(900 * 1024);

      await store.write(key, blob, live());

      expect(Buffer.from((await store.read(key))!.blob).equals(blob)).toBe(true);
    });
  });

  describe('conflicts', () => {
    it('treats an expired item as absent for expectedVersion, even with its own version', async () => {
      let nowMs = Date.now();
      const store = newStore({ now: () => nowMs });
      const key = freshKey();
      const expiresAt = Math.floor(nowMs / 1000) + 60;
      const version = await store.write(key, Uint8Array.of(1), {
        condition: { mustNotExist: true },
        expiresAt,
      });
      nowMs += 61_000;

      const write = await failureOf(
        store.write(key, Uint8Array.of(2), {
          condition: { expectedVersion: version },
          expiresAt: expiresAt + 3600,
        }),
      );
      const remove = await failureOf(store.delete(key, { expectedVersion: version }));

      expect(write).toBeInstanceOf(VersionConflictError);
      expect(remove).toBeInstanceOf(VersionConflictError);
      // Present in Redis (its clock has not reached expiresAt), absent to the store.
      await expect(admin.exists(`msal-cloud-cache:${key}`)).resolves.toBe(1);
    });

    it('never matches an empty expectedVersion (it is not taken for mustNotExist)', async () => {
      const store = newStore();
      const key = freshKey();

      const error = await failureOf(
        store.write(key, Uint8Array.of(1), { ...live(), condition: { expectedVersion: '' } }),
      );

      expect(error).toBeInstanceOf(VersionConflictError);
      await expect(store.read(key)).resolves.toBeUndefined();
    });
  });

  describe('authentication', () => {
    const password = `redis-password-${randomBytes(12).toString('base64url')}`;
    let secured: LocalRedis;

    beforeAll(async () => {
      registerSecret('client-secret', password);
      secured = await startLocalRedis({ args: ['--requirepass', password] });
    });
    afterAll(async () => {
      await secured.stop();
    });

    it('works with the password', async () => {
      const store = newStore({ clientOptions: { url: secured.url, password } });
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(1), live());

      await expect(store.read(key)).resolves.toMatchObject({ version });
    });

    it('works with a credentials provider (rotating tokens), asked on connect', async () => {
      let asked = 0;
      const store = newStore({
        clientOptions: {
          url: secured.url,
          credentialsProvider: {
            type: 'async-credentials-provider',
            credentials: async () => {
              asked++;
              return { username: 'default', password };
            },
          },
        },
      });

      await store.write(freshKey(), Uint8Array.of(1), live());

      expect(asked).toBe(1);
    });

    it('reports a wrong password as StoreUnavailableError without echoing it', async () => {
      const wrong = `wrong-${randomBytes(12).toString('base64url')}`;
      registerSecret('client-secret', wrong);
      const store = newStore({ clientOptions: { url: secured.url, password: wrong } });

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/WRONGPASS|NOAUTH|invalid username-password/i);
      expect(error.message).not.toContain(wrong);
    });

    it('reports a missing password as StoreUnavailableError naming what to set', async () => {
      const store = newStore({ clientOptions: { url: secured.url } });

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/NOAUTH/);
      expect(error.message).toMatch(/credentialsProvider/);
    });
  });

  describe('TLS', () => {
    let secure: LocalRedis;
    let certificate: DevCertificate;

    beforeAll(async () => {
      certificate = await createDevCertificate();
      secure = await startLocalRedis({ tls: certificate });
    });
    afterAll(async () => {
      await secure.stop();
    });

    it('works over rediss:// trusting the server certificate through socket.ca', async () => {
      const store = newStore({
        clientOptions: { url: secure.url, socket: { tls: true, ca: [certificate.cert] } },
      });
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(1, 2), live());

      expect(secure.url).toMatch(/^rediss:\/\/localhost:\d+$/);
      await expect(store.read(key)).resolves.toMatchObject({ version, blob: Uint8Array.of(1, 2) });
    });

    it('refuses a certificate it does not trust, as StoreUnavailableError with the TLS cause', async () => {
      const store = newStore({ clientOptions: { url: secure.url } });

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/self[- ]signed certificate|DEPTH_ZERO_SELF_SIGNED_CERT/i);
    });

    it('refuses plain redis:// to a TLS port within the timeouts', async () => {
      const store = newStore({
        clientOptions: { url: `redis://127.0.0.1:${secure.port}` },
        commandTimeoutMs: 500,
        connectTimeoutMs: 300,
      });

      const error = await failureOf(store.read(freshKey()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
    });

    it('gives up after budgetMs on a server that accepts and never answers, naming it', async () => {
      const held = new Set<Socket>();
      const silent = createServer((socket) => {
        held.add(socket);
      });
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      const store = newStore({
        clientOptions: { url: `redis://127.0.0.1:${(silent.address() as AddressInfo).port}` },
        budgetMs: 400,
      });
      try {
        const error = await failureOf(store.read(freshKey()));

        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.message).toMatch(/within 400 ms \(budgetMs\)/);
      } finally {
        store.destroy();
        for (const socket of held) socket.destroy();
        silent.close();
      }
    });
  });

  describe('least-privilege ACL user', () => {
    const password = `acl-password-${randomBytes(12).toString('base64url')}`;

    beforeAll(async () => {
      registerSecret('client-secret', password);
      await admin.sendCommand([
        'ACL',
        'SETUSER',
        'token-cache',
        'on',
        `>${password}`,
        '~msal-cloud-cache:*',
        '-@all',
        ...REDIS_ACL.split(' '),
      ]);
      await admin.sendCommand([
        'ACL',
        'SETUSER',
        'too-little',
        'on',
        `>${password}`,
        '~msal-cloud-cache:*',
        '-@all',
        '+hmget',
        '+del',
        '+eval',
        '+evalsha',
      ]);
    });

    it(`works with exactly ${REDIS_ACL} on the key prefix`, async () => {
      const store = newStore({ clientOptions: { url: redis.url, username: 'token-cache', password } });
      const key = freshKey();

      const first = await store.write(key, Uint8Array.of(1), live());
      const second = await store.write(key, Uint8Array.of(2), {
        ...live(),
        condition: { expectedVersion: first },
      });
      await expect(store.read(key)).resolves.toMatchObject({ version: second });
      await store.delete(key, { expectedVersion: second });
      await store.delete(key);
      await admin.scriptFlush();
      await store.write(key, Uint8Array.of(3), live());
    });

    it('reports a command the ACL denies inside the script as StoreUnavailableError naming the grants', async () => {
      const store = newStore({ clientOptions: { url: redis.url, username: 'too-little', password } });

      const error = await failureOf(store.write(freshKey(), Uint8Array.of(1), live()));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toContain(REDIS_ACL);
    });
  });

  describe('cluster mode', () => {
    let node: LocalRedis;
    let clusterStore: RedisStore;

    beforeAll(async () => {
      // A one-node cluster holding every slot: the cluster protocol (CLUSTER SLOTS, routing by key) is real.
      node = await startLocalRedis({
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'],
      });
      const setup = createClient({ url: node.url });
      await setup.connect();
      await setup.clusterAddSlotsRange({ start: 0, end: 16383 });
      for (let i = 0; i < 100 && (await setup.clusterInfo()).includes('cluster_state:fail'); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      setup.destroy();
      clusterStore = new RedisStore({ clusterOptions: { rootNodes: [{ url: node.url }] } });
      stores.push(clusterStore);
    });
    afterAll(async () => {
      clusterStore.destroy();
      await node.stop();
    });

    it('creates, replaces, conflicts and deletes through a cluster client', async () => {
      const key = freshKey();

      const first = await clusterStore.write(key, Uint8Array.of(1), live());
      const second = await clusterStore.write(key, Uint8Array.of(2), {
        ...live(),
        condition: { expectedVersion: first },
      });
      const stale = await failureOf(
        clusterStore.write(key, Uint8Array.of(3), { ...live(), condition: { expectedVersion: first } }),
      );

      expect(stale).toBeInstanceOf(VersionConflictError);
      await expect(clusterStore.read(key)).resolves.toMatchObject({
        version: second,
        blob: Uint8Array.of(2),
      });
      await clusterStore.delete(key, { expectedVersion: second });
      await expect(clusterStore.read(key)).resolves.toBeUndefined();
    });

    it('accepts a cluster passed in', async () => {
      const cluster = createCluster({ rootNodes: [{ url: node.url }] });
      await cluster.connect();
      const store = new RedisStore({ client: cluster });
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(5), live());

      await expect(clusterStore.read(key)).resolves.toMatchObject({ version });
      cluster.destroy();
    });
  });
});

describe('the runtime, from the environment (TOKEN_CACHE_REDIS_URL)', () => {
  it.each([
    ['plain TCP to localhost', false],
    ['rediss:// trusting EXTRA_CA_FILE', true],
  ])(
    '%s: builds a cache on Redis that stores the partition under the configured prefix, and serves it to a second instance',
    async (_case, tls) => {
      const world = await startCacheWorld();
      const certificate = await createDevCertificate('msal-cloud-cache redis test CA');
      const redis = await startLocalRedis(tls ? { tls: certificate } : {});
      const admin = createClient({
        url: redis.url,
        ...(tls ? { socket: { tls: true as const, ca: [certificate.cert] } } : {}),
      });
      await admin.connect();
      try {
        const caFile = join(mkdtempSync(join(tmpdir(), 'redis-runtime-')), 'ca.pem');
        // EXTRA_CA_FILE trusts the authority's CA and Redis's.
        writeFileSync(caFile, `${world.authority.ca}\n${certificate.cert}`);
        const env = {
          MSAL_CLIENT_ID: API_CLIENT_ID,
          MSAL_AUTHORITY: world.authority.authority(),
          MSAL_KNOWN_AUTHORITIES: world.authority.host,
          MSAL_CLIENT_SECRET: API_CLIENT_SECRET,
          EXTRA_CA_FILE: caFile,
          TOKEN_CACHE_REDIS_URL: redis.url,
          TOKEN_CACHE_REDIS_KEY_PREFIX: 'wired:',
          TOKEN_CACHE_LOCAL_MASTER_KEY: world.masterKey.toString('base64'),
          TOKEN_CACHE_L1_MAX_BYTES: '0',
          DOWNSTREAM_URL: 'https://downstream.example.test',
          DOWNSTREAM_SCOPES: 'api://downstream/.default',
        };
        const build = () =>
          createTokenCacheFromConfig(loadCacheConfig(env), {
            logger: silentLogger,
            metrics: new CounterMetrics(),
          });

        const first = await (await build()).acquireTokenForApp({ scopes: ['api://downstream/.default'] });
        const second = await (await build()).acquireTokenForApp({ scopes: ['api://downstream/.default'] });

        expect(first.fromCache).toBe(false);
        expect(second).toMatchObject({ fromCache: true, accessToken: first.accessToken });
        expect(await admin.keys('wired:*')).toHaveLength(1);
      } finally {
        admin.destroy();
        await redis.stop();
        await world.stop();
      }
    },
  );
});

/** RESP_TYPES.BLOB_STRING, to read stored bytes back as Buffers. */
const RESP_BLOB = 36;
