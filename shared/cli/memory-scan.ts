/** A {@link ScanSource} over a {@link MemoryStore}, for unit tests and the local run. */
import type { MemoryStore } from '../store/memory';
import { isStoreKey, type ScanOptions, type ScanPage, type ScanSource, type ScannedItem } from './scan';

/** Options of {@link MemoryScanSource}. */
export interface MemoryScanSourceOptions {
  /** Items per page. @default 100 */
  readonly pageSize?: number;
}

/**
 * Scans a MemoryStore page by page (a snapshot of its keys at the start of the scan).
 * @example const source = new MemoryScanSource(store);
 */
export class MemoryScanSource implements ScanSource {
  readonly name = 'memory';
  private readonly pageSize: number;

  constructor(
    private readonly store: MemoryStore,
    options: MemoryScanSourceOptions = {},
  ) {
    this.pageSize = options.pageSize ?? 100;
  }

  async *scan(options: ScanOptions = {}): AsyncGenerator<ScanPage> {
    let items: ScannedItem[] = [];
    let skipped = 0;
    for (const item of this.store.entries()) {
      if (options.signal?.aborted) return;
      if (isStoreKey(item.key)) items.push(item);
      else skipped += 1;
      if (items.length + skipped >= this.pageSize) {
        yield { items, skipped };
        items = [];
        skipped = 0;
      }
    }
    if (items.length + skipped > 0) yield { items, skipped };
  }

  async estimateCount(): Promise<number> {
    return this.store.size;
  }
}
