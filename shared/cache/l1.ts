/**
 * L1: an in-process LRU of opened partitions, bounded by bytes and age. A hit skips the
 * store read, the envelope and the key service. It may be stale: that only costs an
 * extra token call (MSAL refreshes what it finds expired), and a stale version on write
 * is caught by the store's version check and merged.
 */
import { LRUCache } from 'lru-cache';
import { ConfigurationError } from '../errors';
import { L1_DEFAULTS } from '../defaults';

/** One opened partition: MSAL's JSON as stored, with the store version it came from. */
export interface L1Entry {
  readonly json: string;
  readonly version: string;
  /** Epoch seconds: the store item's own expiry; the entry is never served past it. */
  readonly expiresAt: number;
}

/** Default age bound of {@link OpenedEnvelopes} entries: 5 minutes, L1's default age. */
export const OPENED_ENVELOPES_TTL_MS = L1_DEFAULTS.ttlMs;

/** Per-entry overhead estimate (key, version, bookkeeping), in bytes. */
const ENTRY_OVERHEAD = 128;

/** Largest L1 jitter accepted: an entry lives at least half its `ttlMs`. */
export const MAX_L1_JITTER = 0.5;

/** Settings of {@link L1Cache}. */
export interface L1Settings {
  readonly maxBytes: number;
  readonly ttlMs: number;
  /**
   * Fraction of `ttlMs` an entry's life is shortened by, at random (uniform in
   * `[ttlMs * (1 - jitter), ttlMs]`), so instances that loaded a hot partition at the same
   * moment (a deploy, a scale-out) do not all read it again in the same second. 0: none.
   */
  readonly jitter?: number;
}

/** The bounded L1 cache. */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Entry>;
  private readonly ttlMs: number;
  private readonly jitter: number;

  constructor(
    options: L1Settings,
    private readonly now: () => number = Date.now,
    /** Uniform in [0, 1), for tests. */
    private readonly random: () => number = Math.random,
  ) {
    const jitter = options.jitter ?? 0;
    if (!(Number.isFinite(jitter) && jitter >= 0 && jitter <= MAX_L1_JITTER)) {
      throw new ConfigurationError(
        'l1.jitter',
        `expected a fraction from 0 to ${MAX_L1_JITTER}, got ${String(jitter)}`,
      );
    }
    this.ttlMs = options.ttlMs;
    this.jitter = jitter;
    this.lru = new LRUCache<string, L1Entry>({
      maxSize: options.maxBytes,
      // UTF-16 in memory: two bytes a character.
      sizeCalculation: (entry, key) =>
        (entry.json.length + key.length + entry.version.length) * 2 + ENTRY_OVERHEAD,
      ttl: options.ttlMs,
      perf: { now },
      // Ask the clock on every check: lru-cache otherwise reuses one reading until a timer
      // fires, which a run of requests that never yield to the event loop can postpone.
      ttlResolution: 0,
    });
  }

  get(key: string): L1Entry | undefined {
    const entry = this.lru.get(key);
    if (entry && entry.expiresAt * 1000 <= this.now()) {
      this.lru.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, entry: L1Entry): void {
    if (this.jitter === 0) this.lru.set(key, entry);
    else this.lru.set(key, entry, { ttl: Math.max(1, this.ttlMs * (1 - this.jitter * this.random())) });
  }

  delete(key: string): void {
    this.lru.delete(key);
  }
}

/**
 * What opening an envelope yielded, by store key, kept with the exact blob bytes it came
 * from. Opening is a pure function of (blob, key), so a byte-identical blob read again
 * needs no key derivation, decryption, inflation or parse: the store is still read on
 * every request (nothing about freshness changes), and any other blob, tampered or new,
 * is opened and checked in full. Entries live at most `ttlMs` from when the blob was
 * opened (a hit does not renew them): after that the blob is opened again, through the
 * data-key cache and, once its unwrapped key has aged out, the key service, so a disabled
 * master key stops reads within a bounded window (docs/security.md, "Revocation").
 */
export class OpenedEnvelopes {
  private readonly lru: LRUCache<string, { readonly blob: Buffer; readonly json: string }>;

  constructor(maxBytes: number, options: { ttlMs?: number; now?: () => number } = {}) {
    const now = options.now ?? Date.now;
    this.lru = new LRUCache({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) =>
        entry.blob.length + (entry.json.length + key.length) * 2 + ENTRY_OVERHEAD,
      ttl: options.ttlMs ?? OPENED_ENVELOPES_TTL_MS,
      updateAgeOnGet: false,
      perf: { now },
      ttlResolution: 0,
    });
  }

  /** The plaintext JSON of `blob` if this exact blob was opened (or sealed) here before. */
  get(key: string, blob: Uint8Array): string | undefined {
    const entry = this.lru.get(key);
    return entry && entry.blob.equals(blob) ? entry.json : undefined;
  }

  set(key: string, blob: Uint8Array, json: string): void {
    this.lru.set(key, { blob: Buffer.from(blob), json });
  }

  delete(key: string): void {
    this.lru.delete(key);
  }
}
