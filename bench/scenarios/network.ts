/**
 * The delayed-network series: (a) and both floors with DynamoDB behind a TCP proxy that
 * delays every chunk by 1 ms and by 5 ms each way (bench/delay-proxy.ts, its own process),
 * as a store across a network is. On loopback the floor is mostly the SDK client's own CPU,
 * so a ratio there says little about a deployment; here the network's share is real.
 *
 * Per delay: a fresh (a) (L1 off) whose store points at the proxy, the store floor (f)
 * through that same store instance, and the raw SDK GetItem (e) through the proxy, all
 * reading (a)'s items; interleaved blocks of each variant and kind in a shuffled order.
 * Wall time and CPU time per request.
 */
import type { NetworkDelayLevel, NetworkResult } from '../model';
import { progress } from '../measure';
import { interleavedRounds, recordersFor, timeBlock, type BlockSectionOptions } from '../rounds';
import { startDelayProxy } from '../delay-proxy';
import {
  ItemFloorVariant,
  KINDS,
  ProjectVariant,
  StoreFloorVariant,
  type Kind,
  type Variant,
} from '../variants';

export interface NetworkOptions extends BlockSectionOptions {
  readonly assertions: readonly string[];
  /** One-way delays to measure, ms. */
  readonly delaysMs: readonly number[];
  /** Budget of each delay's measurement. */
  readonly budgetMsPerDelay: number;
}

const IDS = ['a', 'e', 'f'] as const;
type Id = (typeof IDS)[number];

export async function runNetwork(options: NetworkOptions): Promise<NetworkResult> {
  const { world, assertions, blockSize } = options;
  const user = (i: number): string => assertions[i % assertions.length];
  const port = Number(new URL(world.info.dynamo.endpoint).port);
  const tenantId = world.info.authority.tenantId;
  const levels: NetworkDelayLevel[] = [];
  for (const delayMs of options.delaysMs) {
    const proxy = await startDelayProxy(port, delayMs);
    const a = new ProjectVariant('a', world, options.network, { dynamoEndpoint: proxy.endpoint });
    const keyOf = (kind: Kind, assertion: string): string => a.keyOf(kind, assertion, tenantId);
    const variants: Record<Id, Variant> = {
      a,
      e: new ItemFloorVariant(
        { ...world.dynamoConfig, endpoint: proxy.endpoint },
        world.info.dynamo.tableName,
        keyOf,
      ),
      f: new StoreFloorVariant(a.store, keyOf),
    };
    try {
      for (const id of IDS) {
        for (const kind of KINDS) {
          for (let i = 0; i < options.warmup; i++) await variants[id].request(kind, user(i));
        }
      }
      const rec = recordersFor(IDS);
      let cursor = 0;
      const rounds = await interleavedRounds({
        ids: IDS,
        maxRounds: options.maxRounds,
        budgetMs: options.budgetMsPerDelay,
        seed: (round) => 1000 * delayMs + round,
        block: (id, kind) => timeBlock(rec[id][kind], variants[id], kind, blockSize, (i) => user(cursor + i)),
        afterRound: () => {
          cursor += blockSize;
        },
      });
      const series = Object.fromEntries(
        IDS.map((id) => [id, { obo: rec[id].obo.series(), app: rec[id].app.series() }]),
      ) as NetworkDelayLevel['series'];
      const ratio = (floor: 'e' | 'f'): Record<Kind, number> => ({
        obo: series.a.obo.wall.p50 / series[floor].obo.wall.p50,
        app: series.a.app.wall.p50 / series[floor].app.wall.p50,
      });
      levels.push({
        delayMs,
        rounds,
        series,
        aVsStoreFloorP50: ratio('f'),
        aVsSdkFloorP50: ratio('e'),
      });
      progress(
        `network +${delayMs} ms each way: (a) OBO p50 ${series.a.obo.wall.p50.toFixed(2)} ms, store floor ${series.f.obo.wall.p50.toFixed(2)} ms, SDK floor ${series.e.obo.wall.p50.toFixed(2)} ms ` +
          `(a/f x${levels.at(-1)!.aVsStoreFloorP50.obo.toFixed(3)}, n=${series.a.obo.wall.n})`,
      );
    } finally {
      a.close();
      variants.e.close();
      await proxy.stop();
    }
  }
  return { levels };
}
