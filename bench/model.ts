/**
 * The shape of bench/results/latest.json: what every scenario produces and the report
 * renders. Times are milliseconds, sizes bytes.
 */
import type { HerdResult } from './scenarios/herd';
import type { TargetResult } from './targets';
import type { PercentileName, Summary } from './stats';
import type { Kind, VariantId } from './variants';

/** One measured series: wall-clock latency and the measuring process's CPU time per request. */
export interface Series {
  readonly wall: Summary;
  readonly cpu: Summary;
  /** Requests that MSAL did not serve from cache (should be 0 when warm). */
  readonly misses: number;
}

/** Calls per 1,000 warm requests of one variant (both kinds together). */
export interface CallRates {
  readonly requests: number;
  readonly storeReads: number;
  readonly storeWrites: number;
  readonly kmsCalls: number;
  readonly tokenCalls: number;
}

/** Item 1 and 2. */
export interface LatencyResult {
  /** Users with a partition in the store during this section (and in (d)'s shared blob). */
  readonly users: number;
  readonly warmupPerSeries: number;
  readonly blockSize: number;
  readonly rounds: number;
  readonly series: Record<VariantId, Record<Kind, Series>>;
  /** Wall-clock percentile ratio of each variant to the floor (e) of the same kind. */
  readonly ratios: Record<VariantId, Record<Kind, Record<PercentileName, number>>>;
  /** CPU-time p50 ratio to the floor, the noise-robust figure. */
  readonly cpuRatioP50: Record<VariantId, Record<Kind, number>>;
  readonly callsPerThousand: Partial<Record<VariantId, CallRates>>;
  /** The peer without the `getAllAccounts()` priming: OBO token calls per 1,000 requests. */
  readonly peerUnprimedObo: { readonly requests: number; readonly tokenCallsPerThousand: number };
}

/** Item 3, one level of users in the store. */
export interface ScaleLevel {
  readonly users: number;
  /** (a) on DynamoDB, OBO hits. */
  readonly a: Series;
  /** The floor measured interleaved with (a) at this level. */
  readonly floor: Series;
  readonly aRatio: Record<PercentileName, number>;
  /** (d) with its blob on DynamoDB; undefined when the blob does not fit in one item. */
  readonly dDynamo?: Series;
  readonly dDynamoRatio?: Record<PercentileName, number>;
  /** (d) with its blob in process memory: no I/O at all, a lower bound of any store. */
  readonly dMemory: Series;
  readonly dMemoryRatio: Record<PercentileName, number>;
  /** Size of (d)'s shared blob, plain MSAL JSON. */
  readonly naiveBlobBytes: number;
  /** Why (d) could not be stored on DynamoDB at this level, if it could not. */
  readonly dDynamoRejected?: string;
  /** (d) in memory, primed with msal-node's public getAllAccounts() instead (first level only). */
  readonly dMemoryGetAllAccounts?: Series;
}

export interface ScaleResult {
  readonly levels: readonly ScaleLevel[];
  /** p50 at the last level / p50 at the first, per series. */
  readonly growthP50: { readonly a: number; readonly aRatio: number; readonly dMemory: number };
}

/** Item 4, one variant. */
export interface ContentionVariantResult {
  readonly rounds: number;
  /** The conflict-retry settings of (a), when not the defaults. */
  readonly conflictRetries?: {
    readonly maxAttempts?: number;
    readonly baseDelayMs?: number;
    readonly maxDelayMs?: number;
  };
  readonly writersPerRound: number;
  /** Tokens acquired (seed + writers) over all rounds. */
  readonly tokensAcquired: number;
  /** Acquired tokens missing from the stored partition after their round. */
  readonly tokensLost: number;
  /** Contended requests that failed outright (no token: not counted as lost). */
  readonly requestErrors: number;
  /** Store writes that succeeded. */
  readonly writes: number;
  /** Writes refused by the version check (each leads to a re-read, merge and retry). */
  readonly conflicts: number;
  /** Conflicts per contended request (= retries per write). */
  readonly conflictsPerWrite: number;
  /** Store write attempts per contended request (1 = no conflict). */
  readonly writeAttempts: Summary;
  /** Requests whose write gave up (retries exhausted or other failure). */
  readonly writeFailures: number;
  /** Requests that found their tokens already stored by another writer after a merge. */
  readonly mergedUnchanged: number;
  /** Latency of the contended requests (token call included). */
  readonly latency: Summary;
}

