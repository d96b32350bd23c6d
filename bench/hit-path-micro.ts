/**
 * Micro-measure of the warm-hit targets of issue 16 on the bench's own variants, without
 * the full run: (a) L1 off, (b) L1 on, (g) memo off (every hit opens an envelope), (u)
 * (g) over uncompressed envelopes, the store floor (f) and the SDK floor (e), over dynalite
 * and the local KMS and authority in a child process (bench/servers.ts), 10 users.
 * Interleaved shuffled blocks; wall p50 and CPU per request; the ratios the targets use
 * (`memo-off-penalty-ms` = g - a wall p50, `l1-hit-p50-us` = b wall p50,
 * `warm-hit-cpu-vs-getitem` = a CPU / e CPU); then Envelope.open in this same process.
 *
 *   npx tsx bench/hit-path-micro.ts [rounds=40] [block=10]
 *   HIT_MICRO_ONLY=b,g npx tsx bench/hit-path-micro.ts   # only some series (for --cpu-prof)
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import { HttpsNetworkClient } from '../shared/cache/http';
import { createTokenCache } from '../shared/cache/token-cache';
import { CounterMetrics, silentLogger } from '../shared/observability';
import { DataKeyCache } from '../shared/crypto/data-key-cache';
import { Envelope } from '../shared/crypto/envelope';
import { LocalKeyRing } from '../shared/crypto/local-keyring';
import { addAltEnvelopes, partitionsOf, populate } from './population';
import { shuffled, summarize } from './stats';
import {
  acquireWarm,
  AlternatingStore,
  DynamoCacheClient,
  ItemFloorVariant,
  ProjectVariant,
  StoreFloorVariant,
} from './variants';
import { benchKeyRing, benchMsal, startWorld } from './world';

type Kind = 'obo' | 'app';
const USERS = 10;

interface Series {
  readonly id: string;
  readonly kind: Kind;
  readonly request: (assertion: string) => Promise<boolean | undefined>;
  readonly wallUs: number[];
  readonly cpuUs: number[];
  /** The cache's own timings of the request (CacheMetadata.timings), µs. */
  readonly readUs: number[];
  readonly openUs: number[];
  fast: number;
  count: number;
}

