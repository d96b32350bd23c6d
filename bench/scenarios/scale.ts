/**
 * Item 3: hit latency of (a) and (d) with 100, 1,000 and 10,000 users in the store.
 *
 * (a): the real users' partitions plus filler partitions of the same size, so the table
 * holds that many users; requests go to the real users, interleaved with the floor at the
 * same level (the ratio cancels drift of a shared machine between levels).
 * (d): the shared blob holds every user. Once it passes DynamoDB's 400 KB item limit it
 * cannot be stored at all; it is then measured with the blob in process memory, which is
 * a lower bound for any store (no I/O, only MSAL deserializing the blob).
 */
import { DYNAMODB_MAX_ITEM_BYTES } from '../../shared/store/limits';
import type { ScaleLevel, ScaleResult } from '../model';
import { Budget, progress, Recorder } from '../measure';
import { addFillers, naiveJsonFor, peerItemBytes, type Population } from '../population';
import { growth, ratios, shuffled } from '../stats';
import {
  DynamoCacheClient,
  MemoryCacheClient,
  PluginVariant,
  type MsalSetup,
  type ProjectVariant,
  type Variant,
} from '../variants';
import type { World } from '../world';

export interface ScaleOptions {
  readonly world: World;
  readonly a: ProjectVariant;
  /** The floor at each level: the raw SDK GetItem of (a)'s own item. */
  readonly floor: Variant;
  readonly setup: MsalSetup;
  readonly population: Population;
  readonly levels: readonly number[];
  readonly blockSize: number;
  readonly maxRounds: number;
  /** Budget of the (a)/floor measurement at each level. */
  readonly levelBudgetMs: number;
  /** Requests and budget of (d) at each level (it gets slow fast). */
  readonly naiveMaxRequests: number;
  readonly naiveBudgetMs: number;
}

const SCALE_NAIVE_KEY = 'naive:scale';

