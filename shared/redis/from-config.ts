/**
 * The Redis store a config describes (`TOKEN_CACHE_REDIS_*`). Registered with the core's
 * store factories when this entry point is imported, so the cloud compositions build it
 * for `TOKEN_CACHE_STORE=redis`.
 */
import type { StoreConfig } from '../config';
import { registerStoreFactory } from '../store/factories';
import { RedisStore } from './redis-store';

/** @throws Error when `store` is not a Redis configuration */
export function createRedisStoreFromConfig(
  store: StoreConfig,
  ca: readonly string[] | undefined,
): RedisStore {
  if (store.kind !== 'redis') throw new Error(`not a Redis store configuration: ${store.kind}`);
  const auth = {
    ...(store.username ? { username: store.username } : {}),
    ...(store.password ? { password: store.password.reveal() } : {}),
  };
  // Nodes a cluster discovers have no URL of their own: TLS and the CAs go in the defaults.
  const socket = store.url.startsWith('rediss:')
    ? { socket: { tls: true as const, ...(ca ? { ca: [...ca] } : {}) } }
    : {};
  const keyPrefix = store.keyPrefix === undefined ? {} : { keyPrefix: store.keyPrefix };
  return store.cluster
    ? new RedisStore({
        clusterOptions: { rootNodes: [{ url: store.url }], defaults: { ...auth, ...socket } },
        ...keyPrefix,
      })
    : new RedisStore({ clientOptions: { url: store.url, ...auth, ...socket }, ...keyPrefix });
}

registerStoreFactory('redis', createRedisStoreFromConfig);
