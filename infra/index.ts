/** The infrastructure's public surface: the reusable construct, the reference stack and its app. */
export {
  ENCRYPTION_CONTEXT_PURPOSE,
  TOKEN_CACHE_ENV,
  TokenCache,
  type TokenCacheProps,
} from './lib/token-cache';
export {
  FUNCTION_ENV,
  METRICS_ENV,
  METRICS_SERVICE,
  cacheMetric,
  cacheMetricWithReason,
  PLACEHOLDER_CLIENT_ID,
  PLACEHOLDER_TENANT_ID,
  TokenCacheStack,
  findProjectRoot,
  type TokenCacheStackProps,
} from './lib/token-cache-stack';
export { APP_CONTEXT_KEYS, createApp } from './lib/app';
