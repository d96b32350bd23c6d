/**
 * The five ways of serving a warm token that the benchmark compares, all against the same
 * DynamoDB table, KMS and authority:
 *
 * (a) this project, KMS envelope, L1 off: one store read and an envelope open per request;
 * (b) the same with L1 on: no store read on a hit;
 * (c) the peer: msal-node's own DistributedCachePlugin over a plain DynamoDB
 *     GetItem/PutItem client, plain JSON, no encryption, no concurrency control;
 * (d) the naive approach (MSAL.NET serialization guide): one shared blob for all users,
 *     read and deserialized whole on every request;
 * (e) the SDK floor: one raw SDK GetItem (a default DynamoDBClient) of (a)'s own item, the
 *     same bytes (a) reads. No MSAL, no crypto;
 * (f) the store floor: `DynamoDbStore.read` of (a)'s own item through (a)'s own store
 *     instance (the same client and settings). What (a) costs beyond this is the cache;
 * (g) this project with L1 off and the opened-envelope memo unable to answer: every read
 *     returns one of two envelopes of the same partition in turn, so each hit opens
 *     (HKDF, AES-GCM, inflate, parse), as after another container rewrote the blob.
 *
 * `FloorVariant` (plain JSON + JSON.parse, the old floor) stays for bench/redis.ts.
 */
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type DynamoDBClientConfig,
  type GetItemCommandOutput,
} from '@aws-sdk/client-dynamodb';
import {
  ConfidentialClientApplication,
  DistributedCachePlugin,
  LogLevel,
  TokenCacheContext,
  type AuthenticationResult,
  type ICacheClient,
  type IPartitionManager,
} from '@azure/msal-node';
import { HttpsNetworkClient } from '../shared/cache/http';
import { sha256Base64Url } from '../shared/cache/partitions';
import { createTokenCache } from '../shared/cache/token-cache';
import type { CachedAuthenticationResult } from '../shared/cache/metadata';
import type { TokenCache, TokenCacheOptions } from '../shared/cache/types';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import { CounterMetrics, Metric, silentLogger } from '../shared/observability';
import { VersionConflictError } from '../shared/errors';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import type { StoredItem, TokenStore, WriteOptions } from '../shared/store/store';
import { benchKeyRing, benchMsal, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, type World } from './world';

/** The two warm requests measured. */
export type Kind = 'obo' | 'app';
export const KINDS: readonly Kind[] = ['obo', 'app'];

export type VariantId = 'a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g';

/** Every variant, in table order. */
export const VARIANT_IDS: readonly VariantId[] = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

/** Short labels, used in every table and chart. */
export const VARIANT_LABELS: Readonly<Record<VariantId, string>> = {
  a: '(a) this project, KMS envelope, L1 off',
  b: '(b) this project, KMS envelope, L1 on',
  c: '(c) peer: msal-node DistributedCachePlugin, plain DynamoDB',
  d: '(d) naive: one shared blob for all users',
  e: "(e) SDK floor: raw GetItem of (a)'s item",
  f: "(f) store floor: (a)'s DynamoDbStore.read of its item",
  g: '(g) this project, L1 off, memo off (real opens)',
};

/** The downstream scope of OBO and the scope of the app (daemon) token. */
export const OBO_SCOPE = 'api://bench-downstream/.default';
export const APP_SCOPE = 'api://bench-daemon-target/.default';

/** Store operations a variant made (cumulative). */
export interface StoreCounts {
  reads: number;
  writes: number;
}

/** One way of serving warm requests. */
export interface Variant {
  readonly id: VariantId;
  /** Serves one warm request for `assertion` (OBO) or for the app; returns whether MSAL served it from cache. */
  request(kind: Kind, assertion: string): Promise<boolean>;
  /** Store reads and writes so far. */
  storeCounts(): StoreCounts;
  close(): void;
}

/** One measured request of `kind` through a TokenCache: OBO for `assertion` (OBO_SCOPE), or the app token (APP_SCOPE). */
export function acquireWarm(
  cache: TokenCache,
  kind: Kind,
  assertion: string,
): Promise<CachedAuthenticationResult> {
  return kind === 'obo'
    ? cache.acquireTokenOnBehalfOf({ assertion, scopes: [OBO_SCOPE] })
    : cache.acquireTokenForApp({ scopes: [APP_SCOPE] });
}

