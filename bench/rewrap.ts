/**
 * `rewrap` benchmark (issue 14), runnable alone: `npx tsx bench/rewrap.ts`.
 *
 * 10,000 partitions sealed by the library's Envelope under an old KMS key, each for its
 * partition kind as the cache seals them (half user, 40% OBO, 10% app; data keys per kind,
 * `maxUses` 2,500: five data keys), in dynalite, both services in a child process. Then, on
 * the same table and in the same run:
 * - the floor: the CLI's own scan and worker pool writing every blob back unchanged with the
 *   same conditional PutItem (no key service, no crypto);
 * - `stats` (scan and header parse only);
 * - `msal-cloud-cache rewrap` to the new KMS key, through `main` as the bin runs it.
 * Reports items per second, the ratio to the floor, and the KMS calls the rewrap made
 * (goals: at most 1 GenerateDataKey per 10,000 items of each kind; one Decrypt per distinct
 * data key and kind tried: an item does not say its kind, so a data key costs one refused
 * Decrypt per wrong kind tried before its own). A rewrap that leaves any item fails the run.
 * Writes bench/results/rewrap.json and bench/results/rewrap.md.
 */
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import { DynamoDbScanSource } from '../shared/aws/dynamodb-scan';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import { main } from '../shared/cli/main';
import { forEachItem, Progress } from '../shared/cli/work';
import { DataKeyCache } from '../shared/crypto/data-key-cache';
import { Envelope } from '../shared/crypto/envelope';
import type { PartitionKind } from '../shared/crypto/keyring';
import { dynamoWriter } from '../test/support/cli-population';

const COUNT = Number(process.env.REWRAP_BENCH_ITEMS ?? 10_000);
const CONCURRENCY = 64;
const SEGMENTS = 4;
const CLIENT_ID = '6f1c7a2e-3b54-4d7e-9c1a-0e2f4b6d8a10';
/** Data keys per kind of the population. */
const POPULATION_MAX_USES = Math.ceil(COUNT / 4);

/** The partition kind of item `i`: half user, 40% OBO, 10% app. */
function kindOf(i: number): PartitionKind {
  const tenth = i % 10;
  return tenth < 5 ? 'user' : tenth < 9 ? 'obo' : 'app';
}

interface Info {
  dynamoEndpoint: string;
  tableName: string;
  kmsEndpoint: string;
  oldKeyArn: string;
  newKeyArn: string;
}

