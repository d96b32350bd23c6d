/**
 * Faults (issue 7, item 1), injected through the local servers' switches and an HTTP
 * proxy in front of the real store servers: the store unavailable, slow past its timeout
 * and throttled (DynamoDB on dynalite, Cosmos DB on cosmosdb-server); the key service
 * unavailable, throttled or its key disabled (AWS KMS and Azure Key Vault, local servers);
 * the authority unavailable or throttled. Each case states what the caller gets, what is
 * logged and counted, and that nothing stored is lost or overwritten.
 */
import { DisableKeyCommand, EnableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import type { IncomingMessage } from 'node:http';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { GrantType } from '../../local/authority';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import type { KeyRing } from '../../shared/crypto/keyring';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { ErrorCode, KeyServiceFailure, TokenAcquisitionError } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { MemoryStore } from '../../shared/store/memory';
import type { TokenStore } from '../../shared/store/store';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE } from '../support/cache-harness';
import {
  dynamoDbError,
  dynamoDbOperation,
  startFaultProxy,
  type FaultProxy,
  type ProxyFault,
} from '../support/fault-proxy';
import { registerSecret } from '../support/secret-registry';
import {
  accessTokensIn,
  acquireDuringStoreFault,
  expectSameItem,
  linesWithCode,
  OTHER_SCOPE,
  seededUser as seededUserThrough,
  storedDocument,
  userAssertion,
  useSecureWorld,
} from '../support/security-world';
import { useWorld } from '../support/use-world';
import { localVaultKeyRing } from '../support/local-vault';

const world = useSecureWorld();

/** A store server, a proxy in front of it, and a store client through each. */
interface StoreRig {
  readonly direct: TokenStore;
  readonly proxied: TokenStore;
  readonly proxy: FaultProxy;
  readonly faults: Readonly<Record<'unavailable' | 'slow' | 'throttled', ProxyFault>>;
  /** Expected in the logged detail of each fault. */
  readonly details: Readonly<Record<'unavailable' | 'slow' | 'throttled', RegExp>>;
  /** Selects the store's read requests. */
  readonly isRead: (req: IncomingMessage) => boolean;
  stop(): Promise<void>;
}

async function dynamoRig(): Promise<StoreRig> {
  const dynamo: LocalDynamo = await startLocalDynamo();
  const proxy = await startFaultProxy(dynamo.endpoint);
  const direct = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
  const proxied = new DynamoDbStore({
    tableName: dynamo.tableName,
    clientConfig: { ...dynamo.clientConfig, endpoint: proxy.endpoint },
    timeoutMs: 300,
    maxAttempts: 2,
  });
  return {
    direct,
    proxied,
    proxy,
    faults: {
      unavailable: dynamoDbError(503, 'ServiceUnavailable', 'Service Unavailable'),
      slow: { kind: 'hang' },
      throttled: dynamoDbError(400, 'ProvisionedThroughputExceededException', 'Rate of requests exceeds'),
    },
    details: {
      unavailable: /ServiceUnavailable/,
      slow: /no answer from DynamoDB within the timeout of 300 ms/,
      throttled: /DynamoDB throttled table/,
    },
    isRead: (req) => dynamoDbOperation(req) === 'GetItem',
    async stop() {
      direct.destroy();
      proxied.destroy();
      await proxy.stop();
      await dynamo.stop();
    },
  };
}

async function cosmosRig(): Promise<StoreRig> {
  const cosmos: LocalCosmos = await startLocalCosmos();
  const proxy = await startFaultProxy(cosmos.endpoint);
  const direct = new CosmosStore({ container: cosmos.container });
  const proxied = new CosmosStore({
    endpoint: proxy.endpoint,
    key: cosmos.key,
    databaseId: cosmos.databaseId,
    containerId: cosmos.containerId,
    clientOptions: {
      connectionPolicy: {
        enableEndpointDiscovery: false,
        requestTimeout: 300,
        retryOptions: {
          maxRetryAttemptCount: 1,
          fixedRetryIntervalInMilliseconds: 10,
          maxWaitTimeInSeconds: 1,
        },
      },
    },
  });
  const cosmosError = (status: number, code: string, extra: Record<string, string> = {}): ProxyFault => ({
    kind: 'respond',
    status,
    headers: { 'content-type': 'application/json', ...extra },
    body: JSON.stringify({ code, message: `injected ${code}` }),
  });
  return {
    direct,
    proxied,
    proxy,
    faults: {
      unavailable: cosmosError(503, 'ServiceUnavailable'),
      slow: { kind: 'hang' },
      throttled: cosmosError(429, 'TooManyRequests', { 'x-ms-retry-after-ms': '5' }),
    },
    details: {
      unavailable: /HTTP 503/,
      slow: /no answer from Cosmos DB .* within the request timeout/,
      throttled: /Cosmos DB throttled container/,
    },
    isRead: (req) => req.method === 'GET' && (req.url ?? '').includes('/docs/'),
    async stop() {
      proxied.destroy();
      await proxy.stop();
      await cosmos.stop();
    },
  };
}

