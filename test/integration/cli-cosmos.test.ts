/**
 * The operator CLI against cosmosdb-server with 10,000 partitions the library wrote (app,
 * OBO and user), some tampered, some expired: stats, verify, rewrap (with a concurrent
 * writer), prune and purge, then the library serving every rewrapped item with no token call.
 */
import { randomBytes } from 'node:crypto';
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { StoreUnavailableError, VersionConflictError } from '../../shared/errors';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startCacheWorld, type CacheWorld } from '../support/cache-harness';
import {
  cosmosWriter,
  libraryTemplates,
  populate,
  runCli,
  servePopulation,
  type CliReport,
  type Member,
} from '../support/cli-population';
import { registerSecret, secretRegistry } from '../support/secret-registry';

const COUNT = 10_000;
const EXPIRED = 40;

describe('msal-cloud-cache CLI on Cosmos DB (cosmosdb-server, 10,000 items)', () => {
  let cosmos: LocalCosmos;
  let world: CacheWorld;
  let members: Member[];
  let store: CosmosStore;
  const tampered: string[] = [];
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  registerSecret('master-key', Buffer.from(oldKey, 'base64'));
  registerSecret('master-key', Buffer.from(newKey, 'base64'));
  let env: Record<string, string>;
  let rotatedEnv: Record<string, string>;

  const cli = async (argv: string[], environment = env) => {
    const run = await runCli<CliReport>(argv, environment);
    expect(secretRegistry().scan(run.stdout + run.stderr, () => 'cli output')).toEqual([]);
    return run;
  };

  beforeAll(async () => {
    cosmos = await startLocalCosmos();
    store = new CosmosStore({ container: cosmos.container, operationBudgetMs: 15_000 });
    world = await startCacheWorld();
    const templates = await libraryTemplates(world);
    members = await populate(cosmosWriter(cosmos.container), {
      templates,
      keyRing: new LocalKeyRing({ masterKey: oldKey, keyId: 'local-1' }),
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
    env = {
      MSAL_CLIENT_ID: '6f1c7a2e-3b54-4d7e-9c1a-0e2f4b6d8a10',
      TOKEN_CACHE_STORE: 'cosmos',
      TOKEN_CACHE_COSMOS_ENDPOINT: cosmos.endpoint,
      TOKEN_CACHE_COSMOS_DATABASE: cosmos.databaseId,
      TOKEN_CACHE_COSMOS_CONTAINER: cosmos.containerId,
      TOKEN_CACHE_COSMOS_KEY: cosmos.key,
      TOKEN_CACHE_KEY_RING: 'local',
      TOKEN_CACHE_LOCAL_MASTER_KEY: oldKey,
    };
    rotatedEnv = {
      ...env,
      TOKEN_CACHE_LOCAL_MASTER_KEY: newKey,
      TOKEN_CACHE_LOCAL_KEY_ID: 'local-2',
      TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: `local-1:${oldKey}`,
    };
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
    const envelope = new Envelope({
      keys: new DataKeyCache(
        new LocalKeyRing({ masterKey: newKey, keyId: 'local-2', previousKeys: { 'local-1': oldKey } }),
      ),
    });
    const raced = members.filter((m) => m.kind === 'obo').slice(0, 30);
    const lastWrite = new Map<string, string>();
    let stop = false;
    const writer = async (member: Member): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const item = await store.read(member.key).catch(() => undefined);
        if (!item) continue;
        const doc = JSON.parse(Buffer.from(await envelope.open(item.blob, member.key)).toString()) as object;
        const next = JSON.stringify({ ...doc, Marker: { writer: { n: String(n) } } });
        try {
          await store.write(member.key, await envelope.seal(Buffer.from(next), member.key), {
            condition: { expectedVersion: item.version },
            expiresAt: item.expiresAt,
          });
          lastWrite.set(member.key, next);
        } catch (e) {
          if (!(e instanceof VersionConflictError || e instanceof StoreUnavailableError)) throw e;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const writers = Promise.all(raced.map(writer));
    let rewrapped;
    try {
      rewrapped = await cli(['rewrap', '--yes', '--json', '--concurrency', '64'], rotatedEnv);
    } finally {
      stop = true;
      await writers;
    }
    expect(rewrapped.code).toBe(1);
    expect(rewrapped.json.failed).toEqual({ 'authentication-failed': 2 });
    expect(rewrapped.json.rewrapped + rewrapped.json.alreadyCurrent).toBe(COUNT - 2);
    for (const [key, json] of lastWrite) {
      const item = (await store.read(key))!;
      expect(Buffer.from(await envelope.open(item.blob, key)).toString()).toBe(json);
    }
    const stats = await cli(['stats', '--json'], rotatedEnv);
    expect(stats.json.byKeyId).toEqual({ 'local-2': COUNT - 2, 'local-1': 2 });

    world.authority.counters.reset();
    const { cache } = world.instance({
      store,
      keyRing: new LocalKeyRing({ masterKey: newKey, keyId: 'local-2' }),
    });
    const live = members.slice(0, -EXPIRED).filter((m) => !tampered.includes(m.key));
    expect(await servePopulation(cache, live, 32)).toBe(live.length);
    expect(world.authority.counters.token()).toBe(0);
  }, 240_000);

  it('prune deletes the expired items and purge signs one user out', async () => {
    const pruned = await cli(['prune', '--yes', '--json'], rotatedEnv);
    expect([pruned.code, pruned.json.deleted]).toEqual([0, EXPIRED]);
    const user = members.find((m) => m.kind === 'user' && !tampered.includes(m.key)) as Extract<
      Member,
      { kind: 'user' }
    >;
    const purged = await cli(
      ['purge', '--user', user.homeAccountId, '--user-partition-only', '--yes', '--json'],
      rotatedEnv,
    );
    expect([purged.code, purged.json.deleted]).toEqual([0, 1]);
    expect(await store.read(user.key)).toBeUndefined();
  }, 120_000);
});
