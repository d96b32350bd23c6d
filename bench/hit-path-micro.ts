/**
 * Micro-measure of the warm-hit targets of issue 16 on the bench's own variants, without
 * the full run: (a) L1 off, (b) L1 on, (g) memo off (every hit opens an envelope), the
 * store floor (f) and the SDK floor (e), over dynalite and the local KMS and authority in
 * a child process (bench/servers.ts), 10 users. Interleaved shuffled blocks; wall p50 and
 * CPU per request; the ratios the targets use (`memo-off-penalty-ms` = g - a wall p50,
 * `l1-hit-p50-us` = b wall p50, `warm-hit-cpu-vs-getitem` = a CPU / e CPU).
 *
 *   npx tsx bench/hit-path-micro.ts [rounds=40] [block=10]
 *   HIT_MICRO_ONLY=b,g npx tsx bench/hit-path-micro.ts   # only some series (for --cpu-prof)
 */
import { performance } from 'node:perf_hooks';
import { HttpsNetworkClient } from '../shared/cache/http';
import { addAltEnvelopes, populate } from './population';
import { shuffled, summarize } from './stats';
import {
  APP_SCOPE,
  DynamoCacheClient,
  ItemFloorVariant,
  OBO_SCOPE,
  ProjectVariant,
  StoreFloorVariant,
} from './variants';
import { startWorld } from './world';

type Kind = 'obo' | 'app';
const USERS = 10;

interface Series {
  readonly id: string;
  readonly kind: Kind;
  readonly request: (assertion: string) => Promise<boolean | undefined>;
  readonly wallUs: number[];
  readonly cpuUs: number[];
  fast: number;
  count: number;
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
    await addAltEnvelopes(world, [
      ...population.users.map((u) => ({
        key: keyOf('obo', u.assertion),
        kind: 'obo' as const,
        json: u.json,
      })),
      { key: keyOf('app', ''), kind: 'app' as const, json: population.app.json },
    ]);
    const e = new ItemFloorVariant(world.dynamoConfig, table, keyOf);
    const f = new StoreFloorVariant(a.store, keyOf);
    const series: Series[] = [];
    for (const kind of ['obo', 'app'] as const) {
      for (const [id, v] of [
        ['a', a],
        ['b', b],
        ['g', g],
      ] as const) {
        const s: Series = {
          id: `${id} ${kind}`,
          kind,
          request: async (assertion) => {
            const r =
              kind === 'obo'
                ? await v.cache.acquireTokenOnBehalfOf({ assertion, scopes: [OBO_SCOPE] })
                : await v.cache.acquireTokenForApp({ scopes: [APP_SCOPE] });
            if (r.cache.fastHit) s.fast++;
            s.count++;
            return r.fromCache;
          },
          wallUs: [],
          cpuUs: [],
          fast: 0,
          count: 0,
        };
        series.push(s);
      }
      for (const [id, v] of [
        ['e', e],
        ['f', f],
      ] as const) {
        series.push({
          id: `${id} ${kind}`,
          kind,
          request: (assertion) => v.request(kind, assertion),
          wallUs: [],
          cpuUs: [],
          fast: 0,
          count: 0,
        });
      }
    }
    const measured = series.filter((s) => !only || only.includes(s.id.split(' ')[0]));
    const assertions = population.users.map((u) => u.assertion);
    // Warm: every user at least twice per series (a miss learns, the next hits).
    for (const s of measured) for (let i = 0; i < 3 * USERS; i++) await s.request(assertions[i % USERS]);
    for (const s of measured) s.fast = s.count = 0;
    let turn = 0;
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
    console.log(
      `hit-path micro: ${rounds} rounds x ${block} per series, ${USERS} users, node ${process.version}`,
    );
    console.log('series   wall p50 µs  CPU/req p50 µs  fast hits');
    const p50 = new Map<string, { wall: number; cpu: number }>();
    for (const s of measured) {
      const wall = summarize(s.wallUs).p50;
      const cpu = summarize(s.cpuUs).p50;
      p50.set(s.id, { wall, cpu });
      console.log(
        `${s.id.padEnd(8)}${wall.toFixed(1).padStart(12)}${cpu.toFixed(1).padStart(16)}${(s.count ? `${s.fast}/${s.count}` : '').padStart(11)}`,
      );
    }
    for (const kind of ['obo', 'app'] as const) {
      const get = (id: string) => p50.get(`${id} ${kind}`);
      const [pa, pb, pg, pe, pf] = ['a', 'b', 'g', 'e', 'f'].map(get);
      const parts: string[] = [];
      if (pa && pg) parts.push(`memo-off penalty (g-a wall) ${((pg.wall - pa.wall) / 1000).toFixed(3)} ms`);
      if (pb) parts.push(`L1 hit (b) ${pb.wall.toFixed(1)} µs`);
      if (pa && pe) parts.push(`a/e CPU ${(pa.cpu / pe.cpu).toFixed(3)}x`);
      if (pf && pe) parts.push(`f/e CPU ${(pf.cpu / pe.cpu).toFixed(3)}x`);
      console.log(`${kind}: ${parts.join(', ')}`);
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
