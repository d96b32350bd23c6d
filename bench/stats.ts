/**
 * Statistics of the benchmarks: nearest-rank percentiles, summaries, ratios. Pure
 * functions, unit-tested in test/unit/bench/stats.test.ts.
 */

/** Percentiles and spread of one series of samples (milliseconds unless said otherwise). */
export interface Summary {
  /** Number of samples. */
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
}

/** The three percentiles every latency is reported with. */
export type PercentileName = 'p50' | 'p95' | 'p99';
export const PERCENTILES: readonly PercentileName[] = ['p50', 'p95', 'p99'];

/**
 * Nearest-rank percentile (the smallest sample with at least `p`% of the samples at or
 * below it) of an ascending array. No interpolation: every figure is a measured sample.
 */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) throw new RangeError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is not in (0, 100]`);
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(rank, sortedAscending.length) - 1];
}

/** Summary of samples in any order. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summary of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, x) => s + x, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    mean: sum / sorted.length,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** Each percentile of `value` divided by the same percentile of `floor`. */
export function ratios(value: Summary, floor: Summary): Record<PercentileName, number> {
  return { p50: value.p50 / floor.p50, p95: value.p95 / floor.p95, p99: value.p99 / floor.p99 };
}

/** `count` events over `requests` requests, expressed per 1,000 requests. */
export function perThousand(count: number, requests: number): number {
  if (requests <= 0) throw new RangeError('perThousand of no requests');
  return (count * 1000) / requests;
}

/**
 * Relative spread of a latency from `first` to `last` (e.g. 100 to 10,000 users):
 * `last / first`. 1.0 is perfectly flat.
 */
export function growth(first: number, last: number): number {
  if (first <= 0) throw new RangeError('growth from a non-positive value');
  return last / first;
}

/** A deterministic Fisher-Yates shuffle driven by a small seeded generator (mulberry32). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Milliseconds since `start` (a `process.hrtime.bigint()` reading). */
export function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}
