/**
 * {@link TokenStore} on a DynamoDB table. One item per key:
 * `{ pk: S, v: N, blob: B, expiresAt: N }`, with `expiresAt` as the table's TTL attribute.
 * Reads are strongly consistent; writes are conditional PutItems; the size is checked
 * the way DynamoDB counts it before anything is sent.
 *
 * Leases (see {@link LeaseStore}) are items of their own under `leaseItemKey(key)`:
 * `{ pk: S, lease: S (owner), until: N (epoch ms), expiresAt: N (epoch s, the TTL) }`.
 */
import { randomInt } from 'node:crypto';
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DYNAMODB_STORE_DEFAULTS } from '../defaults';
import { LeanGetItem } from './lean-get-item';
import { ConfigurationError, StoreUnavailableError, VersionConflictError } from '../errors';
import { hasReadyClient } from '../options';
import { assertItemSize, DYNAMODB_MAX_ITEM_BYTES, utf8Length } from '../store/limits';
import {
  checkLeaseTtl,
  epochSeconds,
  leaseItemKey,
  type LeaseOptions,
  type LeaseStore,
  type StoredItem,
  type TokenStore,
  type WriteOptions,
} from '../store/store';

/** Options every {@link DynamoDbStore} takes. */
export interface DynamoDbStoreBaseOptions {
  /** The table: hash key `pk` (S), TTL attribute `expiresAt`. */
  readonly tableName: string;
  /** Clock in epoch milliseconds, for expiry. @default Date.now */
  readonly now?: () => number;
  /**
   * Read with a hand-written GetItem (one attempt, signed and sent by the client's own
   * signer, credentials and request handler) instead of `client.send`, which costs ~3x its
   * CPU; any failure is read again through `client.send`, so errors, retries and throttling
   * stay the SDK's. Taken only while the client's middleware stack is the SDK's own: with
   * middleware added (tracing, custom headers), every read goes through `client.send`.
   * `false` always reads through `client.send`.
   * @defaultValue {@link DYNAMODB_STORE_DEFAULTS.leanReads}
   */
  readonly leanReads?: boolean;
}

/** Use a client you built (and configured: retries, timeouts, tracing) yourself. */
export interface DynamoDbStoreClientOptions extends DynamoDbStoreBaseOptions {
  /** A ready client; the store never destroys it. */
  readonly client: DynamoDBClient;
  readonly clientConfig?: never;
  readonly timeoutMs?: never;
  readonly maxAttempts?: never;
}

/** Let the store build its client, with bounded timeouts and retries. */
export interface DynamoDbStoreConfigOptions extends DynamoDbStoreBaseOptions {
  /** Configuration of the client the store builds (region, credentials, endpoint...). */
  readonly clientConfig: DynamoDBClientConfig;
  readonly client?: never;
  /** Connection and request timeout of each attempt, in ms (ignored if clientConfig has a requestHandler). @defaultValue {@link DYNAMODB_STORE_DEFAULTS.timeoutMs} */
  readonly timeoutMs?: number;
  /** Attempts per operation, the first included. @defaultValue clientConfig.maxAttempts, else {@link DYNAMODB_STORE_DEFAULTS.maxAttempts} */
  readonly maxAttempts?: number;
}

/** Either a ready client or its config, never both. */
export type DynamoDbStoreOptions = DynamoDbStoreClientOptions | DynamoDbStoreConfigOptions;

/** Error names with which DynamoDB asks the caller to slow down. */
const THROTTLING_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
]);

// The condition pieces, named as in Powertools' DynamoDBPersistenceLayer.
const itemIsAbsent = 'attribute_not_exists(#pk)';
const itemHasExpired = '#expiresAt <= :now';
const versionMatches = '#v = :expected';

/**
 * Versions are integers: a replace writes `expected + 1`; a create starts at a random
 * 15-digit number. Starting at 1 would hand out a version again after a delete or an
 * expiry, and a writer still holding the old one would then overwrite the new item.
 */
const VERSION_PATTERN = /^[1-9][0-9]{0,15}$/;
const firstVersion = (): number => 1e14 + randomInt(2 ** 48 - 1);

/**
 * A DynamoDB-backed token store.
 * @example
 * const store = new DynamoDbStore({ tableName: process.env.TABLE_NAME!, clientConfig: { region: 'eu-west-1' } });
 */
export class DynamoDbStore implements TokenStore, LeaseStore {
  readonly name = 'dynamodb';
  readonly maxItemBytes = DYNAMODB_MAX_ITEM_BYTES;
  /** The client in use (to add middleware such as tracing); built from `clientConfig` or passed in. */
  readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly now: () => number;
  private readonly ownsClient: boolean;
  private readonly timeoutMs: number | undefined;
  private readonly lean: LeanGetItem | undefined;
  private readonly reads = { lean: 0, sdk: 0, fallbacks: 0 };

