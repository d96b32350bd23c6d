/**
 * Puts the same users in the store for every variant: real OBO partitions acquired
 * through (a) (one token-endpoint call each), then the plain MSAL JSON of each copied to
 * the peer's items, the floor's items and the naive shared blob. Also makes filler
 * partitions for the scale section and the synthetic naive blob of N users.
 */
import { randomBytes } from 'node:crypto';
import {
  BatchWriteItemCommand,
  DynamoDBClient,
  type AttributeValue,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
import { sha256Base64Url } from '../shared/cache/partitions';
import type { CacheDocument } from '../shared/cache/cache-document';
import { DataKeyCache } from '../shared/crypto/data-key-cache';
import { Envelope } from '../shared/crypto/envelope';
import type { PartitionKind } from '../shared/crypto/keyring';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import { DynamoDbStore, dynamoDbItemSize } from '../shared/aws/dynamodb-store';
import {
  APP_SCOPE,
  FloorVariant,
  NAIVE_KEY,
  OBO_SCOPE,
  PEER_APP_KEY,
  altKey,
  floorKey,
  peerKey,
  type DynamoCacheClient,
  type ProjectVariant,
} from './variants';
import { BENCH_CLIENT_ID, type World } from './world';

/** One user's partition as stored by (a). */
export interface SeededUser {
  readonly oid: string;
  readonly assertion: string;
  /** The plaintext inside (a)'s envelope: MSAL's JSON. */
  readonly json: string;
  readonly envelopeBytes: number;
  readonly itemBytes: number;
}

export interface Population {
  readonly users: readonly SeededUser[];
  readonly app: { readonly json: string; readonly envelopeBytes: number; readonly itemBytes: number };
  /** The naive shared blob (all users + the app token), plain JSON. */
  readonly naiveJson: string;
}

/** Opens (a)'s stored partitions (for sizes and the copies the other variants get). */
export class PartitionReader {
  private readonly store: DynamoDbStore;
  private readonly keyRing: KmsKeyRing;
  private readonly envelope: Envelope;

  constructor(world: World, options: { compressAboveBytes?: number | false } = {}) {
    this.store = new DynamoDbStore({
      tableName: world.info.dynamo.tableName,
      clientConfig: world.dynamoConfig,
    });
    this.keyRing = new KmsKeyRing({
      keyId: world.info.kms.keyArn,
      clientId: BENCH_CLIENT_ID,
      clientConfig: world.kmsConfig,
    });
    this.envelope = new Envelope({
      keys: new DataKeyCache(this.keyRing),
      ...(options.compressAboveBytes !== undefined ? { compressAboveBytes: options.compressAboveBytes } : {}),
    });
  }

  /** The stored partition of `kind` (the KMS ring binds data keys to it): its plaintext and sizes, or undefined when absent. */
  async open(
    key: string,
    kind: PartitionKind,
  ): Promise<{ json: string; envelopeBytes: number; itemBytes: number } | undefined> {
    const item = await this.store.read(key);
    if (!item) return undefined;
    const json = Buffer.from(await this.envelope.open(item.blob, key, { partitionKind: kind })).toString(
      'utf8',
    );
    const itemBytes = dynamoDbItemSize({
      pk: { S: key },
      v: { N: item.version },
      blob: { B: item.blob },
      expiresAt: { N: String(item.expiresAt) },
    });
    return { json, envelopeBytes: item.blob.byteLength, itemBytes };
  }

  /** A new envelope of `json` for partition `key` (fresh salt and nonce: other bytes, same plaintext). */
  seal(key: string, kind: PartitionKind, json: string): Promise<Uint8Array> {
    return this.envelope.seal(Buffer.from(json, 'utf8'), key, { partitionKind: kind });
  }

  close(): void {
    this.store.destroy();
    this.keyRing.destroy();
  }
}

/** An item in `DynamoDbStore`'s layout (what its `read` accepts). */
function storeItem(key: string, blob: Uint8Array, version: number): Record<string, AttributeValue> {
  return {
    pk: { S: key },
    v: { N: String(version) },
    blob: { B: blob },
    expiresAt: { N: String(Math.floor(Date.now() / 1000) + 6 * 3600) },
  };
}

/** Writes items with BatchWriteItem, 25 at a time, 4 batches in flight, retrying unprocessed ones. */
async function batchPut(world: World, items: readonly Record<string, AttributeValue>[]): Promise<void> {
  const client = new DynamoDBClient(world.dynamoConfig);
  const table = world.info.dynamo.tableName;
  try {
    const batches: Record<string, AttributeValue>[][] = [];
    for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
    await mapLimit(batches, 4, async (batch) => {
      let requests: WriteRequest[] = batch.map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; requests.length > 0 && attempt < 10; attempt++) {
        const { UnprocessedItems } = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [table]: requests } }),
        );
        requests = UnprocessedItems?.[table] ?? [];
      }
      if (requests.length > 0) throw new Error('a batch kept coming back unprocessed');
    });
  } finally {
    client.destroy();
  }
}

