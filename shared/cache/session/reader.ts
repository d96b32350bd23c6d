/**
 * The reader: L1, then the store (joining a shared read on a request's first load), the
 * opened-envelope memo, then the envelope. It returns a {@link Snapshot} and what the read
 * did; it never throws, logs nothing and counts nothing (the events sink does).
 */
import type { Envelope } from '../../crypto/envelope';
import { EnvelopeError, EnvelopeFailure, KeyServiceError, KeyServiceFailure } from '../../errors';
import type { StoredItem, TokenStore } from '../../store/store';
import { parseDocument, type CacheDocument } from '../cache-document';
import type { L1Cache, OpenedEnvelopes } from '../l1';
import type { SharedReads } from '../shared-reads';
import { absent, loaded, type PartitionKind, type Snapshot } from './snapshot';

/** What the reader reads through. */
export interface ReaderContext {
  readonly store: TokenStore;
  readonly envelope: Envelope;
  readonly l1: L1Cache | undefined;
  /** Concurrent first loads of one partition share one store read; undefined: each reads. */
  readonly reads?: SharedReads;
  /** Envelopes already opened, by store key: reused only for byte-identical blobs. */
  readonly opened: OpenedEnvelopes;
}

/**
 * `first`: a request's first load: L1, else a store read that may join one in flight.
 * `fresh`: the store itself, bypassing L1 and shared reads (a re-read after a conflict, a
 * lease waiter's poll, an eviction), which must see writes made after it was asked for.
 */
export type ReadMode = 'first' | 'fresh';

/** One read: the snapshot and what it cost, for the events sink. */
export interface ReadReport {
  readonly snapshot: Snapshot;
  /** L1's answer; undefined when L1 is off or was bypassed. */
  readonly l1: 'hit' | 'miss' | undefined;
  /** True when this read sent a store request (false: L1 hit, or it joined a shared read). */
  readonly storeCalled: boolean;
  /** Milliseconds spent on the store read (0 on an L1 hit). */
  readonly storeReadMs: number;
  /** True when an envelope open was attempted (not on an L1 or memo hit). */
  readonly opened: boolean;
  readonly openMs: number;
  /** Key-service calls this read started (0: none, or it joined one in flight). */
  readonly keyServiceCalls: number;
  /** Why the store read failed (absent, `store-unavailable`), or why the blob did not open (rejected, locked). */
  readonly error?: unknown;
}

/** Reads partition `key` of kind `kind`. Never throws. */
export async function readPartition(
  ctx: ReaderContext,
  key: string,
  kind: PartitionKind,
  mode: ReadMode,
): Promise<ReadReport> {
  const l1 = mode === 'first' && ctx.l1 ? (ctx.l1.get(key) ?? null) : undefined;
  if (l1) return reportOf(loaded('l1', l1.json, l1.version), 'hit', undefined, undefined);
  const l1Answer: ReadReport['l1'] = l1 === null ? 'miss' : undefined;

  const readStarted = performance.now();
  let joined = false;
  let item: StoredItem | undefined;
  try {
    const read =
      mode === 'first' && ctx.reads
        ? ctx.reads.read(ctx.store, key)
        : { promise: ctx.store.read(key), joined: false };
    joined = read.joined;
    item = await read.promise;
  } catch (error) {
    // The acquire goes on through the authority; a later write uses mustNotExist, so if
    // the item does exist the write conflicts and re-reads instead of overwriting it.
    const store = { called: !joined, ms: performance.now() - readStarted };
    return reportOf(absent('store-unavailable'), l1Answer, store, undefined, error);
  }
  const store = { called: !joined, ms: performance.now() - readStarted };
  if (!item) {
    ctx.l1?.delete(key);
    return reportOf(absent('no-item'), l1Answer, store, undefined);
  }
  const known = ctx.opened.get(key, item.blob);
  if (known !== undefined) {
    ctx.l1?.set(key, { json: known, version: item.version, expiresAt: item.expiresAt });
    return reportOf(loaded('store', known, item.version), l1Answer, store, undefined);
  }
  const calls = { keyServiceCalls: 0 };
  const openStarted = performance.now();
  try {
    const { json, doc } = await openDocument(ctx.envelope, item.blob, key, kind, calls);
    ctx.opened.set(key, item.blob, json);
    ctx.l1?.set(key, { json, version: item.version, expiresAt: item.expiresAt });
    const open = { ms: performance.now() - openStarted, keyServiceCalls: calls.keyServiceCalls };
    return reportOf(loaded('store', json, item.version, doc), l1Answer, store, open);
  } catch (error) {
    const snapshot: Snapshot =
      error instanceof EnvelopeError
        ? { state: 'rejected', reason: error.reason, json: '', version: item.version }
        : {
            state: 'locked',
            reason: error instanceof KeyServiceError ? error.reason : KeyServiceFailure.Unknown,
            json: '',
            version: item.version,
          };
    const open = { ms: performance.now() - openStarted, keyServiceCalls: calls.keyServiceCalls };
    return reportOf(snapshot, l1Answer, store, open, error);
  }
}

/** A report of one shape for every path (the hot paths build no spread objects). */
function reportOf(
  snapshot: Snapshot,
  l1: ReadReport['l1'],
  store: { readonly called: boolean; readonly ms: number } | undefined,
  open: { readonly ms: number; readonly keyServiceCalls: number } | undefined,
  error?: unknown,
): ReadReport {
  return {
    snapshot,
    l1,
    storeCalled: store?.called ?? false,
    storeReadMs: store?.ms ?? 0,
    opened: open !== undefined,
    openMs: open?.ms ?? 0,
    keyServiceCalls: open?.keyServiceCalls ?? 0,
    error,
  };
}

/** Opens `blob` and parses it; a plaintext that is no MSAL document is an EnvelopeError too. */
async function openDocument(
  envelope: Envelope,
  blob: Uint8Array,
  key: string,
  kind: PartitionKind,
  trace: { keyServiceCalls: number },
): Promise<{ json: string; doc: CacheDocument }> {
  const plaintext = await envelope.open(blob, key, { partitionKind: kind }, trace);
  // A view, not Buffer.from(plaintext)'s copy: the string is decoded from the bytes once,
  // and open() returns a fresh buffer nothing else holds (envelope.ts concat).
  const json = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength).toString('utf8');
  try {
    return { json, doc: parseDocument(json) };
  } catch (cause) {
    throw new EnvelopeError(EnvelopeFailure.BadPlaintext, 'the plaintext is not an MSAL cache document', {
      cause,
    });
  }
}
