/**
 * A session's real parts for unit tests: MemoryStore, LocalKeyRing, DataKeyCache, Envelope,
 * L1 and the memo, with faults injected by small wrappers (a store, a ring), never mocks.
 */
import { randomBytes } from 'node:crypto';
import {
  PartitionSession,
  PartitionWrites,
  type SessionContext,
} from '../../../../shared/cache/partition-session';
import { L1Cache, OpenedEnvelopes } from '../../../../shared/cache/l1';
import { SharedReads } from '../../../../shared/cache/shared-reads';
import { keyErrorsCountedBySessions } from '../../../../shared/cache/session/events';
import { readPartition, type ReadMode } from '../../../../shared/cache/session/reader';
import type { CacheDocument } from '../../../../shared/cache/cache-document';
import { DataKeyCache } from '../../../../shared/crypto/data-key-cache';
import { Envelope } from '../../../../shared/crypto/envelope';
import type { DataKey, DataKeyContext, KeyRing, UnwrapContext } from '../../../../shared/crypto/keyring';
import { LocalKeyRing } from '../../../../shared/crypto/local-keyring';
import { KeyServiceError, StoreUnavailableError, type KeyServiceFailure } from '../../../../shared/errors';
import { CounterMetrics } from '../../../../shared/observability';
import { MemoryStore } from '../../../../shared/store/memory';
import type { StoredItem, TokenStore, WriteOptions } from '../../../../shared/store/store';
import { CapturingLogger } from '../../../support/cache-harness';
import { registerSecret } from '../../../support/secret-registry';

/** Epoch seconds an hour from now: a token that is still good. */
export const LATER = (): number => Math.floor(Date.now() / 1000) + 3600;

/** An MSAL-shaped document holding access tokens `keys`, each expiring at `expiresOn`. */
export function documentWith(keys: readonly string[], expiresOn: number = LATER()): CacheDocument {
  const tokens: Record<string, Record<string, unknown>> = {};
  for (const k of keys) {
    const secret = `access-token-${k}-7d1f3b9c`;
    registerSecret('access-token', secret);
    tokens[k] = { credential_type: 'AccessToken', secret, expires_on: String(expiresOn) };
  }
  return { Account: {}, IdToken: {}, AccessToken: tokens, RefreshToken: {}, AppMetadata: {} };
}

/** Access-token keys of a document. */
export function tokenKeys(doc: CacheDocument): string[] {
  return Object.keys(doc['AccessToken'] ?? {}).sort();
}

/** A store around a MemoryStore with faults a test switches on. */
export class FaultyStore implements TokenStore {
  readonly name = 'faulty-memory';
  readonly inner: MemoryStore;
  /** Store reads sent (joined shared reads not counted: they never get here). */
  reads = 0;
  /** When set, reads fail with a StoreUnavailableError. */
  failReads = false;
  /** Runs before each write reaches the store: another instance writing first. */
  beforeWrite: ((key: string) => Promise<void>) | undefined;

  constructor(inner: MemoryStore = new MemoryStore()) {
    this.inner = inner;
  }
  get maxItemBytes(): number {
    return this.inner.maxItemBytes;
  }
  async read(key: string): Promise<StoredItem | undefined> {
    this.reads += 1;
    if (this.failReads)
      throw new StoreUnavailableError(this.name, 'read', 'injected outage', { throttled: false });
    return this.inner.read(key);
  }
  async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    await this.beforeWrite?.(key);
    return this.inner.write(key, blob, options);
  }
  delete(key: string, options?: { readonly expectedVersion?: string }): Promise<void> {
    return this.inner.delete(key, options);
  }
}

/** A key ring around a LocalKeyRing whose calls a test can make fail. */
export class FaultyRing implements KeyRing {
  readonly name: string;
  unwrapCalls = 0;
  generateCalls = 0;
  unwrapFault: KeyServiceFailure | undefined;
  generateFault: KeyServiceFailure | undefined;
  /** Resolves pending unwraps only when released, so concurrent readers can join one call. */
  hold: Promise<void> | undefined;

