/**
 * The store contract. A store is a thin backend: it keeps opaque blobs under a key with a
 * version and an expiry, and does conditional writes. Everything else (partitioning,
 * encryption, merging, expiry policy) belongs to the cache.
 *
 * Invariants every store keeps (checked by test/contract/store-contract.ts):
 * - `read` is strongly consistent and returns `undefined` for an absent item and for an
 *   item whose `expiresAt <= now` (TTL deletion lags, emulators never delete);
 * - `write` with `{ mustNotExist: true }` succeeds when the item is absent or expired and
 *   throws {@link VersionConflictError} when a live item exists;
 * - `write` with `{ expectedVersion }` succeeds only if the stored version is that one,
 *   else throws {@link VersionConflictError} (also when the item is absent);
 * - `write` checks the item size against `maxItemBytes` before calling the service and
 *   throws {@link SizeLimitError}, leaving the previous item intact;
 * - `delete` with `expectedVersion` is conditional like `write`; without it, deleting an
 *   absent item is a no-op;
 * - any other failure is a {@link StoreUnavailableError} with the cause kept.
 *
 * Leases ({@link LeaseStore}, used to coalesce token requests across instances):
 * - `acquireLease(key, { owner, ttlMs })` is one conditional write: it returns `true` when
 *   there was no lease on `key` or only an expired one (`until <= now`, in milliseconds),
 *   and the caller now holds it until `now + ttlMs`; `false` while any other live lease
 *   exists (the same owner's included). Of many concurrent callers exactly one gets `true`;
 * - `releaseLease(key, owner)` removes the lease only if `owner` holds it (live or
 *   expired); otherwise it is a no-op. It never throws {@link VersionConflictError};
 * - a lease lives in the same table/container under {@link leaseItemKey}(key), which no
 *   cache key can equal (cache keys are base64url hashes, without `~`); `read` never
 *   returns a lease item (also not when asked for its key), and `write`/`delete` of `key`
 *   ignore leases;
 * - a lease expires on its own: reads of it check `until`, and the item carries the
 *   service's TTL (epoch seconds, rounded up) so the service deletes it;
 * - failures are {@link StoreUnavailableError}; `ttlMs` outside 1..60000 is a
 *   {@link ConfigurationError}.
 */
import {
  ConfigurationError,
  type VersionConflictError,
  type SizeLimitError,
  type StoreUnavailableError,
} from '../errors';

/** What a read returns. */
export interface StoredItem {
  /** The opaque blob (an envelope). */
  readonly blob: Uint8Array;
  /** Opaque version token to pass back as `expectedVersion`. */
  readonly version: string;
  /** Epoch seconds after which the item counts as absent. */
  readonly expiresAt: number;
}

/** Either the item must not exist (or be expired), or it must still have this version. */
export type WriteCondition = { readonly expectedVersion: string } | { readonly mustNotExist: true };

export interface WriteOptions {
  readonly condition: WriteCondition;
  /** Epoch seconds; the store's TTL attribute. */
  readonly expiresAt: number;
}

export interface TokenStore {
  /** Short name used in errors and metrics, e.g. `dynamodb`. */
  readonly name: string;
  /** Largest item this store accepts, in bytes, including its own overhead. */
  readonly maxItemBytes: number;
  read(key: string): Promise<StoredItem | undefined>;
  /** @returns the new version. @throws VersionConflictError, SizeLimitError, StoreUnavailableError */
  write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string>;
  /** @throws VersionConflictError when `expectedVersion` is given and stale. */
  delete(key: string, options?: { readonly expectedVersion?: string }): Promise<void>;
}

/** How a lease is taken. */
export interface LeaseOptions {
  /** Who takes it: an id unique to this attempt (e.g. random), passed back to release it. */
  readonly owner: string;
  /** How long the lease lasts unless released, in milliseconds (1..60000). */
  readonly ttlMs: number;
}

/**
 * Short exclusive leases on a key (see the contract above). A store that has them lets
 * the cache coalesce token requests across instances; one without them still works.
 */
export interface LeaseStore {
  /** @returns true if the caller now holds the lease. @throws StoreUnavailableError */
  acquireLease(key: string, options: LeaseOptions): Promise<boolean>;
  /** Removes the lease if `owner` holds it; a no-op otherwise. @throws StoreUnavailableError */
  releaseLease(key: string, owner: string): Promise<void>;
}

/** Suffix of lease item keys: `~` is not in base64url, so no cache key ends with it. */
export const LEASE_SUFFIX = '~lease';

/** Longest lease a store accepts, in milliseconds. */
export const MAX_LEASE_TTL_MS = 60_000;

/** The store key of the lease item on `key`. */
export function leaseItemKey(key: string): string {
  return `${key}${LEASE_SUFFIX}`;
}

/** True when the store implements {@link LeaseStore}. */
export function hasLeases(store: TokenStore): store is TokenStore & LeaseStore {
  const s = store as Partial<LeaseStore>;
  return typeof s.acquireLease === 'function' && typeof s.releaseLease === 'function';
}

/** Checks `ttlMs` of {@link LeaseOptions}: a whole number of ms in 1..60000. */
export function checkLeaseTtl(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_LEASE_TTL_MS) {
    throw new ConfigurationError(
      'ttlMs',
      `expected a whole number of milliseconds in 1..${MAX_LEASE_TTL_MS}, received ${String(ttlMs)}`,
    );
  }
}

/** Epoch seconds now, from an injectable millisecond clock. */
export function epochSeconds(now: () => number = Date.now): number {
  return Math.floor(now() / 1000);
}

export type { VersionConflictError, SizeLimitError, StoreUnavailableError };
