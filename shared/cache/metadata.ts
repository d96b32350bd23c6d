/**
 * Per-result cache metadata, like MSAL.NET's `AuthenticationResultMetadata`: where one
 * request's token came from, why the stored partition did not serve it, and what each
 * step cost. Collected per request (never from process-wide counters), so it is right
 * under any concurrency. It holds no token, assertion, user id or store key.
 */
import type { AuthenticationResult } from '@azure/msal-node';
import type { EnvelopeFailure } from '../errors';
import type { WriteFailReason, WriteSkipReason } from './session/events';
import type { LoadSource, PartitionKind } from './session/snapshot';

export type { LoadSource, WriteFailReason, WriteSkipReason };

/** Where the token came from. */
export type TokenSource = 'l1' | 'store' | 'authority';

/**
 * Why the stored partition did not serve the token (set only when `tokenSource` is
 * `authority`). Stable: used as a metric dimension.
 */
export type StoreUnusedReason =
  /** No item for this partition (first request, signed out, or past its expiry). */
  | 'absent'
  /** The partition was read, but its access tokens had expired (MSAL refreshed or re-acquired). */
  | 'expired'
  /** The partition was read and held no token for these scopes (or `forceRefresh`). */
  | 'no-matching-token'
  /** The stored blob failed to open or authenticate; never served. See `rejectReason`. */
  | 'rejected'
  /** The store read failed (timeout, throttling, network). */
  | 'store-unavailable'
  /** The item exists but the key service could not unwrap its data key now. */
  | 'key-service-unavailable';

/** What happened to the write after MSAL changed the partition. */
export type WriteOutcome =
  /** MSAL changed nothing: nothing to write (every cache hit). */
  | 'none'
  | 'written'
  /** A write was not needed or not allowed (see `writeSkipReason`). */
  | 'skipped'
  /** The write failed and the stored item was left as it was (see `writeFailReason`). */
  | 'failed';

/** Durations of one acquisition's steps, in milliseconds (absent: the step did not run). */
export interface CacheTimings {
  /** The whole acquisition, from the call to the result. */
  readonly totalMs: number;
  /** Store reads (the load, plus re-reads after conflicts). */
  readonly storeReadMs?: number;
  /** Opening envelopes (data-key unwrap included). */
  readonly envelopeOpenMs?: number;
  /** Requests to the authority's token endpoint (network time as MSAL's client saw it). */
  readonly tokenCallMs?: number;
  /** Sealing and writing (all attempts, merge and backoff included). */
  readonly writeMs?: number;
}

/** Per-result cache metadata; see {@link cacheMetadataOf}. */
export interface CacheMetadata {
  /** The partition kind (never its key or its owner). */
  readonly partition: PartitionKind;
  readonly tokenSource: TokenSource;
  /**
   * True when this request joined an identical one in flight in this process and shared
   * its result: then every count below is zero (the leader's result made the calls).
   */
  readonly joined?: boolean;
  /** Where the partition was loaded from: `l1`, `store`, `absent`, `unreadable`, `unavailable`. */
  readonly loadedFrom: LoadSource;
  /** True when the token was matched in the opened partition without msal-node (README, Fast hits). */
  readonly fastHit?: boolean;
  readonly storeUnusedReason?: StoreUnusedReason;
  /** The envelope failure when `storeUnusedReason` is `rejected`. */
  readonly rejectReason?: EnvelopeFailure;
  readonly write: WriteOutcome;
  /** Why the write was skipped (the `reason` of `cache.write.skipped`). */
  readonly writeSkipReason?: WriteSkipReason;
  /** Why the write failed (the `reason` of `cache.write.failed`, named by the error's `ErrorCode`). */
  readonly writeFailReason?: WriteFailReason;
  /** Version conflicts met by this request's write (each one re-read and merged). */
  readonly conflicts: number;
  readonly storeReads: number;
  readonly storeWrites: number;
  /** Key-service calls this request started (a call shared with a concurrent request counts once, for the one that started it). */
  readonly keyServiceCalls: number;
  /** Token-endpoint requests this request made. */
  readonly tokenRequests: number;
  readonly timings: CacheTimings;
}

/** An MSAL result with the cache's metadata. */
export interface CachedAuthenticationResult extends AuthenticationResult {
  /** Where the token came from and what it cost. */
  readonly cache: CacheMetadata;
}

/**
 * The metadata of a result the token cache returned, or undefined for any other result
 * (a stub, a result from MSAL directly).
 * @example
 * const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes });
 * logger.info('token', { source: cacheMetadataOf(result)?.tokenSource });
 */
export function cacheMetadataOf(result: AuthenticationResult | undefined): CacheMetadata | undefined {
  const cache = (result as Partial<CachedAuthenticationResult> | undefined)?.cache;
  return cache && typeof cache === 'object' && typeof cache.tokenSource === 'string' ? cache : undefined;
}

/**
 * The metadata as flat log fields (`cacheSource`, `cacheReason`, `storeReadMs`, ...), safe
 * to log: kinds, reasons, counts and durations only.
 */
export function cacheLogFields(m: CacheMetadata): Record<string, string | number> {
  const fields: Record<string, string | number> = {
    partition: m.partition,
    cacheSource: m.tokenSource,
    cacheLoaded: m.loadedFrom,
    cacheWrite: m.write,
    storeReads: m.storeReads,
    storeWrites: m.storeWrites,
    conflicts: m.conflicts,
    keyServiceCalls: m.keyServiceCalls,
    tokenRequests: m.tokenRequests,
    cacheMs: round(m.timings.totalMs),
  };
  if (m.storeUnusedReason) fields.cacheReason = m.storeUnusedReason;
  if (m.rejectReason) fields.rejectReason = m.rejectReason;
  if (m.writeSkipReason) fields.writeSkipReason = m.writeSkipReason;
  if (m.writeFailReason) fields.writeFailReason = m.writeFailReason;
  for (const k of ['storeReadMs', 'envelopeOpenMs', 'tokenCallMs', 'writeMs'] as const) {
    const v = m.timings[k];
    if (v !== undefined) fields[k] = round(v);
  }
  return fields;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * What one request's session collects while it runs (mutable, internal). The facade turns
 * it into {@link CacheMetadata} when the acquisition ends.
 */
export class RequestTrace {
  storeReads = 0;
  storeWrites = 0;
  conflicts = 0;
  keyServiceCalls = 0;
  tokenRequests = 0;
  storeReadMs = 0;
  envelopeOpenMs = 0;
  tokenCallMs = 0;
  writeMs = 0;
  opened = false;
  wrote = false;
  rejectReason: EnvelopeFailure | undefined;
  writeSkipReason: WriteSkipReason | undefined;
  writeFailReason: WriteFailReason | undefined;
  /** Where the partition was first loaded from (the session's snapshot changes after a write). */
  loadedFrom: LoadSource | undefined;
  /** Why the load failed, when it did. */
  loadFailure: 'store-unavailable' | 'key-service-unavailable' | undefined;
  /** Latest access-token expiry (epoch s) of the loaded partition, read when a write needed the document. */
  loadedLatestExpiry: number | undefined;
  readonly started = performance.now();
}