/** The store reads and writes a TokenCache counted in `metrics`. */
export function metricStoreCounts(metrics: CounterMetrics): StoreCounts {
  return { reads: metrics.get(Metric.StoreRead), writes: metrics.get(Metric.StoreWrite) };
}

/** Store key of a user's partition for the peer: a hash of the assertion, like (a)'s. */
export const peerKey = (assertion: string): string => `peer:obo:${sha256Base64Url(assertion)}`;
export const PEER_APP_KEY = `peer:app:${BENCH_CLIENT_ID}`;
export const NAIVE_KEY = 'naive:shared';
/** Store key of (a)'s second envelope of a partition, for (g). */
export const altKey = (key: string): string => `${key}#alt`;
export const floorKey = (kind: Kind, assertion: string): string =>
  kind === 'app' ? 'floor:app' : `floor:obo:${sha256Base64Url(assertion)}`;

/** A store that passes every call through to `inner`: the base of the bench's wrapping stores. */
export class ForwardingStore implements TokenStore {
  readonly name: string;
  readonly maxItemBytes: number;

  constructor(protected readonly inner: TokenStore) {
    this.name = inner.name;
    this.maxItemBytes = inner.maxItemBytes;
  }

  read(key: string): Promise<StoredItem | undefined> {
    return this.inner.read(key);
  }

  write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    return this.inner.write(key, blob, options);
  }

  delete(key: string, options?: { readonly expectedVersion?: string }): Promise<void> {
    return this.inner.delete(key, options);
  }
}

/** A store that counts write attempts and conflicts (contention only: it adds a call layer). */
export class CountingStore extends ForwardingStore {
  writeAttempts = 0;
  conflicts = 0;

  override async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    this.writeAttempts++;
    try {
      return await this.inner.write(key, blob, options);
    } catch (e) {
      if (e instanceof VersionConflictError) this.conflicts++;
      throw e;
    }
  }
}

/** (a) and (b): this project's TokenCache, as one warm container. */
export class ProjectVariant implements Variant {
  readonly cache: TokenCache;
  readonly metrics = new CounterMetrics();
  /** Set when the variant was built with `countWrites`. */
  readonly counting: CountingStore | undefined;
  /** The store (a) reads through: the store floor (f) reads through the same instance. */
  readonly store: DynamoDbStore;
  private readonly keyRing: KmsKeyRing;

  constructor(
    readonly id: 'a' | 'b' | 'g',
    world: World,
    network: HttpsNetworkClient,
    options: {
      conflictRetries?: TokenCacheOptions['conflictRetries'];
      countWrites?: boolean;
      /** Another DynamoDB endpoint (the delay proxy). */
      dynamoEndpoint?: string;
    } = {},
  ) {
    this.store = new DynamoDbStore({
      tableName: world.info.dynamo.tableName,
      clientConfig: options.dynamoEndpoint
        ? { ...world.dynamoConfig, endpoint: options.dynamoEndpoint }
        : world.dynamoConfig,
    });
    this.keyRing = benchKeyRing(world);
    this.counting = options.countWrites ? new CountingStore(this.store) : undefined;
    this.cache = createTokenCache({
      msal: benchMsal(world, network),
      store:
        id === 'g'
          ? new AlternatingStore(this.store, '(g)', (key, n) => (n === 0 ? key : altKey(key)))
          : (this.counting ?? this.store),
      keyRing: this.keyRing,
      l1: id === 'b' ? {} : false,
      metrics: this.metrics,
      logger: silentLogger,
      ...(options.conflictRetries ? { conflictRetries: options.conflictRetries } : {}),
    });
  }

  async request(kind: Kind, assertion: string): Promise<boolean> {
    return (await acquireWarm(this.cache, kind, assertion)).fromCache;
  }

  /** The store key of the partition a request of `kind` reads. */
  keyOf(kind: Kind, assertion: string, tenantId: string): string {
    return kind === 'obo'
      ? this.cache.storeKeyOf({ kind: 'obo', assertion })
      : this.cache.storeKeyOf({ kind: 'app', tenantId });
  }

  storeCounts(): StoreCounts {
    return metricStoreCounts(this.metrics);
  }

  close(): void {
    this.store.destroy();
    this.keyRing.destroy();
  }
}

