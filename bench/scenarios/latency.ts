/**
 * Items 1 and 2: warm cache-hit latency of OBO and app tokens for (a)-(g), and the calls
 * each makes per 1,000 warm requests. Interleaved: every round runs a block of each
 * variant and kind in a shuffled order, so a slow minute of a shared machine lands on all
 * of them alike. Service counters are read between blocks (outside the timing), so every
 * call is attributed to the variant that made it.
 */
import type { CallRates, LatencyResult } from '../model';
import { progress } from '../measure';
import { measureRounds } from '../rounds';
import { perThousand, ratios, type PercentileName } from '../stats';
import { KINDS, VARIANT_IDS, PluginVariant, type Kind, type Variant, type VariantId } from '../variants';
import type { World } from '../world';

export interface LatencyOptions {
  readonly world: World;
  readonly variants: Readonly<Record<VariantId, Variant>>;
  /** OBO assertions of the users whose partitions are stored; requests cycle through them. */
  readonly assertions: readonly string[];
  readonly warmupPerSeries: number;
  readonly blockSize: number;
  readonly maxRounds: number;
  readonly budgetMs: number;
  /** The peer without priming, to count its OBO token calls. */
  readonly unprimedPeer: PluginVariant;
  readonly unprimedRequests: number;
}

const IDS = VARIANT_IDS;

export async function runLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { world, variants, assertions, blockSize } = options;
  const user = (i: number): string => assertions[i % assertions.length];

  // Warm-up: every user at least once per variant (fills (b)'s L1 and every data-key
  // cache, JIT-compiles the paths), then more until warmupPerSeries.
  progress(`latency: warming up ${IDS.length} variants x ${KINDS.length} kinds`);
  for (const id of IDS) {
    for (const kind of KINDS) {
      const n =
        kind === 'obo' ? Math.max(options.warmupPerSeries, assertions.length) : options.warmupPerSeries;
      for (let i = 0; i < n; i++) await variants[id].request(kind, user(i));
    }
  }

  let cursor = 0;
  const { rounds, recorders, calls } = await measureRounds({
    ids: IDS,
    variants,
    world,
    maxRounds: options.maxRounds,
    budgetMs: options.budgetMs,
    blockSize,
    assertionOf: (i) => user(cursor + i),
    afterRound: (rounds, budget, recorders) => {
      cursor += blockSize;
      if (rounds % 5 === 0) {
        const a = recorders.a.obo;
        progress(
          `latency: round ${rounds}, ${a.count} requests per series, ${Math.round(budget.left() / 1000)} s left`,
        );
      }
    },
  });

  const series = mapVariants((id) => ({
    obo: recorders[id].obo.series(),
    app: recorders[id].app.series(),
  }));
  const ratioOf = (id: VariantId, kind: Kind): Record<PercentileName, number> =>
    ratios(series[id][kind].wall, series.e[kind].wall);
  const callsPerThousand: Partial<Record<VariantId, CallRates>> = {};
  for (const id of ['a', 'b', 'c', 'd', 'g'] as const) callsPerThousand[id] = calls[id];

  // The peer as msal-node ships it: no priming, so OBO never reads the plugin first.
  const before = await world.counters();
  for (let i = 0; i < options.unprimedRequests; i++) {
    await options.unprimedPeer.request('obo', user(i));
  }
  const after = await world.counters();

  return {
    users: assertions.length,
    warmupPerSeries: options.warmupPerSeries,
    blockSize,
    rounds,
    series,
    ratios: mapVariants((id) => ({ obo: ratioOf(id, 'obo'), app: ratioOf(id, 'app') })),
    cpuRatioP50: mapVariants((id) => ({
      obo: series[id].obo.cpu.p50 / series.e.obo.cpu.p50,
      app: series[id].app.cpu.p50 / series.e.app.cpu.p50,
    })),
    callsPerThousand,
    peerUnprimedObo: {
      requests: options.unprimedRequests,
      tokenCallsPerThousand: perThousand(after.tokenCalls - before.tokenCalls, options.unprimedRequests),
    },
  };
}

function mapVariants<T>(fn: (id: VariantId) => T): Record<VariantId, T> {
  return Object.fromEntries(IDS.map((id) => [id, fn(id)])) as Record<VariantId, T>;
}