export async function runScale(options: ScaleOptions): Promise<ScaleResult> {
  const { world, a, floor, population, blockSize } = options;
  const assertions = population.users.map((u) => u.assertion);
  const user = (i: number): string => assertions[i % assertions.length];
  const blobBytes = population.users[0].envelopeBytes;
  let inStore = population.users.length;
  const levels: ScaleLevel[] = [];

  for (const level of options.levels) {
    if (level > inStore) {
      progress(`scale: filling the table to ${level} users`);
      await addFillers(world, { from: inStore, to: level, blobBytes });
      inStore = level;
    }

    // (a) and the floor, interleaved.
    const rec = { a: new Recorder(), floor: new Recorder() };
    for (let i = 0; i < 10; i++) {
      await a.request('obo', user(i));
      await floor.request('obo', user(i));
    }
    const budget = new Budget(options.levelBudgetMs);
    let cursor = 0;
    for (let round = 0; round < options.maxRounds && !budget.over(); round++) {
      for (const which of shuffled(['a', 'floor'] as const, level + round)) {
        for (let i = 0; i < blockSize; i++) {
          const assertion = user(cursor + i);
          await rec[which].time(() =>
            which === 'a' ? a.request('obo', assertion) : floor.request('obo', assertion),
          );
        }
      }
      cursor += blockSize;
    }
    const aSeries = rec.a.series();
    const floorSeries = rec.floor.series();
    progress(
      `scale: ${level} users: (a) p50 ${aSeries.wall.p50.toFixed(2)} ms, floor p50 ${floorSeries.wall.p50.toFixed(2)} ms (n=${aSeries.wall.n})`,
    );

    // (d): the shared blob of `level` users.
    const naiveJson = naiveJsonFor(population, level);
    const naiveBytes = Buffer.byteLength(naiveJson, 'utf8');
    let dDynamo: ScaleLevel['dDynamo'];
    let dDynamoRejected: string | undefined;
    const dynamoClient = new DynamoCacheClient(world.dynamoConfig, world.info.dynamo.tableName);
    const itemBytes = peerItemBytes(SCALE_NAIVE_KEY, naiveJson);
    try {
      // Past 1 MB, do not ship megabytes to be refused: the size alone decides.
      if (itemBytes > 1024 * 1024) throw Object.assign(new Error('too large'), { name: 'NotSent' });
      await dynamoClient.set(SCALE_NAIVE_KEY, naiveJson);
      const d = new PluginVariant('d', options.setup, dynamoClient, () => SCALE_NAIVE_KEY);
      dDynamo = (await measureNaive(d, user, options)).series();
    } catch (e) {
      const name = (e as { name?: string }).name ?? 'Error';
      dDynamoRejected =
        `item of ${itemBytes} bytes > ${DYNAMODB_MAX_ITEM_BYTES} (DynamoDB's item limit)` +
        (name === 'NotSent' ? '' : `; the store answered ${name}`);
    } finally {
      dynamoClient.destroy();
    }
    const memoryClient = new MemoryCacheClient();
    memoryClient.items.set(SCALE_NAIVE_KEY, naiveJson);
    const dMem = new PluginVariant('d', options.setup, memoryClient, () => SCALE_NAIVE_KEY);
    const dMemory = (await measureNaive(dMem, user, options)).series();
    // The public-API priming (getAllAccounts) on the same blob, at the first level only: it
    // grows with the square of the accounts.
    let dMemoryGetAllAccounts: ScaleLevel['dMemoryGetAllAccounts'];
    if (levels.length === 0) {
      const viaAccounts = new PluginVariant(
        'd',
        options.setup,
        memoryClient,
        () => SCALE_NAIVE_KEY,
        'getAllAccounts',
      );
      dMemoryGetAllAccounts = (
        await measureNaive(viaAccounts, user, { ...options, naiveMaxRequests: 5 })
      ).series();
      progress(
        `scale: ${level} users: (d) primed with getAllAccounts() p50 ${dMemoryGetAllAccounts.wall.p50.toFixed(1)} ms`,
      );
    }
    progress(
      `scale: ${level} users: (d) blob ${(naiveBytes / 1024).toFixed(0)} KiB, in memory p50 ${dMemory.wall.p50.toFixed(1)} ms (n=${dMemory.wall.n})` +
        (dDynamo
          ? `, on DynamoDB p50 ${dDynamo.wall.p50.toFixed(1)} ms`
          : ', does not fit in a DynamoDB item'),
    );

    levels.push({
      users: level,
      a: aSeries,
      floor: floorSeries,
      aRatio: ratios(aSeries.wall, floorSeries.wall),
      ...(dDynamo ? { dDynamo, dDynamoRatio: ratios(dDynamo.wall, floorSeries.wall) } : {}),
      dMemory,
      dMemoryRatio: ratios(dMemory.wall, floorSeries.wall),
      naiveBlobBytes: naiveBytes,
      ...(dDynamoRejected ? { dDynamoRejected } : {}),
      ...(dMemoryGetAllAccounts ? { dMemoryGetAllAccounts } : {}),
    });
  }

  const first = levels[0];
  const last = levels[levels.length - 1];
  return {
    levels,
    growthP50: {
      a: growth(first.a.wall.p50, last.a.wall.p50),
      aRatio: growth(first.aRatio.p50, last.aRatio.p50),
      dMemory: growth(first.dMemory.wall.p50, last.dMemory.wall.p50),
    },
  };
}

async function measureNaive(
  d: PluginVariant,
  user: (i: number) => string,
  options: ScaleOptions,
): Promise<Recorder> {
  const rec = new Recorder();
  await d.request('obo', user(0)); // warm-up
  const budget = new Budget(options.naiveBudgetMs);
  for (let i = 1; i <= options.naiveMaxRequests && (i <= 3 || !budget.over()); i++) {
    await rec.time(() => d.request('obo', user(i)));
  }
  return rec;
}
