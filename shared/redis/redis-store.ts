/**
 * {@link TokenStore} on Redis or Valkey (ElastiCache, Azure Managed Redis, your own), through
 * `@redis/client`. One hash per item, `<keyPrefix><key>` → `{ v: version, e: expiresAt, b: blob }`,
 * with the key's own expiry set to `expiresAt` (`EXPIREAT`), so Redis frees it by itself.
 *
 * Compare-and-set is one Lua script: it reads the version and expiry, decides, and writes
 * blob, version and expiry in the same atomic step, so no other command runs in between.
 * Every item is one key, so the script touches one hash slot and runs unchanged on a
 * cluster. Expiry is decided with this store's clock (passed to the script), like the other
 * stores: an item whose `expiresAt <= now` is absent to reads, writes and deletes, whether or
 * not Redis has freed it yet.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  createCluster,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  RESP_TYPES,
  type RedisClientOptions,
  type RedisClusterOptions,
} from '@redis/client';
import { REDIS_STORE_DEFAULTS } from '../defaults';
import { ConfigurationError, StoreUnavailableError, VersionConflictError } from '../errors';
import { budgetOption, hasReadyClient, type Budget } from '../options';
import { assertItemSize, utf8Length } from '../store/limits';
import { checkLeaseTtl, epochSeconds, leaseItemKey } from '../store/store';
import type { LeaseOptions, LeaseStore, StoredItem, TokenStore, WriteOptions } from '../store/store';

/**
 * Default largest item: 400 KiB, DynamoDB's limit. Redis takes values up to 512 MB, but it
 * serves one command at a time, so a large value delays every other caller of the shard
 * (Redis and ElastiCache advise keeping values small); an MSAL partition is a few KB
 * compressed, and the same bound on every store means a cache that fits one fits all.
 */
export const REDIS_DEFAULT_MAX_ITEM_BYTES = 400 * 1024;
/**
 * The commands this store sends or its scripts run: what a least-privilege ACL user needs,
 * e.g. `ACL SETUSER token-cache on >secret ~msal-cloud-cache:* -@all ` + this.
 */
export const REDIS_ACL = '+hmget +hget +hset +exists +expireat +pexpire +del +eval +evalsha';
/** Redis's own ceiling on a value (`proto-max-bulk-len`'s default, 512 MB). */
export const REDIS_MAX_VALUE_BYTES = 512 * 1024 * 1024;

/** Options every {@link RedisStore} takes. */
export interface RedisStoreBaseOptions {
  /** Prepended to every key; lets an ACL grant only `~<prefix>*`. @defaultValue {@link REDIS_STORE_DEFAULTS.keyPrefix} */
  readonly keyPrefix?: string;
  /** Largest item accepted: blob, key, version and field bytes. @default 409600 (400 KiB) */
  readonly maxItemBytes?: number;
  /**
   * Longest one store operation may take, connecting included; past it the operation fails
   * with {@link StoreUnavailableError}. A write that timed out may still be applied by the
   * server: the next write's version check catches that.
   * @defaultValue {@link REDIS_STORE_DEFAULTS.budgetMs}
   */
  readonly budgetMs?: number;
  /** @deprecated The old name of `budgetMs`; still works. */
  readonly commandTimeoutMs?: number;
  /** Clock in epoch milliseconds, for expiry. @default Date.now */
  readonly now?: () => number;
}

/**
 * What the store needs of a client: a `createClient()` client or a `createCluster()` cluster
 * of @redis/client, whatever its modules, scripts or RESP version.
 */
export interface AnyRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  destroy(): unknown;
  on(event: 'error' | 'ready', listener: (arg: unknown) => void): unknown;
  once(event: 'error', listener: (arg: unknown) => void): unknown;
  off(event: 'error', listener: (arg: unknown) => void): unknown;
  withCommandOptions(options: { typeMapping: object }): unknown;
}

/** Use a client you built (and connect, and close) yourself. */
export interface RedisStoreClientOptions extends RedisStoreBaseOptions {
  /** A client or cluster; connect it before use. The store never closes it. */
  readonly client: AnyRedisClient;
  readonly clientOptions?: never;
  readonly clusterOptions?: never;
  readonly connectTimeoutMs?: never;
}

