/**
 * The worker's half of the cross-process suites (test/security): a worker script calls
 * {@link serveCacheWorker} with what it does for each of its own messages; this builds a
 * real TokenCache from the parent's setup (the shared store, the parent's local authority,
 * a local key ring, L1 off), answers `ready`, and on `finish` reports its counters and log
 * records, closes its clients and leaves. The parent's half is ./worker-process.ts.
 */
import { HttpsNetworkClient } from '../../shared/cache/http';
import { createTokenCache } from '../../shared/cache/token-cache';
import type { TokenCache, TokenCacheOptions } from '../../shared/cache/types';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { CounterMetrics, type LogFields, type Logger } from '../../shared/observability';
import { RedisStore } from '../../shared/redis';
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import type { TokenStore } from '../../shared/store/store';

/** Where a worker finds the shared store (it builds its own client). */
export type WorkerStoreSetup =
  | { readonly kind: 'dynamodb'; readonly endpoint: string; readonly tableName: string }
  | {
      readonly kind: 'cosmos';
      readonly endpoint: string;
      readonly key: string;
      readonly databaseId: string;
      readonly containerId: string;
    }
  | { readonly kind: 'redis'; readonly url: string };

/** What every cache worker is told first. Secrets travel over IPC, not argv or the environment. */
export interface CacheWorkerSetup {
  readonly type: 'setup';
  readonly store: WorkerStoreSetup;
  readonly authority: string;
  readonly authorityHost: string;
  readonly ca: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The local ring's master key, base64. */
  readonly masterKey: string;
}

/** A log record a worker kept, replayed in the parent so that the secret scan sees it. */
export interface WorkerLog {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields?: LogFields;
}

/** The messages every cache worker sends besides its own: ready, a failure, and its last report. */
export type CacheWorkerReport =
  | { readonly type: 'ready' }
  | { readonly type: 'error'; readonly message: string }
  | {
      readonly type: 'finished';
      readonly metrics: Record<string, number>;
      readonly logs: readonly WorkerLog[];
    };

/** The store a worker builds from its setup, with a way to close its client. */
export function workerStore(s: WorkerStoreSetup): TokenStore & { close(): void } {
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

/** How a worker script serves its parent. */
export interface CacheWorkerOptions<Setup extends CacheWorkerSetup, In extends { readonly type: string }> {
  /** Handles one of the script's own messages and returns the answer to send. */
  handle(cache: TokenCache, message: In): Promise<{ readonly type: string }>;
  /** Cache options the setup adds (e.g. coalescing). */
  options?(setup: Setup): Partial<TokenCacheOptions>;
  /** Whether debug records are kept too. */
  keepDebug: boolean;
}

/** Serves the parent over IPC until it sends `finish`. */
export function serveCacheWorker<Setup extends CacheWorkerSetup, In extends { readonly type: string }>(
  worker: CacheWorkerOptions<Setup, In>,
): void {
  const logs: WorkerLog[] = [];
  const keep = (level: WorkerLog['level']) => (message: string, fields?: LogFields) => {
    logs.push({ level, message, fields });
  };
  const logger: Logger = {
    debug: worker.keepDebug ? keep('debug') : () => undefined,
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  };
  const send = (message: CacheWorkerReport | { readonly type: string }) => process.send?.(message);
  let running: { cache: TokenCache; metrics: CounterMetrics; close(): void } | undefined;

  const start = (setup: Setup) => {
    const store = workerStore(setup.store);
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
      ...worker.options?.(setup),
    });
    return { cache, metrics, close: () => (network.destroy(), store.close()) };
  };

  process.on('message', (message: Setup | In | { readonly type: 'finish' }) => {
    const step = async (): Promise<void> => {
      if (message.type === 'setup') {
        running = start(message as Setup);
        send({ type: 'ready' });
      } else if (running && message.type === 'finish') {
        send({ type: 'finished', metrics: running.metrics.snapshot(), logs });
        running.close();
        process.disconnect();
      } else if (running) {
        send(await worker.handle(running.cache, message as In));
      }
    };
    step().catch((e: unknown) => {
      send({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    });
  });
}
