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
  const none = { storeCalled: false, storeReadMs: 0, opened: false, openMs: 0, keyServiceCalls: 0 };
  const l1 = mode === 'first' && ctx.l1 ? (ctx.l1.get(key) ?? null) : undefined;
  if (l1) return { ...none, snapshot: loaded('l1', l1.json, l1.version), l1: 'hit' };
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
    return {
      ...none,
      snapshot: absent('store-unavailable'),
      l1: l1Answer,
      storeCalled: !joined,
      storeReadMs: performance.now() - readStarted,
      error,
    };
  }
  const stored = { l1: l1Answer, storeCalled: !joined, storeReadMs: performance.now() - readStarted };
  if (!item) {
    ctx.l1?.delete(key);
    return { ...none, ...stored, snapshot: absent('no-item') };
  }
  const known = ctx.opened.get(key, item.blob);
  if (known !== undefined) {
    ctx.l1?.set(key, { json: known, version: item.version, expiresAt: item.expiresAt });
    return { ...none, ...stored, snapshot: loaded('store', known, item.version) };
  }
  const calls = { keyServiceCalls: 0 };
  const openStarted = performance.now();
  const opening = { ...stored, opened: true, keyServiceCalls: 0 };
  try {
    const { json, doc } = await openDocument(ctx.envelope, item.blob, key, kind, calls);
    ctx.opened.set(key, item.blob, json);
    ctx.l1?.set(key, { json, version: item.version, expiresAt: item.expiresAt });
    return {
      ...opening,
      snapshot: loaded('store', json, item.version, doc),
      openMs: performance.now() - openStarted,
      keyServiceCalls: calls.keyServiceCalls,
    };
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
    return {
      ...opening,
      snapshot,
      openMs: performance.now() - openStarted,
      keyServiceCalls: calls.keyServiceCalls,
      error,
    };
  }
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
  const json = Buffer.from(plaintext).toString('utf8');
  try {
    return { json, doc: parseDocument(json) };
  } catch (cause) {
    throw new EnvelopeError(EnvelopeFailure.BadPlaintext, 'the plaintext is not an MSAL cache document', {
      cause,
    });
  }
}
