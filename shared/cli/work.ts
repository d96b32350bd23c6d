/**
 * How the CLI walks a store: bounded parallelism over a scan, an optional rate limit on
 * store operations, retries with backoff, a clean stop on interrupt, and progress with rate
 * and ETA.
 */
import { KeyServiceError, KeyServiceFailure, StoreUnavailableError } from '../errors';
import { withBackoff, type ScanSource, type ScannedItem } from './scan';

/** Spaces store operations to at most `perSecond` (a simple pacer; no bursts). */
export class RateLimiter {
  private next = 0;
  private readonly intervalMs: number;

  constructor(perSecond: number | undefined) {
    this.intervalMs = perSecond ? 1000 / perSecond : 0;
  }

  /** Resolves when the caller may make its next operation. */
  async take(): Promise<void> {
    if (this.intervalMs === 0) return;
    const now = performance.now();
    const at = Math.max(now, this.next);
    this.next = at + this.intervalMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}

/** Transient store and key-service failures are retried; anything else is not. */
export function transient(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  return (
    error instanceof KeyServiceError &&
    (error.reason === KeyServiceFailure.Throttled ||
      error.reason === KeyServiceFailure.Unavailable ||
      error.reason === KeyServiceFailure.Unknown)
  );
}

/** Where progress goes: a line on stderr, rewritten on a TTY. */
export class Progress {
  private started = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private lastLength = 0;
  /** Items seen so far. */
  done = 0;
  /** Items expected, when the store could say. */
  total: number | undefined;
  /** Retries of failed store pages and operations. */
  retries = 0;

  constructor(
    private readonly label: string,
    private readonly write: ((text: string) => void) | undefined,
    private readonly tty: boolean,
    private readonly detail: () => string = () => '',
  ) {}

  start(): void {
    this.started = performance.now();
    if (!this.write) return;
    this.timer = setInterval(() => this.render(false), this.tty ? 250 : 2000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.write) this.render(true);
  }

  /** Items per second since the start. */
  rate(): number {
    const seconds = (performance.now() - this.started) / 1000;
    return seconds > 0 ? this.done / seconds : 0;
  }

  elapsedMs(): number {
    return performance.now() - this.started;
  }

  private render(final: boolean): void {
    const rate = this.rate();
    const eta =
      this.total !== undefined && rate > 0 && this.total > this.done
        ? ` ETA ${formatDuration(((this.total - this.done) / rate) * 1000)}`
        : '';
    const of = this.total !== undefined ? `/${this.total.toLocaleString('en-US')}` : '';
    const detail = this.detail();
    const line =
      `${this.label}: ${this.done.toLocaleString('en-US')}${of} items, ${Math.round(rate).toLocaleString('en-US')}/s${final ? '' : eta}` +
      `${this.retries > 0 ? `, ${this.retries} retries` : ''}${detail ? `, ${detail}` : ''}`;
    if (this.tty) {
      this.write!(`\r${line.padEnd(this.lastLength)}${final ? '\n' : ''}`);
      this.lastLength = line.length;
    } else {
      this.write!(`${line}\n`);
    }
  }
}

/** `1m 05s`, `12s`, `850 ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1000);
  return seconds < 60
    ? `${seconds}s`
    : `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
}

/** Options of {@link forEachItem}. */
export interface WalkOptions {
  /** Items handled at once. */
  readonly concurrency: number;
  /** Stops taking new items; those in flight finish. */
  readonly signal?: AbortSignal;
  readonly progress: Progress;
}

/** What a walk saw. */
export interface WalkSummary {
  /** Items handed to the handler. */
  readonly items: number;
  /** Keys the scan skipped (not cache partitions). */
  readonly skippedKeys: number;
  /** True when the signal stopped the walk before the scan ended. */
  readonly interrupted: boolean;
  /** What stopped the walk when a store or key-service call failed after its retries. */
  readonly failure?: unknown;
}

/**
 * Calls `handle` for every item of the scan, at most `concurrency` at a time. A handler
 * or scan error stops the walk: no new item starts, those in flight finish, and the error
 * is returned as `failure` with the counts so far (for the summary).
 */
export async function forEachItem(
  source: ScanSource,
  options: WalkOptions,
  handle: (item: ScannedItem) => Promise<void>,
): Promise<WalkSummary> {
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let items = 0;
  let skippedKeys = 0;
  options.progress.start();
  try {
    const pages = source.scan({
      signal: stop.signal,
      onRetry: () => {
        options.progress.retries += 1;
      },
    });
    outer: for await (const page of pages) {
      skippedKeys += page.skipped;
      for (const item of page.items) {
        if (stop.signal.aborted) break outer;
        while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
        if (stop.signal.aborted) break outer;
        items += 1;
        const task: Promise<void> = handle(item)
          .catch((error: unknown) => {
            failure ??= { error };
            stop.abort();
          })
          .finally(() => {
            options.progress.done += 1;
            inFlight.delete(task);
          });
        inFlight.add(task);
      }
    }
  } catch (error) {
    failure ??= { error };
  } finally {
    await Promise.allSettled(inFlight);
    options.signal?.removeEventListener('abort', onAbort);
    options.progress.stop();
  }
  return {
    items,
    skippedKeys,
    interrupted: options.signal?.aborted ?? false,
    ...(failure ? { failure: failure.error } : {}),
  };
}

/** Runs a store or key-service operation with backoff on transient failures. */
export function retried<T>(
  operation: () => Promise<T>,
  progress: Progress,
  limiter: RateLimiter | undefined,
  signal?: AbortSignal,
): Promise<T> {
  return withBackoff(
    async () => {
      await limiter?.take();
      return operation();
    },
    {
      attempts: 6,
      retryable: transient,
      onRetry: () => {
        progress.retries += 1;
      },
      // Not the interrupt signal: an item already started is finished, retries included.
      ...(signal ? { signal } : {}),
    },
  );
}
