/**
 * `npx tsx bench/redis.ts`: the Redis row beside DynamoDB (issue 18). One run, the same
 * local KMS and authority (bench/servers.ts, in a child process), dynalite there too, and a
 * real redis-server in its own process: warm cache hits (OBO and app) of this cache with L1
 * off on each store, and each store's floor (a bare read of the partition's plain MSAL JSON
 * plus `JSON.parse`: GetItem for DynamoDB, GET for Redis). Interleaved blocks in a seeded
 * shuffled order; every ratio is between figures of this run. Writes
 * bench/results/redis.{md,json}. `BENCH_TIME_FACTOR` shortens the budget as for `npm run bench`.
 *
 * There is no Cosmos DB row: the main bench (bench/run.ts) measures DynamoDB only.
 */
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from '@redis/client';
import { startLocalRedis } from '../local/redis';
import { HttpsNetworkClient } from '../shared/cache/http';
import { createTokenCache } from '../shared/cache/token-cache';
import type { TokenCache } from '../shared/cache/types';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import { CounterMetrics, silentLogger } from '../shared/observability';
import { RedisStore } from '../shared/redis';
import { progress } from './measure';
import { measureRounds } from './rounds';
import { PartitionReader } from './population';
import { ratios, type Summary } from './stats';
import {
  acquireWarm,
  FloorVariant,
  KINDS,
  metricStoreCounts,
  ProjectVariant,
  floorKey,
  type Kind,
  type StoreCounts,
  type Variant,
} from './variants';
import { benchKeyRing, benchMsal, BENCH_CLIENT_ID, startWorld, type World } from './world';

const factor = Number(process.env['BENCH_TIME_FACTOR'] ?? '1');
if (!(factor > 0 && factor <= 1)) throw new Error('BENCH_TIME_FACTOR must be in (0, 1]');
const PLAN = { users: 20, warmup: 30, blockSize: 10, maxRounds: 120, budgetMs: Math.round(30_000 * factor) };

type Id = 'dynamodb' | 'redis' | 'dynamodb-floor' | 'redis-floor';
const IDS: readonly Id[] = ['dynamodb', 'redis', 'dynamodb-floor', 'redis-floor'];
const LABELS: Record<Id, string> = {
  dynamodb: 'this cache on DynamoDB (dynalite), KMS envelope, L1 off',
  redis: 'this cache on Redis (redis-server), KMS envelope, L1 off',
  'dynamodb-floor': 'floor: bare GetItem + JSON.parse',
  'redis-floor': 'floor: bare GET + JSON.parse',
};

/** This cache on a {@link RedisStore}, L1 off: (a) with the store swapped. */
class RedisProjectVariant implements Variant {
  readonly id = 'a' as const;
  readonly cache: TokenCache;
  readonly metrics = new CounterMetrics();
  private readonly store: RedisStore;
  private readonly keyRing: KmsKeyRing;

  constructor(world: World, network: HttpsNetworkClient, url: string) {
    this.store = new RedisStore({ clientOptions: { url } });
    this.keyRing = benchKeyRing(world);
    this.cache = createTokenCache({
      msal: benchMsal(world, network),
      store: this.store,
      keyRing: this.keyRing,
      l1: false,
      metrics: this.metrics,
      logger: silentLogger,
    });
  }

  async request(kind: Kind, assertion: string): Promise<boolean> {
    return (await acquireWarm(this.cache, kind, assertion)).fromCache;
  }

  storeCounts(): StoreCounts {
    return metricStoreCounts(this.metrics);
  }

  close(): void {
    this.store.destroy();
    this.keyRing.destroy();
  }
}

/** Redis's floor: GET of the partition's plain MSAL JSON, then JSON.parse. */
class RedisFloorVariant implements Variant {
  readonly id = 'e' as const;
  private reads = 0;
  constructor(private readonly client: { get(key: string): Promise<string | null>; destroy(): void }) {}

  async request(kind: Kind, assertion: string): Promise<boolean> {
    this.reads++;
    const json = await this.client.get(floorKey(kind, assertion));
    if (json === null) throw new Error('redis floor item missing');
    return typeof JSON.parse(json) === 'object';
  }

  storeCounts(): StoreCounts {
    return { reads: this.reads, writes: 0 };
  }

  close(): void {
    this.client.destroy();
  }
}

interface Row {
  readonly id: Id;
  readonly kind: Kind;
  readonly wall: Summary;
  readonly cpu: Summary;
  readonly misses: number;
  readonly perThousand: { storeReads: number; storeWrites: number; tokenCalls: number; kmsCalls: number };
}