  constructor(options: DynamoDbStoreOptions) {
    if (typeof options.tableName !== 'string' || options.tableName.trim() === '') {
      throw new ConfigurationError(
        'tableName',
        `expected the name of the DynamoDB table, received ${JSON.stringify(options.tableName)}`,
      );
    }
    this.tableName = options.tableName;
    this.now = options.now ?? Date.now;
    if (
      hasReadyClient(options, {
        ready: 'client',
        build: ['clientConfig'],
        buildOnly: ['timeoutMs', 'maxAttempts'],
        pass: 'a ready DynamoDBClient as client, or its config as clientConfig',
      })
    ) {
      this.client = options.client;
      this.ownsClient = false;
      this.timeoutMs = undefined;
      this.lean = this.leanReader(options);
      return;
    }
    this.client = DynamoDbStore.buildClient(options);
    this.ownsClient = true;
    this.timeoutMs = options.clientConfig.requestHandler
      ? undefined
      : (options.timeoutMs ?? DYNAMODB_STORE_DEFAULTS.timeoutMs);
    this.lean = this.leanReader(options);
  }

  /**
   * Reads so far by path: `lean` answered by the hand-written GetItem, `sdk` by
   * `client.send`, `fallbacks` the lean attempts that failed and were read again by the SDK.
   */
  get readCounts(): Readonly<{ lean: number; sdk: number; fallbacks: number }> {
    return { ...this.reads };
  }

