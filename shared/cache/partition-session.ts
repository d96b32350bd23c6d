/**
 * One partition for the length of one request: the MSAL cache plugin that loads the
 * partition at most once, and persists what MSAL changed with a conditional write,
 * merging and retrying when a concurrent instance wrote first.
 */
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { Envelope } from '../crypto/envelope';
import type { PartitionKind } from '../crypto/keyring';
import {
  ConflictRetriesExhaustedError,
  EnvelopeError,
  EnvelopeFailure,
  KeyServiceError,
  SizeLimitError,
  StoreUnavailableError,
  VersionConflictError,
} from '../errors';
import { Metric, type Logger, type Metrics } from '../observability';
import { epochSeconds, type TokenStore, type WriteCondition } from '../store/store';
import {
  emptyDocument,
  isUseful,
  latestAccessTokenExpiry,
  merge,
  parseDocument,
  prune,
  sameDocument,
  type CacheDocument,
} from './cache-document';
import { LRUCache } from 'lru-cache';
import type { L1Cache, OpenedEnvelopes } from './l1';
import { RequestTrace } from './metadata';
import type { SharedReads } from './shared-reads';

/** Everything a session needs, shared by all sessions of one TokenCache. */
export interface SessionContext {
  readonly store: TokenStore;
  /** Writes of this process in flight, by partition: merged locally, written once. */
  readonly writes: PartitionWrites;
  readonly envelope: Envelope;
  readonly l1: L1Cache | undefined;
  /** Concurrent first loads of one partition share one store read; undefined: each reads. */
  readonly reads?: SharedReads;
  /** Envelopes already opened, by store key: reused only for byte-identical blobs. */
  readonly opened: OpenedEnvelopes;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  readonly conflictRetries: {
    readonly maxAttempts: number;
    readonly baseDelayMs: number;
    readonly maxDelayMs: number;
  };
}

/** How the partition's store item expiry is computed from its contents (epoch seconds). */
export type ExpiryPolicy = (doc: CacheDocument, nowSeconds: number) => number;

/** Where the loaded state came from. */
export type LoadSource = 'l1' | 'store' | 'absent' | 'unreadable' | 'unavailable';

/** The state read from L1 or the store. */
interface Snapshot {
  /** MSAL JSON to hand to MSAL ('' when nothing usable was read). */
  readonly json: string;
  /** The version a conditional write must expect; undefined: the item must not exist. */
  readonly version: string | undefined;
  readonly source: LoadSource;
  /** False when the item exists but could not be opened for a transient reason: never overwrite it. */
  readonly writable: boolean;
  /** Parsed lazily: only a write needs it. */
  doc?: CacheDocument;
}

/** What a write of the partition ended with. */
export type WriteOutcome =
  | {
      readonly written: true;
      readonly doc: CacheDocument;
      readonly json: string;
      readonly version: string | undefined;
    }
  | { readonly written: false };

/** One request's change to a partition: what it loaded (base, version) and what it has now. */
export interface PartitionChange {
  readonly base: CacheDocument;
  readonly mine: CacheDocument;
  readonly version: string | undefined;
  /** When its load started (performance.now()): a write that ended later is newer than it. */
  readonly loadedAt: number;
}

type Writer = (
  base: CacheDocument,
  mine: CacheDocument,
  version: string | undefined,
) => Promise<WriteOutcome>;

interface WriteQueue {
  readonly pending: Array<{
    readonly change: PartitionChange;
    readonly write: Writer;
    readonly done: (outcome: WriteOutcome) => void;
  }>;
}

/** What this process last wrote to a partition, and when that write ended. */
interface LastWrite {
  readonly doc: CacheDocument;
  readonly json: string;
  readonly version: string | undefined;
  readonly writtenAt: number;
}

/** Bounds of the memory of recent writes: a few seconds, a few MiB. */
const RECENT_WRITES = { max: 1024, maxSize: 4 * 1024 * 1024, ttl: 10_000 } as const;

/**
 * The writes of one process, per partition. The first change is written at once; changes
 * that arrive meanwhile wait for it and go out as one write. A change loaded before this
 * process's last write ended is applied (three-way, per entity, as a conflict would
 * be) on top of what this process last wrote, on that write's version: two requests of
 * one process thus never conflict with each other at the store. Another instance's write
 * still conflicts and merges as before. Queues live only while they have work; the
 * memory of recent writes is bounded by count, bytes and age.
 */
