/**
 * Oversized caches (issue 7, item 6): a caller with hundreds of tokens. Compression keeps
 * the item under DynamoDB's 400 KB (on dynalite, the real DynamoDbStore check); pruning
 * drops expired tokens before the size check; when neither is enough the write is refused
 * with a clear, logged and counted SIZE_LIMIT error, the caller still gets its token, and
 * the previous blob stays byte for byte as it was.
 */
import { ConfidentialClientApplication, type AuthenticationResult } from '@azure/msal-node';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { parseEnvelopeHeader } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { ErrorCode } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { DYNAMODB_MAX_ITEM_BYTES } from '../../shared/store/limits';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { MemoryStore } from '../../shared/store/memory';
import type { TokenStore } from '../../shared/store/store';
import type { TokenCache, TokenCacheOptions } from '../../shared/cache/types';
import { API_CLIENT_ID, API_CLIENT_SECRET, type CacheWorld } from '../support/cache-harness';
import { accessTokensIn, linesWithCode, startSecureWorld, storedDocument } from '../support/security-world';

/** Tokens one caller holds: well past 400 KB of MSAL JSON, well under it compressed. */
const TOKENS = 300;

let world: CacheWorld;
let dynamo: LocalDynamo;
const stores: DynamoDbStore[] = [];
/** MSAL cache JSON with TOKENS app tokens, acquired from the local authority. */
let bulkJson: string;

beforeAll(async () => {
  world = await startSecureWorld();
  dynamo = await startLocalDynamo();
  const cca = new ConfidentialClientApplication({
    auth: {
      clientId: API_CLIENT_ID,
      clientSecret: API_CLIENT_SECRET,
      authority: world.authority.authority(),
      ...world.authority.msalMetadata(),
    },
    system: { networkClient: world.network },
  });
  for (let batch = 0; batch < TOKENS / 20; batch++) {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        cca.acquireTokenByClientCredential({ scopes: [`api://bulk-${batch}-${i}/.default`] }),
      ),
    );
  }
  bulkJson = cca.getTokenCache().serialize();
}, 60_000);

afterAll(async () => {
  for (const store of stores) store.destroy();
  await dynamo.stop();
  await world.stop();
});

function dynamoStore(now?: () => number): DynamoDbStore {
  const store = new DynamoDbStore({
    tableName: dynamo.tableName,
    clientConfig: dynamo.clientConfig,
    ...(now ? { now } : {}),
  });
  stores.push(store);
  return store;
}

/** A partition of its own per test: app tokens for a tenant of that name. */
let tenants = 0;
const nextTenant = () => `oversized-${++tenants}`;

/**
 * Loads the bulk tokens into a tenant's app partition in one request (the escape hatch:
 * MSAL deserializes them, then acquires one more token, and the plugin persists it all).
 */
function acquireWithBulk(
  cache: TokenCache,
  tenantId: string,
  scope: string,
): Promise<AuthenticationResult | null> {
  return cache.withPartition({ kind: 'app', tenantId }, async (cca) => {
    cca.getTokenCache().deserialize(bulkJson.replaceAll(world.authority.tenantId, tenantId));
    return cca.acquireTokenByClientCredential({ scopes: [scope] });
  });
}

function instance(store: TokenStore, overrides: Partial<TokenCacheOptions> = {}) {
  return world.instance({
    store,
    msal: {
      clientId: API_CLIENT_ID,
      clientSecret: API_CLIENT_SECRET,
      authority: world.authority.authority(),
      knownAuthorities: [world.authority.host],
      networkClient: world.network,
    },
    ...overrides,
  });
}

const keyRing = () => new LocalKeyRing({ masterKey: world.masterKey });

