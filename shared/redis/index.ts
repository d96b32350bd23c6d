/**
 * `msal-cloud-cache/redis`: the token store on Redis or Valkey (ElastiCache, Azure Managed
 * Redis, self-hosted), on `@redis/client` (an optional peer: only this entry point loads it).
 * Importing it also lets `createTokenCacheFromEnv()` (from `/aws` or `/azure`) build it for
 * `TOKEN_CACHE_STORE=redis`.
 * @example
 * import { RedisStore } from 'msal-cloud-cache/redis';
 * const store = new RedisStore({ clientOptions: { url: 'rediss://my-cache.example:6380' } });
 */
import './peers';

export {
  RedisStore,
  redisItemSize,
  REDIS_DEFAULT_MAX_ITEM_BYTES,
  REDIS_MAX_VALUE_BYTES,
  REDIS_ACL,
  type AnyRedisClient,
  type RedisStoreBaseOptions,
  type RedisStoreClientOptions,
  type RedisStoreClusterOptions,
  type RedisStoreConfigOptions,
  type RedisStoreOptions,
} from './redis-store';
export { createRedisStoreFromConfig } from './from-config';
export { REDIS_STORE_DEFAULTS } from '../defaults';
