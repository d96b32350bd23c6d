/**
 * Active callers: hits of callers that each have a partition in the store, at 100 and at
 * 5,000 distinct callers in use. 5,000 is past what the opened-envelope memo (8 MiB, about
 * 690 partitions of this size) and L1 (16 MiB, about 1,690) hold, so at that level (a)
 * opens every envelope it reads (HKDF, AES-GCM, inflate) and (b) reads the store on every
 * request; at 100 both answer from memory. (The scale section holds the users in the table
 * but reads the same 50; this one changes who is asking.)
 *
 * The callers are real OBO partitions in (a)'s layout (population.ts
 * `addSyntheticCallers`). Each (variant, level) is a fresh container: its own memo and L1.
 * Callers are visited in a fixed shuffled cycle, so at 5,000 no caller comes back within
 * the measured requests (the worst case of an LRU, and its steady state once the cycle is
 * longer than what it holds). Interleaved blocks; wall and CPU time per request; store
 * reads per request show what memory answered.
 */
import type { ActiveCallersResult, ActiveCallersSeries } from '../model';
import { Budget, progress, Recorder } from '../measure';
import type { BlockSectionOptions } from '../rounds';
import { shuffled } from '../stats';
import { ProjectVariant } from '../variants';

export interface ActiveCallersOptions extends BlockSectionOptions {
  /** Assertions of callers with a stored partition, at least as many as the largest level. */
  readonly callers: readonly string[];
  readonly levels: readonly number[];
  readonly budgetMs: number;
}

export async function runActiveCallers(options: ActiveCallersOptions): Promise<ActiveCallersResult> {
  const { world, callers, blockSize } = options;
  const top = Math.max(...options.levels);
  if (callers.length < top) throw new RangeError(`need ${top} callers, got ${callers.length}`);
  const series = options.levels.flatMap((level) =>
    (['a', 'b'] as const).map((id) => {
      const order = shuffled(callers.slice(0, level), level);
      return {
        id,
        level,
        variant: new ProjectVariant(id, world, options.network),
        order,
        cursor: 0,
        rec: new Recorder(),
        reads0: 0,
      };
    }),
  );
  try {
    for (const s of series) {
      const next = (): string => s.order[s.cursor++ % s.order.length];
      for (let i = 0; i < options.warmup; i++) await s.variant.request('obo', next());
      s.reads0 = s.variant.storeCounts().reads;
    }
    const budget = new Budget(options.budgetMs);
    let rounds = 0;
    for (; rounds < options.maxRounds && !budget.over(); rounds++) {
      for (const s of shuffled(series, rounds + 7)) {
        for (let i = 0; i < blockSize; i++) {
          const assertion = s.order[s.cursor++ % s.order.length];
          await s.rec.time(() => s.variant.request('obo', assertion));
        }
      }
    }
    const out: ActiveCallersSeries[] = series.map((s) => ({
      variant: s.id,
      callers: s.level,
      series: s.rec.series(),
      storeReadsPerRequest: (s.variant.storeCounts().reads - s.reads0) / s.rec.count,
    }));
    const p50 = (id: 'a' | 'b', level: number): number =>
      out.find((x) => x.variant === id && x.callers === level)!.series.wall.p50;
    const first = options.levels[0];
    const growthP50 = { a: p50('a', top) / p50('a', first), b: p50('b', top) / p50('b', first) };
    for (const x of out) {
      progress(
        `active callers: (${x.variant}) ${x.callers}: p50 ${x.series.wall.p50.toFixed(2)} ms, CPU ${x.series.cpu.p50.toFixed(2)} ms, ` +
          `store reads/request ${x.storeReadsPerRequest.toFixed(2)} (n=${x.series.wall.n})`,
      );
    }
    return { levels: options.levels, rounds, series: out, growthP50 };
  } finally {
    for (const s of series) s.variant.close();
  }
}