  constructor(
    private readonly inner: LocalKeyRing,
    name?: string,
  ) {
    this.name = name ?? inner.name;
  }
  async generateDataKey(_context?: DataKeyContext): Promise<DataKey> {
    this.generateCalls += 1;
    if (this.generateFault) throw new KeyServiceError(this.name, 'generate', this.generateFault, 'injected');
    return this.inner.generateDataKey();
  }
  async unwrapDataKey(wrapped: Uint8Array, keyId: string, _context?: UnwrapContext): Promise<Uint8Array> {
    this.unwrapCalls += 1;
    await this.hold;
    if (this.unwrapFault) throw new KeyServiceError(this.name, 'unwrap', this.unwrapFault, 'injected');
    return this.inner.unwrapDataKey(wrapped, keyId);
  }
}

/** A fresh 32-byte master key, registered so the secret scan would catch it in a log. */
export function masterKey(): Buffer {
  const key = randomBytes(32);
  registerSecret('master-key', key);
  return key;
}

/** The parts of one TokenCache instance, as token-cache.ts composes them. */
export interface Rig {
  readonly store: FaultyStore;
  readonly ring: FaultyRing;
  readonly envelope: Envelope;
  readonly metrics: CounterMetrics;
  readonly logger: CapturingLogger;
  readonly ctx: SessionContext;
  /** A session of kind `obo` on `key`, items living an hour. */
  session(key: string): PartitionSession;
  /** Reads `key` through the reader. */
  read(key: string, mode?: ReadMode): ReturnType<typeof readPartition>;
  /** Seals `doc` and stores it under `key` (on `version`, or as a new item). */
  seed(key: string, doc: CacheDocument, version?: string): Promise<string>;
}

/** Builds a rig; L1 off unless asked, compression off so sizes are predictable. */
export function rig(
  options: {
    store?: MemoryStore;
    l1?: boolean;
    sharedReads?: boolean;
    maxAttempts?: number;
    master?: Buffer;
  } = {},
): Rig {
  const store = new FaultyStore(options.store);
  const ring = new FaultyRing(new LocalKeyRing({ masterKey: options.master ?? masterKey() }));
  const metrics = new CounterMetrics();
  const logger = new CapturingLogger();
  const envelope = new Envelope({
    keys: new DataKeyCache(ring, { metrics: keyErrorsCountedBySessions(metrics) }),
    compressAboveBytes: false,
  });
  const ctx: SessionContext = {
    store,
    writes: new PartitionWrites(),
    envelope,
    l1: options.l1 ? new L1Cache({ maxBytes: 1024 * 1024, ttlMs: 60_000, jitter: 0 }) : undefined,
    ...(options.sharedReads ? { reads: new SharedReads() } : {}),
    opened: new OpenedEnvelopes(1024 * 1024),
    logger,
    metrics,
    now: Date.now,
    conflictRetries: { maxAttempts: options.maxAttempts ?? 3, baseDelayMs: 1, maxDelayMs: 2 },
  };
  return {
    store,
    ring,
    envelope,
    metrics,
    logger,
    ctx,
    session: (key) => new PartitionSession(ctx, key, 'obo', (_doc, now) => now + 3600),
    read: (key, mode = 'first') => readPartition(ctx, key, 'obo', mode),
    async seed(key, doc, version) {
      const blob = await envelope.seal(Buffer.from(JSON.stringify(doc), 'utf8'), key, {
        partitionKind: 'obo',
      });
      return store.inner.write(key, blob, {
        condition: version === undefined ? { mustNotExist: true } : { expectedVersion: version },
        expiresAt: LATER(),
      });
    },
  };
}

/**
 * A cold instance on `key`: another instance with the same master key stored `doc` there first;
 * this one has its own data-key cache, and its ring fails every unwrap with `fault`.
 */
export async function coldRig(key: string, doc: CacheDocument, fault: KeyServiceFailure): Promise<Rig> {
  const master = masterKey();
  const seeded = rig({ master });
  await seeded.seed(key, doc);
  const cold = rig({ store: seeded.store.inner, master });
  cold.ring.unwrapFault = fault;
  return cold;
}

/** The document stored under `key`, opened with `envelope`. */
export async function storedDocument(r: Rig, key: string): Promise<CacheDocument | undefined> {
  const item = await r.store.inner.read(key);
  if (!item) return undefined;
  const plain = await r.envelope.open(item.blob, key, { partitionKind: 'obo' });
  return JSON.parse(Buffer.from(plain).toString('utf8')) as CacheDocument;
}
