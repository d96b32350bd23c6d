/**
 * {@link TokenStore} on a Cosmos DB (NoSQL) container partitioned on `/pk`, with TTL on
 * (`defaultTtl: -1`). One item per key: `{ id: key, pk: key, blob: base64, expiresAt, ttl }`;
 * the version is the item's `_etag`, and every replace or conditional delete is `IfMatch`.
 *
 * Reads are as consistent as the account: with the default Session level a read in one
 * instance may miss another instance's latest write; the `IfMatch` on the following write
 * still catches it, so the cost is a conflict and a merge, never a lost update.
 *
 * Leases (see {@link LeaseStore}) are items of their own under `leaseItemKey(key)`:
 * `{ id, pk, lease: owner, until: epoch ms, expiresAt: epoch s, ttl }`; taking over an
 * expired one is a replace with `IfMatch`.
 */
import {
  CosmosClient,
  type Container,
  type CosmosClientOptions,
  type ItemDefinition,
  type RequestOptions,
} from '@azure/cosmos';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { COSMOS_STORE_DEFAULTS } from '../defaults';
import { ConfigurationError, StoreUnavailableError, VersionConflictError } from '../errors';
import { budgetOption, hasReadyClient, type Budget } from '../options';
import { assertItemSize, COSMOS_MAX_ITEM_BYTES, utf8Length } from '../store/limits';
import { checkLeaseTtl, epochSeconds, leaseItemKey } from '../store/store';
import type { LeaseOptions, LeaseStore, StoredItem, TokenStore, WriteOptions } from '../store/store';

/** Options every {@link CosmosStore} takes. */
export interface CosmosStoreBaseOptions {
  /** Clock in epoch milliseconds, for expiry and `ttl`. @default Date.now */
  readonly now?: () => number;
  /**
   * Longest one store operation may take, the SDK's own retries included. The SDK retries a
   * reset connection ten times a second apart whatever its requestTimeout says; past this
   * budget the operation is abandoned and reported, so a sick store costs the cache, not
   * the request. @defaultValue {@link COSMOS_STORE_DEFAULTS.budgetMs}
   */
  readonly budgetMs?: number;
  /** @deprecated The old name of `budgetMs`; still works. */
  readonly operationBudgetMs?: number;
}

/** Use a container from a client you built and configured yourself. */
export interface CosmosStoreContainerOptions extends CosmosStoreBaseOptions {
  /** Partition key `/pk`, `defaultTtl: -1`. Its client stays yours to dispose. */
  readonly container: Container;
  readonly endpoint?: never;
  readonly timeoutMs?: never;
}

/** Let the store build its client. */
export type CosmosStoreEndpointOptions = CosmosStoreBaseOptions & {
  /** Account endpoint, e.g. `https://myaccount.documents.azure.com:443/`. */
  readonly endpoint: string;
  readonly databaseId: string;
  /** Partition key `/pk`, `defaultTtl: -1`. */
  readonly containerId: string;
  /**
   * Further client options (retries, agent, user agent suffix...).
   * @defaultValue `{ connectionPolicy: { requestTimeout: COSMOS_STORE_DEFAULTS.timeoutMs } }` (the SDK's own default is 60 s)
   */
  readonly clientOptions?: Omit<CosmosClientOptions, 'endpoint' | 'key' | 'aadCredentials'>;
  /**
   * Request timeout of each attempt of the client the store builds, in ms
   * (`clientOptions.connectionPolicy.requestTimeout`, which it must not be set with).
   * @defaultValue {@link COSMOS_STORE_DEFAULTS.timeoutMs}
   */
  readonly timeoutMs?: number;
  readonly container?: never;
} & (
    | {
        /** Entra ID credential (needs a Cosmos DB data-plane role). @default new DefaultAzureCredential() */
        readonly credential?: TokenCredential;
        readonly key?: never;
      }
    | {
        /** Account key, when Entra ID auth is not an option (local runs). */
        readonly key: string;
        readonly credential?: never;
      }
  );

/** Either a ready container or where to find one, never both. */
export type CosmosStoreOptions = CosmosStoreContainerOptions | CosmosStoreEndpointOptions;

/** The stored document. */
interface TokenItem extends ItemDefinition {
  id: string;
  pk: string;
  /** The blob, base64. */
  blob: string;
  /** Epoch seconds; reads treat `expiresAt <= now` as absent. */
  expiresAt: number;
  /** Seconds from the write until Cosmos DB deletes the item (needs TTL on: defaultTtl -1). */
  ttl: number;
}

/** A lease document. */
interface LeaseItem extends ItemDefinition {
  id: string;
  pk: string;
  /** The owner. */
  lease: string;
  /** Epoch milliseconds; the lease is free once `until <= now`. */
  until: number;
  expiresAt: number;
  ttl: number;
}