/** A user partition's shape and size (about 3 KB of MSAL JSON, compressed on seal). */
function document(i: number): string {
  const home = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000.90bb045f-08cc-4e4a-8ed4-45f406fd29fe`;
  const env = 'login.microsoftonline.com';
  const filler = (n: number): string =>
    Buffer.from(`${i}-${n}`.repeat(40)).toString('base64url').slice(0, 900);
  return JSON.stringify({
    Account: {
      [`${home}-${env}`]: {
        home_account_id: home,
        environment: env,
        realm: 'tenant',
        username: `u${i}@example.com`,
      },
    },
    IdToken: {
      [`${home}-idtoken`]: { home_account_id: home, credential_type: 'IdToken', secret: filler(1) },
    },
    AccessToken: {
      [`${home}-accesstoken`]: {
        home_account_id: home,
        credential_type: 'AccessToken',
        secret: filler(2),
        target: 'User.Read openid profile offline_access',
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
      },
    },
    RefreshToken: {
      [`${home}-refreshtoken`]: { home_account_id: home, credential_type: 'RefreshToken', secret: filler(3) },
    },
    AppMetadata: {},
  });
}

async function run(): Promise<void> {
  const child = fork(`${__dirname}/rewrap-servers.ts`, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(type: string): Promise<T> =>
    new Promise((resolve) => {
      const on = (m: { type: string; info?: unknown }): void => {
        if (m.type !== type) return;
        child.off('message', on);
        resolve((m.info ?? m) as T);
      };
      child.on('message', on);
    });
  const info = await next<Info>('ready');
  const aws = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_REGION: 'us-east-1',
  });
  const client = new DynamoDBClient({ ...aws, endpoint: info.dynamoEndpoint });
  try {
    // Population: data keys of the old master key, per kind.
    const t0 = performance.now();
    const oldRing = new KmsKeyRing({
      keyId: info.oldKeyArn,
      clientId: CLIENT_ID,
      clientConfig: { ...aws, endpoint: info.kmsEndpoint },
    });
    const envelope = new Envelope({ keys: new DataKeyCache(oldRing, { maxUses: POPULATION_MAX_USES }) });
    const write = dynamoWriter(client, info.tableName);
    const keys = Array.from({ length: COUNT }, (_, i) =>
      Buffer.from(`bench-${i}`).toString('base64url').padEnd(43, 'A').slice(0, 43),
    );
    for (let start = 0; start < COUNT; start += 25 * 16) {
      await Promise.all(
        Array.from({ length: 16 }, async (_, b) => {
          const slice = keys.slice(start + b * 25, start + (b + 1) * 25);
          if (slice.length === 0) return;
          const items = await Promise.all(
            slice.map(async (key) => ({
              key,
              blob: await envelope.seal(Buffer.from(document(keys.indexOf(key))), key, {
                partitionKind: kindOf(keys.indexOf(key)),
              }),
              expiresAt: Math.floor(Date.now() / 1000) + 86_400,
            })),
          );
          await write(items);
        }),
      );
    }
    const populateSeconds = (performance.now() - t0) / 1000;
    console.error(`population: ${COUNT} items in ${populateSeconds.toFixed(1)} s`);

    // Floor: the same scan and pool, each blob written back unchanged, conditionally.
    const store = new DynamoDbStore({ tableName: info.tableName, client });
    const progress = new Progress('floor', undefined, false);
    await forEachItem(
      new DynamoDbScanSource({ client, tableName: info.tableName, segments: SEGMENTS }),
      { concurrency: CONCURRENCY, progress },
      async (item) => {
        await store.write(item.key, item.blob, {
          condition: { expectedVersion: item.version },
          expiresAt: item.expiresAt,
        });
      },
    );
    const floor = {
      items: progress.done,
      seconds: progress.elapsedMs() / 1000,
      itemsPerSecond: progress.rate(),
    };
    console.error(
      `floor (scan + conditional PutItem, no crypto): ${Math.round(floor.itemsPerSecond)} items/s`,
    );

    const env = {
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_REGION: 'us-east-1',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      MSAL_CLIENT_ID: CLIENT_ID,
      TOKEN_CACHE_STORE: 'dynamodb',
      TOKEN_CACHE_TABLE_NAME: info.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: info.dynamoEndpoint,
      TOKEN_CACHE_KEY_RING: 'aws-kms',
      TOKEN_CACHE_KMS_KEY_ID: info.newKeyArn,
      AWS_ENDPOINT_URL_KMS: info.kmsEndpoint,
    };
    const cli = async (argv: string[]): Promise<Record<string, unknown>> => {
      let out = '';
      const code = await main(argv, {
        env,
        stdout: { write: (t: string) => (out += t) },
        stderr: process.stderr,
      });
      const report = JSON.parse(out) as Record<string, unknown>;
      return { ...report, exitCode: code };
    };
    const stats = await cli(['stats', '--json', '--segments', String(SEGMENTS)]);
    console.error(`stats: ${String(stats.itemsPerSecond)} items/s`);

    child.send({ op: 'reset' });
    await next('reset');
    const rewrap = await cli([
      'rewrap',
      '--yes',
      '--json',
      '--concurrency',
      String(CONCURRENCY),
      '--segments',
      String(SEGMENTS),
    ]);
    child.send({ op: 'kms-calls' });
    const calls = await next<{ generate: number; decrypt: number; all: number }>('kms-calls');
    const after = await cli(['stats', '--json']);
    if (rewrap.exitCode !== 0 || rewrap.rewrapped !== COUNT) {
      throw new Error(
        `rewrap left items: exit ${String(rewrap.exitCode)}, ${String(rewrap.rewrapped)} of ${COUNT} rewrapped, failed ${JSON.stringify(rewrap.failed)}`,
      );
    }
    const perKind: Partial<Record<PartitionKind, number>> = {};
    for (let i = 0; i < COUNT; i++) perKind[kindOf(i)] = (perKind[kindOf(i)] ?? 0) + 1;
    const distinctOldDataKeys = Object.values(perKind).reduce(
      (n, items) => n + Math.ceil(items / POPULATION_MAX_USES),
      0,
    );
    const kinds = Object.keys(perKind).length;
    const results = {
      commit: process.env.GIT_COMMIT ?? 'working tree',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      items: COUNT,
      concurrency: CONCURRENCY,
      segments: SEGMENTS,
      populateSeconds,
      floor,
      stats: { itemsPerSecond: stats.itemsPerSecond, seconds: stats.seconds },
      rewrap: {
        exitCode: rewrap.exitCode,
        rewrapped: rewrap.rewrapped,
        seconds: rewrap.seconds,
        itemsPerSecond: rewrap.itemsPerSecond,
        ratioToFloor: Number(rewrap.itemsPerSecond) / floor.itemsPerSecond,
        retries: rewrap.retries,
      },
      kms: {
        generateDataKey: calls.generate,
        decrypt: calls.decrypt,
        distinctOldDataKeys,
        kinds,
        generatePer10k: (calls.generate / COUNT) * 10_000,
      },
      afterByKeyId: after.byKeyId,
    };
    writeFileSync(`${__dirname}/results/rewrap.json`, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(
      `${__dirname}/results/rewrap.md`,
      [
        `# rewrap benchmark (${results.date}, ${results.machine.cpus} cores, Node ${results.machine.node})`,
        '',
        `${COUNT.toLocaleString('en-US')} items on dynalite (child process), each sealed for its partition kind (${Object.entries(
          perKind,
        )
          .map(([kind, items]) => `${kind} ${items}`)
          .join(', ')}), KMS = the local KMS; concurrency ${CONCURRENCY}, ${SEGMENTS} Scan segments.`,
        '',
        '| measure | value | goal |',
        '| --- | --- | --- |',
        `| rewrap items/s | ${String(results.rewrap.itemsPerSecond)} (${results.rewrap.ratioToFloor.toFixed(2)}x of the floor) | >= 2,000 |`,
        `| floor: scan + conditional PutItem, no crypto, items/s | ${Math.round(floor.itemsPerSecond)} | |`,
        `| stats (scan + header parse) items/s | ${String(results.stats.itemsPerSecond)} | |`,
        `| KMS GenerateDataKey during rewrap | ${calls.generate} (${results.kms.generatePer10k.toFixed(2)} per 10,000 items, ${kinds} kinds) | <= 1 per 10,000 items of each kind (${kinds} here) |`,
        `| KMS Decrypt during rewrap | ${calls.decrypt} for ${distinctOldDataKeys} distinct old data keys | <= ${distinctOldDataKeys * kinds}: one per data key and kind tried |`,
        `| items under the new key afterwards | ${JSON.stringify(results.afterByKeyId)} | all |`,
        '',
      ].join('\n'),
    );
    console.error(JSON.stringify(results, null, 2));
    store.destroy();
  } finally {
    client.destroy();
    child.send({ op: 'stop' });
  }
}

void run();