/**
 * A store for series measured on warm hits: each read of a key returns, in turn, the item
 * under `itemKey(key, 0)` and the one under `itemKey(key, 1)` (two envelopes of the same
 * partition, sealed for the same key), so the opened-envelope memo never holds the blob it
 * is given. One read of `inner` per read. Reads only: a hit writes nothing.
 *
 * (g)'s store alternates the item under the key and the one under {@link altKey}.
 */
export class AlternatingStore extends ForwardingStore {
  private readonly turn = new Map<string, 0 | 1>();

  constructor(
    inner: TokenStore,
    /** The series, for the errors: `(g)`. */
    private readonly label: string,
    private readonly itemKey: (key: string, turn: 0 | 1) => string,
  ) {
    super(inner);
  }

  override read(key: string): Promise<StoredItem | undefined> {
    const n = this.turn.get(key) ?? 0;
    this.turn.set(key, n === 0 ? 1 : 0);
    return this.inner.read(this.itemKey(key, n));
  }

  override write(): Promise<string> {
    return Promise.reject(new Error(`${this.label} is measured on warm hits only: no write expected`));
  }

  override delete(): Promise<void> {
    return Promise.reject(new Error(`${this.label} is measured on warm hits only: no delete expected`));
  }
}

/**
 * A floor of one raw SDK GetItem per request (a default client): the item under
 * `keyOf(kind, assertion)`, then `served(item)` (which throws where the item is missing).
 */
class GetItemFloor implements Variant {
  readonly id = 'e' as const;
  private reads = 0;
  protected readonly client: DynamoDBClient;

  constructor(
    config: DynamoDBClientConfig,
    protected readonly tableName: string,
    private readonly keyOf: (kind: Kind, assertion: string) => string,
    private readonly served: (item: GetItemCommandOutput['Item']) => boolean,
  ) {
    this.client = new DynamoDBClient(config);
  }

  async request(kind: Kind, assertion: string): Promise<boolean> {
    this.reads++;
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { pk: { S: this.keyOf(kind, assertion) } },
        ConsistentRead: true,
      }),
    );
    return this.served(Item);
  }

  storeCounts(): StoreCounts {
    return { reads: this.reads, writes: 0 };
  }

  close(): void {
    this.client.destroy();
  }
}

/** (e): a raw SDK GetItem of (a)'s own item (a default client), checked to hold a blob. */
export class ItemFloorVariant extends GetItemFloor {
  constructor(
    config: DynamoDBClientConfig,
    tableName: string,
    keyOf: (kind: Kind, assertion: string) => string,
  ) {
    super(config, tableName, keyOf, (Item) => {
      if (!Item?.['blob']?.B) throw new Error("(a)'s item missing");
      return true;
    });
  }
}

/** (f): `DynamoDbStore.read` of (a)'s own item through (a)'s own store instance. */
export class StoreFloorVariant implements Variant {
  readonly id = 'f' as const;
  private reads = 0;

  constructor(
    private readonly store: TokenStore,
    private readonly keyOf: (kind: Kind, assertion: string) => string,
  ) {}

  async request(kind: Kind, assertion: string): Promise<boolean> {
    this.reads++;
    const item = await this.store.read(this.keyOf(kind, assertion));
    if (!item) throw new Error("(a)'s item missing");
    return true;
  }

  storeCounts(): StoreCounts {
    return { reads: this.reads, writes: 0 };
  }

  /** The store belongs to (a), which closes it. */
  close(): void {}
}

/** msal-node's ICacheClient over plain DynamoDB GetItem/PutItem (attribute `json`, S). */
export class DynamoCacheClient implements ICacheClient {
  reads = 0;
  writes = 0;
  readonly client: DynamoDBClient;

  constructor(
    config: DynamoDBClientConfig,
    private readonly tableName: string,
  ) {
    this.client = new DynamoDBClient(config);
  }

  async get(key: string): Promise<string> {
    this.reads++;
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: { pk: { S: key } }, ConsistentRead: true }),
    );
    return Item?.['json']?.S ?? '';
  }

  async set(key: string, value: string): Promise<string> {
    this.writes++;
    await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: { pk: { S: key }, json: { S: value } } }),
    );
    return value;
  }

  destroy(): void {
    this.client.destroy();
  }
}

/** An ICacheClient in process memory: the naive approach with no I/O at all (a lower bound). */
export class MemoryCacheClient implements ICacheClient {
  reads = 0;
  writes = 0;
  readonly items = new Map<string, string>();

