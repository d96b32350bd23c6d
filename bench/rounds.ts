/**
 * The interleaved measuring loop the latency, delayed-network and Redis sections share:
 * every round runs one block of each (series, kind) in a seeded shuffled order, so a slow
 * minute of a shared machine lands on all of them alike; rounds stop at a count or when
 * the time budget is spent. `measureRounds` is the whole procedure of the latency and Redis
 * sections (timing, service calls and store counts per series); the delayed-network section
 * times only, with the pieces.
 */
import type { HttpsNetworkClient } from '../shared/cache/http';
import { Budget, Recorder } from './measure';
import type { CallRates } from './model';
import { perThousand, shuffled } from './stats';
import { KINDS, type Kind, type Variant } from './variants';
import type { World } from './world';

/**
 * What a section that measures warm requests of its own (a) containers in interleaved blocks
 * is given (the delayed-network and active-callers sections).
 */
export interface BlockSectionOptions {
  readonly world: World;
  /** The client every container calls the authority through. */
  readonly network: HttpsNetworkClient;
  /** Requests before measuring, per series (JIT, connections, data keys). */
  readonly warmup: number;
  readonly blockSize: number;
  readonly maxRounds: number;
}

export interface RoundsOptions<Id> {
  /** The series; each round runs one block of each of them for each kind. */
  readonly ids: readonly Id[];
  readonly maxRounds: number;
  readonly budgetMs: number;
  /** The shuffle's seed of round `round` (0, 1, ...). */
  readonly seed: (round: number) => number;
  /** Runs the block of `id` and `kind`. */
  readonly block: (id: Id, kind: Kind) => Promise<void>;
  /** After each round, with the rounds run so far and the budget. */
  readonly afterRound?: (rounds: number, budget: Budget) => void;
}

/** Runs interleaved rounds until `maxRounds` or the budget (started now); returns the rounds run. */
export async function interleavedRounds<Id>(options: RoundsOptions<Id>): Promise<number> {
  const budget = new Budget(options.budgetMs);
  let rounds = 0;
  while (rounds < options.maxRounds && !budget.over()) {
    const blocks = shuffled(
      options.ids.flatMap((id) => KINDS.map((kind) => ({ id, kind }))),
      options.seed(rounds),
    );
    for (const { id, kind } of blocks) await options.block(id, kind);
    rounds++;
    options.afterRound?.(rounds, budget);
  }
  return rounds;
}

/** Recorders of a section, one per series and kind. */
export type Recorders<Id extends string> = Record<Id, Record<Kind, Recorder>>;

/** A recorder per series and kind. */
export function recordersFor<Id extends string>(ids: readonly Id[]): Recorders<Id> {
  return byId(ids, () => ({ obo: new Recorder(), app: new Recorder() }));
}

/**
 * One block: `count` requests of `kind` by `variant`, each timed into `recorder`; request
 * `i`'s assertion is `assertionOf(i)`, taken before its timing starts.
 */
export async function timeBlock(
  recorder: Recorder,
  variant: Variant,
  kind: Kind,
  count: number,
  assertionOf: (i: number) => string,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const assertion = assertionOf(i);
    await recorder.time(() => variant.request(kind, assertion));
  }
}

/** Calls the services made, as a section tallies them per series. */
export interface ServiceCallTally {
  tokenCalls: number;
  /** GenerateDataKey + Decrypt. */
  kmsCalls: number;
}

/** Runs `fn` and adds the token-endpoint and KMS calls the services counted meanwhile to `tally`. */
export async function tallyServiceCalls(
  world: Pick<World, 'counters'>,
  tally: ServiceCallTally,
  fn: () => Promise<void>,
): Promise<void> {
  const before = await world.counters();
  await fn();
  const after = await world.counters();
  tally.tokenCalls += after.tokenCalls - before.tokenCalls;
  tally.kmsCalls +=
    after.kmsDecrypt - before.kmsDecrypt + (after.kmsGenerateDataKey - before.kmsGenerateDataKey);
}

export interface MeasureRoundsOptions<Id extends string> {
  /** The series; each round runs one block of each of them for each kind. */
  readonly ids: readonly Id[];
  /** The variant of each series, warmed up already. */
  readonly variants: Readonly<Record<Id, Variant>>;
  /** Whose service counters are read before and after every block. */
  readonly world: Pick<World, 'counters'>;
  readonly maxRounds: number;
  readonly budgetMs: number;
  /** Requests per block. */
  readonly blockSize: number;
  /** The assertion of request `i` of a block, called in request order (app requests get one too). */
  readonly assertionOf: (i: number) => string;
  /** After each round, with the rounds run so far, the budget and the recorders. */
  readonly afterRound?: (rounds: number, budget: Budget, recorders: Recorders<Id>) => void;
}

/** What {@link measureRounds} measured. */
export interface MeasuredRounds<Id extends string> {
  readonly rounds: number;
  readonly recorders: Recorders<Id>;
  /** Per series: its measured requests (both kinds) and the calls it made per 1,000 of them. */
  readonly calls: Record<Id, CallRates>;
}

/**
 * Measures warm variants in interleaved rounds (round `r`'s shuffle seeded `r + 1`): every
 * block is timed into its series' recorder, the token-endpoint and KMS calls counted
 * around it are added to its series, and the store reads and writes are each variant's own
 * counts since the first round. Rates are per 1,000 of the series' recorded requests, so
 * a run of no rounds throws (`perThousand` of no requests).
 *
 * @example
 * let next = 0;
 * const { rounds, recorders, calls } = await measureRounds({
 *   ids, variants, world, maxRounds: 120, budgetMs: 30_000, blockSize: 10,
 *   assertionOf: () => user(next++),
 * });
 */
export async function measureRounds<Id extends string>(
  options: MeasureRoundsOptions<Id>,
): Promise<MeasuredRounds<Id>> {
  const { ids, variants, world, blockSize, assertionOf } = options;
  const recorders = recordersFor(ids);
  const tallies = byId(ids, (): ServiceCallTally => ({ tokenCalls: 0, kmsCalls: 0 }));
  const storeBefore = byId(ids, (id) => variants[id].storeCounts());
  const rounds = await interleavedRounds({
    ids,
    maxRounds: options.maxRounds,
    budgetMs: options.budgetMs,
    seed: (round) => round + 1,
    block: (id, kind) =>
      tallyServiceCalls(world, tallies[id], () =>
        timeBlock(recorders[id][kind], variants[id], kind, blockSize, assertionOf),
      ),
    afterRound: (rounds, budget) => options.afterRound?.(rounds, budget, recorders),
  });
  const calls = byId(ids, (id): CallRates => {
    const requests = recorders[id].obo.count + recorders[id].app.count;
    const store = variants[id].storeCounts();
    return {
      requests,
      storeReads: perThousand(store.reads - storeBefore[id].reads, requests),
      storeWrites: perThousand(store.writes - storeBefore[id].writes, requests),
      kmsCalls: perThousand(tallies[id].kmsCalls, requests),
      tokenCalls: perThousand(tallies[id].tokenCalls, requests),
    };
  });
  return { rounds, recorders, calls };
}

function byId<Id extends string, T>(ids: readonly Id[], fn: (id: Id) => T): Record<Id, T> {
  return Object.fromEntries(ids.map((id) => [id, fn(id)])) as Record<Id, T>;
}