export class PartitionWrites {
  private readonly queues = new Map<string, WriteQueue>();
  private readonly recent = new LRUCache<string, LastWrite>({
    ...RECENT_WRITES,
    sizeCalculation: (w) => Math.max(1, w.json.length),
  });

  /** Partitions with writes in flight (for tests). */
  get size(): number {
    return this.queues.size;
  }

  /** Forgets what this process wrote to a partition (after a sign-out deleted it). */
  forget(key: string): void {
    this.recent.delete(key);
  }

  /** Writes `change` (merged with any queued behind a write in flight). Never throws. */
  submit(key: string, change: PartitionChange, write: Writer): Promise<WriteOutcome> {
    return new Promise((done) => {
      const existing = this.queues.get(key);
      if (existing) {
        existing.pending.push({ change, write, done });
        return;
      }
      const queue: WriteQueue = { pending: [{ change, write, done }] };
      this.queues.set(key, queue);
      void this.drain(key, queue);
    });
  }

  private async drain(key: string, queue: WriteQueue): Promise<void> {
    try {
      for (;;) {
        const batch = queue.pending.splice(0);
        const head = batch[0];
        if (!head) return;
        const last = this.recent.get(key);
        const combined = combine(
          batch.map((b) => b.change),
          last,
        );
        let outcome: WriteOutcome;
        try {
          outcome = await head.write(combined.base, combined.mine, combined.version);
        } catch {
          outcome = { written: false }; // writers report their own failures and never throw
        }
        if (outcome.written) {
          this.recent.set(key, {
            doc: outcome.doc,
            json: outcome.json,
            version: outcome.version,
            writtenAt: performance.now(),
          });
        } else {
          this.recent.delete(key);
        }
        for (const b of batch) b.done(outcome);
      }
    } finally {
      this.queues.delete(key);
      for (const b of queue.pending.splice(0)) b.done({ written: false });
    }
  }
}

/**
 * One change out of several. Changes loaded before this process's last write ended are
 * applied on top of its last write (on that write's version); the others on top of
 * the first of them, on its version.
 */
function combine(changes: readonly PartitionChange[], last: LastWrite | undefined): PartitionChange {
  const stale = (c: PartitionChange): boolean => last !== undefined && c.loadedAt < last.writtenAt;
  const rebased = changes.filter(stale);
  const own = changes.filter((c) => !stale(c));
  let acc: PartitionChange | undefined =
    last && rebased.length > 0
      ? { base: last.doc, mine: last.doc, version: last.version, loadedAt: last.writtenAt }
      : undefined;
  for (const c of [...rebased, ...own]) {
    acc = acc ? { ...acc, mine: merge(c.base, c.mine, acc.mine) } : c;
  }
  if (!acc) throw new Error('combine: no change');
  return acc;
}

/** The MSAL cache plugin for one partition and one request. */
export class PartitionSession implements ICachePlugin {
  private loading: Promise<Snapshot> | undefined;
  private snapshot: Snapshot | undefined;
  /** MSAL token caches already filled from the snapshot (deserialize replaces memory). */
  private readonly primed = new WeakSet<object>();
  /** What this request did and what it cost: becomes the result's cache metadata. */
  readonly trace = new RequestTrace();

  constructor(
    private readonly ctx: SessionContext,
    /** The store key (a hash). */
    readonly key: string,
    /** `app`, `obo` or `user`: for logs and metrics. */
    readonly kind: PartitionKind,
    private readonly expiry: ExpiryPolicy,
  ) {}

  /** Where this request's partition was loaded from (after the first load). */
  get source(): LoadSource | undefined {
    return this.snapshot?.source;
  }

  /** The version loaded (undefined: absent or not loaded). */
  get loadedVersion(): string | undefined {
    return this.snapshot?.version;
  }

  /** Loads the partition once per request: L1, else one store read. */
  load(): Promise<Snapshot> {
    if (!this.loading) {
      this.loadedAt = performance.now();
      this.loading = this.readThrough().then((s) => {
        this.trace.loadedFrom = s.source;
        return (this.snapshot = s);
      });
    }
    return this.loading;
  }

