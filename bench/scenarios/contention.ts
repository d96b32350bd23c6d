/**
 * Item 4: 32 concurrent writers on one partition, 10 rounds, for (a) and the peer (c).
 *
 * Each round is one user's OBO partition (a fresh user per round, so every round starts
 * from the same state): one writer stores a seed token, then 32 warm containers acquire a
 * token for 32 different downstream scopes at once (each a cache miss, a token call and a
 * write). After the round, the stored partition is opened and every token acquired in the
 * round is looked for. (a) writes conditionally and merges on conflict; the peer
 * overwrites (last writer wins). (a) runs with its default conflict retries and, to test
 * a proposed default, with more attempts.
 */
import type { HttpsNetworkClient } from '../../shared/cache/http';
import type { CacheDocument } from '../../shared/cache/cache-document';
import type { TokenCacheOptions } from '../../shared/cache/types';
import { Metric, type MetricName } from '../../shared/observability';
import type { BlobSizeRow, ContentionResult, ContentionVariantResult } from '../model';
import { Budget, progress } from '../measure';
import { mapLimit, PartitionReader, peerItemBytes, userOid } from '../population';
import { elapsedMs, summarize } from '../stats';
import {
  DynamoCacheClient,
  OBO_SCOPE,
  PluginVariant,
  ProjectVariant,
  peerKey,
  type MsalSetup,
} from '../variants';
import { BENCH_CLIENT_ID, type World } from '../world';

type ConflictRetries = NonNullable<TokenCacheOptions['conflictRetries']>;

export interface ContentionOptions {
  readonly world: World;
  readonly setup: MsalSetup;
  readonly network: HttpsNetworkClient;
  readonly writers: number;
  readonly rounds: number;
  /** Also run (a) with these conflict retries, for this many rounds (a proposed default). */
  readonly tuned?: { readonly retries: ConflictRetries; readonly rounds: number };
  /** Each variant stops starting rounds after this long (reported). */
  readonly variantBudgetMs: number;
}

const scopeOf = (round: number, writer: number): string =>
  `api://bench-contention-r${round}-w${writer}/.default`;

export async function runContention(
  options: ContentionOptions,
): Promise<{ result: ContentionResult; blobSizes: BlobSizeRow[] }> {
  const { world, writers, rounds } = options;
  const tunedRounds = options.tuned?.rounds ?? 0;
  // Fresh users: the rounds of each variant, and one warm-up user per (a) container.
  const oids = Array.from({ length: 2 * rounds + tunedRounds + 2 * writers }, (_, i) =>
    userOid('user', 900_000 + i),
  );
  const assertions = await world.mint(oids, BENCH_CLIENT_ID);
  const take = (n: number): string[] => assertions.splice(0, n);
  const roundsA = take(rounds);
  const roundsC = take(rounds);
  const roundsT = take(tunedRounds);
  const warmA = take(writers);
  const warmT = take(writers);
  const blobSizes: BlobSizeRow[] = [];

  const a = await contendProject(options, roundsA, warmA, undefined, blobSizes);
  const c = await contendPeer(options, roundsC);
  const aTuned = options.tuned
    ? await contendProject(options, roundsT, warmT, options.tuned.retries, [])
    : undefined;
  return { result: { a, c, ...(aTuned ? { aTuned } : {}) }, blobSizes };
}

/** (a): `writers` warm containers (own store and KMS clients, data key and metadata fetched). */
async function contendProject(
  options: ContentionOptions,
  roundUsers: readonly string[],
  warmUsers: readonly string[],
  retries: ConflictRetries | undefined,
  blobSizes: BlobSizeRow[],
): Promise<ContentionVariantResult> {
  const { world, writers } = options;
  const label = retries ? `(a), ${retries.maxAttempts} attempts` : '(a)';
  const containers = Array.from(
    { length: writers },
    () =>
      new ProjectVariant('a', world, options.network, {
        countWrites: true,
        ...(retries ? { conflictRetries: retries } : {}),
      }),
  );
  progress(`contention: warming ${writers} containers of ${label}`);
  await mapLimit(containers, 4, (c, i) =>
    c.cache.acquireTokenOnBehalfOf({ assertion: warmUsers[i], scopes: [OBO_SCOPE] }),
  );
  for (const c of containers) c.metrics.reset();
  const reader = new PartitionReader(world);
  const rounds = new ContendedRounds();
  const attempts: number[] = [];
  let seeds = 0;
  try {
    await rounds.each(roundUsers, options.variantBudgetMs, async (assertion, round) => {
      const seed = await containers[0].cache.acquireTokenOnBehalfOf({ assertion, scopes: [OBO_SCOPE] });
      seeds++;
      const before = containers.map((c) => c.counting!.writeAttempts);
      const tokens = await rounds.contend(containers, round, (c, scope) =>
        c.cache.acquireTokenOnBehalfOf({ assertion, scopes: [scope] }),
      );
      containers.forEach((c, i) => attempts.push(c.counting!.writeAttempts - before[i]));
      const stored = await reader.open(containers[0].cache.storeKeyOf({ kind: 'obo', assertion }), 'obo');
      const expected = rounds.check(seed.accessToken, tokens, stored?.json);
      if (round === roundUsers.length - 1 && stored) {
        blobSizes.push({
          partition: `OBO, ${expected} access tokens (after contention)`,
          plainJsonBytes: Buffer.byteLength(stored.json, 'utf8'),
          envelopeBytes: stored.envelopeBytes,
          itemBytes: stored.itemBytes,
          peerItemBytes: peerItemBytes(peerKey(assertion), stored.json),
        });
      }
    });
    const { run: roundsRun, lost, acquired, requestErrors, latencies } = rounds;
    const total = (name: MetricName, tags?: Record<string, string>): number =>
      containers.reduce((sum, c) => sum + c.metrics.get(name, tags), 0);
    const conflicts = total(Metric.StoreConflict);
    const contended = roundsRun * writers;
    const result: ContentionVariantResult = {
      rounds: roundsRun,
      ...(retries ? { conflictRetries: retries } : {}),
      writersPerRound: writers,
      tokensAcquired: acquired,
      tokensLost: lost,
      requestErrors,
      writes: total(Metric.StoreWrite) - seeds,
      conflicts,
      conflictsPerWrite: contended ? conflicts / contended : 0,
      writeAttempts: summarize(attempts.length ? attempts : [0]),
      writeFailures: total(Metric.WriteFailed),
      mergedUnchanged: total(Metric.WriteSkipped, { kind: 'obo', reason: 'merged-unchanged' }),
      latency: summarize(latencies.length ? latencies : [0]),
    };
    progress(
      `contention: ${label}: ${roundsRun} rounds, lost ${lost}/${acquired} tokens, ${conflicts} conflicts ` +
        `(${result.conflictsPerWrite.toFixed(2)} per write, max ${result.writeAttempts.max} attempts), ` +
        `${result.writeFailures} failed writes, ${requestErrors} failed requests`,
    );
    return result;
  } finally {
    reader.close();
    for (const c of containers) c.close();
  }
}

