/**
 * An in-process {@link TokenStore} for tests and the local run. It keeps the same
 * contract as the cloud stores (conditional writes, expiry on read, size limit), so code
 * tested against it behaves the same against DynamoDB or Cosmos DB.
 */
import { ConfigurationError, VersionConflictError } from '../errors';
import { assertItemSize, DYNAMODB_MAX_ITEM_BYTES, utf8Length } from './limits';
import { checkLeaseTtl, epochSeconds, leaseItemKey } from './store';
import type { LeaseOptions, LeaseStore, StoredItem, TokenStore, WriteOptions } from './store';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Largest item accepted (blob plus key bytes). @default 409600 (400 KiB, like DynamoDB) */
  readonly maxItemBytes?: number;
  /** Clock in epoch milliseconds, for expiry. @default Date.now */
  readonly now?: () => number;
}

/** Lease records kept before expired ones are swept. */
const LEASE_SWEEP_AT = 1024;

interface Entry {
  readonly blob: Uint8Array;
  readonly version: string;
  readonly expiresAt: number;
}

/**
 * A Map-backed store; versions come from one counter per store, so a version is never
 * reused, not even after a delete or an expiry.
 * @example const store = new MemoryStore({ now: () => fakeNow });
 */
export class MemoryStore implements TokenStore, LeaseStore {
  readonly name = 'memory';
  readonly maxItemBytes: number;
  private readonly now: () => number;
  private readonly items = new Map<string, Entry>();
  /** Leases by lease item key: apart from items, so a read can never return one. */
  private readonly leases = new Map<string, { readonly owner: string; readonly until: number }>();
  private counter = 0;

  constructor(options: MemoryStoreOptions = {}) {
    const maxItemBytes = options.maxItemBytes ?? DYNAMODB_MAX_ITEM_BYTES;
    if (!Number.isSafeInteger(maxItemBytes) || maxItemBytes <= 0) {
      throw new ConfigurationError(
        'maxItemBytes',
        `expected a positive integer number of bytes, received ${String(maxItemBytes)}`,
      );
    }
    this.maxItemBytes = maxItemBytes;
    this.now = options.now ?? Date.now;
  }

  /** Number of items held, live or expired (for tests). */
  get size(): number {
    return this.items.size;
  }

  async read(key: string): Promise<StoredItem | undefined> {
    const entry = this.live(key);
    // Copy out so a caller mutating the result cannot change what is stored.
    return entry && { blob: Uint8Array.from(entry.blob), version: entry.version, expiresAt: entry.expiresAt };
  }

  async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    assertItemSize(this.name, blob.byteLength + utf8Length(key), this.maxItemBytes);
    const { condition } = options;
    // No await between the check and the set: the check-and-write is atomic in one process.
    if ('mustNotExist' in condition) {
      if (this.live(key)) throw new VersionConflictError(this.name);
    } else if (this.items.get(key)?.version !== condition.expectedVersion) {
      throw new VersionConflictError(this.name);
    }
    const version = String(++this.counter);
    this.items.set(key, { blob: Uint8Array.from(blob), version, expiresAt: options.expiresAt });
    return version;
  }

  async delete(key: string, options: { readonly expectedVersion?: string } = {}): Promise<void> {
    if (options.expectedVersion !== undefined && this.items.get(key)?.version !== options.expectedVersion) {
      throw new VersionConflictError(this.name);
    }
    this.items.delete(key);
  }

  async acquireLease(key: string, options: LeaseOptions): Promise<boolean> {
    checkLeaseTtl(options.ttlMs);
    const leaseKey = leaseItemKey(key);
    const now = this.now();
    // No await between the check and the set: atomic in one process.
    const held = this.leases.get(leaseKey);
    if (held && held.until > now) return false;
    // Leases nobody released expire on their own: sweep them so the map stays bounded.
    if (this.leases.size >= LEASE_SWEEP_AT) {
      for (const [k, l] of this.leases) if (l.until <= now) this.leases.delete(k);
    }
    this.leases.set(leaseKey, { owner: options.owner, until: now + options.ttlMs });
    return true;
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    const leaseKey = leaseItemKey(key);
    if (this.leases.get(leaseKey)?.owner === owner) this.leases.delete(leaseKey);
  }

  /** Number of lease records held, live or expired (for tests). */
  get leaseCount(): number {
    return this.leases.size;
  }

  /** Every item held, expired ones included, as copies (for scans in tests and the CLI). */
  *entries(): IterableIterator<{ key: string; blob: Uint8Array; version: string; expiresAt: number }> {
    for (const [key, entry] of [...this.items]) {
      yield { key, blob: Uint8Array.from(entry.blob), version: entry.version, expiresAt: entry.expiresAt };
    }
  }

  /** Removes every item and lease (for tests). */
  clear(): void {
    this.items.clear();
    this.leases.clear();
  }

  private live(key: string): Entry | undefined {
    const entry = this.items.get(key);
    return entry && entry.expiresAt > epochSeconds(this.now) ? entry : undefined;
  }
}