describe.each([
  ['DynamoDB (dynalite)', dynamoRig],
  ['Cosmos DB (cosmosdb-server)', cosmosRig],
])('store faults: %s', (_name, startRig) => {
  const rig = useWorld(startRig);
  const keyRing = () => new LocalKeyRing({ masterKey: world.masterKey });

  afterEach(() => {
    rig.proxy.setFault(undefined);
  });

  /** A user whose partition holds one token, written through the healthy store. */
  const seededUser = (oid: string) => seededUserThrough(world, rig.direct, oid);

  it.each(['unavailable', 'slow', 'throttled'] as const)(
    '%s: the caller gets its token from the authority, the failure is logged and counted, the stored item is kept',
    async (fault) => {
      const { assertion, seeded, key, before } = await seededUser(`store-${_name}-${fault}`);
      rig.proxy.setFault(rig.faults[fault]);

      // The caller gets a fresh token, as if there were no cache; the failed read and the
      // write that could not be made are counted; the read is logged as a warning.
      const { result, cache, logger, readLine } = await acquireDuringStoreFault(
        world,
        rig.proxied,
        assertion,
      );
      expect(result.accessToken).not.toBe(seeded.accessToken);
      // Logged: a warning for the read, an error for the write, both with the stable code.
      expect(readLine?.fields?.['detail']).toMatch(rig.details[fault]);
      const [writeLine] = linesWithCode(logger, 'error', ErrorCode.StoreUnavailable);
      expect(writeLine?.fields?.['reason']).toBe('store-unavailable');
      // Nothing lost or overwritten.
      rig.proxy.setFault(undefined);
      expectSameItem(await rig.direct.read(key), before);

      // Once the store is back, the next request stores both tokens.
      const healed = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });
      const stored = accessTokensIn(await storedDocument(rig.direct, key, keyRing()));
      expect(stored).toEqual(expect.arrayContaining([seeded.accessToken, healed.accessToken]));
    },
  );

  it('reads failing while writes work: the item that could not be read is never overwritten', async () => {
    const { assertion, key, before } = await seededUser(`store-${_name}-reads-only`);
    rig.proxy.setFault(rig.faults.unavailable, rig.isRead);

    const { cache, metrics } = world.instance({
      store: rig.proxied,
      conflictRetries: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });

    expect(result.fromCache).toBe(false);
    // The blind write may only create the item: it exists, so the write conflicts (DynamoDB),
    // or the store cannot check the existing item and gives up (Cosmos DB).
    expect(metrics.get(Metric.StoreWrite)).toBe(0);
    expect(metrics.get(Metric.WriteFailed)).toBe(1);
    rig.proxy.setFault(undefined);
    expectSameItem(await rig.direct.read(key), before);
  });

  it('a warm instance with L1 serves from memory while the store is down, without calling it', async () => {
    const assertion = await userAssertion(world, `store-${_name}-l1`);
    const { cache, metrics } = world.instance({ store: rig.proxied, l1: {} });
    const first = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
    rig.proxy.setFault(rig.faults.unavailable);
    const faultedBefore = rig.proxy.counts.faulted;
    metrics.reset();
    world.authority.counters.reset();

    const again = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

    expect(again.fromCache).toBe(true);
    expect(again.accessToken).toBe(first.accessToken);
    expect(rig.proxy.counts.faulted).toBe(faultedBefore);
    expect(metrics.get(Metric.L1Hit)).toBe(1);
    expect(world.authority.counters.token()).toBe(0);
  });
});

