/**
 * One "container" of the cross-process contention suite (test/security/no-token-lost-under-contention.test.ts),
 * run as its own Node process (`node --import tsx`). It builds a real TokenCache on the
 * shared DynamoDB, Cosmos DB or Redis server and the parent's local authority, then, for each
 * round the parent starts, acquires app tokens for the scopes it is given, all at once,
 * on the one partition every worker shares. It reports sha256 hashes of the tokens (never
 * the tokens), its counters, and its log records.
 */
import { createHash } from 'node:crypto';
import { HttpsNetworkClient } from '../../../shared/cache/http';
import { createTokenCache } from '../../../shared/cache/token-cache';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import { CounterMetrics, type LogFields, type Logger } from '../../../shared/observability';
import { RedisStore } from '../../../shared/redis';
import { CosmosStore } from '../../../shared/azure/cosmos-store';
import { DynamoDbStore } from '../../../shared/aws/dynamodb-store';
import type { TokenStore } from '../../../shared/store/store';

/** The first message from the parent. Secrets travel over IPC, not argv or the environment. */
export interface WorkerSetup {
  readonly type: 'setup';
  readonly store:
    | { readonly kind: 'dynamodb'; readonly endpoint: string; readonly tableName: string }
    | {
        readonly kind: 'cosmos';
        readonly endpoint: string;
        readonly key: string;
        readonly databaseId: string;
        readonly containerId: string;
      }
    | { readonly kind: 'redis'; readonly url: string };
  readonly authority: string;
  readonly authorityHost: string;
  readonly ca: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly masterKey: string;
}

export type ParentMessage =
  | WorkerSetup
  | { readonly type: 'round'; readonly round: number; readonly scopes: readonly string[] }
  | { readonly type: 'finish' };

export interface Acquired {
  readonly scope: string;
  /** sha256 (hex) of the access token. */
  readonly tokenHash: string;
  readonly fromCache: boolean;
}

export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'round-done'; readonly round: number; readonly acquired: readonly Acquired[] }
  | { readonly type: 'error'; readonly message: string }
  | {
      readonly type: 'finished';
      readonly metrics: Record<string, number>;
      readonly logs: ReadonlyArray<{ level: string; message: string; fields?: LogFields }>;
    };

const logs: Array<{ level: string; message: string; fields?: LogFields }> = [];
const logger: Logger = {
  debug: (message, fields) => logs.push({ level: 'debug', message, fields }),
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function storeOf(setup: WorkerSetup): TokenStore & { close(): void } {
  const s = setup.store;
  if (s.kind === 'dynamodb') {
    const store = new DynamoDbStore({
      tableName: s.tableName,
      clientConfig: {
        region: 'us-east-1',
        endpoint: s.endpoint,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      },
    });
    return Object.assign(store, { close: () => store.destroy() });
  }
  if (s.kind === 'redis') {
    const store = new RedisStore({ clientOptions: { url: s.url } });
    return Object.assign(store, { close: () => store.destroy() });
  }
  const store = new CosmosStore({
    endpoint: s.endpoint,
    key: s.key,
    databaseId: s.databaseId,
    containerId: s.containerId,
    clientOptions: { connectionPolicy: { enableEndpointDiscovery: false } },
  });
  return Object.assign(store, { close: () => store.destroy() });
}

let run: ((message: ParentMessage) => Promise<void>) | undefined;

function start(setup: WorkerSetup): (message: ParentMessage) => Promise<void> {
  const store = storeOf(setup);
  const network = new HttpsNetworkClient({ ca: setup.ca });
  const metrics = new CounterMetrics();
  const cache = createTokenCache({
    msal: {
      clientId: setup.clientId,
      clientSecret: setup.clientSecret,
      authority: setup.authority,
      knownAuthorities: [setup.authorityHost],
      networkClient: network,
    },
    store,
    keyRing: new LocalKeyRing({ masterKey: setup.masterKey }),
    l1: false,
    metrics,
    logger,
  });
  return async (message) => {
    if (message.type === 'round') {
      const acquired = await Promise.all(
        message.scopes.map(async (scope) => {
          const result = await cache.acquireTokenForApp({ scopes: [scope] });
          const tokenHash = createHash('sha256').update(result.accessToken).digest('hex');
          return { scope, tokenHash, fromCache: result.fromCache };
        }),
      );
      send({ type: 'round-done', round: message.round, acquired });
    } else if (message.type === 'finish') {
      send({ type: 'finished', metrics: metrics.snapshot(), logs });
      network.destroy();
      store.close();
      process.disconnect();
    }
  };
}

process.on('message', (message: ParentMessage) => {
  const handle = async (): Promise<void> => {
    if (message.type === 'setup') {
      run = start(message);
      send({ type: 'ready' });
    } else if (run) {
      await run(message);
    }
  };
  handle().catch((e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  });
});
