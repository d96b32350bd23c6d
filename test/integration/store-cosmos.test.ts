import type { TokenCredential } from '@azure/identity';
import { SizeLimitError, StoreUnavailableError, VersionConflictError } from '../../shared/errors';
import {
  CosmosStore,
  cosmosItemSize,
  type CosmosStoreEndpointOptions,
  type CosmosStoreOptions,
} from '../../shared/azure/cosmos-store';
import { startLocalCosmos } from '../../local/cosmos';
import { leaseItemKey } from '../../shared/store/store';
import { clockedFixture, runStoreContract } from '../contract/store-contract';
import { cosmosError, cosmosItemRequest, startFaultProxy, type FaultProxy } from '../support/fault-proxy';
import { startSilentServer } from '../support/fault-proxy';
import { startGroup, useDestroyables, useWorld } from '../support/use-world';
import { expectConfigurationError, expectReadRefused, failureOf } from '../support/expect-errors';
import { freePort } from '../../local/net';

runStoreContract('cosmos', async () => {
  const cosmos = await startLocalCosmos();
  return clockedFixture((now) => new CosmosStore({ container: cosmos.container, now }), cosmos);
});

describe('CosmosStore', () => {
  const destroyAfterAll = useDestroyables();
  const cosmos = useWorld(startLocalCosmos);
  let nowMs = Date.UTC(2031, 0, 15);
  const nowSeconds = (): number => Math.floor(nowMs / 1000);
  let keyCounter = 0;
  const freshKey = (): string => `cosmos-test.${process.pid}.${++keyCounter}.${Date.now()}`;
  const create = () => ({ condition: { mustNotExist: true }, expiresAt: nowSeconds() + 3600 }) as const;
  const replace = (expectedVersion: string) => ({
    condition: { expectedVersion },
    expiresAt: nowSeconds() + 3600,
  });

  function newStore(): CosmosStore {
    return new CosmosStore({ container: cosmos.container, now: () => nowMs });
  }

  /** A store that builds its own client from endpoint options; disposed after all tests. */
  function endpointStore(
    overrides: { endpoint?: string; clientOptions?: CosmosStoreEndpointOptions['clientOptions'] } = {},
  ): CosmosStore {
    const store = new CosmosStore({
      endpoint: cosmos.endpoint,
      key: cosmos.key,
      databaseId: cosmos.databaseId,
      containerId: cosmos.containerId,
      clientOptions: cosmos.clientOptions,
      now: () => nowMs,
      ...overrides,
    });
    return destroyAfterAll(store);
  }

  describe('constructor', () => {
    const where = {
      endpoint: 'https://account.documents.azure.com:443/',
      databaseId: 'db',
      containerId: 'c',
    };
    const credential: TokenCredential = { getToken: async () => null };

    it.each([
      ['neither container nor endpoint', {}, 'endpoint'],
      ['both container and endpoint', { ...where, key: 'k', container: {} }, 'container'],
      [
        'an endpoint that is not a URL',
        { ...where, endpoint: 'account.documents.azure.com', key: 'k' },
        'endpoint',
      ],
      ['an empty databaseId', { ...where, databaseId: '', key: 'k' }, 'databaseId'],
      ['a blank containerId', { ...where, containerId: ' ', key: 'k' }, 'containerId'],
      ['both key and credential', { ...where, key: 'k', credential }, 'key'],
      ['an empty key', { ...where, key: '' }, 'key'],
    ])('rejects %s with a ConfigurationError naming the option', (_case, options, setting) => {
      expectConfigurationError(() => new CosmosStore(options as unknown as CosmosStoreOptions), setting);
    });

    it('builds its client with DefaultAzureCredential when given neither key nor credential', () => {
      const store = new CosmosStore(where);

      expect(store.container.id).toBe('c');
      expect(store.container.database.id).toBe('db');
      store.destroy();
    });

    it('uses a container passed in, and never disposes its client', async () => {
      const store = newStore();
      const key = freshKey();
      const version = await store.write(key, Uint8Array.of(4), create());
      // CosmosClient.dispose only stops background timers, so it is watched, not inferred.
      const dispose = jest.spyOn(cosmos.container.database.client, 'dispose');

      store.destroy();

      expect(dispose).not.toHaveBeenCalled();
      dispose.mockRestore();
      await expect(newStore().read(key)).resolves.toMatchObject({ version });
    });

    it('works against the account through a client it builds from endpoint and key', async () => {
      const store = endpointStore();
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(1, 2, 3), create());

      await expect(newStore().read(key)).resolves.toMatchObject({ version });
    });

    it('works over HTTPS with the local certificate', async () => {
      const secure = await startLocalCosmos({ https: true });
      const store = new CosmosStore({
        endpoint: secure.endpoint,
        key: secure.key,
        databaseId: secure.databaseId,
        containerId: secure.containerId,
        clientOptions: secure.clientOptions,
      });
      try {
        const key = freshKey();

        const version = await store.write(key, Uint8Array.of(9), {
          condition: { mustNotExist: true },
          expiresAt: 4e9,
        });

        expect(secure.endpoint).toMatch(/^https:\/\/localhost:\d+$/);
        await expect(store.read(key)).resolves.toMatchObject({ version, expiresAt: 4e9 });
      } finally {
        store.destroy();
        await secure.stop();
      }
    });
  });

  describe('item layout', () => {
    it('writes id = pk = key, the blob in base64, expiresAt, and ttl in seconds from now', async () => {
      const store = newStore();
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(0, 254, 255), {
        condition: { mustNotExist: true },
        expiresAt: nowSeconds() + 600,
      });

      const { resource } = await cosmos.container.item(key, key).read<Record<string, unknown>>();
      const own = Object.fromEntries(
        Object.entries(resource ?? {}).filter(([name]) => !name.startsWith('_')),
      );
      expect(own).toEqual({ id: key, pk: key, blob: 'AP7/', expiresAt: nowSeconds() + 600, ttl: 600 });
      expect(resource?._etag).toBe(version);
    });

    it('writes a lease as its own item { id = pk = key~lease, lease, until (ms), expiresAt, ttl }', async () => {
      const store = newStore();
      const key = freshKey();

      await store.acquireLease(key, { owner: 'owner-1', ttlMs: 3000 });

      const id = leaseItemKey(key);
      const { resource } = await cosmos.container.item(id, id).read<Record<string, unknown>>();
      const own = Object.fromEntries(
        Object.entries(resource ?? {}).filter(([name]) => !name.startsWith('_')),
      );
      // ttl: Cosmos DB deletes the lease by itself a second after it expires.
      expect(own).toEqual({
        id: `${key}~lease`,
        pk: `${key}~lease`,
        lease: 'owner-1',
        until: nowMs + 3000,
        expiresAt: Math.ceil((nowMs + 3000) / 1000),
        ttl: 4,
      });
      await expect(store.read(key)).resolves.toBeUndefined();
    });

    it('gives an item whose expiresAt has passed a ttl of 1 second, the least Cosmos DB accepts', async () => {
      const store = newStore();
      const key = freshKey();

      await store.write(key, Uint8Array.of(1), {
        condition: { mustNotExist: true },
        expiresAt: nowSeconds() - 30,
      });

      const { resource } = await cosmos.container.item(key, key).read<{ ttl: number }>();
      expect(resource?.ttl).toBe(1);
    });

    it('renews ttl on every write', async () => {
      const store = newStore();
      const key = freshKey();
      const version = await store.write(key, Uint8Array.of(1), create());

      nowMs += 1000_000;
      await store.write(key, Uint8Array.of(2), { ...replace(version), expiresAt: nowSeconds() + 90 });

      const { resource } = await cosmos.container.item(key, key).read<{ ttl: number }>();
      expect(resource?.ttl).toBe(90);
    });

    it('reports an item it did not write as StoreUnavailableError rather than guessing', async () => {
      const key = freshKey();
      await cosmos.container.items.create({ id: key, pk: key, note: 'foreign' });

      const error = await failureOf(newStore().read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/delete it/);
    });
  });

  describe('conflict mapping', () => {
    /** Each case readies the item under `key` and returns the conflicting operation. */
    it.each([
      [
        '409 on create of a live item',
        409,
        async (store: CosmosStore, key: string) => {
          await store.write(key, Uint8Array.of(1), create());
          return () => store.write(key, Uint8Array.of(2), create());
        },
      ],
      [
        '412 on a stale replace',
        412,
        async (store: CosmosStore, key: string) => {
          const first = await store.write(key, Uint8Array.of(1), create());
          await store.write(key, Uint8Array.of(2), replace(first));
          return () => store.write(key, Uint8Array.of(3), replace(first));
        },
      ],
      [
        '412 on a stale conditional delete',
        412,
        async (store: CosmosStore, key: string) => {
          const first = await store.write(key, Uint8Array.of(1), create());
          await store.write(key, Uint8Array.of(2), replace(first));
          return () => store.delete(key, { expectedVersion: first });
        },
      ],
      [
        '404 on a replace of a deleted item',
        404,
        async (store: CosmosStore, key: string) => {
          const version = await store.write(key, Uint8Array.of(1), create());
          await store.delete(key);
          return () => store.write(key, Uint8Array.of(2), replace(version));
        },
      ],
    ] as const)('maps %s to VersionConflictError', async (_case, code, arrange) => {
      const store = newStore();
      const key = freshKey();
      const conflicting = await arrange(store, key);

      const error = await failureOf(conflicting());

      expect(error).toBeInstanceOf(VersionConflictError);
      expect(error.cause).toMatchObject({ code });
    });
  });

  describe('size check', () => {
    it('counts the base64 form: a 1.6 MB blob (2.1 MB encoded) is over the 2 MB limit', async () => {
      const store = newStore();
      const key = freshKey();
      const blob = new Uint8Array(1_600_000);

      const error = await failureOf(store.write(key, blob, create()));

      expect(error).toBeInstanceOf(SizeLimitError);
      expect((error as SizeLimitError).size).toBeGreaterThan((1_600_000 / 3) * 4);
    });

    it('accepts the largest blob its check allows', async () => {
      const store = newStore();
      const key = freshKey();
      const options = create();
      // Item without blob bytes, then 4 base64 characters per 3 bytes.
      const empty = cosmosItemSize({ id: key, pk: key, blob: '', expiresAt: options.expiresAt, ttl: 3600 });
      const blob = new Uint8Array(Math.floor((store.maxItemBytes - empty) / 4) * 3).fill(1);

      await store.write(key, blob, options);

      expect((await store.read(key))?.blob.byteLength).toBe(blob.byteLength);
    });
  });

  describe('faults the server cannot produce', () => {
    let proxy: FaultProxy;

    beforeAll(async () => {
      proxy = await startFaultProxy(cosmos.endpoint);
    });

    afterEach(() => proxy.setFault(undefined));

    afterAll(async () => {
      await proxy.stop();
    });

    /** Answers every item request with `status` (and `substatus`) until healed. */
    const failItems = (status: number, substatus?: number) =>
      proxy.setFault(cosmosError(status, substatus), cosmosItemRequest);

    /** A store talking to the account through the proxy, the SDK retrying 429 twice. */
    function proxiedStore(): CosmosStore {
      return endpointStore({
        endpoint: proxy.endpoint,
        clientOptions: {
          connectionPolicy: { enableEndpointDiscovery: false, retryOptions: { maxRetryAttemptCount: 2 } },
        },
      });
    }

    it("maps 429, after the client's own retries, to StoreUnavailableError with throttled set", async () => {
      const store = proxiedStore();
      const key = freshKey();
      await store.write(key, Uint8Array.of(1), create());
      failItems(429, 3200);
      const failedBefore = proxy.counts.faulted;

      const error = await failureOf(store.read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error).toMatchObject({ throttled: true, operation: 'read', store: 'cosmos' });
      expect(error.cause).toMatchObject({ code: 429 });
      expect(proxy.counts.faulted - failedBefore).toBe(3);
      proxy.setFault(undefined);
      await expect(store.read(key)).resolves.toMatchObject({ blob: Uint8Array.of(1) });
    });

    it.each([
      ['read', (store: CosmosStore) => store.read(freshKey())],
      ['write', (store: CosmosStore) => store.write(freshKey(), Uint8Array.of(1), replace('"stale"'))],
      ['delete', (store: CosmosStore) => store.delete(freshKey())],
    ])(
      'reports a missing container (404/1003) on %s as StoreUnavailableError, not as an absent item',
      async (operation, act) => {
        const store = proxiedStore();
        failItems(404, 1003);

        const error = await failureOf(act(store));

        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error).toMatchObject({ operation, throttled: false });
        expect(error.message).toMatch(/containerId/);
      },
    );
  });

  describe('unreachable endpoint', () => {
    it('fails with StoreUnavailableError when nothing listens', async () => {
      const store = endpointStore({ endpoint: `http://127.0.0.1:${await freePort()}` });

      const error = await failureOf(store.read(freshKey()));

      expectReadRefused(error);
    });

    describe('when the endpoint accepts connections but never answers', () => {
      const silent = useWorld(startSilentServer);

      it('times out and fails with StoreUnavailableError instead of hanging', async () => {
        const { port } = silent;
        const store = endpointStore({
          endpoint: `http://127.0.0.1:${port}`,
          clientOptions: { connectionPolicy: { enableEndpointDiscovery: false, requestTimeout: 200 } },
        });

        const error = await failureOf(store.write(freshKey(), Uint8Array.of(1), create()));

        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect(error.cause).toMatchObject({ name: 'TimeoutError' });
        expect(error.message).toMatch(/requestTimeout/);
      });
    });
  });
});

