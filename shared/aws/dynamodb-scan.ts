/**
 * The scan extension of {@link DynamoDbStore} for the operator CLI: a parallel Scan in
 * segments, each page retried with backoff from its segment's last evaluated key.
 */
import {
  DescribeTableCommand,
  ScanCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { ConfigurationError } from '../errors';
import {
  isStoreKey,
  mergeSegments,
  scanFailure,
  withBackoff,
  type ScanOptions,
  type ScanPage,
  type ScanSource,
  type ScannedItem,
} from '../cli/scan';

/** Options of {@link DynamoDbScanSource}. */
export interface DynamoDbScanSourceOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  /** Parallel Scan segments (TotalSegments). @default 4 */
  readonly segments?: number;
  /** Items per Scan request (Limit). @default DynamoDB's 1 MB page */
  readonly pageSize?: number;
  /** Attempts per page, the first included. @default 8 */
  readonly attempts?: number;
}

/**
 * Scans the token table in parallel segments.
 * @example const source = new DynamoDbScanSource({ client: store.client, tableName, segments: 8 });
 */
export class DynamoDbScanSource implements ScanSource {
  readonly name = 'dynamodb';
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly segments: number;
  private readonly pageSize: number | undefined;
  private readonly attempts: number;

  constructor(options: DynamoDbScanSourceOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.segments = options.segments ?? 4;
    if (!Number.isSafeInteger(this.segments) || this.segments < 1 || this.segments > 1_000_000) {
      throw new ConfigurationError(
        'segments',
        `expected 1 to 1000000 segments, received ${options.segments}`,
      );
    }
    this.pageSize = options.pageSize;
    this.attempts = options.attempts ?? 8;
  }

  scan(options: ScanOptions = {}): AsyncIterable<ScanPage> {
    return mergeSegments(this.segments, async (segment, emit) => {
      let start: Record<string, AttributeValue> | undefined;
      do {
        if (options.signal?.aborted) return;
        const exclusiveStartKey = start;
        const page = await withBackoff(
          () =>
            this.client.send(
              new ScanCommand({
                TableName: this.tableName,
                Segment: segment,
                TotalSegments: this.segments,
                ConsistentRead: true,
                ...(this.pageSize ? { Limit: this.pageSize } : {}),
                ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}),
              }),
            ),
          { attempts: this.attempts, signal: options.signal, onRetry: options.onRetry, retryable },
        ).catch((error: unknown) => {
          throw scanFailure(
            this.name,
            `Scan of table '${this.tableName}' (segment ${segment + 1} of ${this.segments}) failed after ${this.attempts} attempts: ${describe(error)}`,
            error,
          );
        });
        start = page.LastEvaluatedKey;
        if (!(await emit(toPage(page.Items ?? [])))) return;
      } while (start);
    });
  }

  /** DynamoDB's own item count (updated about every six hours). */
  async estimateCount(): Promise<number | undefined> {
    try {
      const { Table } = await this.client.send(new DescribeTableCommand({ TableName: this.tableName }));
      return Table?.ItemCount;
    } catch {
      return undefined;
    }
  }
}

function toPage(raw: readonly Record<string, AttributeValue>[]): ScanPage {
  const items: ScannedItem[] = [];
  let skipped = 0;
  for (const { pk, v, blob, expiresAt } of raw) {
    if (!isStoreKey(pk?.S) || v?.N === undefined || blob?.B === undefined || expiresAt?.N === undefined) {
      skipped += 1;
      continue;
    }
    items.push({ key: pk.S, version: v.N, blob: blob.B, expiresAt: Number(expiresAt.N) });
  }
  return { items, skipped };
}

/** Throttling, server errors and the network pass; a missing table or a denied call does not. */
function retryable(error: unknown): boolean {
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof name === 'string' && THROTTLING.has(name)) return true;
  const status = $metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

function describe(error: unknown): string {
  const { name, message } = error as { name?: unknown; message?: unknown };
  return `${typeof name === 'string' ? name : 'Error'}: ${typeof message === 'string' ? message : String(error)}`;
}