/** A stored partition to seal again: its store key, kind and MSAL JSON. */
export interface PartitionCopy {
  readonly key: string;
  readonly kind: PartitionKind;
  readonly json: string;
}

/** Every partition of `population` (the users' OBO ones, then the app's) under (a)'s store keys. */
export function partitionsOf(
  population: Population,
  keyOf: (kind: 'obo' | 'app', assertion: string) => string,
): PartitionCopy[] {
  return [
    ...population.users.map((u) => ({ key: keyOf('obo', u.assertion), kind: 'obo' as const, json: u.json })),
    { key: keyOf('app', ''), kind: 'app' as const, json: population.app.json },
  ];
}

/**
 * For (g): a second envelope of each stored partition (the users' and the app's), sealed
 * for the same partition key and stored under {@link altKey} of it.
 */
export async function addAltEnvelopes(
  world: World,
  partitions: readonly PartitionCopy[],
  /** Where each envelope is stored (default {@link altKey}) and whether it is compressed (default as shipped). */
  options: { itemKey?: (key: string) => string; compressAboveBytes?: number | false } = {},
): Promise<void> {
  const reader = new PartitionReader(
    world,
    options.compressAboveBytes !== undefined ? { compressAboveBytes: options.compressAboveBytes } : {},
  );
  const itemKey = options.itemKey ?? altKey;
  try {
    const items = await mapLimit(partitions, 8, async (p, i) =>
      storeItem(itemKey(p.key), await reader.seal(p.key, p.kind, p.json), 2e14 + i),
    );
    await batchPut(world, items);
  } finally {
    reader.close();
  }
}

/**
 * Callers for the active-callers section: `count` new assertions (minted by the local
 * authority), each with a real OBO partition in (a)'s layout: a copy of `template`'s MSAL
 * document under the new caller's oid and assertion hash, sealed by the library's
 * `Envelope` for the caller's store key. Same size and shape as a partition (a) wrote,
 * without `count` token calls.
 * @returns the assertions, in order
 */
export async function addSyntheticCallers(
  world: World,
  options: {
    template: SeededUser;
    count: number;
    /** The store key of an OBO assertion, as (a) computes it. */
    keyOf: (assertion: string) => string;
  },
): Promise<string[]> {
  const { template, count } = options;
  const templateHash = assertionHashIn(template.json);
  // MSAL finds an OBO token by this hash; a copy must carry the new assertion's.
  if (templateHash !== sha256Base64Url(template.assertion)) {
    throw new Error("the template's userAssertionHash is not sha256Base64Url(assertion): cannot clone it");
  }
  const oids = Array.from({ length: count }, (_, i) => `bench-actv-${String(i).padStart(6, '0')}`);
  const assertions: string[] = [];
  for (let i = 0; i < oids.length; i += 500) {
    assertions.push(...(await world.mint(oids.slice(i, i + 500), BENCH_CLIENT_ID)));
  }
  const reader = new PartitionReader(world);
  try {
    const items = await mapLimit(assertions, 8, async (assertion, i) => {
      const json = template.json
        .split(template.oid)
        .join(oids[i])
        .split(templateHash)
        .join(sha256Base64Url(assertion));
      const key = options.keyOf(assertion);
      return storeItem(key, await reader.seal(key, 'obo', json), 3e14 + i);
    });
    await batchPut(world, items);
  } finally {
    reader.close();
  }
  return assertions;
}

/** Size of the peer's DynamoDB item for a partition (pk + json attribute). */
export function peerItemBytes(key: string, json: string): number {
  return dynamoDbItemSize({ pk: { S: key }, json: { S: json } });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
  });
  await Promise.all(workers);
  return out;
}

/** Fixed-width user ids, so synthetic users can be made by replacing one id with another. */
export const userOid = (prefix: 'user' | 'fill', i: number): string =>
  `bench-${prefix}-${String(i).padStart(6, '0')}`;

/**
 * Acquires `count` users' OBO tokens and the app token through `seeder` (variant (a)),
 * then copies every partition's plain JSON to the peer, the floor and the naive blob.
 */
