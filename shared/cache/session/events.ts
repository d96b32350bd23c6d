/**
 * The one events sink of a partition session: turns what the reader and the writer report
 * into metrics, log lines and the request's trace. Log messages, metric names and their
 * dimensions are stable (README "Metrics", docs/security.md); reasons come from the
 * library's own codes ({@link ErrorCode}, {@link EnvelopeFailure}, {@link KeyServiceFailure}).
 */
import { ErrorCode, EnvelopeError, KeyServiceError, KeyServiceFailure, TokenCacheError } from '../../errors';
import { Metric, type Logger, type Metrics } from '../../observability';
import type { RequestTrace } from '../metadata';
import type { ReadReport } from './reader';
import type { PartitionKind } from './snapshot';
import type { WriteReport } from './writer';

/**
 * The `reason` of `cache.write.failed`, by the failing error's {@link ErrorCode}: one name
 * per code, nothing else; any other error is `unexpected`.
 */
export const WriteFailReason = {
  [ErrorCode.ConflictRetriesExhausted]: 'conflict-retries-exhausted',
  [ErrorCode.StoreUnavailable]: 'store-unavailable',
  [ErrorCode.KeyService]: 'key-service',
  [ErrorCode.SizeLimit]: 'size-limit',
} as const satisfies Partial<Record<ErrorCode, string>>;

/** One of the {@link WriteFailReason} values, or `unexpected`. */
export type WriteFailReason = (typeof WriteFailReason)[keyof typeof WriteFailReason] | 'unexpected';

/** The `reason` of `cache.write.skipped`. */
export type WriteSkipReason =
  /** What MSAL holds now is what was loaded (after pruning). */
  | 'unchanged'
  /** After a conflict, the other writer had already stored all of it. */
  | 'merged-unchanged'
  /** The item is locked (key service down when it was read): never overwritten. */
  | 'unreadable-transient';

/** The `cache.write.failed` reason of `e`. */
export function writeFailReason(e: unknown): WriteFailReason {
  if (!(e instanceof TokenCacheError)) return 'unexpected';
  const code = e.code as keyof typeof WriteFailReason;
  return Object.hasOwn(WriteFailReason, code) ? WriteFailReason[code] : 'unexpected';
}

/**
 * The metrics a {@link DataKeyCache} behind partition sessions should count into: all of
 * them except `keyring.error`, which the session's sink counts (with the partition kind)
 * once per failed key-service call. Counting it in both places counted each unwrap failure
 * twice.
 */
export function keyErrorsCountedBySessions(metrics: Metrics): Metrics {
  const observe = metrics.observe?.bind(metrics);
  return {
    increment(name, value, tags) {
      if (name !== Metric.KeyError) metrics.increment(name, value, tags);
    },
    ...(observe ? { observe } : {}),
  };
}

/** Where the sink writes. */
export interface EventsContext {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** The events sink of one session (one partition, one request). */
export class SessionEvents {
  constructor(
    private readonly ctx: EventsContext,
    private readonly key: string,
    private readonly kind: PartitionKind,
    private readonly trace: RequestTrace,
  ) {}