  /** Destroys the client if the store built it (a client passed in stays yours). */
  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }

  async read(key: string): Promise<StoredItem | undefined> {
    const item = await this.getItem(key);
    // A lease item is never a cache document, whatever key it was asked for under.
    if (!item || item['lease'] !== undefined) return undefined;
    const { v, blob, expiresAt } = item;
    if (v?.N === undefined || blob?.B === undefined || expiresAt?.N === undefined) {
      throw new StoreUnavailableError(
        this.name,
        'read',
        `the item under this key in table '${this.tableName}' lacks v (N), blob (B) or expiresAt (N); ` +
          'it was not written by this store: delete it',
      );
    }
    // TTL deletion lags by up to days (and never happens locally): expired means absent.
    if (Number(expiresAt.N) <= epochSeconds(this.now)) return undefined;
    return { blob: blob.B, version: v.N, expiresAt: Number(expiresAt.N) };
  }

  async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    const { condition } = options;
    let version: number;
    let conditionExpression: string;
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    if ('mustNotExist' in condition) {
      version = firstVersion();
      conditionExpression = `${itemIsAbsent} OR ${itemHasExpired}`;
      Object.assign(names, { '#pk': 'pk', '#expiresAt': 'expiresAt' });
      values[':now'] = { N: String(epochSeconds(this.now)) };
    } else {
      version = this.parseVersion(condition.expectedVersion) + 1;
      conditionExpression = versionMatches;
      names['#v'] = 'v';
      values[':expected'] = { N: condition.expectedVersion };
    }
    const item: Record<string, AttributeValue> = {
      pk: { S: key },
      v: { N: String(version) },
      blob: { B: blob },
      expiresAt: { N: String(options.expiresAt) },
    };
    assertItemSize(this.name, dynamoDbItemSize(item), this.maxItemBytes);
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: conditionExpression,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      throw this.failure('write', error);
    }
    return String(version);
  }

  async delete(key: string, options: { readonly expectedVersion?: string } = {}): Promise<void> {
    const { expectedVersion } = options;
    if (expectedVersion !== undefined) this.parseVersion(expectedVersion);
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: key } },
          ...(expectedVersion === undefined
            ? {}
            : {
                ConditionExpression: versionMatches,
                ExpressionAttributeNames: { '#v': 'v' },
                ExpressionAttributeValues: { ':expected': { N: expectedVersion } },
              }),
        }),
      );
    } catch (error) {
      throw this.failure('delete', error);
    }
  }

  async acquireLease(key: string, options: LeaseOptions): Promise<boolean> {
    checkLeaseTtl(options.ttlMs);
    const now = this.now();
    const until = now + options.ttlMs;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: {
            pk: { S: leaseItemKey(key) },
            lease: { S: options.owner },
            until: { N: String(until) },
            expiresAt: { N: String(Math.ceil(until / 1000)) },
          },
          ConditionExpression: `${itemIsAbsent} OR #until <= :now`,
          ExpressionAttributeNames: { '#pk': 'pk', '#until': 'until' },
          ExpressionAttributeValues: { ':now': { N: String(now) } },
        }),
      );
      return true;
    } catch (error) {
      const failure = this.failure('write', error);
      if (failure instanceof VersionConflictError) return false;
      throw failure;
    }
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { pk: { S: leaseItemKey(key) } },
          ConditionExpression: '#lease = :owner',
          ExpressionAttributeNames: { '#lease': 'lease' },
          ExpressionAttributeValues: { ':owner': { S: owner } },
        }),
      );
    } catch (error) {
      const failure = this.failure('delete', error);
      if (!(failure instanceof VersionConflictError)) throw failure;
    }
  }

  /** The item under `key`: lean when it may be (see {@link DynamoDbStoreBaseOptions.leanReads}), else through the SDK. */
  private async getItem(key: string): Promise<Record<string, AttributeValue> | undefined> {
    const lean = this.lean;
    if (lean?.ready()) {
      const found = await lean.get(key);
      if (found) {
        this.reads.lean++;
        return found.item;
      }
      this.reads.fallbacks++;
    }
    this.reads.sdk++;
    const command = new GetItemCommand({
      TableName: this.tableName,
      Key: { pk: { S: key } },
      ConsistentRead: true,
    });
    if (lean?.learning) lean.learnFrom(command);
    try {
      return (await this.client.send(command)).Item;
    } catch (error) {
      throw this.failure('read', error);
    }
  }

  private leanReader(options: DynamoDbStoreOptions): LeanGetItem | undefined {
    const { leanReads = DYNAMODB_STORE_DEFAULTS.leanReads } = options;
    if (typeof leanReads !== 'boolean') {
      throw new ConfigurationError(
        'leanReads',
        `expected true or false, received ${JSON.stringify(leanReads)}`,
      );
    }
    return leanReads ? new LeanGetItem(this.client, this.tableName, this.timeoutMs) : undefined;
  }

  /**
   * A version this store never hands out cannot be the stored one, so it is a conflict:
   * the caller re-reads and gets a valid version.
   */
  private parseVersion(version: string): number {
    if (!VERSION_PATTERN.test(version)) {
      throw new VersionConflictError(this.name, {
        cause: new Error(`'${version}' is not a version of this store (a positive integer)`),
      });
    }
    return Number(version);
  }

  private failure(operation: 'read' | 'write' | 'delete', error: unknown): Error {
    const { name, message, $metadata } = error as {
      name?: string;
      message?: string;
      $metadata?: { attempts?: number };
    };
    const attempts = $metadata?.attempts === undefined ? '' : ` after ${$metadata.attempts} attempt(s)`;
    if (name === 'ConditionalCheckFailedException')
      return new VersionConflictError(this.name, { cause: error });
    if (name !== undefined && THROTTLING_ERRORS.has(name)) {
      return new StoreUnavailableError(
        this.name,
        operation,
        `DynamoDB throttled table '${this.tableName}'${attempts} (${name}); ` +
          'raise its capacity or switch it to on-demand, and retry later',
        { cause: error, throttled: true },
      );
    }
    if (name === 'TimeoutError') {
      const limit = this.timeoutMs === undefined ? '' : ` of ${this.timeoutMs} ms`;
      return new StoreUnavailableError(
        this.name,
        operation,
        `no answer from DynamoDB within the timeout${limit}${attempts}; ` +
          'check the network path to the endpoint (VPC endpoint, NAT), or raise timeoutMs',
        { cause: error },
      );
    }
    if (name === 'ResourceNotFoundException') {
      return new StoreUnavailableError(
        this.name,
        operation,
        `table '${this.tableName}' was not found; check tableName and the client's region`,
        { cause: error },
      );
    }
    const code = (error as { code?: unknown }).code;
    return new StoreUnavailableError(
      this.name,
      operation,
      `${name ?? 'Error'}${typeof code === 'string' ? ` ${code}` : ''}: ${message ?? String(error)}${attempts}; ` +
        `check table '${this.tableName}', the region, credentials and network`,
      { cause: error },
    );
  }

  private static buildClient(options: DynamoDbStoreConfigOptions): DynamoDBClient {
    const { clientConfig, timeoutMs, maxAttempts } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new ConfigurationError('timeoutMs', `expected a positive number of ms, received ${timeoutMs}`);
    }
    if (timeoutMs !== undefined && clientConfig.requestHandler) {
      throw new ConfigurationError(
        'timeoutMs',
        'clientConfig.requestHandler is set too; set the timeouts on that handler, or drop it and keep timeoutMs',
      );
    }
    if (maxAttempts !== undefined && !(Number.isSafeInteger(maxAttempts) && maxAttempts >= 1)) {
      throw new ConfigurationError(
        'maxAttempts',
        `expected an integer of at least 1, received ${maxAttempts}`,
      );
    }
    const perAttempt = timeoutMs ?? DYNAMODB_STORE_DEFAULTS.timeoutMs;
    return new DynamoDBClient({
      ...clientConfig,
      maxAttempts: maxAttempts ?? clientConfig.maxAttempts ?? DYNAMODB_STORE_DEFAULTS.maxAttempts,
      // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes.
      requestHandler:
        clientConfig.requestHandler ??
        new NodeHttpHandler({
          connectionTimeout: perAttempt,
          requestTimeout: perAttempt,
          throwOnRequestTimeout: true,
        }),
    });
  }
}

/**
 * Size of an item as DynamoDB counts it against its 400 KB limit: each attribute name
 * plus its value (S: UTF-8 bytes, B: bytes, N: one byte per two significant digits plus
 * one; counted here for all digits plus two, which is never less than DynamoDB's figure).
 */
export function dynamoDbItemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    size += utf8Length(name);
    if (value.S !== undefined) size += utf8Length(value.S);
    else if (value.B !== undefined) size += value.B.byteLength;
    else if (value.N !== undefined) size += Math.ceil(value.N.replace(/[^0-9]/g, '').length / 2) + 2;
    else throw new TypeError(`dynamoDbItemSize: attribute ${name} has a type this store does not write`);
  }
  return size;
}
