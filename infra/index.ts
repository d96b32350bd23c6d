/** The infrastructure's public surface: the reusable construct, the reference stack and its app. */
export {
  ENCRYPTION_CONTEXT_KIND_KEY,
  ENCRYPTION_CONTEXT_PURPOSE,
  TOKEN_CACHE_ENV,
  TokenCacheTable,
  type TokenCacheTableProps,
  type TokenCacheGrantOptions,
  type TokenCachePartitionKind,
  TokenCache,
  type TokenCacheProps,
} from './lib/token-cache';
export {
  FEDERATED_AUDIENCE,
  FUNCTION_ENV,
  METRICS_ENV,
  METRICS_SERVICE,
  cacheMetric,
  cacheMetricWithReason,
  PLACEHOLDER_CLIENT_ID,
  PLACEHOLDER_TENANT_ID,
  LAMBDA_BUNDLES,
  TokenCacheStack,
  findProjectRoot,
  lambdaBundle,
  type StackCredential,
  type TokenCacheStackProps,
} from './lib/token-cache-stack';
export { APP_CONTEXT_KEYS, createApp, type CreateAppOptions } from './lib/app';
