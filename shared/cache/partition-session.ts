/**
 * One partition for the length of one request: the MSAL cache plugin. A thin composition
 * of the reader (session/reader.ts: L1, store, memo, open), the conditional writer
 * (session/writer.ts: prune, seal, write, merge, retry) and one events sink
 * (session/events.ts: logs, metrics, the request's trace), over the snapshot union
 * (session/snapshot.ts: absent | loaded | rejected | locked).
 */
import type { ICachePlugin, TokenCacheContext } from '@azure/msal-node';
import type { Envelope } from '../crypto/envelope';
import type { Logger, Metrics } from '../observability';
import { epochSeconds, type TokenStore } from '../store/store';
import {
  emptyDocument,
  latestAccessTokenExpiry,
  merge,
  parseDocument,
  type CacheDocument,
} from './cache-document';
import type { L1Cache, OpenedEnvelopes } from './l1';
import { RequestTrace } from './metadata';
import type { SharedReads } from './shared-reads';
import { SessionEvents } from './session/events';
import { readPartition } from './session/reader';
import {
  absent,
  documentOf,
  loadSource,
  loaded,
  type LoadSource,
  type PartitionKind,
  type Snapshot,
} from './session/snapshot';
import { changeOver, writeConditionally, type ConflictRetries, type ExpiryPolicy } from './session/writer';
import { PartitionWrites, type WriteOutcome } from './session/writes';

export type { LoadSource, Snapshot } from './session/snapshot';
export type { ExpiryPolicy } from './session/writer';
export { PartitionWrites, type PartitionChange, type WriteOutcome } from './session/writes';

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
  readonly conflictRetries: ConflictRetries;
}

/** The MSAL cache plugin for one partition and one request. */
export class PartitionSession implements ICachePlugin {
  private loading: Promise<Snapshot> | undefined;
  private snapshot: Snapshot | undefined;
  /** When the snapshot's read started (performance.now()). */
  private loadedAt = 0;
  /** MSAL token caches already filled from the snapshot (deserialize replaces memory). */
  private readonly primed = new WeakSet<object>();
  /** What this request did and what it cost: becomes the result's cache metadata. */
  readonly trace = new RequestTrace();
  private readonly events: SessionEvents;
  /** True once this request's changes are in the store (its write, or a merged one). */
  persisted = false;

  constructor(
    private readonly ctx: SessionContext,
    /** The store key (a hash). */
    readonly key: string,
    /** `app`, `obo` or `user`: for logs and metrics. */
    readonly kind: PartitionKind,
    private readonly expiry: ExpiryPolicy,
  ) {
    this.events = new SessionEvents(ctx, key, kind, this.trace);
  }

  /** Where this request's partition was loaded from (after the first load). */
  get source(): LoadSource | undefined {
    return this.snapshot && loadSource(this.snapshot);
  }

  /** The state of the partition as last read or written (after the first load). */
  get state(): Snapshot['state'] | undefined {
    return this.snapshot?.state;
  }

  /** The partition as last read or written (undefined: not loaded yet). */
  get current(): Snapshot | undefined {
    return this.snapshot;
  }

  /** The version loaded (undefined: absent or not loaded). */
  get loadedVersion(): string | undefined {
    return this.snapshot?.version;
  }

  /** Loads the partition once per request: L1, else one store read. */
  load(): Promise<Snapshot> {
    if (!this.loading) {
      this.loadedAt = performance.now();
      this.loading = readPartition(this.ctx, this.key, this.kind, 'first').then((r) => {
        this.events.read(r);
        this.trace.loadedFrom = loadSource(r.snapshot);
        return (this.snapshot = r.snapshot);
      });
    }
    return this.loading;
  }

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
    await this.persist(merge(emptyDocument(), doc, documentOf(snapshot)));
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

  /**
   * Reads the partition again, bypassing L1, and makes it what the next MSAL client of
   * this request is primed with. For a request waiting on another instance's token call.
   */
  async refresh(): Promise<Snapshot> {
    const startedAt = performance.now();
    const fresh = await this.readFresh();
    this.loadedAt = startedAt;
    this.snapshot = fresh;
    this.loading = Promise.resolve(fresh);
    return fresh;
  }

  private async persistTimed(mineRaw: CacheDocument): Promise<void> {
    const snapshot = await this.load();
    if (snapshot.state === 'locked') {
      this.events.skipped('unreadable-transient');
      return;
    }
    this.trace.loadedLatestExpiry = latestAccessTokenExpiry(documentOf(snapshot));
    const change = changeOver(snapshot, mineRaw, epochSeconds(this.ctx.now));
    if (!change) {
      this.events.skipped('unchanged');
      return;
    }
    const { base, mine } = change;
    // Concurrent requests of this process on this partition write once, merged there
    // (see PartitionWrites), instead of conflicting with each other at the store.
    const outcome = await this.ctx.writes.submit(
      this.key,
      { base, mine, version: snapshot.version, loadedAt: this.loadedAt },
      (b, m, v) => this.write(b, m, v),
    );
    if (outcome.written) {
      this.persisted = true;
      this.snapshot =
        outcome.version === undefined ? absent('no-item') : loaded('store', outcome.json, outcome.version);
    }
  }

  /** One combined change through the writer; its report to the sink, its result to L1 and the memo. */
  private async write(
    base: CacheDocument,
    mine: CacheDocument,
    version: string | undefined,
  ): Promise<WriteOutcome> {
    const report = await writeConditionally(
      {
        store: this.ctx.store,
        envelope: this.ctx.envelope,
        key: this.key,
        kind: this.kind,
        expiry: this.expiry,
        now: this.ctx.now,
        retries: this.ctx.conflictRetries,
        reread: () => this.readFresh(),
      },
      { base, mine, version },
    );
    this.events.wrote(report);
    const result = report.result;
    switch (result.status) {
      case 'written':
        if (result.blob && result.version !== undefined && result.expiresAt !== undefined) {
          this.ctx.opened.set(this.key, result.blob, result.json);
          this.ctx.l1?.set(this.key, {
            json: result.json,
            version: result.version,
            expiresAt: result.expiresAt,
          });
        } else {
          this.ctx.l1?.delete(this.key);
        }
        return { written: true, doc: result.doc, json: result.json, version: result.version };
      case 'merged-unchanged':
        return {
          written: true,
          doc: result.doc,
          json: result.snapshot.json,
          version: result.snapshot.version,
        };
      case 'locked':
      case 'failed':
        return { written: false };
    }
  }

  /** A fresh read through the reader (past L1 and shared reads), reported to the sink. */
  private readFresh(): Promise<Snapshot> {
    return readPartition(this.ctx, this.key, this.kind, 'fresh').then((r) => {
      this.events.read(r);
      return r.snapshot;
    });
  }
}
