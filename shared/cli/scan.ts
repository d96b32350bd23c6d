/**
 * The scan extension of the store contract, for the operator CLI: a store that can list
 * every item it holds (expired ones included, which `read` hides). A scan yields pages of
 * raw items; a page that fails is retried by the scanner itself with backoff from where it
 * stopped (the segment's last key, the query's continuation token), so a throttled store
 * slows a scan down instead of ending it.
 */
import { StoreUnavailableError } from '../errors';
import type { TokenStore } from '../store/store';

/** One stored item as a scan sees it (expired or not). */
export interface ScannedItem {
  readonly key: string;
  readonly blob: Uint8Array;
  /** The store's version token, for conditional writes and deletes. */
  readonly version: string;
  /** Epoch seconds; at or before now the library treats the item as absent. */
  readonly expiresAt: number;
}

/** One page of a scan. */
export interface ScanPage {
  readonly items: readonly ScannedItem[];
  /** Items on this page that are not cache partitions (other item types, foreign data). */
  readonly skipped: number;
}

/** Options of {@link ScanSource.scan}. */
export interface ScanOptions {
  /** Stops the scan after the current page. */
  readonly signal?: AbortSignal;
  /** Called before a failed page is retried (for progress and summaries). */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** A store that can be scanned. */
export interface ScanSource {
  /** Short name, as the store's (e.g. `dynamodb`). */
  readonly name: string;
  /** Every item, page by page; ends early when `signal` aborts. @throws StoreUnavailableError after its retries */
  scan(options?: ScanOptions): AsyncIterable<ScanPage>;
  /** A cheap estimate of the number of items (for an ETA), if the store offers one. */
  estimateCount?(): Promise<number | undefined>;
}

/** A store with its scanner and what to release when done: what the CLI works on. */
export interface ScannableStore {
  readonly store: TokenStore;
  readonly source: ScanSource;
  destroy(): Promise<void>;
}

/**
 * The shape of a cache partition's store key: base64url of a SHA-256, 43 characters (see
 * `storeKey` in shared/cache/partitions.ts). Scans skip every other key, so other item types
 * sharing the table (e.g. leases) are never counted, opened, rewrapped or deleted.
 */
const STORE_KEY = /^[A-Za-z0-9_-]{43}$/;

/** Whether `key` is a cache partition's store key. */
export function isStoreKey(key: unknown): key is string {
  return typeof key === 'string' && STORE_KEY.test(key);
}

/** Options of {@link withBackoff}. */
export interface BackoffOptions {
  /** Attempts, the first included. @default 8 */
  readonly attempts?: number;
  /** @default 100 */
  readonly baseDelayMs?: number;
  /** @default 5000 */
  readonly maxDelayMs?: number;
  readonly signal?: AbortSignal;
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Whether an error is worth another attempt. @default every error */
  readonly retryable?: (error: unknown) => boolean;
}

/**
 * Runs `fn` until it succeeds, waiting with full-jitter exponential backoff between
 * attempts; the last error is rethrown. An abort ends the wait (and rethrows).
 */
export async function withBackoff<T>(fn: () => Promise<T>, options: BackoffOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 8;
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 5000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || options.signal?.aborted || !(options.retryable?.(error) ?? true))
        throw error;
      const delay = Math.round(Math.random() * Math.min(max, base * 2 ** (attempt - 1)));
      options.onRetry?.(error, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Merges the pages of parallel scan segments into one iterable. Each segment runs as its
 * own loop and hands pages over one at a time (a segment waits until its page is taken),
 * so memory stays at about one page per segment. `emit` resolves to `false` once the
 * consumer has stopped: the segment must then return.
 */
export async function* mergeSegments(
  segments: number,
  run: (segment: number, emit: (page: ScanPage) => Promise<boolean>) => Promise<void>,
): AsyncGenerator<ScanPage> {
  const ready: Array<{ page: ScanPage; taken: (more: boolean) => void }> = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  let running = segments;
  let stopped = false;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const workers = Array.from({ length: segments }, (_, segment) =>
    run(segment, (page) =>
      stopped
        ? Promise.resolve(false)
        : new Promise<boolean>((taken) => {
            ready.push({ page, taken });
            notify();
          }),
    )
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        running -= 1;
        notify();
      }),
  );
  try {
    for (;;) {
      const next = ready.shift();
      if (next) {
        next.taken(true);
        yield next.page;
        continue;
      }
      if (failure) throw failure.error;
      if (running === 0) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    // The consumer stopped (or a segment failed): release every waiting segment.
    stopped = true;
    for (const waiting of ready.splice(0)) waiting.taken(false);
    await Promise.allSettled(workers);
  }
}

/** A store failure of a scan, with the cause kept. */
export function scanFailure(store: string, message: string, cause: unknown): StoreUnavailableError {
  const throttled = cause instanceof StoreUnavailableError ? cause.throttled : false;
  return new StoreUnavailableError(store, 'read', message, { cause, throttled });
}