/**
 * Room for the system properties Cosmos DB adds (`_rid`, `_self`, `_etag`, `_ts`,
 * `_attachments`: about 200 bytes) and that count towards the 2 MB limit.
 */
const SYSTEM_PROPERTIES_BYTES = 512;
/** Largest `ttl` Cosmos DB accepts (int32 seconds). */
const MAX_TTL_SECONDS = 2 ** 31 - 1;
/** Substatus of a 404 whose container or database is missing, as opposed to the item. */
const OWNER_RESOURCE_NOT_FOUND = 1003;

/**
 * A Cosmos DB-backed token store.
 * @example
 * const store = new CosmosStore({ endpoint: process.env.COSMOS_ENDPOINT!, databaseId: 'token-cache', containerId: 'tokens' });
 */
export class CosmosStore implements TokenStore, LeaseStore {
  readonly name = 'cosmos';
  readonly maxItemBytes = COSMOS_MAX_ITEM_BYTES;
  /** The container in use. */
  readonly container: Container;
  private readonly now: () => number;
  private readonly callBudget: Budget;
  private readonly ownedClient: CosmosClient | undefined;

  constructor(options: CosmosStoreOptions) {
    this.now = options.now ?? Date.now;
    this.callBudget = budgetOption(
      options,
      { name: 'operationBudgetMs', value: options.operationBudgetMs },
      COSMOS_STORE_DEFAULTS.budgetMs,
    );
    if (
      hasReadyClient(options, {
        ready: 'container',
        build: ['endpoint'],
        buildOnly: ['timeoutMs'],
        pass: 'a ready Container as container, or endpoint, databaseId and containerId',
      })
    ) {
      this.container = options.container;
      this.ownedClient = undefined;
      return;
    }
    const { endpoint, databaseId, containerId, key, credential, clientOptions, timeoutMs } = options;
    if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) {
      throw new ConfigurationError(
        'endpoint',
        `expected the account's https URL, received ${JSON.stringify(endpoint)}`,
      );
    }
    for (const [setting, value] of [
      ['databaseId', databaseId],
      ['containerId', containerId],
    ] as const) {
      if (typeof value !== 'string' || value.trim() === '') {
        throw new ConfigurationError(setting, `expected a non-empty id, received ${JSON.stringify(value)}`);
      }
    }
    if (key !== undefined && credential !== undefined) {
      throw new ConfigurationError(
        'key',
        'received both key and credential; pass one (credential is preferred)',
      );
    }
    if (key !== undefined && key.trim() === '') {
      throw new ConfigurationError('key', 'is empty; pass the account key, or omit it to use a credential');
    }
    this.ownedClient = new CosmosClient({
      ...clientOptions,
      // A function's whole budget is seconds: fail a silent connection fast, as DynamoDbStore does.
      connectionPolicy: {
        requestTimeout: perAttemptTimeout(timeoutMs, clientOptions?.connectionPolicy?.requestTimeout),
        ...clientOptions?.connectionPolicy,
      },
      endpoint,
      ...(key !== undefined ? { key } : { aadCredentials: credential ?? new DefaultAzureCredential() }),
    });
    this.container = this.ownedClient.database(databaseId).container(containerId);
  }

  /**
   * Releases the client if the store built it (a container passed in keeps its client):
   * `destroy`, as on every store, key ring and client of this library.
   */
  destroy(): void {
    this.ownedClient?.dispose();
  }

  /** @deprecated Renamed {@link CosmosStore.destroy}, the one lifecycle verb of this library. */
  dispose(): void {
    this.destroy();
  }

  async read(key: string): Promise<StoredItem | undefined> {
    const item = await this.readItem(key, 'read');
    if (!item || item.expiresAt <= epochSeconds(this.now)) return undefined;
    return {
      blob: new Uint8Array(Buffer.from(item.blob, 'base64')),
      version: item._etag,
      expiresAt: item.expiresAt,
    };
  }

  async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    const nowSeconds = epochSeconds(this.now);
    const item: TokenItem = {
      id: key,
      pk: key,
      blob: Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).toString('base64'),
      expiresAt: options.expiresAt,
      // Cosmos DB deletes the item by itself; reads still check expiresAt (deletion lags).
      ttl: Math.min(MAX_TTL_SECONDS, Math.max(1, Math.ceil(options.expiresAt - nowSeconds))),
    };
    assertItemSize(this.name, cosmosItemSize(item), this.maxItemBytes);
    const { condition } = options;
    if ('expectedVersion' in condition) return this.replace(item, condition.expectedVersion);

    try {
      const response = await this.container.items.create(item, {
        disableAutomaticIdGeneration: true,
        ...this.budget(),
      });
      return this.etagOf(response.etag, response.resource?._etag, 'write');
    } catch (error) {
      if (statusOf(error) !== 409) throw this.failure('write', error);
      // An item is there: a live one wins, an expired one is replaced as if absent.
      const existing = await this.readItem(key, 'write');
      if (!existing || existing.expiresAt > nowSeconds)
        throw new VersionConflictError(this.name, { cause: error });
      return this.replace(item, existing._etag);
    }
  }

  async delete(key: string, options: { readonly expectedVersion?: string } = {}): Promise<void> {
    const { expectedVersion } = options;
    try {
      await this.container
        .item(key, key)
        .delete({ ...(expectedVersion === undefined ? {} : ifMatch(expectedVersion)), ...this.budget() });
    } catch (error) {
      const status = statusOf(error);
      if (status === 404 && !ownerIsMissing(error) && expectedVersion === undefined) return;
      if ((status === 404 && !ownerIsMissing(error)) || status === 412) {
        throw new VersionConflictError(this.name, { cause: error });
      }
      throw this.failure('delete', error);
    }
  }

  async acquireLease(key: string, options: LeaseOptions): Promise<boolean> {
    checkLeaseTtl(options.ttlMs);
    const id = leaseItemKey(key);
    const now = this.now();
    const until = now + options.ttlMs;
    const item: LeaseItem = {
      id,
      pk: id,
      lease: options.owner,
      until,
      expiresAt: Math.ceil(until / 1000),
      // Cosmos DB deletes it by itself a second or so after it expires.
      ttl: Math.ceil(options.ttlMs / 1000) + 1,
    };
    try {
      await this.container.items.create(item, { disableAutomaticIdGeneration: true, ...this.budget() });
      return true;
    } catch (error) {
      if (statusOf(error) !== 409) throw this.failure('write', error);
    }
    const existing = await this.readLease(id);
    if (existing && existing.until > now) return false;
    if (!existing) return false; // released meanwhile: free again, the next attempt will tell
    try {
      await this.container.item(id, id).replace(item, { ...ifMatch(existing._etag), ...this.budget() });
      return true;
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || (status === 404 && !ownerIsMissing(error))) return false;
      throw this.failure('write', error);
    }
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    const id = leaseItemKey(key);
    const existing = await this.readLease(id);
    if (existing?.lease !== owner) return;
    try {
      await this.container.item(id, id).delete({ ...ifMatch(existing._etag), ...this.budget() });
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || (status === 404 && !ownerIsMissing(error))) return;
      throw this.failure('delete', error);
    }
  }

  private async readLease(id: string): Promise<(LeaseItem & { _etag: string }) | undefined> {
    let response;
    try {
      response = await this.container.item(id, id).read<LeaseItem>(this.budget());
    } catch (error) {
      throw this.failure('read', error);
    }
    const item = response.resource;
    const etag = response.etag ?? item?._etag;
    if (response.statusCode === 404 || !item || typeof etag !== 'string') return undefined;
    if (typeof item.lease !== 'string' || typeof item.until !== 'number') {
      throw new StoreUnavailableError(
        this.name,
        'read',
        `the lease item in container '${this.container.id}' lacks lease (string) or until (number); delete it`,
      );
    }
    return { ...item, _etag: etag };
  }

  private async replace(item: TokenItem, etag: string): Promise<string> {
    try {
      const response = await this.container
        .item(item.id, item.pk)
        .replace(item, { ...ifMatch(etag), ...this.budget() });
      return this.etagOf(response.etag, response.resource?._etag, 'write');
    } catch (error) {
      // 412: someone wrote since; 404: someone deleted (or it never existed).
      const status = statusOf(error);
      if (status === 412 || (status === 404 && !ownerIsMissing(error))) {
        throw new VersionConflictError(this.name, { cause: error });
      }
      throw this.failure('write', error);
    }
  }

  /** The stored document, expired or not; undefined when there is none. */
  private async readItem(
    key: string,
    operation: 'read' | 'write',
  ): Promise<(TokenItem & { _etag: string }) | undefined> {
    let response;
    try {
      response = await this.container.item(key, key).read<TokenItem>(this.budget());
    } catch (error) {
      throw this.failure(operation, error);
    }
    // The SDK answers a missing item with a 404 response rather than an error.
    if (response.statusCode === 404) {
      if (response.substatus === OWNER_RESOURCE_NOT_FOUND) {
        throw new StoreUnavailableError(
          this.name,
          operation,
          `container '${this.container.id}' or its database does not exist; check databaseId and containerId`,
        );
      }
      return undefined;
    }
    const item = response.resource;
    // A lease item is never a cache document, whatever key it was asked for under.
    if (item && (item as { lease?: unknown }).lease !== undefined) return undefined;
    const etag = response.etag ?? item?._etag;
    if (
      !item ||
      typeof item.blob !== 'string' ||
      typeof item.expiresAt !== 'number' ||
      typeof etag !== 'string'
    ) {
      throw new StoreUnavailableError(
        this.name,
        operation,
        `the item under this key in container '${this.container.id}' lacks blob (string), expiresAt (number) ` +
          'or an etag; it was not written by this store: delete it',
      );
    }
    return { ...item, _etag: etag };
  }

  /** Request options that abandon the operation when its budget is spent. */
  private budget(): RequestOptions {
    return { abortSignal: AbortSignal.timeout(this.callBudget.ms) };
  }

  private etagOf(header: string | undefined, property: string | undefined, operation: 'write'): string {
    const etag = header ?? property;
    if (etag === undefined) {
      throw new StoreUnavailableError(this.name, operation, 'Cosmos DB answered a write without an etag');
    }
    return etag;
  }

  private failure(operation: 'read' | 'write' | 'delete', error: unknown): StoreUnavailableError {
    const status = statusOf(error);
    const { message, code, retryAfterInMs } = error as {
      message?: string;
      code?: unknown;
      retryAfterInMs?: number;
    };
    const where = `container '${this.container.id}'`;
    if (status === 429) {
      const wait = typeof retryAfterInMs === 'number' ? ` (it asked to wait ${retryAfterInMs} ms)` : '';
      return new StoreUnavailableError(
        this.name,
        operation,
        `Cosmos DB throttled ${where} with 429 after the client's retries${wait}; ` +
          'raise its RU/s (or autoscale maximum), or the client retryOptions',
        { cause: error, throttled: true },
      );
    }
    if (status === 401 || status === 403) {
      return new StoreUnavailableError(
        this.name,
        operation,
        `Cosmos DB refused access to ${where} (${status}); check the key, or grant the credential's identity ` +
          'a data-plane role such as Cosmos DB Built-in Data Contributor',
        { cause: error },
      );
    }
    if (status === 404) {
      return new StoreUnavailableError(
        this.name,
        operation,
        `${where} or its database was not found (404); check databaseId and containerId`,
        { cause: error },
      );
    }
    const name = (error as { name?: unknown }).name;
    if (name === 'AbortError') {
      return new StoreUnavailableError(
        this.name,
        operation,
        `Cosmos DB did not complete the ${operation} on ${where} within ${this.callBudget.ms} ms ` +
          `(${this.callBudget.setting}), retries included; check the network path to the endpoint`,
        { cause: error },
      );
    }
    if (name === 'TimeoutError') {
      return new StoreUnavailableError(
        this.name,
        operation,
        `no answer from Cosmos DB for ${where} within the request timeout; check the network path to the ` +
          'endpoint, or raise clientOptions.connectionPolicy.requestTimeout',
        { cause: error },
      );
    }
    const label = status !== undefined ? `HTTP ${status}` : typeof code === 'string' ? code : 'error';
    return new StoreUnavailableError(
      this.name,
      operation,
      `${label}: ${message ?? String(error)}; check the endpoint, the network and the account's health`,
      { cause: error },
    );
  }
}

