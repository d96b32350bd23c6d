/**
 * What one read of a partition found, as one union: each state says what may be served
 * and what a write may do. A rejected or locked snapshot carries `json: ''` in its type,
 * so nothing that did not open can reach MSAL.
 */
import type { PartitionKind } from '../../crypto/keyring';
import type { EnvelopeFailure, KeyServiceFailure } from '../../errors';
import { emptyDocument, parseDocument, type CacheDocument } from '../cache-document';

export type { PartitionKind };

/**
 * Nothing to serve; a write must create the item (`mustNotExist`). `no-item`: the store has
 * none. `store-unavailable`: the read failed, so an item may exist, and a write that finds
 * one conflicts and re-reads instead of overwriting it.
 */
export interface AbsentSnapshot {
  readonly state: 'absent';
  readonly reason: 'no-item' | 'store-unavailable';
  readonly json: '';
  readonly version: undefined;
}

/** The partition opened (from L1 or the store) at `version`. */
export interface LoadedSnapshot {
  readonly state: 'loaded';
  readonly from: 'l1' | 'store';
  /** MSAL's JSON as stored. */
  readonly json: string;
  readonly version: string;
}

/**
 * The stored blob failed to open or authenticate (tampered, foreign, unknown key): never
 * served, only replaced by a conditional write on exactly this version.
 */
export interface RejectedSnapshot {
  readonly state: 'rejected';
  readonly reason: EnvelopeFailure;
  readonly json: '';
  readonly version: string;
}

/**
 * The item exists but the key service could not unwrap its data key now (down, throttled,
 * disabled): the blob may be good, so it is never served and never overwritten.
 */
export interface LockedSnapshot {
  readonly state: 'locked';
  readonly reason: KeyServiceFailure;
  readonly json: '';
  readonly version: string;
}

/** One read of a partition: absent, loaded, rejected (with why) or locked (key service down). */
export type Snapshot = AbsentSnapshot | LoadedSnapshot | RejectedSnapshot | LockedSnapshot;

/** Where the partition was loaded from, as the result's `loadedFrom` names it (stable, public). */
export type LoadSource = 'l1' | 'store' | 'absent' | 'unreadable' | 'unavailable';

/**
 * What is stored is not known now: the store read failed (absent, `store-unavailable`) or
 * the key service could not open the item (locked). Both are `loadedFrom: 'unavailable'`.
 */
export function isUnavailable(snapshot: Snapshot | undefined): boolean {
  switch (snapshot?.state) {
    case 'absent':
      return snapshot.reason === 'store-unavailable';
    case 'locked':
      return true;
    default:
      return false;
  }
}

/** An absent snapshot: no item, or the store could not be read. */
export function absent(reason: AbsentSnapshot['reason']): AbsentSnapshot {
  return { state: 'absent', reason, json: '', version: undefined };
}

/** A loaded snapshot (its document parsed on first use, see {@link documentOf}). */
export function loaded(
  from: LoadedSnapshot['from'],
  json: string,
  version: string,
  doc?: CacheDocument,
): LoadedSnapshot {
  const snapshot: LoadedSnapshot = { state: 'loaded', from, json, version };
  if (doc) documents.set(snapshot, doc);
  return snapshot;
}

/**
 * The public name of a snapshot's state (`CacheMetadata.loadedFrom`). Two states share
 * `unavailable` there, as they always have; inside the session they are told apart.
 */
export function loadSource(snapshot: Snapshot): LoadSource {
  switch (snapshot.state) {
    case 'absent':
      return snapshot.reason === 'no-item' ? 'absent' : 'unavailable';
    case 'loaded':
      return snapshot.from;
    case 'rejected':
      return 'unreadable';
    case 'locked':
      return 'unavailable';
  }
}

/** Parsed documents of loaded snapshots: only a write needs one, so most are never parsed. */
const documents = new WeakMap<Snapshot, CacheDocument>();

/** The document a write merges against: the loaded one, else empty (nothing usable was read). */
export function documentOf(snapshot: Snapshot): CacheDocument {
  if (snapshot.state !== 'loaded') return emptyDocument();
  let doc = documents.get(snapshot);
  if (!doc) {
    doc = parseDocument(snapshot.json);
    documents.set(snapshot, doc);
  }
  return doc;
}
