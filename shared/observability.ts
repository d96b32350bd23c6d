/**
 * Logging and metrics seams. The library logs structured records through {@link Logger}
 * and counts events through {@link Metrics}; both default to safe built-ins. Nothing the
 * library logs contains a token, an assertion, a client secret or a data key: fields are
 * ids, hashes, counts, reasons and durations only.
 */

/** Structured fields of a log record. Never put secrets here. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** A minimal structured logger (console, pino, Powertools Logger all fit). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/**
 * Logger writing one JSON line per record to stdout/stderr, the format CloudWatch and
 * Application Insights both parse.
 * @example const logger = new JsonLogger({ level: 'info', base: { service: 'web-api' } });
 */
export class JsonLogger implements Logger {
  private readonly rank: number;
  constructor(
    private readonly options: {
      /** @default 'warn' */ level?: LogLevel;
      /** Fields added to every record. */ base?: LogFields;
      /** Where lines go. @default console.log / console.error */ write?: (line: string) => void;
    } = {},
  ) {
    this.rank = levelRank[options.level ?? 'warn'];
  }
  debug(message: string, fields?: LogFields): void {
    this.emit('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.emit('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.emit('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.emit('error', message, fields);
  }
  private emit(level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void {
    if (levelRank[level] < this.rank) return;
    const line = JSON.stringify({ level, message, ...this.options.base, ...fields });
    if (this.options.write) this.options.write(line);
    else if (level === 'error' || level === 'warn') console.error(line);
    else console.log(line);
  }
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Metric names the library emits. Stable: dashboards and tests use them. */
export const Metric = {
  StoreRead: 'store.read',
  StoreReadMiss: 'store.read.miss',
  StoreWrite: 'store.write',
  StoreDelete: 'store.delete',
  StoreConflict: 'store.conflict',
  StoreError: 'store.error',
  WriteSkipped: 'cache.write.skipped',
  WriteFailed: 'cache.write.failed',
  L1Hit: 'l1.hit',
  L1Miss: 'l1.miss',
  KeyGenerate: 'keyring.generate',
  KeyUnwrap: 'keyring.unwrap',
  KeyError: 'keyring.error',
  EnvelopeRejected: 'envelope.rejected',
  CacheHit: 'cache.hit',
  CacheMiss: 'cache.miss',
  MetadataFetch: 'authority.metadata.fetch',
  /** A request joined an identical one in flight in this process (single flight). */
  FlightJoined: 'flight.joined',
  /** A miss passed the cross-instance lease; tag `outcome` (holder, served, takeover, timeout, unavailable). */
  Lease: 'lease',
  /** Store calls made for leases; tag `operation` (acquire, release). */
  StoreLease: 'store.lease',
  /** A client assertion fetched from the platform identity (STS, managed identity). */
  AssertionFetch: 'assertion.fetch',
  /** A client assertion served from the process cache. */
  AssertionCached: 'assertion.cached',
  /** A client assertion fetch failed (tag `reason`). */
  AssertionError: 'assertion.error',
  /** One per acquisition; dimensions `kind`, `source` (l1, store, authority) and, from the authority, `reason`. */
  TokenSource: 'cache.token.source',
  /** Token-endpoint requests (one per miss, refresh or code redemption). */
  TokenRequest: 'authority.token.request',
  /** Milliseconds of one acquisition (observed, not counted); dimensions `kind`, `source`. */
  AcquireDuration: 'cache.acquire.duration',
} as const;
export type MetricName = (typeof Metric)[keyof typeof Metric];

/** Counter sink (CloudWatch EMF, Application Insights, StatsD, or {@link CounterMetrics}). */
export interface Metrics {
  increment(name: MetricName, value?: number, tags?: Record<string, string>): void;
  /** Records one measurement (a duration in milliseconds). Optional: counters-only sinks omit it. */
  observe?(name: MetricName, value: number, tags?: Record<string, string>): void;
}

/** A metrics sink that drops everything. */
export const noMetrics: Metrics = { increment() {} };

/**
 * In-memory counters, keyed by `name` and by `name{tag=value,...}`.
 * @example
 * const metrics = new CounterMetrics();
 * // ... after a request
 * metrics.get('store.read'); // 1
 * metrics.get('envelope.rejected', { reason: 'authentication-failed' });
 */
export class CounterMetrics implements Metrics {
  private readonly counts = new Map<string, number>();

  increment(name: MetricName, value = 1, tags?: Record<string, string>): void {
    this.add(name, value);
    if (tags) this.add(CounterMetrics.key(name, tags), value);
  }

  /** Count for `name`, or for `name` with exactly these tags. */
  get(name: MetricName, tags?: Record<string, string>): number {
    return this.counts.get(tags ? CounterMetrics.key(name, tags) : name) ?? 0;
  }

  /** A copy of every counter. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  reset(): void {
    this.counts.clear();
  }

  private add(key: string, value: number): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + value);
  }

  private static key(name: string, tags: Record<string, string>): string {
    const parts = Object.keys(tags)
      .sort()
      .map((k) => `${k}=${tags[k]}`);
    return `${name}{${parts.join(',')}}`;
  }
}
