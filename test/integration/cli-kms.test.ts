/**
 * The operator CLI on what the library really writes under KMS: partitions sealed for their
 * kind (app, OBO, user), whose data keys KMS unwraps only under that kind's encryption
 * context. verify and inspect open every one; an operator whose grant leaves out the user
 * kind is told those are denied, not that their key is unknown; rewrap to a new KMS key seals
 * each for its own kind again, so that after the old key is disabled the library still
 * serves all three from the store, with no token call.
 */
import { DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import type { Partition, TokenCache } from '../../shared/cache/types';
import { startLocalDynamo } from '../../local/dynamodb';
import { startLocalKms, type LocalKms } from '../../local/kms';
import {
  API_CLIENT_ID,
  DOWNSTREAM_SCOPE,
  signIn,
  startCacheWorld,
  type CacheWorld,
} from '../support/cache-harness';
import { scannedCli } from '../support/cli-rotation';
import { useWorld } from '../support/use-world';

const AWS = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };
/**
 * The access key id of an operator whose KMS grant covers app and OBO partitions. A user
 * partition is never tried first (no user partition opens to make it the last kind), so
 * its denial always follows an unknown-key answer for another kind: the report must name
 * the denial.
 */
const NO_USERS = 'AKIDNOUSERS';

/** A partition the library wrote, and how to ask for its token again. */
interface Written {
  readonly partition: Partition;
  readonly key: string;
  again(cache: TokenCache): Promise<{ fromCache: boolean; cache?: { loadedFrom?: string } }>;
}

/** dynalite, the local KMS with two keys, and one partition of each kind the library wrote under the old key. */
interface KindWorld {
  readonly world: CacheWorld;
  readonly kms: LocalKms;
  readonly store: DynamoDbStore;
  readonly oldKey: string;
  readonly newKey: string;
  readonly written: readonly Written[];
  ring(keyId: string): KmsKeyRing;
  /** The CLI's environment with `keyId` current. */
  env(keyId: string): Record<string, string>;
  stop(): Promise<void>;
}

async function startKindWorld(): Promise<KindWorld> {
  const saved = Object.fromEntries(Object.keys(AWS).map((name) => [name, process.env[name]]));
  Object.assign(process.env, AWS);
  const [dynamo, kms, world] = await Promise.all([
    startLocalDynamo(),
    // The library (kms.clientConfig's key) and the CLI ('local') may use every kind.
    startLocalKms({
      policies: {
        AKIDLOCALKMS: { encryptionContext: {} },
        local: { encryptionContext: {} },
        [NO_USERS]: { encryptionContext: { kind: ['app', 'obo'] } },
      },
    }),
    startCacheWorld(),
  ]);
  const store = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
  const oldKey = (await kms.createKey({ alias: 'alias/cli-old' })).arn;
  const newKey = (await kms.createKey({ alias: 'alias/cli-new' })).arn;
  const ring = (keyId: string) =>
    new KmsKeyRing({ keyId, clientId: API_CLIENT_ID, clientConfig: kms.clientConfig });

  const { cache } = world.instance({ store, keyRing: ring(oldKey) });
  const scopes = [DOWNSTREAM_SCOPE];
  await cache.acquireTokenForApp({ scopes });
  const assertion = await world.authority.mintUserToken({ audience: API_CLIENT_ID, oid: 'cli-kms-obo' });
  await cache.acquireTokenOnBehalfOf({ assertion, scopes });
  const homeAccountId = (await signIn(world, cache, 'cli-kms-user')).account!.homeAccountId;
  const partitions: Array<[Partition, Written['again']]> = [
    [{ kind: 'app', tenantId: world.authority.tenantId }, (c) => c.acquireTokenForApp({ scopes })],
    [{ kind: 'obo', assertion }, (c) => c.acquireTokenOnBehalfOf({ assertion, scopes })],
    [{ kind: 'user', homeAccountId }, (c) => c.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] })],
  ];
  return {
    world,
    kms,
    store,
    oldKey,
    newKey,
    written: partitions.map(([partition, again]) => ({ partition, key: cache.storeKeyOf(partition), again })),
    ring,
    env: (keyId) => ({
      ...AWS,
      MSAL_CLIENT_ID: API_CLIENT_ID,
      AWS_REGION: kms.region,
      TOKEN_CACHE_STORE: 'dynamodb',
      TOKEN_CACHE_TABLE_NAME: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      TOKEN_CACHE_KEY_RING: 'aws-kms',
      TOKEN_CACHE_KMS_KEY_ID: keyId,
      AWS_ENDPOINT_URL_KMS: kms.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    }),
    async stop() {
      store.destroy();
      await Promise.all([world.stop(), kms.stop(), dynamo.stop()]);
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    },
  };
}