/** A key service with its fault switches, as the suite drives it. */
interface KeyServiceRig {
  readonly ringName: string;
  /** A new key ring (a cold instance: its own client and no cached keys). */
  ring(): KeyRing;
  fault(kind: 'unavailable' | 'throttled' | 'disabled'): Promise<void>;
  heal(): Promise<void>;
  /** Requests the key service has received. */
  calls(): number;
  stop(): Promise<void>;
}

async function kmsRig(): Promise<KeyServiceRig> {
  const kms: LocalKms = await startLocalKms();
  const { arn } = await kms.createKey({ alias: 'alias/token-cache' });
  const admin = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
  const rings: KmsKeyRing[] = [];
  return {
    ringName: 'aws-kms',
    ring() {
      const ring = new KmsKeyRing({
        keyId: 'alias/token-cache',
        clientId: API_CLIENT_ID,
        clientConfig: { ...kms.clientConfig, maxAttempts: 1 },
        timeoutMs: 1000,
      });
      rings.push(ring);
      return ring;
    },
    async fault(kind) {
      if (kind === 'disabled') await admin.send(new DisableKeyCommand({ KeyId: arn }));
      else kms.setFault({ kind: kind === 'throttled' ? 'throttle' : 'unavailable' });
    },
    async heal() {
      kms.setFault(undefined);
      await admin.send(new EnableKeyCommand({ KeyId: arn }));
    },
    calls: () => kms.counters.calls('GenerateDataKey') + kms.counters.calls('Decrypt'),
    async stop() {
      for (const ring of rings) ring.destroy();
      admin.destroy();
      await kms.stop();
    },
  };
}

async function keyVaultRig(): Promise<KeyServiceRig> {
  const bearer = 'faults-suite-key-vault-bearer';
  registerSecret('assertion', bearer);
  const credential: TokenCredential = {
    async getToken(): Promise<AccessToken> {
      return { token: bearer, expiresOnTimestamp: Date.now() + 3600_000 };
    },
  };
  const vault: LocalKeyVault = await startLocalKeyVault();
  const key = await vault.createKey('token-cache');
  const signingKey = await vault.createKey('token-cache-sign', { kty: 'EC' });
  return {
    ringName: 'azure-keyvault',
    ring: () => localVaultKeyRing(vault, { wrap: key, sign: signingKey }, credential),
    async fault(kind) {
      if (kind === 'disabled') vault.disableKey(key.name, key.version);
      else vault.setFault({ status: kind === 'throttled' ? 429 : 503 });
    },
    async heal() {
      vault.setFault(undefined);
      vault.enableKey(key.name, key.version);
    },
    calls: () => vault.counters.calls(),
    stop: () => vault.stop(),
  };
}

