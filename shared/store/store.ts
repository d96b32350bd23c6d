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
 */
import type { VersionConflictError, SizeLimitError, StoreUnavailableError } from '../errors';

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

/** Epoch seconds now, from an injectable millisecond clock. */
export function epochSeconds(now: () => number = Date.now): number {
  return Math.floor(now() / 1000);
}

export type { VersionConflictError, SizeLimitError, StoreUnavailableError };