async function main(): Promise<void> {
  progress('starting dynalite, KMS and the authority (child process) and redis-server');
  const world = await startWorld();
  const redis = await startLocalRedis();
  const network = new HttpsNetworkClient({ ca: world.info.authority.ca });
  const floorClient = createClient({ url: redis.url });
  await floorClient.connect();
  const variants: Record<Id, Variant> = {
    dynamodb: new ProjectVariant('a', world, network),
    redis: new RedisProjectVariant(world, network, redis.url),
    'dynamodb-floor': new FloorVariant(world.dynamoConfig, world.info.dynamo.tableName),
    'redis-floor': new RedisFloorVariant(floorClient),
  };
  try {
    progress(`populating ${PLAN.users} OBO partitions and the app partition in both stores`);
    const oids = Array.from({ length: PLAN.users }, (_, i) => `redis-bench-user-${i}`);
    const assertions = await world.mint(oids, `api://${BENCH_CLIENT_ID}`);
    const reader = new PartitionReader(world);
    const dynamo = variants.dynamodb as ProjectVariant;
    for (const kind of KINDS) {
      for (const assertion of kind === 'obo' ? assertions : ['']) {
        await variants.dynamodb.request(kind, assertion);
        await variants.redis.request(kind, assertion);
        const key =
          kind === 'obo'
            ? dynamo.cache.storeKeyOf({ kind: 'obo', assertion })
            : dynamo.cache.storeKeyOf({ kind: 'app', tenantId: world.info.authority.tenantId });
        const opened = await reader.open(key, kind);
        if (!opened) throw new Error(`partition ${kind} missing after population`);
        await (variants['dynamodb-floor'] as FloorVariant).put(floorKey(kind, assertion), opened.json);
        await floorClient.set(floorKey(kind, assertion), opened.json);
      }
    }
    reader.close();

    const user = (i: number): string => assertions[i % assertions.length];
    progress('warming up');
    for (const id of IDS) {
      for (const kind of KINDS) {
        for (let i = 0; i < Math.max(PLAN.warmup, assertions.length); i++)
          await variants[id].request(kind, user(i));
      }
    }

    let next = 0;
    const { rounds, recorders, calls } = await measureRounds({
      ids: IDS,
      variants,
      world,
      maxRounds: PLAN.maxRounds,
      budgetMs: PLAN.budgetMs,
      blockSize: PLAN.blockSize,
      assertionOf: () => user(next++),
    });
    progress(`measured ${rounds} rounds`);

    const rows: Row[] = IDS.flatMap((id) =>
      KINDS.map((kind) => {
        const series = recorders[id][kind].series();
        const { storeReads, storeWrites, tokenCalls, kmsCalls } = calls[id];
        return {
          id,
          kind,
          wall: series.wall,
          cpu: series.cpu,
          misses: series.misses,
          perThousand: { storeReads, storeWrites, tokenCalls, kmsCalls },
        };
      }),
    );
    const results = {
      when: new Date().toISOString(),
      machine: { cpus: os.cpus().length, load: os.loadavg(), node: process.version },
      plan: { ...PLAN, rounds },
      rows,
    };
    const markdown = render(results.when, results.plan, rows, results.machine);
    const dir = path.join(__dirname, 'results');
    await writeFile(path.join(dir, 'redis.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(path.join(dir, 'redis.md'), markdown);
    process.stdout.write(`\n${markdown}`);
  } finally {
    for (const id of IDS) variants[id].close();
    network.destroy();
    await redis.stop();
    await world.stop();
  }
}

function render(
  when: string,
  plan: typeof PLAN & { rounds: number },
  rows: readonly Row[],
  machine: { cpus: number; load: number[]; node: string },
): string {
  const find = (id: Id, kind: Kind): Row => rows.find((r) => r.id === id && r.kind === kind)!;
  const ms = (x: number): string => x.toFixed(2);
  const x = (v: number): string => `${v.toFixed(2)}x`;
  const lines = [
    '# Redis beside DynamoDB: warm cache hits, L1 off',
    '',
    `Run ${when}; ${machine.cpus} cores, load ${machine.load.map((l) => l.toFixed(1)).join('/')}, Node ${machine.node}.`,
    `${plan.users} OBO users and the app partition; ${plan.rounds} interleaved rounds of ${plan.blockSize}-request blocks ` +
      '(budget ' +
      `${plan.budgetMs / 1000} s). Loopback: dynalite, KMS and authority in a child process, redis-server in its own.`,
    'Command: `npx tsx bench/redis.ts`.',
    '',
    '| kind | variant | p50 ms | p95 ms | CPU p50 ms | p50 / own floor | p50 / DynamoDB variant | store r/w per 1k | token, KMS calls per 1k | misses |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const kind of KINDS) {
    for (const id of IDS) {
      const row = find(id, kind);
      const floor = find(id.startsWith('redis') ? 'redis-floor' : 'dynamodb-floor', kind);
      const peer = find(id.startsWith('redis') ? (id.replace('redis', 'dynamodb') as Id) : id, kind);
      lines.push(
        `| ${kind} | ${LABELS[id]} | ${ms(row.wall.p50)} | ${ms(row.wall.p95)} | ${ms(row.cpu.p50)} | ` +
          `${id.endsWith('floor') ? '1.00x' : x(ratios(row.wall, floor.wall).p50)} | ${x(row.wall.p50 / peer.wall.p50)} | ` +
          `${row.perThousand.storeReads.toFixed(0)}/${row.perThousand.storeWrites.toFixed(0)} | ` +
          `${row.perThousand.tokenCalls.toFixed(0)}, ${row.perThousand.kmsCalls.toFixed(0)} | ${row.misses} |`,
      );
    }
  }
  lines.push('');
  return `${lines.join('\n')}\n`;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