/** Let the store build, connect and (on {@link RedisStore.destroy}) close a client. */
export interface RedisStoreConfigOptions extends RedisStoreBaseOptions {
  /**
   * Options of `createClient`: `url` (`redis://` or `rediss://` for TLS), `socket` (`tls`,
   * `ca`, `servername`...), `username` / `password`, or a `credentialsProvider` for rotating
   * tokens (ElastiCache IAM auth, Entra ID via @redis/entraid).
   */
  readonly clientOptions: RedisClientOptions;
  readonly client?: never;
  readonly clusterOptions?: never;
  /** Timeout of one connection attempt, in ms (unless clientOptions.socket sets one). @defaultValue {@link REDIS_STORE_DEFAULTS.connectTimeoutMs} */
  readonly connectTimeoutMs?: number;
}

/** Like {@link RedisStoreConfigOptions}, for cluster mode (ElastiCache Serverless, OSS-clustered Azure Managed Redis). */
export interface RedisStoreClusterOptions extends RedisStoreBaseOptions {
  /** Options of `createCluster`: `rootNodes` and the `defaults` (TLS, auth) of every node's client. */
  readonly clusterOptions: RedisClusterOptions;
  readonly client?: never;
  readonly clientOptions?: never;
  /** Timeout of one connection attempt, in ms (unless the defaults' socket sets one). @defaultValue {@link REDIS_STORE_DEFAULTS.connectTimeoutMs} */
  readonly connectTimeoutMs?: number;
}

/** Either a ready client, or the options of a client or a cluster; never two of them. */
export type RedisStoreOptions = RedisStoreClientOptions | RedisStoreConfigOptions | RedisStoreClusterOptions;

/** Field names of the hash; one byte each, counted in the size. */
const FIELDS = { version: 'v', expiresAt: 'e', blob: 'b' } as const;
/** Result codes of the scripts. */
const APPLIED = 1;
const CONFLICT = 0;
const FOREIGN = -1;

/**
 * The scripts' first step: read the item's version and expiry into `version` and
 * `expiresAt`, and answer FOREIGN for a key this store did not write (a hash missing
 * either field, a non-numeric expiry, or a hash without ours).
 */
const READ_ITEM = `local current = redis.call('HMGET', KEYS[1], '${FIELDS.version}', '${FIELDS.expiresAt}')
local version, expiresAt = current[1], tonumber(current[2])
if (version == false) ~= (current[2] == false) or (current[2] ~= false and expiresAt == nil) then
  return ${FOREIGN}
end
if version == false and redis.call('EXISTS', KEYS[1]) == 1 then return ${FOREIGN} end`;

/**
 * Conditional write. KEYS[1] the item; ARGV: now (epoch s), mode (`create` | `replace`),
 * expected version, new version, expiresAt (epoch s), blob. Returns 1 (written), 0 (conflict)
 * or -1 (the key holds a hash this store did not write). A key of another type makes HMGET
 * fail with WRONGTYPE, which aborts the script before anything is written.
 */
const WRITE_SCRIPT = `
${READ_ITEM}
local live = version ~= false and expiresAt > tonumber(ARGV[1])
if ARGV[2] == 'create' then
  if live then return ${CONFLICT} end
elseif not live or version ~= ARGV[3] then
  return ${CONFLICT}
end
redis.call('HSET', KEYS[1], '${FIELDS.version}', ARGV[4], '${FIELDS.expiresAt}', ARGV[5], '${FIELDS.blob}', ARGV[6])
redis.call('EXPIREAT', KEYS[1], ARGV[5])
return ${APPLIED}
`;

/** Conditional delete. KEYS[1] the item; ARGV: now (epoch s), expected version. Same results. */
const DELETE_SCRIPT = `
${READ_ITEM}
if version == false or expiresAt <= tonumber(ARGV[1]) or version ~= ARGV[2] then
  return ${CONFLICT}
end
redis.call('DEL', KEYS[1])
return ${APPLIED}
`;

/**
 * Lease acquire (see the store contract). KEYS[1] the lease; ARGV: now (epoch ms, this
 * store's clock), owner, until (epoch ms), cleanup ttl (ms). Returns 1 (granted) or 0 (a
 * live lease is held). The server's own expiry (relative, so clock skew cannot drop a live
 * lease) only cleans up; this store's clock decides whether a lease is live.
 */