/** A cosmosdb-server and a fault proxy in front of it. */
const startProxiedCosmos = () =>
  startGroup(async (own) => {
    const cosmos = own(await startLocalCosmos());
    return { cosmos, proxy: own(await startFaultProxy(cosmos.endpoint)) };
  });

describe('CosmosStore operation budget', () => {
  const rig = useWorld(startProxiedCosmos);

  it.each([
    [
      'operationBudgetMs',
      {
        operationBudgetMs: 1200,
        clientOptions: { connectionPolicy: { enableEndpointDiscovery: false, requestTimeout: 300 } },
      },
    ],
    [
      'budgetMs',
      {
        budgetMs: 1200,
        timeoutMs: 300,
        clientOptions: { connectionPolicy: { enableEndpointDiscovery: false } },
      },
    ],
  ] as const)(
    'abandons a read the SDK keeps retrying against resetting connections, and says why (%s)',
    async (setting, budget) => {
      const store = new CosmosStore({
        endpoint: rig.proxy.endpoint,
        key: rig.cosmos.key,
        databaseId: rig.cosmos.databaseId,
        containerId: rig.cosmos.containerId,
        ...budget,
      });
      try {
        await store.read('warm-up-key');
        rig.proxy.setFault({ kind: 'reset' });
        const attemptsBefore = rig.proxy.counts.faulted;

        const error = await store.read('some-key').then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(error).toBeInstanceOf(StoreUnavailableError);
        expect((error as Error).message).toMatch(new RegExp(`within 1200 ms \\(${setting}\\)`));
        // Without the budget the SDK makes 11 attempts a second apart; within 1.2 s it can make at most 3.
        expect(rig.proxy.counts.faulted - attemptsBefore).toBeLessThanOrEqual(3);
      } finally {
        rig.proxy.setFault(undefined);
        store.destroy();
      }
    },
  );

  it('refuses both budgetMs and operationBudgetMs, or a bad budgetMs', () => {
    expect(
      () => new CosmosStore({ container: rig.cosmos.container, budgetMs: 1000, operationBudgetMs: 1000 }),
    ).toThrow(/^budgetMs: received both budgetMs and operationBudgetMs/);
    expect(() => new CosmosStore({ container: rig.cosmos.container, budgetMs: -1 })).toThrow(/^budgetMs: /);
  });

  it('takes timeoutMs (per attempt) only for a client it builds, and not beside requestTimeout', () => {
    // @ts-expect-error -- timeoutMs configures the client the store builds; a container's client is the caller's
    expect(() => new CosmosStore({ container: rig.cosmos.container, timeoutMs: 500 })).toThrow(
      /^timeoutMs: applies only/,
    );
    const endpoint = { endpoint: rig.proxy.endpoint, key: rig.cosmos.key, databaseId: 'd', containerId: 'c' };
    expect(
      () =>
        new CosmosStore({
          ...endpoint,
          timeoutMs: 500,
          clientOptions: { connectionPolicy: { requestTimeout: 9 } },
        }),
    ).toThrow(/^timeoutMs: clientOptions.connectionPolicy.requestTimeout is set too/);
    expect(() => new CosmosStore({ ...endpoint, timeoutMs: 0 })).toThrow(
      /^timeoutMs: expected a positive number/,
    );
  });

  it('refuses a budget that is not a positive number', () => {
    expect(() => new CosmosStore({ container: rig.cosmos.container, operationBudgetMs: 0 })).toThrow(
      /operationBudgetMs/,
    );
  });
});