/** Size of a document as Cosmos DB counts it: UTF-8 JSON plus its system properties. */
export function cosmosItemSize(item: ItemDefinition): number {
  return utf8Length(JSON.stringify(item)) + SYSTEM_PROPERTIES_BYTES;
}

function ifMatch(etag: string): RequestOptions {
  return { accessCondition: { type: 'IfMatch', condition: etag } };
}

/** True for a 404 about the container or database rather than the item. */
function ownerIsMissing(error: unknown): boolean {
  return (error as { substatus?: unknown } | undefined)?.substatus === OWNER_RESOURCE_NOT_FOUND;
}

/** The HTTP status of an @azure/cosmos ErrorResponse (its numeric `code`), if any. */
function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The per-attempt request timeout of a client the store builds. */
function perAttemptTimeout(timeoutMs: number | undefined, requestTimeout: number | undefined): number {
  if (timeoutMs === undefined) return COSMOS_STORE_DEFAULTS.timeoutMs;
  if (requestTimeout !== undefined) {
    throw new ConfigurationError(
      'timeoutMs',
      'clientOptions.connectionPolicy.requestTimeout is set too; keep one of the two',
    );
  }
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new ConfigurationError(
      'timeoutMs',
      `expected a positive number of ms, received ${String(timeoutMs)}`,
    );
  }
  return timeoutMs;
}
