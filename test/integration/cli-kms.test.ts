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
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE, startCacheWorld, type CacheWorld } from '../support/cache-harness';
import { scannedCli } from '../support/cli-rotation';

const REDIRECT_URI = 'https://app.example/callback';
const AWS = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local' };
/**
 * The access key id of an operator whose KMS grant covers app and OBO partitions. A user
 * partition is never tried first (no user partition opens to make it the last kind), so
 * its denial always follows an unknown-key answer for another kind: the report must name
 * the denial.
 */
const NO_USERS = 'AKIDNOUSERS';

describe('msal-cloud-cache CLI on partitions sealed for their kind under KMS', () => {
  let dynamo: LocalDynamo;
  let kms: LocalKms;
  let world: CacheWorld;
  let store: DynamoDbStore;
  let oldKey: string;
  let newKey: string;
  const saved: Record<string, string | undefined> = {};
  /** The three partitions the library wrote, and how to ask for each again. */
  const written: Array<{
    partition: Partition;
    key: string;
    again: (cache: TokenCache) => Promise<unknown>;
  }> = [];

  const ring = (keyId: string) =>
    new KmsKeyRing({ keyId, clientId: API_CLIENT_ID, clientConfig: kms.clientConfig });
  const env = (keyId: string) => ({
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
  });

  beforeAll(async () => {
    for (const name of Object.keys(AWS)) saved[name] = process.env[name];
    Object.assign(process.env, AWS);
    [dynamo, kms, world] = await Promise.all([
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
    store = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
    oldKey = (await kms.createKey({ alias: 'alias/cli-old' })).arn;
    newKey = (await kms.createKey({ alias: 'alias/cli-new' })).arn;

    const { cache } = world.instance({ store, keyRing: ring(oldKey) });
    const tenantId = world.authority.tenantId;
    await cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] });
    const assertion = await world.authority.mintUserToken({ audience: API_CLIENT_ID, oid: 'cli-kms-obo' });
    await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
    const code = world.authority.issueAuthCode({
      clientId: API_CLIENT_ID,
      redirectUri: REDIRECT_URI,
      scopes: ['openid', 'profile', 'offline_access', 'User.Read'],
      user: { oid: 'cli-kms-user', preferredUsername: 'cli-kms-user@example.com' },
    });
    const signedIn = await cache.acquireTokenByCode({
      code,
      scopes: ['User.Read'],
      redirectUri: REDIRECT_URI,
    });
    const homeAccountId = signedIn.account!.homeAccountId;
    for (const [partition, again] of [
      [{ kind: 'app', tenantId }, (c: TokenCache) => c.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] })],
      [
        { kind: 'obo', assertion },
        (c: TokenCache) => c.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] }),
      ],
      [
        { kind: 'user', homeAccountId },
        (c: TokenCache) => c.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] }),
      ],
    ] as const) {
      written.push({ partition, key: cache.storeKeyOf(partition), again });
    }
  }, 60_000);

  afterAll(async () => {
    store?.destroy();
    await Promise.all([world?.stop(), kms?.stop(), dynamo?.stop()]);
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('verify opens every partition under its own kind', async () => {
    const { code, json } = await scannedCli(['verify', '--json'], env(oldKey));

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
        ...env(oldKey),
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
    for (const { key } of written) {
      const { code, json } = await scannedCli(['inspect', '--key', key, '--json'], env(oldKey));
      expect({ key, code, opens: json.opens }).toEqual({ key, code: 0, opens: true });
    }
    const user = written.find((w) => w.partition.kind === 'user')!.partition as { homeAccountId: string };
    const byUser = await scannedCli(['inspect', '--user', user.homeAccountId, '--json'], env(oldKey));
    expect({ code: byUser.code, opens: byUser.json.opens }).toEqual({ code: 0, opens: true });
  });

  it('rewrap seals each partition for its kind under the new key: the library serves all three with the old key disabled', async () => {
    const rewrap = await scannedCli(['rewrap', '--yes', '--json'], env(newKey));
    expect({ code: rewrap.code, rewrapped: rewrap.json.rewrapped, failed: rewrap.json.failed }).toEqual({
      code: 0,
      rewrapped: 3,
      failed: {},
    });
    const stats = await scannedCli(['stats', '--json'], env(newKey));
    expect(stats.json.byKeyId).toEqual({ [newKey]: 3 });

    const admin = new KMSClient(kms.clientConfig);
    await admin.send(new DisableKeyCommand({ KeyId: oldKey }));
    admin.destroy();
    world.authority.counters.reset();
    const { cache } = world.instance({ store, keyRing: ring(newKey) });
    for (const { partition, again } of written) {
      const result = (await again(cache)) as { fromCache: boolean; cache?: { loadedFrom?: string } };
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
    expect(world.authority.counters.token()).toBe(0);
  });
});
