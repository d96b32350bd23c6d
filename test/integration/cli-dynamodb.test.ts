/**
 * The operator CLI against dynalite with 10,000 partitions the library wrote (app, OBO and
 * user), some tampered, some expired: every command, concurrent writers during rewrap, a
 * real SIGINT to a child process and a resumed rewrap, then the library serving every
 * rewrapped item with no token call.
 */
import { spawn } from 'node:child_process';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import type { CliIo } from '../../shared/cli/main';
import { openRoom } from '../../shared/cli/room';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../shared/crypto/envelope';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startCacheWorld, type CacheWorld } from '../support/cache-harness';
import {
  dynamoWriter,
  libraryTemplates,
  populate,
  type CliReport,
  type Member,
} from '../support/cli-population';
import { expectLastWritesKept, expectServedWithNoTokenCall, keyRotation } from '../support/cli-rotation';
import { raceWriters, scannedCli, untamperedUser } from '../support/cli-rotation';

const COUNT = 10_000;
const EXPIRED = 40;
const ROOT = `${__dirname}/../..`;

describe('msal-cloud-cache CLI on DynamoDB (dynalite, 10,000 items)', () => {
  let dynamo: LocalDynamo;
  let world: CacheWorld;
  let client: DynamoDBClient;
  let members: Member[];
  const tampered: string[] = [];
  const rotation = keyRotation();
  let env: Record<string, string>;
  let rotatedEnv: Record<string, string>;
  const cli = (argv: string[], environment = env, io: Parameters<typeof scannedCli>[2] = {}) =>
    scannedCli(argv, environment, io);

  beforeAll(async () => {
    dynamo = await startLocalDynamo();
    client = new DynamoDBClient(dynamo.clientConfig);
    world = await startCacheWorld();
    const templates = await libraryTemplates(world);
    members = await populate(dynamoWriter(client, dynamo.tableName), {
      templates,
      keyRing: rotation.oldRing(),
      count: COUNT,
      expired: EXPIRED,
      parallel: 16,
    });
    // Three tampered items: a flipped tag, a broken magic, another partition's blob.
    const blobOf = async (key: string) =>
      (await client.send(new GetItemCommand({ TableName: dynamo.tableName, Key: { pk: { S: key } } }))).Item!;
    const put = async (key: string, item: Awaited<ReturnType<typeof blobOf>>, blob: Uint8Array) =>
      client.send(
        new PutItemCommand({
          TableName: dynamo.tableName,
          Item: { ...item, pk: { S: key }, blob: { B: blob } },
        }),
      );
    const [a, b, c] = members.filter((m) => m.kind === 'user').map((m) => m.key);
    for (const [key, change] of [
      [a, (blob: Uint8Array) => (blob[blob.length - 1] ^= 0xff)],
      [b, (blob: Uint8Array) => (blob[0] ^= 0xff)],
    ] as const) {
      const item = await blobOf(key);
      const blob = Uint8Array.from(item.blob.B!);
      change(blob);
      await put(key, item, blob);
    }
    await put(c, await blobOf(c), (await blobOf(members[0].key)).blob.B!);
    tampered.push(a, b, c);
    // Another item type sharing the table: scans must skip it.
    await client.send(
      new PutItemCommand({ TableName: dynamo.tableName, Item: { pk: { S: 'lease:x' }, v: { N: '1' } } }),
    );
    const aws = { AWS_ACCESS_KEY_ID: 'local', AWS_SECRET_ACCESS_KEY: 'local', AWS_REGION: 'us-east-1' };
    Object.assign(process.env, aws);
    env = rotation.env({
      ...aws,
      TOKEN_CACHE_STORE: 'dynamodb',
      TOKEN_CACHE_TABLE_NAME: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    rotatedEnv = rotation.rotated(env);
  }, 120_000);

  afterAll(async () => {
    client?.destroy();
    await world?.stop();
    await dynamo?.stop();
  });

  it('stats counts every item from its header, by key id and format version', async () => {
    const { code, json } = await cli(['stats', '--json', '--segments', '8']);
    expect(code).toBe(0);
    expect([json.items, json.skippedKeys, json.expired]).toEqual([COUNT, 1, EXPIRED]);
    expect(json.byKeyId).toEqual({ 'local-1': COUNT - 1 });
    expect(json.byFormatVersion).toEqual({ '1': COUNT - 1, none: 1 }); // the broken magic
  });

  it('verify opens every item and reports the tampered ones by reason (exit 1)', async () => {
    const { code, json } = await cli(['verify', '--json']);
    expect(code).toBe(1);
    expect(json.ok).toBe(COUNT - 3);
    expect(json.failed).toEqual({ 'authentication-failed': 2, malformed: 1 });
    expect(json.failedKeys.map((f) => f.key).sort()).toEqual([...tampered].sort());
  });

  it('rewrap is interrupted by SIGINT in a child process (exit 130) and a rerun resumes, with writers racing it', async () => {
    // 1. A real child process, interrupted once it has made progress.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'shared/cli/main.ts',
        'rewrap',
        '--yes',
        '--json',
        '--progress',
        '--max-rps',
        '2000',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, ...rotatedEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // The first progress line with work done: interrupt.
        if (/rewrap: [1-9][\d,]*\//.test(stderr)) resolve();
      });
      void exited.then(() => resolve());
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const first = JSON.parse(stdout) as CliReport;
    expect(first.interrupted).toBe(true);
    expect(first.rewrapped).toBeGreaterThan(0);
    expect(first.rewrapped).toBeLessThan(COUNT - 3);
    expect(stderr).toMatch(/interrupted, finishing the items in flight/);

    // 2. Library writers (already on the new key) rewrite partitions while the rerun goes.
    const store = new DynamoDbStore({
      tableName: dynamo.tableName,
      clientConfig: dynamo.clientConfig,
      timeoutMs: 10_000,
    });
    const envelope = new Envelope({ keys: new DataKeyCache(rotation.rotatedRing()) });
    const raced = members.filter((m) => m.kind === 'user').slice(10, 40);
    const writers = raceWriters(store, envelope, raced, 20);
    const { lastWrite } = writers;
    // And a writer still on the old key (an instance not yet redeployed) that rewrites five
    // partitions between the rewrap's read and its write: those five must be redone.
    const oldEnvelope = new Envelope({ keys: new DataKeyCache(rotation.oldRing()) });
    const stillOld: string[] = [];
    for (const m of members.filter(
      (m) => m.kind === 'user' && !raced.includes(m) && !tampered.includes(m.key),
    )) {
      const item = await store.read(m.key);
      if (item && parseEnvelopeHeader(item.blob).keyId === 'local-1') stillOld.push(m.key);
      if (stillOld.length === 5) break;
    }
    expect(stillOld).toHaveLength(5);
    const hooked = new Set(stillOld);
    const racingRoom: CliIo['openRoom'] = (config, options) => {
      const room = openRoom(config, options);
      const inner = room.store;
      return {
        ...room,
        store: {
          name: inner.name,
          maxItemBytes: inner.maxItemBytes,
          read: (key) => inner.read(key),
          delete: (key, o) => inner.delete(key, o),
          async write(key, blob, o) {
            if (hooked.delete(key)) {
              const current = (await inner.read(key))!;
              const doc = JSON.parse(
                Buffer.from(await oldEnvelope.open(current.blob, key)).toString(),
              ) as object;
              const next = JSON.stringify({ ...doc, Marker: { oldWriter: { n: '1' } } });
              await inner.write(key, await oldEnvelope.seal(Buffer.from(next), key), {
                condition: { expectedVersion: current.version },
                expiresAt: current.expiresAt,
              });
              lastWrite.set(key, next);
            }
            return inner.write(key, blob, o);
          },
        },
      };
    };
    let second;
    try {
      second = await cli(['rewrap', '--yes', '--json', '--concurrency', '48'], rotatedEnv, {
        openRoom: racingRoom,
      });
    } finally {
      await writers.stop();
    }
    store.destroy();
    expect(second.code).toBe(1); // the three tampered items, left as they are
    expect(second.json.failed).toEqual({ 'authentication-failed': 2, malformed: 1 });
    expect(second.json.alreadyCurrent).toBeGreaterThanOrEqual(first.rewrapped);
    expect(second.json.rewrapped + second.json.alreadyCurrent).toBe(COUNT - 3);
    expect(hooked.size).toBe(0);
    expect(second.json.redone).toBeGreaterThanOrEqual(5);

    // 3. No writer's update was overwritten.
    const check = new Envelope({ keys: new DataKeyCache(rotation.newRing()) });
    const reader = new DynamoDbStore({
      tableName: dynamo.tableName,
      clientConfig: dynamo.clientConfig,
      timeoutMs: 10_000,
    });
    await expectLastWritesKept(reader, check, lastWrite);

    // 4. Nothing is left under the old key but the tampered items.
    const stats = await cli(['stats', '--json'], rotatedEnv);
    expect(stats.json.byKeyId).toEqual({ 'local-2': COUNT - 3, 'local-1': 2 });

    // 5. The library, with only the new key, serves every live item with no token call.
    await expectServedWithNoTokenCall(world, reader, rotation, { members, expired: EXPIRED, tampered });
    reader.destroy();
  }, 180_000);

  it('inspect shows a user partition without secrets; purge and prune delete conditionally', async () => {
    const user = untamperedUser(members, tampered);
    const shown = await cli(['inspect', '--user', user.homeAccountId, '--json'], rotatedEnv);
    expect([shown.code, shown.json.opens, shown.json.header.keyId]).toEqual([0, true, 'local-2']);
    const purged = await cli(
      ['purge', '--user', user.homeAccountId, '--user-partition-only', '--yes', '--json'],
      rotatedEnv,
    );
    expect([purged.code, purged.json.deleted]).toEqual([0, 1]);
    const gone = await cli(['inspect', '--user', user.homeAccountId, '--json'], rotatedEnv);
    expect([gone.code, gone.json.found]).toEqual([1, false]);
    const pruned = await cli(['prune', '--yes', '--json'], rotatedEnv);
    expect([pruned.code, pruned.json.deleted]).toEqual([0, EXPIRED]);
    const after = await cli(['stats', '--json'], rotatedEnv);
    expect([after.json.items, after.json.expired]).toEqual([COUNT - EXPIRED - 1, 0]);
  }, 60_000);

  it('names the variable at fault and exits 2 when the table is not configured', async () => {
    const rest = { ...env };
    delete rest.TOKEN_CACHE_TABLE_NAME;
    const { code, stderr } = await cli(['stats'], rest);
    expect(code).toBe(2);
    expect(stderr).toMatch(/TOKEN_CACHE_TABLE_NAME/);
  });

  it('exits 3 with the table named when the table does not exist', async () => {
    const { code, stderr } = await cli(['stats', '--table', 'no-such-table'], env);
    expect(code).toBe(3);
    expect(stderr).toMatch(/no-such-table/);
  }, 60_000);
});
