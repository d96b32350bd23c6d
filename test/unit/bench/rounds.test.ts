/** The measuring procedure of the latency and Redis sections (bench/rounds.ts). */
import type { ServiceCounters } from '../../../bench/protocol';
import { measureRounds } from '../../../bench/rounds';
import { shuffled } from '../../../bench/stats';
import { KINDS, type Kind, type StoreCounts, type Variant, type VariantId } from '../../../bench/variants';

/** The services' counters, as the child process keeps them. */
class FakeWorld {
  readonly totals = {
    tokenCalls: 0,
    oboCalls: 0,
    clientCredentialCalls: 0,
    metadataCalls: 0,
    kmsGenerateDataKey: 0,
    kmsDecrypt: 0,
  };

  counters(): Promise<ServiceCounters> {
    return Promise.resolve({ ...this.totals });
  }
}

/** What one request of a fake variant makes. */
interface Calls {
  readonly reads?: number;
  readonly writes?: number;
  readonly tokenCalls?: number;
  readonly kmsDecrypt?: number;
  readonly kmsGenerateDataKey?: number;
}

/** A variant that logs its requests and makes `calls(kind)` of the services and its store. */
class FakeVariant implements Variant {
  private readonly counts = { reads: 0, writes: 0 };

  constructor(
    readonly id: VariantId,
    private readonly world: FakeWorld,
    private readonly log: string[],
    private readonly calls: (kind: Kind) => Calls,
  ) {}

  request(kind: Kind, assertion: string): Promise<boolean> {
    this.log.push(`${this.id} ${kind} ${assertion}`);
    const calls = this.calls(kind);
    this.counts.reads += calls.reads ?? 0;
    this.counts.writes += calls.writes ?? 0;
    this.world.totals.tokenCalls += calls.tokenCalls ?? 0;
    this.world.totals.kmsDecrypt += calls.kmsDecrypt ?? 0;
    this.world.totals.kmsGenerateDataKey += calls.kmsGenerateDataKey ?? 0;
    return Promise.resolve(true);
  }

  storeCounts(): StoreCounts {
    return { ...this.counts };
  }

  close(): void {}
}

const IDS = ['a', 'e'] as const;

function setUp(): { world: FakeWorld; log: string[]; variants: Record<'a' | 'e', FakeVariant> } {
  const world = new FakeWorld();
  const log: string[] = [];
  const variants = {
    // (a): a store read on every request, a write and a token call on every app request,
    // a KMS Decrypt on every OBO request and a GenerateDataKey on every app request.
    a: new FakeVariant('a', world, log, (kind) =>
      kind === 'obo'
        ? { reads: 1, kmsDecrypt: 1 }
        : { reads: 1, writes: 1, tokenCalls: 1, kmsGenerateDataKey: 1 },
    ),
    // (e): two store reads a request, nothing else.
    e: new FakeVariant('e', world, log, () => ({ reads: 2 })),
  };
  return { world, log, variants };
}

/** Warm-up as a section does it: calls that must not count. */
async function warmUp(variants: Record<'a' | 'e', FakeVariant>): Promise<void> {
  for (const id of IDS) for (const kind of KINDS) await variants[id].request(kind, 'warm');
}

describe('bench rounds', () => {
  describe('measureRounds', () => {
    it('runs blocks in the shuffled order of seed round + 1 with the assertions in request order', async () => {
      const { world, log, variants } = setUp();
      let next = 0;

      const result = await measureRounds({
        ids: IDS,
        variants,
        world,
        maxRounds: 4,
        budgetMs: 60_000,
        blockSize: 3,
        assertionOf: () => `u${next++}`,
      });

      const blocks = IDS.flatMap((id) => KINDS.map((kind) => ({ id, kind })));
      let n = 0;
      const expected = [0, 1, 2, 3].flatMap((round) =>
        shuffled(blocks, round + 1).flatMap(({ id, kind }) => [0, 1, 2].map(() => `${id} ${kind} u${n++}`)),
      );
      expect(result.rounds).toBe(4);
      expect(log).toEqual(expected);
    });

    it('gives request i of every block assertionOf(i), and afterRound the rounds and recorders so far', async () => {
      const { world, log, variants } = setUp();
      const seen: string[] = [];

      await measureRounds({
        ids: IDS,
        variants,
        world,
        maxRounds: 2,
        budgetMs: 60_000,
        blockSize: 2,
        assertionOf: (i) => `u${i}`,
        afterRound: (rounds, budget, recorders) => {
          seen.push(`${rounds} ${recorders.a.obo.count} ${recorders.e.app.count} ${budget.over()}`);
        },
      });

      expect(log.map((line) => line.split(' ')[2])).toEqual(
        Array.from({ length: 16 }, (_, j) => `u${j % 2}`),
      );
      expect(seen).toEqual(['1 2 2 false', '2 4 4 false']);
    });

    it('records every request and reports per series its requests and the calls per 1,000 made while measuring', async () => {
      const { world, variants } = setUp();
      await warmUp(variants);

      const result = await measureRounds({
        ids: IDS,
        variants,
        world,
        maxRounds: 5,
        budgetMs: 60_000,
        blockSize: 4,
        assertionOf: (i) => `u${i}`,
      });

      for (const id of IDS) for (const kind of KINDS) expect(result.recorders[id][kind].count).toBe(20);
      expect(result.recorders.a.obo.series().misses).toBe(0);
      expect(result.calls).toEqual({
        a: { requests: 40, storeReads: 1000, storeWrites: 500, kmsCalls: 1000, tokenCalls: 500 },
        e: { requests: 40, storeReads: 2000, storeWrites: 0, kmsCalls: 0, tokenCalls: 0 },
      });
    });

    it('stops when the budget is spent, and a run of no rounds has no rates', async () => {
      const { world, log, variants } = setUp();

      const run = measureRounds({
        ids: IDS,
        variants,
        world,
        maxRounds: 5,
        budgetMs: 0,
        blockSize: 4,
        assertionOf: (i) => `u${i}`,
      });

      await expect(run).rejects.toThrow(RangeError);
      expect(log).toEqual([]);
    });
  });
});
