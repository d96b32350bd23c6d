/**
 * The conditional writer: a plain function over the {@link TokenStore} and {@link Envelope}
 * contracts. It prunes, seals and writes conditionally on the version read; on a version
 * conflict it re-reads, merges (three-way, per entity) and retries with bounded, jittered
 * backoff. It never throws, logs nothing and counts nothing: it returns a {@link WriteReport}
 * for the events sink, and the caller applies what it wrote to L1 and the memo.
 */
import type { Envelope } from '../../crypto/envelope';
import { ConflictRetriesExhaustedError, VersionConflictError } from '../../errors';
import { epochSeconds, type TokenStore, type WriteCondition } from '../../store/store';
import { isUseful, merge, prune, sameDocument, type CacheDocument } from '../cache-document';
import { documentOf, type PartitionKind, type Snapshot } from './snapshot';

/** How the partition's store item expiry is computed from its contents (epoch seconds). */
export type ExpiryPolicy = (doc: CacheDocument, nowSeconds: number) => number;

/** Bounds of the conflict loop. */
export interface ConflictRetries {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** What the writer writes through. */
export interface WriterContext {
  readonly store: TokenStore;
  readonly envelope: Envelope;
  /** The store key (a hash). */
  readonly key: string;
  readonly kind: PartitionKind;
  readonly expiry: ExpiryPolicy;
  readonly now: () => number;
  readonly retries: ConflictRetries;
  /** Reads the partition again after a conflict, from the store itself (never L1). */
  readonly reread: () => Promise<Snapshot>;
  /** Waits `ms` between attempts. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). @default Math.random */
  readonly random?: () => number;
}

/** One change to write: what was loaded (base, at version) and what the request has now. */
export interface WriteRequest {
  readonly base: CacheDocument;
  readonly mine: CacheDocument;
  /** The version the write must expect; undefined: the item must not exist. */
  readonly version: string | undefined;
}

/**
 * Nothing to write: `mine` and `base`, both already pruned, are the same, and the loaded
 * item opens. A rejected item is replaced even by an equal document: left as it is, every
 * later read of it would be a miss.
 */
export function nothingToWrite(loaded: Snapshot, base: CacheDocument, mine: CacheDocument): boolean {
  return loaded.state !== 'rejected' && sameDocument(mine, base);
}

/**
 * What a request has to write over the partition it loaded: both documents pruned of what
 * has expired at `nowSeconds`, or `undefined` when there is {@link nothingToWrite}.
 */
export function changeOver(
  loadedSnapshot: Snapshot,
  mine: CacheDocument,
  nowSeconds: number,
): Pick<WriteRequest, 'base' | 'mine'> | undefined {
  const base = prune(documentOf(loadedSnapshot), nowSeconds);
  const pruned = prune(mine, nowSeconds);
  return nothingToWrite(loadedSnapshot, base, pruned) ? undefined : { base, mine: pruned };
}

/** How the write ended. */
export type WriteResult =
  /**
   * In the store: `blob` sealed from `json` at `version`. Nothing useful left (sign-out,
   * all expired): the item was deleted (or never created) and `json` is ''.
   */
  | {
      readonly status: 'written';
      readonly doc: CacheDocument;
      readonly json: string;
      readonly version: string | undefined;
      readonly blob: Uint8Array | undefined;
      readonly expiresAt: number | undefined;
    }
  /** After a conflict, the other writer had already stored everything this change has. */
  | { readonly status: 'merged-unchanged'; readonly doc: CacheDocument; readonly snapshot: Snapshot }
  /** The re-read after a conflict found the item locked (key service down): never overwritten. */
  | { readonly status: 'locked' }
  /** Left the stored item as it was; `error` says why (a TokenCacheError, or anything unexpected). */
  | { readonly status: 'failed'; readonly error: unknown; readonly keyServiceCallFailed: boolean };

/** The result and what the write did on the way, for the events sink. */
export interface WriteReport {
  readonly result: WriteResult;
  /** Version conflicts met (each one re-read and merged, or the last one given up on). */
  readonly conflicts: number;
  /** Store writes that succeeded (0 or 1). */
  readonly storeWrites: number;
  /** True when the item was deleted because nothing useful was left. */
  readonly deleted: boolean;
  /** Key-service calls this write started (a data key generated). */
  readonly keyServiceCalls: number;
}

/** Writes `request` conditionally, merging and retrying on conflicts. Never throws. */
export async function writeConditionally(ctx: WriterContext, request: WriteRequest): Promise<WriteReport> {
  const nowSeconds = (): number => epochSeconds(ctx.now);
  const progress = { conflicts: 0, storeWrites: 0, deleted: false, keyServiceCalls: 0, sealFailed: false };
  const report = (result: WriteResult): WriteReport => ({
    result,
    conflicts: progress.conflicts,
    storeWrites: progress.storeWrites,
    deleted: progress.deleted,
    keyServiceCalls: progress.keyServiceCalls,
  });
  let base = request.base;
  // Possibly merged with other requests' changes since the caller pruned: prune again.
  let mine = prune(request.mine, nowSeconds());
  let version = request.version;
  for (let attempt = 1; ; attempt++) {
    try {
      const written = await writeOnce(ctx, mine, version, progress);
      return report({ status: 'written', doc: mine, ...written });
    } catch (e) {
      if (!(e instanceof VersionConflictError)) {
        return report({ status: 'failed', error: e, keyServiceCallFailed: progress.sealFailed });
      }
      progress.conflicts += 1;
      if (attempt >= ctx.retries.maxAttempts) {
        const error = new ConflictRetriesExhaustedError(attempt, { cause: e });
        return report({ status: 'failed', error, keyServiceCallFailed: false });
      }
    }
    await (ctx.sleep ?? sleep)(backoffMs(ctx.retries, attempt, ctx.random ?? Math.random));
    const theirs = await ctx.reread();
    if (theirs.state === 'locked') return report({ status: 'locked' });
    const now = nowSeconds();
    const theirsDoc = prune(documentOf(theirs), now);
    mine = prune(merge(base, mine, theirsDoc), now);
    base = theirsDoc;
    version = theirs.version;
    // The same rule as before the first attempt (changeOver), on documents pruned once.
    if (nothingToWrite(theirs, base, mine)) {
      return report({ status: 'merged-unchanged', doc: base, snapshot: theirs });
    }
  }
}

/** One attempt: seal and write on `version`, or delete when nothing useful is left. */
async function writeOnce(
  ctx: WriterContext,
  doc: CacheDocument,
  version: string | undefined,
  progress: { storeWrites: number; deleted: boolean; keyServiceCalls: number; sealFailed: boolean },
): Promise<{
  json: string;
  version: string | undefined;
  blob: Uint8Array | undefined;
  expiresAt: number | undefined;
}> {
  if (!isUseful(doc)) {
    // Nothing left that can serve a token (sign-out, all expired): remove the item.
    if (version !== undefined) {
      await ctx.store.delete(ctx.key, { expectedVersion: version });
      progress.deleted = true;
    }
    return { json: '', version: undefined, blob: undefined, expiresAt: undefined };
  }
  const condition: WriteCondition =
    version === undefined ? { mustNotExist: true } : { expectedVersion: version };
  const json = JSON.stringify(doc);
  const nowSeconds = epochSeconds(ctx.now);
  const expiresAt = Math.max(ctx.expiry(doc, nowSeconds), nowSeconds + 1);
  const calls = { keyServiceCalls: 0 };
  let blob: Uint8Array;
  try {
    blob = await ctx.envelope.seal(Buffer.from(json, 'utf8'), ctx.key, { partitionKind: ctx.kind }, calls);
  } catch (e) {
    // A data key this attempt asked the key service for, and did not get.
    progress.sealFailed = calls.keyServiceCalls > 0;
    throw e;
  } finally {
    progress.keyServiceCalls += calls.keyServiceCalls;
  }
  const newVersion = await ctx.store.write(ctx.key, blob, { condition, expiresAt });
  progress.storeWrites += 1;
  return { json, version: newVersion, blob, expiresAt };
}

/** Full jitter: uniform in [0, min(max, base * 2^(attempt-1))). */
export function backoffMs(retries: ConflictRetries, attempt: number, random: () => number): number {
  return random() * Math.min(retries.maxDelayMs, retries.baseDelayMs * 2 ** (attempt - 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