  /** When the snapshot's read started (performance.now()). */
  private loadedAt = 0;

  /**
   * Fills an MSAL token cache with the partition, once per cache. msal-node does not call
   * `beforeCacheAccess` before its OBO cache lookup, so the facade primes every client
   * before calling MSAL.
   */
  async prime(tokenCache: { deserialize(json: string): void }): Promise<void> {
    const snapshot = await this.load();
    if (this.primed.has(tokenCache)) return;
    this.primed.add(tokenCache);
    if (snapshot.json) tokenCache.deserialize(snapshot.json);
  }

  async beforeCacheAccess(context: TokenCacheContext): Promise<void> {
    await this.prime(context.tokenCache);
  }

  async afterCacheAccess(context: TokenCacheContext): Promise<void> {
    if (!context.cacheHasChanged) return;
    await this.persist(parseDocument(context.tokenCache.serialize()));
  }

  /**
   * Adds tokens acquired outside this partition's client (auth-code redemption, where
   * the partition is only known from the response) to what is stored.
   */
  async absorb(doc: CacheDocument): Promise<void> {
    const snapshot = await this.load();
    await this.persist(merge(emptyDocument(), doc, this.docOf(snapshot)));
  }

  /**
   * Writes `mine` if it differs from what was loaded: pruned, sealed, conditional on the
   * loaded version; on conflict re-reads, merges and retries (bounded, with jitter).
   * Never throws: a failed write leaves the stored item as it was and is reported; the
   * request keeps its tokens.
   */
  async persist(mineRaw: CacheDocument): Promise<void> {
    const started = performance.now();
    try {
      await this.persistTimed(mineRaw);
    } finally {
      this.trace.writeMs += performance.now() - started;
    }
  }

  private async persistTimed(mineRaw: CacheDocument): Promise<void> {
    const snapshot = await this.load();
    if (!snapshot.writable) {
      this.skip('unreadable-transient');
      return;
    }
    const nowSeconds = this.nowSeconds();
    this.trace.loadedLatestExpiry = latestAccessTokenExpiry(this.docOf(snapshot));
    const base = prune(this.docOf(snapshot), nowSeconds);
    const mine = prune(mineRaw, nowSeconds);
    if (snapshot.source !== 'unreadable' && sameDocument(mine, base)) {
      this.skip('unchanged');
      return;
    }
    // Concurrent requests of this process on this partition write once, merged here
    // (see PartitionWrites), instead of conflicting with each other at the store.
    const outcome = await this.ctx.writes.submit(
      this.key,
      { base, mine, version: snapshot.version, loadedAt: this.loadedAt },
      (b, m, v) => this.writeMerging(b, m, v),
    );
    if (outcome.written) {
      this.persisted = true;
      this.snapshot = { json: outcome.json, version: outcome.version, source: 'store', writable: true };
    }
  }

  /** True once this request's changes are in the store (its write, or a merged one). */
  persisted = false;

  /**
   * Reads the partition again, bypassing L1, and makes it what the next MSAL client of
   * this request is primed with. For a request waiting on another instance's token call.
   */
  async refresh(): Promise<{ readonly version: string | undefined; readonly source: LoadSource }> {
    const startedAt = performance.now();
    const fresh = await this.readFresh();
    this.loadedAt = startedAt;
    this.snapshot = fresh;
    this.loading = Promise.resolve(fresh);
    return fresh;
  }