describe.each([
  ['AWS KMS (local)', kmsRig],
  ['Azure Key Vault (local)', keyVaultRig],
])('key service faults: %s', (_name, startRig) => {
  const rig = useWorld(startRig);
  let store: MemoryStore;

  beforeEach(() => {
    store = new MemoryStore();
  });
  afterEach(async () => {
    await rig.heal();
  });

  const instance = (keyRing: KeyRing = rig.ring()) => world.instance({ store, keyRing });

  const expectedReason = {
    unavailable: KeyServiceFailure.Unavailable,
    throttled: KeyServiceFailure.Throttled,
    disabled: KeyServiceFailure.Disabled,
  } as const;

  it.each(['unavailable', 'throttled', 'disabled'] as const)(
    '%s, cold instance: the caller gets a fresh token, the blob it could not open is kept, the failure is logged and counted',
    async (fault) => {
      const assertion = await userAssertion(world, `key-${_name}-${fault}`);
      const seeded = await instance().cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      const key = world.instance().cache.storeKeyOf({ kind: 'obo', assertion });
      const before = await store.read(key);
      await rig.fault(fault);
      world.authority.counters.reset();

      const { cache, metrics, logger } = instance();
      const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

      expect(result.fromCache).toBe(false);
      expect(result.accessToken).not.toBe(seeded.accessToken);
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
      expect(metrics.get(Metric.KeyError, { kind: 'obo', reason: expectedReason[fault] })).toBe(1);
      expect(metrics.get(Metric.EnvelopeRejected)).toBe(0);
      expect(metrics.get(Metric.WriteSkipped, { kind: 'obo', reason: 'unreadable-transient' })).toBe(1);
      const [line] = linesWithCode(logger, 'warn', ErrorCode.KeyService);
      expect(line?.message).toBe('token cache could not be opened now; acquiring without the cache');
      expect(line?.fields?.['detail']).toContain(`(${expectedReason[fault]})`);
      // The blob may be fine: it is neither served nor replaced.
      expectSameItem(await store.read(key), before);
      await rig.heal();
      const healed = await instance().cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      expect(healed).toMatchObject({ fromCache: true, accessToken: seeded.accessToken });
    },
  );

  it.each(['unavailable', 'throttled', 'disabled'] as const)(
    '%s, warm instance: cached data keys serve reads and writes with no key-service call',
    async (fault) => {
      const assertion = await userAssertion(world, `key-warm-${_name}-${fault}`);
      const warm = instance();
      const first = await warm.cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      await rig.fault(fault);
      const calls = rig.calls();
      world.authority.counters.reset();
      warm.metrics.reset();

      const hit = await warm.cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      const added = await warm.cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });

      expect(hit).toMatchObject({ fromCache: true, accessToken: first.accessToken });
      expect(added.fromCache).toBe(false);
      expect(world.authority.counters.token()).toBe(1);
      expect(rig.calls()).toBe(calls);
      expect(warm.metrics.get(Metric.KeyError)).toBe(0);
      expect(warm.metrics.get(Metric.StoreWrite)).toBe(1);
      await rig.heal();
      const stored = accessTokensIn(
        await storedDocument(store, warm.cache.storeKeyOf({ kind: 'obo', assertion }), rig.ring()),
      );
      expect(stored).toEqual(expect.arrayContaining([first.accessToken, added.accessToken]));
    },
  );

  it('unavailable, nothing stored yet: the caller gets its token and nothing is written, not even in the clear', async () => {
    const assertion = await userAssertion(world, `key-new-${_name}`);
    await rig.fault('unavailable');

    const { cache, metrics, logger } = instance();
    const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

    expect(result.accessToken).toBeTruthy();
    expect(store.size).toBe(0);
    expect(metrics.get(Metric.WriteFailed, { kind: 'obo', reason: 'key-service' })).toBe(1);
    expect(linesWithCode(logger, 'error', ErrorCode.KeyService)[0]?.fields?.['reason']).toBe('key-service');
  });
});

describe('authority faults', () => {
  afterEach(() => {
    world.authority.setFault(undefined);
  });

  const failureOf = (promise: Promise<unknown>): Promise<unknown> =>
    promise.then(
      () => new Error('expected the acquire to fail'),
      (e: unknown) => e,
    );

  it.each([
    [503, 'temporarily_unavailable'],
    [500, 'server_error'],
    [429, 'temporarily_unavailable'],
  ] as const)(
    '%i (%s), OBO: a cached token is still served; an uncached one fails with a retryable TokenAcquisitionError and nothing is written',
    async (status, providerCode) => {
      const store = new MemoryStore();
      const assertion = await userAssertion(world, `authority-${status}`);
      const { cache, metrics } = world.instance({ store });
      const cached = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      const key = cache.storeKeyOf({ kind: 'obo', assertion });
      const before = await store.read(key);
      world.authority.setFault({ status, retryAfterSeconds: 1 });
      world.authority.counters.reset();
      metrics.reset();

      const again = await world.instance({ store }).cache.acquireTokenOnBehalfOf({
        assertion,
        scopes: [DOWNSTREAM_SCOPE],
      });
      const failure = await failureOf(cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] }));

      expect(again).toMatchObject({ fromCache: true, accessToken: cached.accessToken });
      expect(failure).toBeInstanceOf(TokenAcquisitionError);
      expect(failure).toMatchObject({ code: ErrorCode.TokenAcquisition, providerCode, retryable: true });
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBeGreaterThanOrEqual(1);
      expect(metrics.get(Metric.StoreWrite)).toBe(0);
      expectSameItem(await store.read(key), before);
    },
  );

  it.each([503, 500, 429] as const)(
    '%i, client credentials: the TokenAcquisitionError says the caller may retry',
    async (status) => {
      const store = new MemoryStore();
      world.authority.setFault({ status });

      const failure = await failureOf(
        world
          .instance({ store })
          .cache.acquireTokenForApp({ scopes: [`api://authority-${status}/.default`] }),
      );

      expect(failure).toBeInstanceOf(TokenAcquisitionError);
      expect(failure).toMatchObject({ code: ErrorCode.TokenAcquisition, retryable: true });
      expect(store.size).toBe(0);
    },
  );
});