describe('msal-cloud-cache CLI on partitions sealed for their kind under KMS', () => {
  const w = useWorld(startKindWorld);

  it('verify opens every partition under its own kind', async () => {
    const { code, json } = await scannedCli(['verify', '--json'], w.env(w.oldKey));

    expect({ code, items: json.items, ok: json.ok, failed: json.failed }).toEqual({
      code: 0,
      items: 3,
      ok: 3,
      failed: {},
    });
  });

  it('tells an operator whose grant leaves out user partitions that they are denied, not unknown', async () => {
    process.env.AWS_ACCESS_KEY_ID = NO_USERS;
    try {
      const { code, json } = await scannedCli(['verify', '--json'], {
        ...w.env(w.oldKey),
        AWS_ACCESS_KEY_ID: NO_USERS,
      });

      expect({ code, ok: json.ok, failed: json.failed }).toEqual({
        code: 1,
        ok: 2,
        failed: { 'key-access-denied': 1 },
      });
    } finally {
      process.env.AWS_ACCESS_KEY_ID = AWS.AWS_ACCESS_KEY_ID;
    }
  });

  it('inspect opens each partition, by store key and by user', async () => {
    for (const { key } of w.written) {
      const { code, json } = await scannedCli(['inspect', '--key', key, '--json'], w.env(w.oldKey));
      expect({ key, code, opens: json.opens }).toEqual({ key, code: 0, opens: true });
    }
    const user = w.written.find((x) => x.partition.kind === 'user')!.partition as { homeAccountId: string };
    const byUser = await scannedCli(['inspect', '--user', user.homeAccountId, '--json'], w.env(w.oldKey));
    expect({ code: byUser.code, opens: byUser.json.opens }).toEqual({ code: 0, opens: true });
  });

  it('rewrap seals each partition for its kind under the new key: the library serves all three with the old key disabled', async () => {
    const rewrap = await scannedCli(['rewrap', '--yes', '--json'], w.env(w.newKey));
    expect({ code: rewrap.code, rewrapped: rewrap.json.rewrapped, failed: rewrap.json.failed }).toEqual({
      code: 0,
      rewrapped: 3,
      failed: {},
    });
    const stats = await scannedCli(['stats', '--json'], w.env(w.newKey));
    expect(stats.json.byKeyId).toEqual({ [w.newKey]: 3 });

    const admin = new KMSClient(w.kms.clientConfig);
    await admin.send(new DisableKeyCommand({ KeyId: w.oldKey }));
    admin.destroy();
    w.world.authority.counters.reset();
    const { cache } = w.world.instance({ store: w.store, keyRing: w.ring(w.newKey) });
    for (const { partition, again } of w.written) {
      const result = await again(cache);
      expect({
        kind: partition.kind,
        fromCache: result.fromCache,
        loadedFrom: result.cache?.loadedFrom,
      }).toEqual({
        kind: partition.kind,
        fromCache: true,
        loadedFrom: 'store',
      });
    }
    expect(w.world.authority.counters.token()).toBe(0);
  });

  it('reports an item under a disabled key as key-disabled after one KMS call, whatever its kind', async () => {
    const disabledKey = (await w.kms.createKey({ alias: 'alias/cli-disabled' })).arn;
    const { cache } = w.world.instance({ store: w.store, keyRing: w.ring(disabledKey) });
    const homeAccountId = (await signIn(w.world, cache, 'cli-kms-disabled')).account!.homeAccountId;
    const admin = new KMSClient(w.kms.clientConfig);
    await admin.send(new DisableKeyCommand({ KeyId: disabledKey }));
    admin.destroy();
    const key = cache.storeKeyOf({ kind: 'user', homeAccountId });
    const decrypts = w.kms.counters.calls('Decrypt');

    // By store key the kind is unknown, and the first kind tried is not this user partition's.
    const { code, json } = await scannedCli(['inspect', '--key', key, '--json'], w.env(w.newKey));

    expect({ code, opens: json.opens, failure: json.failure }).toEqual({
      code: 1,
      opens: false,
      failure: 'key-disabled',
    });
    expect(w.kms.counters.calls('Decrypt') - decrypts).toBe(1);
  });
});