const LEASE_ACQUIRE_SCRIPT = `
local held = tonumber(redis.call('HGET', KEYS[1], 'u'))
if held and held > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'o', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

/** Lease release by its owner. KEYS[1] the lease; ARGV[1] the owner. Returns 1 or 0. */
const LEASE_RELEASE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

/** The server keeps an unreleased lease this much longer than its ttl, then frees it. */
const LEASE_CLEANUP_MARGIN_MS = 60_000;

/** The commands this store sends, on a client or a cluster, replies as Buffers. */
interface Commands {
  hmGet(key: string, fields: string[]): Promise<Array<Buffer | null>>;
  del(key: string): Promise<number>;
  eval(script: string, options: { keys: string[]; arguments: Array<string | Buffer> }): Promise<unknown>;
  evalSha(sha: string, options: { keys: string[]; arguments: Array<string | Buffer> }): Promise<unknown>;
}

/** A script and its SHA-1, sent by hash and loaded on the first NOSCRIPT. */
interface Script {
  readonly source: string;
  readonly sha: string;
}

/**
 * A Redis- or Valkey-backed token store with compare-and-set writes.
 * @example
 * const store = new RedisStore({ clientOptions: { url: process.env.TOKEN_CACHE_REDIS_URL } });
 */
export class RedisStore implements TokenStore, LeaseStore {
  readonly name = 'redis';
  readonly maxItemBytes: number;
  /** The client in use (built from clientOptions / clusterOptions, or passed in). */
  readonly client: AnyRedisClient;
  private readonly commands: Commands;
  private readonly keyPrefix: string;
  private readonly budget: Budget;
  private readonly now: () => number;
  private readonly ownsClient: boolean;
  private connecting: Promise<unknown> | undefined;
  /** The last connection error the client reported: the cause behind "offline". */
  private lastError: unknown;
  private destroyed = false;
  /** Whether an attempt of the pending first connection has failed. */
  private connectFailed = false;

  constructor(options: RedisStoreOptions) {
    const ready = hasReadyClient(options, {
      ready: 'client',
      build: ['clientOptions', 'clusterOptions'],
      buildOnly: ['connectTimeoutMs'],
      pass: 'a ready Redis client or cluster as client, or the options to build one',
      instead: 'set socket.connectTimeout on your own client',
    });
    this.keyPrefix = options.keyPrefix ?? REDIS_STORE_DEFAULTS.keyPrefix;
    if (typeof this.keyPrefix !== 'string') {
      throw new ConfigurationError('keyPrefix', `expected a string, received ${typeof this.keyPrefix}`);
    }
    this.maxItemBytes = options.maxItemBytes ?? REDIS_DEFAULT_MAX_ITEM_BYTES;
    if (
      !Number.isSafeInteger(this.maxItemBytes) ||
      this.maxItemBytes <= 0 ||
      this.maxItemBytes > REDIS_MAX_VALUE_BYTES
    ) {
      throw new ConfigurationError(
        'maxItemBytes',
        `expected a whole number of bytes from 1 to ${REDIS_MAX_VALUE_BYTES} (Redis's value limit), received ${String(options.maxItemBytes)}`,
      );
    }
    this.budget = budgetOption(
      options,
      { name: 'commandTimeoutMs', value: options.commandTimeoutMs },
      REDIS_STORE_DEFAULTS.budgetMs,
    );
    this.now = options.now ?? Date.now;

    if (ready) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      const connectTimeout = positiveMs(
        'connectTimeoutMs',
        options.connectTimeoutMs,
        REDIS_STORE_DEFAULTS.connectTimeoutMs,
      );
      this.client = options.clientOptions
        ? createClient(withStoreDefaults(options.clientOptions, connectTimeout))
        : createCluster({
            ...options.clusterOptions,
            defaults: withStoreDefaults(options.clusterOptions.defaults ?? {}, connectTimeout),
          });
      this.ownsClient = true;
    }
    // Without a listener an 'error' event would crash the process; the error is reported
    // as the cause of the operation it fails.
    this.client.on('error', (error: unknown) => {
      this.lastError = error;
      if (this.connecting) this.connectFailed = true;
    });
    this.client.on('ready', () => {
      this.lastError = undefined;
    });
    this.commands = this.client.withCommandOptions({
      typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer },
    }) as Commands;
  }

  /** Closes the client at once if the store built it (a client passed in stays yours). */
  destroy(): void {
    if (!this.ownsClient || this.destroyed) return;
    this.destroyed = true;
    if (this.client.isOpen) this.client.destroy();
  }

  async read(key: string): Promise<StoredItem | undefined> {
    const [version, expiresAt, blob] = await this.run('read', (redis) =>
      redis.hmGet(this.keyOf(key), [FIELDS.version, FIELDS.expiresAt, FIELDS.blob]),
    );
    if (version === null && expiresAt === null && blob === null) return undefined;
    const expiry = expiresAt === null ? NaN : Number(expiresAt.toString());
    if (version === null || blob === null || !Number.isSafeInteger(expiry)) {
      throw this.foreign('read');
    }
    // Redis frees the key at its expiry by its own clock; this store's clock decides.
    if (expiry <= epochSeconds(this.now)) return undefined;
    return { blob: new Uint8Array(blob), version: version.toString(), expiresAt: expiry };
  }

  async write(key: string, blob: Uint8Array, options: WriteOptions): Promise<string> {
    const redisKey = this.keyOf(key);
    // Never handed out twice (not after a delete or an expiry either), so a writer holding
    // a version of an item that has since gone can never overwrite its successor.
    const version = randomBytes(12).toString('base64url');
    const expiresAt = String(options.expiresAt);
    if (!Number.isSafeInteger(options.expiresAt)) {
      throw new ConfigurationError('expiresAt', `expected whole epoch seconds, received ${expiresAt}`);
    }
    assertItemSize(this.name, redisItemSize(redisKey, blob, version, expiresAt), this.maxItemBytes);
    const { condition } = options;
    const result = await this.run('write', (redis) =>
      this.script(redis, WRITE, redisKey, [
        String(epochSeconds(this.now)),
        'mustNotExist' in condition ? 'create' : 'replace',
        'expectedVersion' in condition ? condition.expectedVersion : '',
        version,
        expiresAt,
        Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength),
      ]),
    );
    this.settle('write', result);
    return version;
  }

  async delete(key: string, options: { readonly expectedVersion?: string } = {}): Promise<void> {
    const { expectedVersion } = options;
    const redisKey = this.keyOf(key);
    if (expectedVersion === undefined) {
      await this.run('delete', (redis) => redis.del(redisKey));
      return;
    }
    const result = await this.run('delete', (redis) =>
      this.script(redis, DELETE, redisKey, [String(epochSeconds(this.now)), expectedVersion]),
    );
    this.settle('delete', result);
  }

  /** A short exclusive lease on `key` (store contract); `false` while another is live. */
  async acquireLease(key: string, options: LeaseOptions): Promise<boolean> {
    checkLeaseTtl(options.ttlMs);
    const now = this.now();
    const result = await this.run('write', (redis) =>
      this.script(redis, LEASE_ACQUIRE, this.keyOf(leaseItemKey(key)), [
        String(now),
        options.owner,
        String(now + options.ttlMs),
        String(options.ttlMs + LEASE_CLEANUP_MARGIN_MS),
      ]),
    );
    return result === 1;
  }

  /** Releases the lease if `owner` holds it; otherwise nothing. */
  async releaseLease(key: string, owner: string): Promise<void> {
    await this.run('delete', (redis) =>
      this.script(redis, LEASE_RELEASE, this.keyOf(leaseItemKey(key)), [owner]),
    );
  }

  private keyOf(key: string): string {
    return this.keyPrefix + key;
  }

  private settle(operation: 'write' | 'delete', result: unknown): void {
    if (result === APPLIED) return;
    if (result === CONFLICT) throw new VersionConflictError(this.name);
    if (result === FOREIGN) throw this.foreign(operation);
    throw new StoreUnavailableError(
      this.name,
      operation,
      `unexpected script result ${JSON.stringify(result)}`,
    );
  }

  private foreign(operation: 'read' | 'write' | 'delete'): StoreUnavailableError {
    return new StoreUnavailableError(
      this.name,
      operation,
      'the key holds a value this store did not write (not a hash of v, e and b); ' +
        'check keyPrefix for a clash with other data, or delete the key',
    );
  }

  /** Runs the script by its SHA-1, loading it on NOSCRIPT (a new or restarted node). */
  private async script(
    redis: Commands,
    script: Script,
    key: string,
    args: Array<string | Buffer>,
  ): Promise<unknown> {
    const call = { keys: [key], arguments: args };
    try {
      return await redis.evalSha(script.sha, call);
    } catch (error) {
      if (error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))
        return redis.eval(script.source, call);
      throw error;
    }
  }

  /**
   * One operation within {@link RedisStoreBaseOptions.budgetMs}, connecting first if
   * needed; every failure but a conflict becomes a {@link StoreUnavailableError}.
   */
  private async run<T>(
    operation: 'read' | 'write' | 'delete',
    action: (redis: Commands) => Promise<T>,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new OperationTimeout(this.budget.ms)), this.budget.ms);
    });
    try {
      return await Promise.race([this.ready().then(() => action(this.commands)), deadline]);
    } catch (error) {
      throw this.failure(operation, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Connects a client the store owns on first use. Until the first connection is up, a
   * failed attempt fails the operations waiting on it, and later ones at once, rather than
   * each waiting out its timeout; once up, the client reconnects by itself after a drop and
   * commands fail at once as offline meanwhile (disableOfflineQueue) rather than queue.
   */
  private async ready(): Promise<void> {
    if (this.destroyed) throw new ClientDestroyed();
    if (this.client.isReady) return;
    if (!this.ownsClient) {
      if (!this.client.isOpen) throw new ClientNotOpen();
      return;
    }
    if (!this.connecting && !this.client.isOpen) {
      this.connectFailed = false;
      const connecting = this.client.connect().then(() => undefined);
      // A cluster whose root nodes all failed is closed again: the next operation retries.
      this.connecting = connecting.finally(() => (this.connecting = undefined));
      this.connecting.catch(() => undefined);
    }
    if (!this.connecting) return;
    if (this.connectFailed) throw new NotYetConnected();
    let onError: ((error: unknown) => void) | undefined;
    try {
      await Promise.race([
        this.connecting,
        new Promise<never>((_, reject) => {
          onError = reject;
          this.client.once('error', onError);
        }),
      ]);
    } finally {
      if (onError) this.client.off('error', onError);
    }
  }

  private failure(operation: 'read' | 'write' | 'delete', error: unknown): StoreUnavailableError {
    if (error instanceof StoreUnavailableError) return error;
    const name = (error as { name?: unknown } | undefined)?.name;
    const message = (error as { message?: unknown } | undefined)?.message;
    const text = typeof message === 'string' ? message : String(error);
    if (error instanceof OperationTimeout) {
      return new StoreUnavailableError(
        this.name,
        operation,
        `no answer from Redis within ${this.budget.ms} ms (${this.budget.setting})` +
          `${this.lastError ? ` (last connection error: ${describe(this.lastError)})` : ''}; ` +
          `check the network path to the endpoint and its health, or raise ${this.budget.setting}`,
        { cause: this.lastError ? new AggregateError([error, this.lastError], text) : error },
      );
    }
    if (error instanceof ClientNotOpen) {
      return new StoreUnavailableError(
        this.name,
        operation,
        'the Redis client passed in is not connected; call await client.connect() before using the store',
        { cause: error },
      );
    }
    if (
      error instanceof ClientOfflineError ||
      error instanceof ClientClosedError ||
      error instanceof SocketClosedUnexpectedlyError ||
      error instanceof ConnectionTimeoutError ||
      error instanceof ClientDestroyed ||
      error instanceof NotYetConnected
    ) {
      return new StoreUnavailableError(
        this.name,
        operation,
        `the connection to Redis is down (${text}${this.lastError ? `; last error: ${describe(this.lastError)}` : ''}); ` +
          'the client reconnects by itself',
        {
          cause:
            this.lastError && this.lastError !== error
              ? new AggregateError([error, this.lastError], text)
              : error,
        },
      );
    }
    if (error instanceof ErrorReply) {
      const code = text.split(' ', 1)[0] ?? '';
      const advice: Record<string, string> = {
        WRONGTYPE:
          'the key holds a value this store did not write; check keyPrefix for a clash with other data, or delete the key',
        NOAUTH: 'Redis wants authentication; set username and password, or a credentialsProvider',
        WRONGPASS: 'Redis refused the credentials; check username and password or the token provider',
        NOPERM: `the user's ACL does not allow this; grant ${REDIS_ACL} on ~<keyPrefix>*`,
        OOM: 'Redis is out of memory and refuses writes; raise maxmemory or set an eviction policy such as volatile-ttl',
        READONLY: 'the endpoint is a replica (a failover in progress?); point the store at the primary',
        LOADING: 'Redis is loading its dataset after a restart; retry shortly',
        BUSY: 'Redis is busy running a script; retry shortly',
        MASTERDOWN: 'the replica lost its primary; retry shortly',
        CLUSTERDOWN: 'the cluster is down; retry shortly',
      };
      // A command a script runs and the ACL denies fails the script with ERR, not NOPERM.
      const denied = /can't run this command/.test(text) ? advice['NOPERM'] : undefined;
      return new StoreUnavailableError(
        this.name,
        operation,
        `Redis answered ${text}; ${denied ?? advice[code] ?? 'check the server and its logs'}`,
        { cause: error, throttled: code === 'BUSY' },
      );
    }
    return new StoreUnavailableError(
      this.name,
      operation,
      `${typeof name === 'string' ? name : 'Error'}: ${text}; check the URL, TLS settings, credentials and network`,
      { cause: error },
    );
  }
}

const WRITE: Script = script(WRITE_SCRIPT);
const DELETE: Script = script(DELETE_SCRIPT);
const LEASE_ACQUIRE: Script = script(LEASE_ACQUIRE_SCRIPT);
const LEASE_RELEASE: Script = script(LEASE_RELEASE_SCRIPT);

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Bytes an item takes as this store counts them: key, the three fields and their values. */
export function redisItemSize(key: string, blob: Uint8Array, version: string, expiresAt: string): number {
  return (
    utf8Length(key) +
    FIELDS.version.length +
    FIELDS.expiresAt.length +
    FIELDS.blob.length +
    utf8Length(version) +
    utf8Length(expiresAt) +
    blob.byteLength
  );
}

/** Reconnection attempts after a drop, in the background, before the client closes. */
const RECONNECT_ATTEMPTS = 3;

/**
 * The store's defaults under the caller's options: fail commands at once while offline
 * rather than queue them, bound each connection attempt, and after a drop retry a few
 * times within about half a second (a failover, a blip), then close. The next operation
 * connects again: a dead server costs each request one bounded attempt, nothing runs in
 * the background meanwhile, and an idle process is never kept alive by a retry loop.
 */
function withStoreDefaults<T extends { socket?: object; disableOfflineQueue?: boolean }>(
  options: T,
  connectTimeout: number,
): T {
  return {
    disableOfflineQueue: true,
    ...options,
    socket: {
      connectTimeout,
      reconnectStrategy: (retries: number) =>
        retries < RECONNECT_ATTEMPTS ? 50 * 2 ** retries + Math.floor(Math.random() * 50) : false,
      ...options.socket,
    },
  };
}

function positiveMs(setting: string, value: number | undefined, fallback: number): number {
  const ms = value ?? fallback;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ConfigurationError(
      setting,
      `expected a positive number of milliseconds, received ${String(value)}`,
    );
  }
  return ms;
}

function describe(error: unknown): string {
  const { name, message, code } = (error ?? {}) as { name?: unknown; message?: unknown; code?: unknown };
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  return `${label}: ${typeof message === 'string' ? message : String(error)}`;
}

class OperationTimeout extends Error {
  override readonly name = 'OperationTimeout';
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

class ClientDestroyed extends Error {
  override readonly name = 'ClientDestroyed';
  constructor() {
    super('the store was destroyed');
  }
}

class NotYetConnected extends Error {
  override readonly name = 'NotYetConnected';
  constructor() {
    super('not connected yet: the first connection attempt failed and the client is retrying');
  }
}

class ClientNotOpen extends Error {
  override readonly name = 'ClientNotOpen';
  constructor() {
    super('the Redis client is not open');
  }
}
