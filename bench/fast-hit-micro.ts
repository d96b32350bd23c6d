/**
 * Micro-measure of fast hits (issue 16, item 2): the warm hit of the project's TokenCache
 * with `fastHits` on and off, in one run, for OBO and app, with L1 on (no store read) and
 * off (one DynamoDbStore GetItem to dynalite, servers in a child process, as in
 * bench/run.ts). Interleaved shuffled blocks; wall p50/p95 and CPU per request.
 *
 *   npx tsx bench/fast-hit-micro.ts [rounds=40] [block=50]
 */
import { performance } from 'node:perf_hooks';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import { HttpsNetworkClient } from '../shared/cache/http';
import { createTokenCache } from '../shared/cache/token-cache';
import type { TokenCache } from '../shared/cache/types';
import { silentLogger } from '../shared/observability';
import { shuffled, summarize } from './stats';
import { APP_SCOPE, OBO_SCOPE } from './variants';
import { benchKeyRing, benchMsal, BENCH_CLIENT_ID, startWorld } from './world';

type Kind = 'obo' | 'app';
interface Series {
  readonly id: string;
  readonly kind: Kind;
  readonly l1: boolean;
  readonly fast: boolean;
  readonly cache: TokenCache;
  readonly wallUs: number[];
  readonly cpuUs: number[];
  fastServed: number;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 40);
  const block = Number(process.argv[3] ?? 50);
  const world = await startWorld();
  const network = new HttpsNetworkClient({ ca: world.info.authority.ca });
  const closers: Array<() => void> = [];
  try {
    const [assertion] = await world.mint(['fast-hit-micro'], BENCH_CLIENT_ID);
    const series: Series[] = [];
    for (const kind of ['obo', 'app'] as const) {
      for (const l1 of [true, false]) {
        for (const fast of [true, false]) {
          const store = new DynamoDbStore({
            tableName: world.info.dynamo.tableName,
            clientConfig: world.dynamoConfig,
          });
          const keyRing = benchKeyRing(world);
          closers.push(
            () => store.destroy(),
            () => keyRing.destroy(),
          );
          const cache = createTokenCache({
            msal: benchMsal(world, network),
            store,
            keyRing,
            l1: l1 ? {} : false,
            fastHits: fast,
            logger: silentLogger,
          });
          series.push({
            id: `${kind} L1 ${l1 ? 'on ' : 'off'} fastHits ${fast ? 'on ' : 'off'}`,
            kind,
            l1,
            fast,
            cache,
            wallUs: [],
            cpuUs: [],
            fastServed: 0,
          });
        }
      }
    }
    const call = (s: Series) =>
      s.kind === 'obo'
        ? s.cache.acquireTokenOnBehalfOf({ assertion: assertion, scopes: [OBO_SCOPE] })
        : s.cache.acquireTokenForApp({ scopes: [APP_SCOPE] });
    // Warm: the miss (one token call per partition, shared by the series through the store),
    // then hits until msal-node has served one itself (what fast hits learn from).
    for (const s of series) for (let i = 0; i < 20; i++) await call(s);
    for (let round = 0; round < rounds; round++) {
      for (const s of shuffled(series, round + 1)) {
        const cpu = process.cpuUsage();
        for (let i = 0; i < block; i++) {
          const started = performance.now();
          const result = await call(s);
          s.wallUs.push((performance.now() - started) * 1000);
          if (!result.fromCache) throw new Error(`${s.id}: a miss in the warm series`);
          if (result.cache.fastHit) s.fastServed++;
        }
        const used = process.cpuUsage(cpu);
        s.cpuUs.push((used.user + used.system) / block);
      }
    }
    const rows = series.map((s) => ({ s, wall: summarize(s.wallUs), cpu: summarize(s.cpuUs) }));
    console.log(`fast-hit micro: ${rounds} rounds x ${block} requests per series, node ${process.version}`);
    console.log('series                          wall p50 µs  wall p95 µs  CPU/request p50 µs  fast-served');
    for (const { s, wall, cpu } of rows) {
      console.log(
        `${s.id.padEnd(32)}${wall.p50.toFixed(1).padStart(11)}${wall.p95.toFixed(1).padStart(13)}${cpu.p50
          .toFixed(1)
          .padStart(20)}${`${s.fastServed}/${s.wallUs.length}`.padStart(13)}`,
      );
    }
    for (const kind of ['obo', 'app'] as const) {
      for (const l1 of [true, false]) {
        const on = rows.find((r) => r.s.kind === kind && r.s.l1 === l1 && r.s.fast)!;
        const off = rows.find((r) => r.s.kind === kind && r.s.l1 === l1 && !r.s.fast)!;
        console.log(
          `${kind} L1 ${l1 ? 'on ' : 'off'}: fastHits on/off wall p50 ${(on.wall.p50 / off.wall.p50).toFixed(3)}x ` +
            `(${on.wall.p50.toFixed(1)} vs ${off.wall.p50.toFixed(1)} µs, −${(off.wall.p50 - on.wall.p50).toFixed(1)} µs), ` +
            `CPU p50 ${(on.cpu.p50 / off.cpu.p50).toFixed(3)}x`,
        );
      }
    }
  } finally {
    for (const close of closers) close();
    network.destroy();
    await world.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
