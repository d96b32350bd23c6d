/** The infrastructure's public surface: the reusable construct and the reference stack. */
export {
  ENCRYPTION_CONTEXT_PURPOSE,
  TOKEN_CACHE_ENV,
  TokenCache,
  type TokenCacheProps,
} from './lib/token-cache';
export {
  FUNCTION_ENV,
  PLACEHOLDER_CLIENT_ID,
  PLACEHOLDER_TENANT_ID,
  TokenCacheStack,
  findProjectRoot,
  type TokenCacheStackProps,
} from './lib/token-cache-stack';