  /** One read: L1 and store counts, timings, and what it found. */
  read(r: ReadReport): void {
    const { metrics } = this.ctx;
    const kind = this.kind;
    if (r.l1 === 'hit') {
      // Loaded from L1: no store read, no open, nothing else to report.
      metrics.increment(Metric.L1Hit, 1, { kind });
      return;
    }
    if (r.l1 === 'miss') metrics.increment(Metric.L1Miss, 1, { kind });
    if (r.storeCalled) {
      metrics.increment(Metric.StoreRead, 1, { kind });
      this.trace.storeReads += 1;
    }
    this.trace.storeReadMs += r.storeReadMs;
    if (r.opened) {
      this.trace.opened = true;
      this.trace.envelopeOpenMs += r.openMs;
    }
    this.trace.keyServiceCalls += r.keyServiceCalls;
    const s = r.snapshot;
    switch (s.state) {
      case 'loaded':
        return;
      case 'absent':
        if (s.reason === 'no-item') {
          metrics.increment(Metric.StoreReadMiss, 1, { kind });
          return;
        }
        metrics.increment(Metric.StoreError, 1, { kind, operation: 'read' });
        this.trace.loadFailure = 'store-unavailable';
        this.ctx.logger.warn('token cache read failed; acquiring without the cache', this.describe(r.error));
        return;
      case 'rejected':
        // Never served. Only ever replaced by a conditional write on this exact version.
        // An unknown key or a bad attestation: the key service refused the unwrap.
        if (r.error instanceof EnvelopeError && r.error.cause instanceof KeyServiceError) {
          this.keyServiceFailed(r.error.cause, r.keyServiceCalls > 0);
        }
        metrics.increment(Metric.EnvelopeRejected, 1, { kind, reason: s.reason });
        this.trace.rejectReason = s.reason;
        this.ctx.logger.error('stored token cache rejected; treating as a miss', this.describe(r.error));
        return;
      case 'locked':
        // The key service is down or refusing: the blob may be good. It is not overwritten.
        this.trace.loadFailure = 'key-service-unavailable';
        this.keyServiceFailed(r.error, r.keyServiceCalls > 0);
        this.ctx.logger.warn(
          'token cache could not be opened now; acquiring without the cache',
          this.describe(r.error),
        );
        return;
    }
  }

  /** One write (with its conflicts and retries). */
  wrote(r: WriteReport): void {
    const { metrics } = this.ctx;
    const kind = this.kind;
    if (r.conflicts > 0) {
      metrics.increment(Metric.StoreConflict, r.conflicts, { kind });
      this.trace.conflicts += r.conflicts;
    }
    if (r.storeWrites > 0) {
      metrics.increment(Metric.StoreWrite, r.storeWrites, { kind });
      this.trace.storeWrites += r.storeWrites;
      this.trace.wrote = true;
    }
    if (r.deleted) metrics.increment(Metric.StoreDelete, 1, { kind });
    this.trace.keyServiceCalls += r.keyServiceCalls;
    const result = r.result;
    switch (result.status) {
      case 'written':
        return;
      case 'merged-unchanged':
        return this.skipped('merged-unchanged');
      case 'locked':
        return this.skipped('unreadable-transient');
      case 'failed': {
        if (result.error instanceof KeyServiceError) {
          this.keyServiceFailed(result.error, result.keyServiceCallFailed);
        }
        const reason = writeFailReason(result.error);
        metrics.increment(Metric.WriteFailed, 1, { kind, reason });
        this.trace.writeFailReason = reason;
        this.ctx.logger.error('token cache write failed; the stored item was left as it was', {
          ...this.describe(result.error),
          reason,
        });
        return;
      }
    }
  }

  /** A write not made. */
  skipped(reason: WriteSkipReason): void {
    this.ctx.metrics.increment(Metric.WriteSkipped, 1, { kind: this.kind, reason });
    this.trace.writeSkipReason = reason;
  }

  /**
   * `keyring.error`, once per failure: a key-service call fails once for every request
   * waiting on it, so only the request that started the call counts it. An error that is
   * not a KeyServiceError never came from a key-service call, and counts as `unknown`.
   */
  private keyServiceFailed(error: unknown, startedTheCall: boolean): void {
    if (error instanceof KeyServiceError) {
      if (!startedTheCall) return;
      this.ctx.metrics.increment(Metric.KeyError, 1, { kind: this.kind, reason: error.reason });
      return;
    }
    this.ctx.metrics.increment(Metric.KeyError, 1, { kind: this.kind, reason: KeyServiceFailure.Unknown });
  }

  private describe(e: unknown): Record<string, string> {
    // Messages of our errors and the SDKs' carry no secrets; keys are hashes.
    return {
      partition: this.kind,
      key: this.key,
      error: e instanceof Error ? e.name : 'unknown',
      code: (e as { code?: string } | undefined)?.code ?? '',
      detail: e instanceof Error ? e.message : String(e),
    };
  }
}
