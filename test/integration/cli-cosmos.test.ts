/**
 * The operator CLI against cosmosdb-server with 10,000 partitions the library wrote (app,
 * OBO and user), some tampered, some expired: stats, verify, rewrap (with a concurrent
 * writer), prune and purge, then the library serving every rewrapped item with no token call.
 */
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startCacheWorld, type CacheWorld } from '../support/cache-harness';
import { cosmosWriter, libraryTemplates, populate, type Member } from '../support/cli-population';
import { expectLastWritesKept, expectServedWithNoTokenCall, keyRotation } from '../support/cli-rotation';
import { raceWriters, scannedCli, untamperedUser } from '../support/cli-rotation';

const COUNT = 10_000;
const EXPIRED = 40;

describe('msal-cloud-cache CLI on Cosmos DB (cosmosdb-server, 10,000 items)', () => {
  let cosmos: LocalCosmos;
  let world: CacheWorld;
  let members: Member[];
  let store: CosmosStore;
  const tampered: string[] = [];
  const rotation = keyRotation();
  let env: Record<string, string>;
  let rotatedEnv: Record<string, string>;
  const cli = (argv: string[], environment = env) => scannedCli(argv, environment);

  beforeAll(async () => {
    cosmos = await startLocalCosmos();
    store = new CosmosStore({ container: cosmos.container, operationBudgetMs: 15_000 });
    world = await startCacheWorld();
    const templates = await libraryTemplates(world);
    members = await populate(cosmosWriter(cosmos.container), {
      templates,
      keyRing: rotation.oldRing(),
      count: COUNT,
      expired: EXPIRED,
      parallel: 8,
    });
    // Tampered: a flipped tag, and another partition's blob under a user's key.
    const [a, b] = members.filter((m) => m.kind === 'user').map((m) => m.key);
    const itemA = (await store.read(a))!;
    const flipped = Uint8Array.from(itemA.blob);
    flipped[flipped.length - 1] ^= 0xff;
    await store.write(a, flipped, {
      condition: { expectedVersion: itemA.version },
      expiresAt: itemA.expiresAt,
    });
    const itemB = (await store.read(b))!;
    const foreign = (await store.read(members[0].key))!;
    await store.write(b, foreign.blob, {
      condition: { expectedVersion: itemB.version },
      expiresAt: itemB.expiresAt,
    });
    tampered.push(a, b);
    await cosmos.container.items.create({ id: 'lease:x', pk: 'lease:x', holder: 'someone' });
    env = rotation.env({
      TOKEN_CACHE_STORE: 'cosmos',
      TOKEN_CACHE_COSMOS_ENDPOINT: cosmos.endpoint,
      TOKEN_CACHE_COSMOS_DATABASE: cosmos.databaseId,
      TOKEN_CACHE_COSMOS_CONTAINER: cosmos.containerId,
      TOKEN_CACHE_COSMOS_KEY: cosmos.key,
    });
    rotatedEnv = rotation.rotated(env);
  }, 180_000);

  afterAll(async () => {
    await world?.stop();
    await cosmos?.stop();
  });

  it('stats and verify see every item through the query pages', async () => {
    const stats = await cli(['stats', '--json']);
    expect(stats.code).toBe(0);
    expect([stats.json.items, stats.json.skippedKeys, stats.json.expired]).toEqual([COUNT, 1, EXPIRED]);
    expect(stats.json.byKeyId).toEqual({ 'local-1': COUNT });
    const verified = await cli(['verify', '--json', '--concurrency', '64']);
    expect(verified.code).toBe(1);
    expect([verified.json.ok, verified.json.failed]).toEqual([COUNT - 2, { 'authentication-failed': 2 }]);
  }, 120_000);

  it('rewrap moves every item to the new key with a writer racing it; the library serves them all with no token call', async () => {
    const envelope = new Envelope({ keys: new DataKeyCache(rotation.rotatedRing()) });
    const raced = members.filter((m) => m.kind === 'obo').slice(0, 30);
    const writers = raceWriters(store, envelope, raced, 10);
    let rewrapped;
    try {
      rewrapped = await cli(['rewrap', '--yes', '--json', '--concurrency', '64'], rotatedEnv);
    } finally {
      await writers.stop();
    }
    expect(rewrapped.code).toBe(1);
    expect(rewrapped.json.failed).toEqual({ 'authentication-failed': 2 });
    expect(rewrapped.json.rewrapped + rewrapped.json.alreadyCurrent).toBe(COUNT - 2);
    await expectLastWritesKept(store, envelope, writers.lastWrite);
    const stats = await cli(['stats', '--json'], rotatedEnv);
    expect(stats.json.byKeyId).toEqual({ 'local-2': COUNT - 2, 'local-1': 2 });

    await expectServedWithNoTokenCall(world, store, rotation, { members, expired: EXPIRED, tampered });
  }, 240_000);

  it('prune deletes the expired items and purge signs one user out', async () => {
    const pruned = await cli(['prune', '--yes', '--json'], rotatedEnv);
    expect([pruned.code, pruned.json.deleted]).toEqual([0, EXPIRED]);
    const user = untamperedUser(members, tampered);
    const purged = await cli(
      ['purge', '--user', user.homeAccountId, '--user-partition-only', '--yes', '--json'],
      rotatedEnv,
    );
    expect([purged.code, purged.json.deleted]).toEqual([0, 1]);
    expect(await store.read(user.key)).toBeUndefined();
  }, 120_000);
});