export async function populate(options: {
  world: World;
  seeder: ProjectVariant;
  peer: DynamoCacheClient;
  naive: DynamoCacheClient;
  /** The old plain-JSON floor (bench/redis.ts), given a copy of each partition when set. */
  floor?: FloorVariant;
  count: number;
}): Promise<Population> {
  const { world, seeder, peer, naive, floor, count } = options;
  const oids = Array.from({ length: count }, (_, i) => userOid('user', i));
  const assertions = await world.mint(oids, BENCH_CLIENT_ID);
  const reader = new PartitionReader(world);
  try {
    await mapLimit(assertions, 4, (assertion) =>
      seeder.cache.acquireTokenOnBehalfOf({ assertion, scopes: [OBO_SCOPE] }),
    );
    await seeder.cache.acquireTokenForApp({ scopes: [APP_SCOPE] });
    const users = await mapLimit(assertions, 4, async (assertion, i) => {
      const opened = await reader.open(seeder.cache.storeKeyOf({ kind: 'obo', assertion }), 'obo');
      if (!opened) throw new Error(`user ${i}'s partition was not stored`);
      await peer.set(peerKey(assertion), opened.json);
      await floor?.put(floorKey('obo', assertion), opened.json);
      return { oid: oids[i], assertion, ...opened };
    });
    const appKey = seeder.cache.storeKeyOf({ kind: 'app', tenantId: world.info.authority.tenantId });
    const app = await reader.open(appKey, 'app');
    if (!app) throw new Error("the app's partition was not stored");
    await peer.set(PEER_APP_KEY, app.json);
    await floor?.put(floorKey('app', ''), app.json);
    const naiveJson = JSON.stringify(unionOf([...users.map((u) => u.json), app.json]));
    await naive.set(NAIVE_KEY, naiveJson);
    // The copies are setup, not traffic: start the counters of the measured section at zero.
    peer.reads = peer.writes = naive.reads = naive.writes = 0;
    return { users, app, naiveJson };
  } finally {
    reader.close();
  }
}

/** All sections of several MSAL documents in one (their entity keys are distinct per user). */
export function unionOf(jsons: readonly string[]): CacheDocument {
  const out: CacheDocument = {};
  for (const json of jsons) {
    const doc = JSON.parse(json) as CacheDocument;
    // In place: spreading the growing sections would make this quadratic.
    for (const [section, entities] of Object.entries(doc)) {
      Object.assign((out[section] ??= {}), entities);
    }
  }
  return out;
}

/**
 * The naive blob for `total` users: the real users' documents plus synthetic users, each
 * a copy of the first real user's entities under another oid and assertion hash (same
 * size, distinct cache keys). Never served, only carried: they are what makes the blob big.
 */
export function naiveJsonFor(population: Population, total: number): string {
  const template = population.users[0];
  const templateHash = assertionHashIn(template.json);
  // Without a distinct hash per copy, every copy would match the template user's assertion.
  if (!templateHash) throw new Error("no assertion hash in the template user's access token");
  const parts = [...population.users.map((u) => u.json), population.app.json];
  for (let j = population.users.length; j < total; j++) {
    const fillerOid = userOid('fill', j);
    const fillerHash = sha256Base64Url(`filler-${j}`);
    let json = template.json.split(template.oid).join(fillerOid);
    json = json.split(templateHash).join(fillerHash);
    parts.push(json);
  }
  return JSON.stringify(unionOf(parts));
}

function assertionHashIn(json: string): string | undefined {
  const doc = JSON.parse(json) as CacheDocument;
  for (const entity of Object.values(doc['AccessToken'] ?? {})) {
    // msal-node serializes it as `userAssertionHash` (other MSALs: `user_assertion_hash`).
    const hash = entity['userAssertionHash'] ?? entity['user_assertion_hash'];
    if (typeof hash === 'string' && hash.length > 0) return hash;
  }
  return undefined;
}

/**
 * Adds filler partitions to (a)'s table until `from + added = to`: random bytes of a real
 * envelope's size under distinct hashed keys, in (a)'s item layout. Never read; they make
 * the table the size of `to` users.
 */
export async function addFillers(
  world: World,
  options: { from: number; to: number; blobBytes: number },
): Promise<void> {
  const client = new DynamoDBClient(world.dynamoConfig);
  try {
    const expiresAt = String(Math.floor(Date.now() / 1000) + 6 * 3600);
    const indices = Array.from(
      { length: Math.max(0, options.to - options.from) },
      (_, i) => options.from + i,
    );
    const batches: number[][] = [];
    for (let i = 0; i < indices.length; i += 25) batches.push(indices.slice(i, i + 25));
    await mapLimit(batches, 4, async (batch) => {
      let requests: WriteRequest[] = batch.map((i) => ({
        PutRequest: {
          Item: {
            pk: { S: sha256Base64Url(`filler-partition-${i}`) },
            v: { N: String(1e14 + i) },
            blob: { B: randomBytes(options.blobBytes) },
            expiresAt: { N: expiresAt },
          },
        },
      }));
      for (let attempt = 0; requests.length > 0 && attempt < 10; attempt++) {
        const { UnprocessedItems } = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [world.info.dynamo.tableName]: requests } }),
        );
        requests = UnprocessedItems?.[world.info.dynamo.tableName] ?? [];
      }
      if (requests.length > 0) throw new Error('filler batch kept coming back unprocessed');
    });
  } finally {
    client.destroy();
  }
}
