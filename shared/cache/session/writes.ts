/**
 * The writes of one process, per partition: concurrent requests of this process on one
 * partition go out as one write instead of conflicting with each other at the store.
 */
import { LRUCache } from 'lru-cache';
import { merge, type CacheDocument } from '../cache-document';

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

/** Writes one (combined) change; reports its own failures and never throws. */
export type Writer = (
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