export interface ContentionResult {
  readonly a: ContentionVariantResult;
  readonly c: ContentionVariantResult;
  /** (a) with other conflict-retry settings (a proposed default). */
  readonly aTuned?: ContentionVariantResult;
}

/** Item 5 (issue 16 point 4), one bundle as run. */
export interface ColdStartEntry {
  /** Stable id: `web-api`, `web-api+maps`, `daemon`, `sdk-floor`. */
  readonly id: string;
  readonly entry: string;
  readonly bundleBytes: number;
  readonly bundleGzipBytes: number;
  /** 0: no source map. */
  readonly sourceMapBytes: number;
  /** NODE_OPTIONS of the fresh processes ('' for none). */
  readonly nodeOptions: string;
  /** Fresh process each time: require() of the bundle. */
  readonly importMs?: Summary;
  /** Fresh process each time: the first invocation after the import (not for the SDK floor). */
  readonly firstRequestMs?: Summary;
  /** The second invocation in the same process (warm), for comparison. */
  readonly secondRequestMs?: Summary;
  readonly note?: string;
}

export interface ColdStartResult {
  /** The build options of infra/build/bundle.ts the bundles were built with (plugins named). */
  readonly esbuild: Record<string, unknown>;
  readonly entries: readonly ColdStartEntry[];
  /** import p50 of `web-api` / import p50 of `sdk-floor`. */
  readonly importVsSdkFloor?: number;
  readonly note?: string;
}

/** The delayed-network series, one one-way delay. */
export interface NetworkDelayLevel {
  readonly delayMs: number;
  readonly rounds: number;
  /** (a) L1 off, (e) raw SDK GetItem, (f) store floor; all through the proxy. */
  readonly series: Record<'a' | 'e' | 'f', Record<Kind, Series>>;
  readonly aVsStoreFloorP50: Record<Kind, number>;
  readonly aVsSdkFloorP50: Record<Kind, number>;
}

export interface NetworkResult {
  readonly levels: readonly NetworkDelayLevel[];
}

/** One (variant, active callers) series of the active-callers section. */
export interface ActiveCallersSeries {
  readonly variant: 'a' | 'b';
  readonly callers: number;
  readonly series: Series;
  /** Store reads per measured request (1 for (a); below 1 where (b)'s L1 answered). */
  readonly storeReadsPerRequest: number;
}

export interface ActiveCallersResult {
  readonly levels: readonly number[];
  readonly rounds: number;
  readonly series: readonly ActiveCallersSeries[];
  /** p50 at the largest level / p50 at the smallest, per variant. */
  readonly growthP50: { readonly a: number; readonly b: number };
}

/** Item 6, one partition. */
export interface BlobSizeRow {
  readonly partition: string;
  /** MSAL's JSON of the partition (what the peer stores). */
  readonly plainJsonBytes: number;
  /** The envelope (a) stores. */
  readonly envelopeBytes: number;
  /** The DynamoDB item of (a), counted as DynamoDB counts it. */
  readonly itemBytes: number;
  /** The DynamoDB item of the peer (c) for the same partition. */
  readonly peerItemBytes: number;
}

export interface Environment {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly node: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly loadAverageStart: readonly number[];
  readonly loadAverageEnd: readonly number[];
  readonly commit: string;
  readonly msalNode: string;
  readonly command: string;
}

export interface BenchResults {
  readonly environment: Environment;
  readonly latency?: LatencyResult;
  readonly scale?: ScaleResult;
  readonly contention?: ContentionResult;
  readonly coldStart?: ColdStartResult;
  readonly blobSizes?: readonly BlobSizeRow[];
  /** P processes x C concurrent cold requests for one caller (issue 12). */
  readonly herd?: HerdResult;
  /** DynamoDB behind a 1 ms and a 5 ms proxy (issue 16). */
  readonly network?: NetworkResult;
  /** 100 and 5,000 distinct callers in use (issue 16). */
  readonly activeCallers?: ActiveCallersResult;
  /** The capacity model against its simulation (issue 19; bench/capacity/section.ts). */
  readonly scaleModel?: { readonly error: number };
  /** Issue 16's targets (bench/targets.ts): exactly its ids, in order. */
  readonly targets?: readonly TargetResult[];
  /** Sections skipped or cut short, and why. */
  readonly notes: string[];
}