  async get(key: string): Promise<string> {
    this.reads++;
    return this.items.get(key) ?? '';
  }

  async set(key: string, value: string): Promise<string> {
    this.writes++;
    this.items.set(key, value);
    return value;
  }
}

/** A partition manager bound to one key for the length of one request. */
function fixedPartition(key: string): IPartitionManager {
  return { getKey: async () => key, extractKey: async () => key };
}

/** What (c) and (d) need to build an msal-node client per request. */
export interface MsalSetup {
  readonly authority: string;
  readonly host: string;
  readonly authorityMetadata: string;
  readonly network: HttpsNetworkClient;
}

export function msalSetup(world: World, network: HttpsNetworkClient): MsalSetup {
  const { authority, host, authorityMetadata } = world.info.authority;
  return { authority, host, authorityMetadata, network };
}

/**
 * How (c) and (d) load the partition before an OBO lookup. msal-node 7 does not call
 * `beforeCacheAccess` before its OBO cache lookup, so as shipped (`none`) every OBO
 * request misses and goes to the authority. `plugin` calls the plugin's own
 * `beforeCacheAccess` once (one get, one deserialize: what (a) does); `getAllAccounts`
 * is the public-API way to trigger it, but costs O(accounts²) in msal-node.
 */
export type OboPriming = 'plugin' | 'getAllAccounts' | 'none';

/**
 * (c) and (d): msal-node's DistributedCachePlugin, a client application per request as
 * msal-node's performance guide says. The authority metadata is passed in the config, as
 * (a) does, so neither makes discovery calls.
 */
export class PluginVariant implements Variant {
  constructor(
    readonly id: 'c' | 'd',
    private readonly setup: MsalSetup,
    readonly client: DynamoCacheClient | MemoryCacheClient,
    private readonly keyOf: (kind: Kind, assertion: string) => string,
    private readonly priming: OboPriming = 'plugin',
  ) {}

  async request(kind: Kind, assertion: string): Promise<boolean> {
    const result = await this.acquire(kind, assertion, kind === 'obo' ? OBO_SCOPE : APP_SCOPE);
    return result.fromCache;
  }

  /** One acquisition for `scope` through a fresh client application bound to the partition. */
  async acquire(kind: Kind, assertion: string, scope: string): Promise<AuthenticationResult> {
    const plugin = new DistributedCachePlugin(this.client, fixedPartition(this.keyOf(kind, assertion)));
    const cca = new ConfidentialClientApplication({
      auth: {
        clientId: BENCH_CLIENT_ID,
        authority: this.setup.authority,
        clientSecret: BENCH_CLIENT_SECRET,
        knownAuthorities: [this.setup.host],
        authorityMetadata: this.setup.authorityMetadata,
      },
      cache: { cachePlugin: plugin },
      system: {
        networkClient: this.setup.network,
        loggerOptions: { piiLoggingEnabled: false, logLevel: LogLevel.Error, loggerCallback: () => {} },
      },
    });
    let result: AuthenticationResult | null;
    if (kind === 'obo') {
      if (this.priming === 'plugin') {
        await plugin.beforeCacheAccess(new TokenCacheContext(cca.getTokenCache(), false));
      } else if (this.priming === 'getAllAccounts') {
        await cca.getTokenCache().getAllAccounts();
      }
      result = await cca.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [scope] });
    } else {
      result = await cca.acquireTokenByClientCredential({ scopes: [scope] });
    }
    if (!result) throw new Error(`variant (${this.id}) got no token`);
    return result;
  }

  storeCounts(): StoreCounts {
    return { reads: this.client.reads, writes: this.client.writes };
  }

  close(): void {
    if (this.client instanceof DynamoCacheClient) this.client.destroy();
  }
}

/** The old floor: GetItem of the partition's plain MSAL JSON, then JSON.parse (bench/redis.ts). */
export class FloorVariant extends GetItemFloor {
  constructor(config: DynamoDBClientConfig, tableName: string) {
    super(config, tableName, floorKey, (Item) => {
      const json = Item?.['json']?.S;
      if (json === undefined) throw new Error('floor item missing');
      return typeof JSON.parse(json) === 'object';
    });
  }

  /** Writes a floor item (setup only). */
  async put(key: string, json: string): Promise<void> {
    await this.client.send(
      new PutItemCommand({ TableName: this.tableName, Item: { pk: { S: key }, json: { S: json } } }),
    );
  }
}