/** An empty series `id` of `kind`, measured through `request`. */
function newSeries(id: string, kind: Kind, request: Series['request']): Series {
  return { id, kind, request, wallUs: [], cpuUs: [], readUs: [], openUs: [], fast: 0, count: 0 };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 40);
  const block = Number(process.argv[3] ?? 10);
  const only = process.env.HIT_MICRO_ONLY?.split(',');
  const world = await startWorld();
  const network = new HttpsNetworkClient({ ca: world.info.authority.ca });
  const table = world.info.dynamo.tableName;
  const closers: Array<() => void> = [];
  try {
    const seeder = new ProjectVariant('a', world, network);
    const peer = new DynamoCacheClient(world.dynamoConfig, table);
    const naive = new DynamoCacheClient(world.dynamoConfig, table);
    const population = await populate({ world, seeder, peer, naive, count: USERS }).finally(() =>
      seeder.close(),
    );
    const a = new ProjectVariant('a', world, network);
    const b = new ProjectVariant('b', world, network);
    const g = new ProjectVariant('g', world, network);
    closers.push(
      () => a.close(),
      () => b.close(),
      () => g.close(),
    );
    const tenantId = world.info.authority.tenantId;
    const keyOf = (kind: Kind, assertion: string): string => a.keyOf(kind, assertion, tenantId);
    const parts = partitionsOf(population, keyOf);
    await addAltEnvelopes(world, parts);
    // (u): (g) over two uncompressed envelopes of each partition, so every hit opens one
    // without inflating: what dropping compression would save on a memo-off hit.
    for (const n of [0, 1]) {
      await addAltEnvelopes(world, parts, { itemKey: (k) => plainKey(k, n), compressAboveBytes: false });
    }
    const uStore = new DynamoDbStore({ tableName: table, clientConfig: world.dynamoConfig });
    const uRing = benchKeyRing(world);
    closers.push(
      () => uStore.destroy(),
      () => uRing.destroy(),
    );
    const u = {
      cache: createTokenCache({
        msal: benchMsal(world, network),
        store: new AlternatingStore(uStore, '(u)', plainKey),
        keyRing: uRing,
        l1: false,
        metrics: new CounterMetrics(),
        logger: silentLogger,
      }),
    };
    const e = new ItemFloorVariant(world.dynamoConfig, table, keyOf);
    const f = new StoreFloorVariant(a.store, keyOf);
    const series: Series[] = [];
    for (const kind of ['obo', 'app'] as const) {
      for (const [id, v] of [
        ['a', a],
        ['b', b],
        ['g', g],
        ['u', u],
      ] as const) {
        const s: Series = newSeries(`${id} ${kind}`, kind, async (assertion) => {
          const r = await acquireWarm(v.cache, kind, assertion);
          if (r.cache.fastHit) s.fast++;
          s.readUs.push((r.cache.timings.storeReadMs ?? 0) * 1000);
          s.openUs.push((r.cache.timings.envelopeOpenMs ?? 0) * 1000);
          s.count++;
          return r.fromCache;
        });
        series.push(s);
      }
      for (const [id, v] of [
        ['e', e],
        ['f', f],
      ] as const) {
        series.push(newSeries(`${id} ${kind}`, kind, (assertion) => v.request(kind, assertion)));
      }
    }
    const measured = series.filter((s) => !only || only.includes(s.id.split(' ')[0]));
    const assertions = population.users.map((u) => u.assertion);
    // Warm: every user at least twice per series (a miss learns, the next hits).
    for (const s of measured) for (let i = 0; i < 3 * USERS; i++) await s.request(assertions[i % USERS]);
    for (const s of measured) {
      s.fast = s.count = 0;
      s.readUs.length = s.openUs.length = 0;
    }
    let turn = 0;
    const before = await world.counters();
    for (let round = 0; round < rounds; round++) {
      for (const s of shuffled(measured, round + 1)) {
        const cpu = process.cpuUsage();
        for (let i = 0; i < block; i++) {
          const started = performance.now();
          const hit = await s.request(assertions[turn++ % USERS]);
          s.wallUs.push((performance.now() - started) * 1000);
          if (hit === false) throw new Error(`${s.id}: a miss in the warm series`);
        }
        const used = process.cpuUsage(cpu);
        s.cpuUs.push((used.user + used.system) / block);
      }
    }
    const after = await world.counters();
    const opens = await measureOpens(population.users[0].json);
    console.log(
      `hit-path micro: ${rounds} rounds x ${block} per series, ${USERS} users, node ${process.version}`,
    );
    console.log('series   wall p50 µs  CPU/req p50 µs  fast hits  store read p50 µs  open p50 µs');
    const p50 = new Map<string, { wall: number; cpu: number }>();
    for (const s of measured) {
      const wall = summarize(s.wallUs).p50;
      const cpu = summarize(s.cpuUs).p50;
      p50.set(s.id, { wall, cpu });
      console.log(
        `${s.id.padEnd(8)}${wall.toFixed(1).padStart(12)}${cpu.toFixed(1).padStart(16)}${(s.count ? `${s.fast}/${s.count}` : '').padStart(11)}` +
          (s.count
            ? `${summarize(s.readUs).p50.toFixed(1).padStart(19)}${summarize(s.openUs).p50.toFixed(1).padStart(13)}`
            : ''),
      );
    }
    for (const kind of ['obo', 'app'] as const) {
      const get = (id: string) => p50.get(`${id} ${kind}`);
      const [pa, pb, pg, pe, pf] = ['a', 'b', 'g', 'e', 'f'].map(get);
      const parts: string[] = [];
      if (pa && pg) parts.push(`memo-off penalty (g-a wall) ${((pg.wall - pa.wall) / 1000).toFixed(3)} ms`);
      const pu = get('u');
      if (pa && pu) parts.push(`uncompressed (u-a wall) ${((pu.wall - pa.wall) / 1000).toFixed(3)} ms`);
      if (pb) parts.push(`L1 hit (b) ${pb.wall.toFixed(1)} µs`);
      if (pa && pe) parts.push(`a/e CPU ${(pa.cpu / pe.cpu).toFixed(3)}x`);
      if (pf && pe) parts.push(`f/e CPU ${(pf.cpu / pe.cpu).toFixed(3)}x`);
      console.log(`${kind}: ${parts.join(', ')}`);
    }
    console.log(
      `service calls during the measured section: KMS Decrypt ${after.kmsDecrypt - before.kmsDecrypt}, ` +
        `GenerateDataKey ${after.kmsGenerateDataKey - before.kmsGenerateDataKey}, token ${after.tokenCalls - before.tokenCalls}`,
    );
    console.log(
      `Envelope.open in this process (SDK clients loaded), CPU/op p50: compressed ${opens.compressed.toFixed(1)} µs, ` +
        `uncompressed ${opens.uncompressed.toFixed(1)} µs, inflateRawSync alone ${opens.inflate.toFixed(1)} µs`,
    );
  } finally {
    for (const close of closers) close();
    network.destroy();
    await world.stop();
  }
}

/**
 * Envelope.open of one user's partition, compressed (as shipped) and not, and the bare
 * inflate, in this process: with the SDK clients loaded it costs more than alone
 * (bench/open-micro.ts). Local key ring, data key cached: no key service.
 */
async function measureOpens(
  json: string,
): Promise<{ compressed: number; uncompressed: number; inflate: number }> {
  const keys = new DataKeyCache(new LocalKeyRing({ masterKey: randomBytes(32) }));
  const packed = new Envelope({ keys });
  const plain = new Envelope({ keys, compressAboveBytes: false });
  const bytes = Buffer.from(json, 'utf8');
  const key = 'obo:hit-path-micro';
  const [sealedPacked, sealedPlain] = [await packed.seal(bytes, key), await plain.seal(bytes, key)];
  const deflated = deflateRawSync(bytes);
  const ops = [
    { id: 'compressed', run: () => packed.open(sealedPacked, key), cpu: [] as number[] },
    { id: 'uncompressed', run: () => plain.open(sealedPlain, key), cpu: [] as number[] },
    { id: 'inflate', run: () => Promise.resolve(inflateRawSync(deflated)), cpu: [] as number[] },
  ];
  for (const op of ops) for (let i = 0; i < 300; i++) await op.run();
  for (let round = 0; round < 20; round++) {
    for (const op of shuffled(ops, round + 1)) {
      const cpu = process.cpuUsage();
      for (let i = 0; i < 200; i++) await op.run();
      const used = process.cpuUsage(cpu);
      op.cpu.push((used.user + used.system) / 200);
    }
  }
  const [compressed, uncompressed, inflate] = ops.map((op) => summarize(op.cpu).p50);
  return { compressed, uncompressed, inflate };
}

/** Store key of (u)'s uncompressed envelope `n` of a partition: (u)'s store reads 0 and 1 in turn. */
const plainKey = (key: string, n: number): string => `${key}#plain${n}`;

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