describe(`a caller with ${TOKENS} tokens`, () => {
  it('is stored under DynamoDB’s 400 KB limit thanks to compression, and served from it', async () => {
    const store = dynamoStore();
    const tenantId = nextTenant();
    const { cache, metrics } = instance(store);

    const result = await acquireWithBulk(cache, tenantId, 'api://one-more/.default');

    const key = cache.storeKeyOf({ kind: 'app', tenantId });
    const item = (await store.read(key))!;
    const doc = await storedDocument(store, key, keyRing());
    expect(Buffer.byteLength(JSON.stringify(doc))).toBeGreaterThan(DYNAMODB_MAX_ITEM_BYTES);
    expect(item.blob.length).toBeLessThan(DYNAMODB_MAX_ITEM_BYTES / 2);
    expect(parseEnvelopeHeader(item.blob).compressed).toBe(true);
    expect(accessTokensIn(doc)).toHaveLength(TOKENS + 1);
    expect(accessTokensIn(doc)).toContain(result!.accessToken);
    expect(metrics.get(Metric.WriteFailed)).toBe(0);
    world.authority.counters.reset();
    const again = await instance(store).cache.acquireTokenForApp({
      scopes: ['api://bulk-7-7/.default'],
      tenantId,
    });
    expect(again.fromCache).toBe(true);
    expect(world.authority.counters.token()).toBe(0);
  });

  it('drops expired tokens before the size check, so a partition that would not fit does', async () => {
    let clock = Date.now();
    const now = () => clock;
    const store = dynamoStore(now);
    const tenantId = nextTenant();
    // Uncompressed, the bulk alone is past the limit: only pruning can make it fit.
    const { cache, metrics } = instance(store, { compressAboveBytes: false, now });
    expect(Buffer.byteLength(bulkJson)).toBeGreaterThan(DYNAMODB_MAX_ITEM_BYTES);
    // The bulk tokens live an hour; an hour and ten minutes later (for the cache) only the
    // token acquired now, with two hours to live, is still valid.
    clock += 4200_000;
    world.authority.setAccessTokenLifetime(7200);
    let result: AuthenticationResult | null;
    try {
      result = await acquireWithBulk(cache, tenantId, 'api://after-expiry/.default');
    } finally {
      world.authority.setAccessTokenLifetime(3600);
    }

    const stored = accessTokensIn(
      await storedDocument(store, cache.storeKeyOf({ kind: 'app', tenantId }), keyRing()),
    );
    expect(stored).toEqual([result!.accessToken]);
    expect(metrics.get(Metric.StoreWrite)).toBe(1);
    expect(metrics.get(Metric.WriteFailed)).toBe(0);
  });

  it.each([
    [
      'DynamoDB (dynalite) with compression off',
      () => dynamoStore(),
      { compressAboveBytes: false as const },
      409_600,
    ],
    ['a store with a 64 KiB limit, compressed', () => new MemoryStore({ maxItemBytes: 65_536 }), {}, 65_536],
  ])(
    'that fits nowhere (%s): a clear SIZE_LIMIT error is logged and counted, the caller gets its token, the previous blob is intact',
    async (_name, makeStore, options, limit) => {
      const store = makeStore();
      const tenantId = nextTenant();
      const first = await instance(store).cache.acquireTokenForApp({
        scopes: ['api://before/.default'],
        tenantId,
      });
      const key = world.instance().cache.storeKeyOf({ kind: 'app', tenantId });
      const before = (await store.read(key))!;
      const { cache, metrics, logger } = instance(store, options);

      const result = await acquireWithBulk(cache, tenantId, 'api://too-many/.default');

      expect(result!.accessToken).toBeTruthy();
      expect(result!.fromCache).toBe(false);
      expect(metrics.get(Metric.WriteFailed, { kind: 'app', reason: 'size-limit' })).toBe(1);
      expect(metrics.get(Metric.StoreWrite)).toBe(0);
      const [line] = linesWithCode(logger, 'error', ErrorCode.SizeLimit);
      expect(line?.message).toBe('token cache write failed; the stored item was left as it was');
      expect(line?.fields?.['detail']).toMatch(
        new RegExp(
          `item of \\d+ bytes exceeds the ${limit}-byte limit; the previous item was kept\\. ` +
            'Enable compression or reduce the scopes cached per caller\\.',
        ),
      );
      const after = (await store.read(key))!;
      expect(after.version).toBe(before.version);
      expect(Buffer.from(after.blob).equals(Buffer.from(before.blob))).toBe(true);
      expect(accessTokensIn(await storedDocument(store, key, keyRing()))).toEqual([first.accessToken]);
    },
  );
});
