/**
 * The scan extension of {@link CosmosStore} for the operator CLI: one cross-partition
 * query read page by page with its continuation token; a failed page is retried with
 * backoff from the last token.
 */
import type { Container } from '@azure/cosmos';
import { isStoreKey, scanFailure, withBackoff } from '../cli/scan';
import type { ScanOptions, ScanPage, ScanSource, ScannedItem } from '../cli/scan';

/** Options of {@link CosmosScanSource}. */
export interface CosmosScanSourceOptions {
  readonly container: Container;
  /** Items per page (maxItemCount). @default 1000 */
  readonly pageSize?: number;
  /** Attempts per page, the first included. @default 8 */
  readonly attempts?: number;
}

interface ScannedDocument {
  id?: unknown;
  blob?: unknown;
  expiresAt?: unknown;
  _etag?: unknown;
}

/**
 * Scans the token container with a query and continuation tokens.
 * @example const source = new CosmosScanSource({ container: store.container });
 */
export class CosmosScanSource implements ScanSource {
  readonly name = 'cosmos';
  private readonly container: Container;
  private readonly pageSize: number;
  private readonly attempts: number;

  constructor(options: CosmosScanSourceOptions) {
    this.container = options.container;
    this.pageSize = options.pageSize ?? 1000;
    this.attempts = options.attempts ?? 8;
  }

  async *scan(options: ScanOptions = {}): AsyncGenerator<ScanPage> {
    let continuationToken: string | undefined;
    do {
      if (options.signal?.aborted) return;
      const token = continuationToken;
      const response = await withBackoff(
        () =>
          this.container.items
            .query<ScannedDocument>('SELECT c.id, c.blob, c.expiresAt, c._etag FROM c', {
              maxItemCount: this.pageSize,
              ...(token ? { continuationToken: token } : {}),
            })
            .fetchNext(),
        { attempts: this.attempts, signal: options.signal, onRetry: options.onRetry, retryable },
      ).catch((error: unknown) => {
        throw scanFailure(
          this.name,
          `query of container '${this.container.id}' failed after ${this.attempts} attempts: ${messageOf(error)}`,
          error,
        );
      });
      continuationToken = response.continuationToken;
      yield toPage(response.resources ?? []);
      if (!response.hasMoreResults) return;
    } while (continuationToken);
  }

  async estimateCount(): Promise<number | undefined> {
    try {
      const { resources } = await this.container.items
        .query<number>('SELECT VALUE COUNT(1) FROM c')
        .fetchAll();
      return typeof resources[0] === 'number' ? resources[0] : undefined;
    } catch {
      return undefined;
    }
  }
}

function toPage(documents: readonly ScannedDocument[]): ScanPage {
  const items: ScannedItem[] = [];
  let skipped = 0;
  for (const { id, blob, expiresAt, _etag } of documents) {
    if (
      !isStoreKey(id) ||
      typeof blob !== 'string' ||
      typeof expiresAt !== 'number' ||
      typeof _etag !== 'string'
    ) {
      skipped += 1;
      continue;
    }
    items.push({ key: id, blob: new Uint8Array(Buffer.from(blob, 'base64')), version: _etag, expiresAt });
  }
  return { items, skipped };
}

function messageOf(error: unknown): string {
  const { message } = error as { message?: unknown };
  return typeof message === 'string' ? message : String(error);
}

/** 429, 408, server errors and the network pass; 401/403/404 and bad requests do not. */
function retryable(error: unknown): boolean {
  const { code } = error as { code?: unknown };
  return typeof code !== 'number' || code === 429 || code === 408 || code >= 500;
}