/** (c): `writers` containers of the peer, each with its own DynamoDB client. */
async function contendPeer(
  options: ContentionOptions,
  roundUsers: readonly string[],
): Promise<ContentionVariantResult> {
  const { world, writers } = options;
  const peers = Array.from(
    { length: writers },
    () =>
      new PluginVariant(
        'c',
        options.setup,
        new DynamoCacheClient(world.dynamoConfig, world.info.dynamo.tableName),
        (_kind, assertion) => peerKey(assertion),
      ),
  );
  const rounds = new ContendedRounds();
  let writes = 0;
  try {
    await rounds.each(roundUsers, options.variantBudgetMs, async (assertion, round) => {
      const seed = await peers[0].acquire('obo', assertion, OBO_SCOPE);
      const writesBefore = peers.reduce((n, p) => n + p.storeCounts().writes, 0);
      const tokens = await rounds.contend(peers, round, (p, scope) => p.acquire('obo', assertion, scope));
      writes += peers.reduce((n, p) => n + p.storeCounts().writes, 0) - writesBefore;
      rounds.check(seed.accessToken, tokens, await peers[0].client.get(peerKey(assertion)));
    });
    const { run: roundsRun, lost, acquired, requestErrors, latencies } = rounds;
    progress(`contention: (c): ${roundsRun} rounds, lost ${lost}/${acquired} tokens (last writer wins)`);
    return {
      rounds: roundsRun,
      writersPerRound: writers,
      tokensAcquired: acquired,
      tokensLost: lost,
      requestErrors,
      writes,
      conflicts: 0,
      conflictsPerWrite: 0,
      writeAttempts: summarize([1]),
      writeFailures: 0,
      mergedUnchanged: 0,
      latency: summarize(latencies.length ? latencies : [0]),
    };
  } finally {
    for (const p of peers) p.close();
  }
}

/** The rounds of one variant and what they count alike for (a) and (c). */
class ContendedRounds {
  readonly latencies: number[] = [];
  /** Rounds started. */
  run = 0;
  lost = 0;
  acquired = 0;
  requestErrors = 0;

  /** Runs `round` for each of `users` in turn (one round each) until `budgetMs` is spent. */
  async each(
    users: readonly string[],
    budgetMs: number,
    round: (assertion: string, round: number) => Promise<void>,
  ): Promise<void> {
    const budget = new Budget(budgetMs);
    for (const assertion of users) {
      if (budget.over()) break;
      await round(assertion, this.run++);
    }
  }

  /**
   * Every writer at once acquires a token for its own scope of `round`, each timed; returns
   * the tokens acquired and counts the requests that failed.
   */
  async contend<W>(
    writers: readonly W[],
    round: number,
    acquire: (writer: W, scope: string) => Promise<{ readonly accessToken: string }>,
  ): Promise<string[]> {
    const settled = await Promise.allSettled(
      writers.map(async (writer, w) => {
        const t0 = process.hrtime.bigint();
        const r = await acquire(writer, scopeOf(round, w));
        this.latencies.push(elapsedMs(t0));
        return r.accessToken;
      }),
    );
    const tokens = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    this.requestErrors += settled.length - tokens.length;
    return tokens;
  }

  /** Counts the seed and `tokens` as acquired and those missing from the stored JSON as lost; returns how many were acquired. */
  check(seed: string, tokens: readonly string[], storedJson: string | undefined): number {
    const present = secretsIn(storedJson);
    const expected = [seed, ...tokens];
    this.acquired += expected.length;
    this.lost += expected.filter((t) => !present.has(t)).length;
    return expected.length;
  }
}

/** The access-token secrets in an MSAL JSON document. */
function secretsIn(json: string | undefined): Set<string> {
  if (!json) return new Set();
  const doc = JSON.parse(json) as CacheDocument;
  return new Set(
    Object.values(doc['AccessToken'] ?? {})
      .map((e) => e['secret'])
      .filter((s): s is string => typeof s === 'string'),
  );
}