  /** The conditional write with its conflict loop: re-read, merge, retry (bounded, jittered). */
  private async writeMerging(
    baseIn: CacheDocument,
    mineIn: CacheDocument,
    versionIn: string | undefined,
  ): Promise<WriteOutcome> {
    let base = baseIn;
    // Merged with other requests' changes since persist() pruned: prune again.
    let mine = prune(mineIn, this.nowSeconds());
    let version = versionIn;
    const { maxAttempts } = this.ctx.conflictRetries;
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await this.writeOnce(mine, version);
        this.snapshot = { ...written, source: 'store', writable: true, doc: mine };
        return {
          written: true,
          doc: mine,
          json: written.json,
          version: written.version,
        };
      } catch (e) {
        if (!(e instanceof VersionConflictError)) {
          this.reportWriteFailure(e);
          return { written: false };
        }
        this.ctx.metrics.increment(Metric.StoreConflict, 1, { kind: this.kind });
        this.trace.conflicts += 1;
        if (attempt >= maxAttempts) {
          this.reportWriteFailure(new ConflictRetriesExhaustedError(attempt, { cause: e }));
          return { written: false };
        }
      }
      await this.backoff(attempt);
      const theirs = await this.readFresh();
      if (!theirs.writable) {
        this.skip('unreadable-transient');
        return { written: false };
      }
      const theirsDoc = prune(this.docOf(theirs), this.nowSeconds());
      mine = prune(merge(base, mine, theirsDoc), this.nowSeconds());
      base = theirsDoc;
      version = theirs.version;
      if (theirs.source !== 'unreadable' && sameDocument(mine, theirsDoc)) {
        // The other writer already stored everything this request has.
        this.snapshot = theirs;
        this.skip('merged-unchanged');
        return {
          written: true,
          doc: theirsDoc,
          json: theirs.json,
          version: theirs.version,
        };
      }
    }
  }

  private async writeOnce(
    doc: CacheDocument,
    version: string | undefined,
  ): Promise<{ json: string; version: string | undefined }> {
    const condition: WriteCondition =
      version === undefined ? { mustNotExist: true } : { expectedVersion: version };
    if (!isUseful(doc)) {
      // Nothing left that can serve a token (sign-out, all expired): remove the item.
      if (version !== undefined) {
        await this.ctx.store.delete(this.key, { expectedVersion: version });
        this.ctx.metrics.increment(Metric.StoreDelete, 1, { kind: this.kind });
      }
      this.ctx.l1?.delete(this.key);
      return { json: '', version: undefined };
    }
    const json = JSON.stringify(doc);
    const nowSeconds = this.nowSeconds();
    const expiresAt = Math.max(this.expiry(doc, nowSeconds), nowSeconds + 1);
    const blob = await this.ctx.envelope.seal(
      Buffer.from(json, 'utf8'),
      this.key,
      { partitionKind: this.kind },
      this.trace,
    );
    const newVersion = await this.ctx.store.write(this.key, blob, { condition, expiresAt });
    this.ctx.metrics.increment(Metric.StoreWrite, 1, { kind: this.kind });
    this.trace.storeWrites += 1;
    this.trace.wrote = true;
    this.ctx.opened.set(this.key, blob, json);
    this.ctx.l1?.set(this.key, { json, version: newVersion, expiresAt });
    return { json, version: newVersion };
  }

  private async readThrough(): Promise<Snapshot> {
    const cached = this.ctx.l1?.get(this.key);
    if (cached) {
      this.ctx.metrics.increment(Metric.L1Hit, 1, { kind: this.kind });
      return { json: cached.json, version: cached.version, source: 'l1', writable: true };
    }
    if (this.ctx.l1) this.ctx.metrics.increment(Metric.L1Miss, 1, { kind: this.kind });
    return this.readFresh(true);
  }

  /**
   * One store read and envelope open, bypassing L1. Never throws. `shared`: the request's
   * first load, which may join a read of this partition already in flight here.
   */
  private async readFresh(shared = false): Promise<Snapshot> {
    let item;
    const readStarted = performance.now();
    try {
      const read =
        shared && this.ctx.reads
          ? this.ctx.reads.read(this.ctx.store, this.key)
          : { promise: this.ctx.store.read(this.key), joined: false };
      if (!read.joined) {
        this.ctx.metrics.increment(Metric.StoreRead, 1, { kind: this.kind });
        this.trace.storeReads += 1;
      }
      item = await read.promise;
    } catch (e) {
      // The acquire goes on through the authority. A later write uses mustNotExist, so
      // if the item does exist the write conflicts and re-reads instead of overwriting.
      this.ctx.metrics.increment(Metric.StoreError, 1, { kind: this.kind, operation: 'read' });
      this.trace.loadFailure = 'store-unavailable';
      this.ctx.logger.warn('token cache read failed; acquiring without the cache', this.describe(e));
      return { json: '', version: undefined, source: 'unavailable', writable: true };
    } finally {
      this.trace.storeReadMs += performance.now() - readStarted;
    }
    if (!item) {
      this.ctx.metrics.increment(Metric.StoreReadMiss, 1, { kind: this.kind });
      this.ctx.l1?.delete(this.key);
      return { json: '', version: undefined, source: 'absent', writable: true };
    }
    const known = this.ctx.opened.get(this.key, item.blob);
    if (known !== undefined) {
      this.ctx.l1?.set(this.key, { json: known, version: item.version, expiresAt: item.expiresAt });
      return { json: known, version: item.version, source: 'store', writable: true };
    }
    const openStarted = performance.now();
    this.trace.opened = true;
    try {
      const plaintext = await this.ctx.envelope.open(
        item.blob,
        this.key,
        { partitionKind: this.kind },
        this.trace,
      );
      const json = Buffer.from(plaintext).toString('utf8');
      let doc: CacheDocument;
      try {
        doc = parseDocument(json);
      } catch (cause) {
        throw new EnvelopeError(EnvelopeFailure.BadPlaintext, 'the plaintext is not an MSAL cache document', {
          cause,
        });
      }
      this.ctx.opened.set(this.key, item.blob, json);
      this.ctx.l1?.set(this.key, { json, version: item.version, expiresAt: item.expiresAt });
      return { json, version: item.version, source: 'store', writable: true, doc };
    } catch (e) {
      if (e instanceof EnvelopeError) {
        // Never served. Only ever replaced by a conditional write on this exact version.
        this.ctx.metrics.increment(Metric.EnvelopeRejected, 1, { kind: this.kind, reason: e.reason });
        this.trace.rejectReason = e.reason;
        this.ctx.logger.error('stored token cache rejected; treating as a miss', this.describe(e));
        return {
          json: '',
          version: item.version,
          source: 'unreadable',
          writable: true,
          doc: emptyDocument(),
        };
      }
      // The key service is down or refusing: the blob may be good. Don't overwrite it.
      this.trace.loadFailure = 'key-service-unavailable';
      this.ctx.metrics.increment(Metric.KeyError, 1, {
        kind: this.kind,
        reason: e instanceof KeyServiceError ? e.reason : 'unknown',
      });
      this.ctx.logger.warn(
        'token cache could not be opened now; acquiring without the cache',
        this.describe(e),
      );
      return { json: '', version: item.version, source: 'unavailable', writable: false };
    } finally {
      this.trace.envelopeOpenMs += performance.now() - openStarted;
    }
  }

  private docOf(snapshot: Snapshot): CacheDocument {
    snapshot.doc ??= snapshot.json ? parseDocument(snapshot.json) : emptyDocument();
    return snapshot.doc;
  }

  private reportWriteFailure(e: unknown): void {
    const reason =
      e instanceof SizeLimitError
        ? 'size-limit'
        : e instanceof ConflictRetriesExhaustedError
          ? 'conflict-retries-exhausted'
          : e instanceof KeyServiceError
            ? 'key-service'
            : e instanceof StoreUnavailableError
              ? 'store-unavailable'
              : 'unexpected';
    this.ctx.metrics.increment(Metric.WriteFailed, 1, { kind: this.kind, reason });
    this.trace.writeFailReason = reason;
    this.ctx.logger.error('token cache write failed; the stored item was left as it was', {
      ...this.describe(e),
      reason,
    });
  }

  private skip(reason: string): void {
    this.ctx.metrics.increment(Metric.WriteSkipped, 1, { kind: this.kind, reason });
    this.trace.writeSkipReason = reason;
  }

  private describe(e: unknown): Record<string, string> {
    // Messages of our errors and the SDKs' carry no secrets; keys are hashes.
    return {
      partition: this.kind,
      key: this.key,
      error: e instanceof Error ? e.name : 'unknown',
      code: (e as { code?: string }).code ?? '',
      detail: e instanceof Error ? e.message : String(e),
    };
  }

  private backoff(attempt: number): Promise<void> {
    const { baseDelayMs, maxDelayMs } = this.ctx.conflictRetries;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.random() * ceiling;
    return new Promise((resolve) => setTimeout(resolve, delay));
  }

  private nowSeconds(): number {
    return epochSeconds(this.ctx.now);
  }
}
