/**
 * The interleaved measuring loop the latency, delayed-network and Redis sections share:
 * every round runs one block of each (series, kind) in a seeded shuffled order, so a slow
 * minute of a shared machine lands on all of them alike; rounds stop at a count or when
 * the time budget is spent.
 */
import type { HttpsNetworkClient } from '../shared/cache/http';
import { Budget, Recorder } from './measure';
import { shuffled } from './stats';
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

/** A recorder per series and kind. */
export function recordersFor<Id extends string>(ids: readonly Id[]): Record<Id, Record<Kind, Recorder>> {
  return Object.fromEntries(ids.map((id) => [id, { obo: new Recorder(), app: new Recorder() }])) as Record<
    Id,
    Record<Kind, Recorder>
  >;
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
  world: World,
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
