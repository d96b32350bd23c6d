/**
 * msal-cloud-cache: a persistent, envelope-encrypted, per-caller MSAL token cache for
 * serverless functions. Start with {@link createTokenCache}; the stores and key rings of
 * each cloud are in `msal-cloud-cache/aws` and `msal-cloud-cache/azure`. This entry point
 * loads no cloud SDK.
 */
export { createTokenCache, TokenCacheDefaults } from './cache/token-cache';
export {
  COALESCING_DEFAULTS,
  CONFLICT_RETRY_DEFAULTS,
  DATA_KEY_CACHE_DEFAULTS,
  ENVELOPE_DEFAULTS,
  L1_DEFAULTS,
  TOKEN_CACHE_DEFAULTS,
} from './defaults';
export type {
  AppTokenRequest,
  AuthCodeRequest,
  ClientCertificate,
  ClientCredential,
  CoalescingOptions,
  DataKeyCacheOptions,
  L1Options,
  MsalOptions,
  OnBehalfOfRequest,
  Partition,
  SilentUserRequest,
  TokenCache,
  TokenCacheOptions,
} from './cache/types';
export { HttpsNetworkClient, type HttpsNetworkClientOptions } from './cache/http';
export {
  cacheLogFields,
  cacheMetadataOf,
  type CacheMetadata,
  type CacheTimings,
  type CachedAuthenticationResult,
  type LoadSource,
  type StoreUnusedReason,
  type TokenSource,
  type WriteFailReason,
  type WriteOutcome,
  type WriteSkipReason,
} from './cache/metadata';
export { logicalKey, storeKey } from './cache/partitions';

export type {
  TokenStore,
  StoredItem,
  WriteCondition,
  WriteOptions,
  LeaseStore,
  LeaseOptions,
} from './store/store';
export { leaseItemKey, hasLeases } from './store/store';
export { MemoryStore, type MemoryStoreOptions } from './store/memory';

export type { KeyRing, DataKey } from './crypto/keyring';
export { LocalKeyRing, type LocalKeyRingOptions } from './crypto/local-keyring';
export { parseEnvelopeHeader, type EnvelopeHeader } from './crypto/envelope';

export {
  CacheConfigDefaults,
  CacheVariables,
  loadCacheConfig,
  SecretValue,
  type CacheConfig,
  type CacheVariable,
  type CredentialSource,
  type Environment,
  type KeyRingConfig,
  type StoreConfig,
} from './config';

export * from './errors';
export {
  AssertionCache,
  AssertionCacheDefaults,
  type AssertionCacheOptions,
  type AssertionSource,
  type FetchedAssertion,
} from './cache/assertion-cache';
export {
  openTelemetry,
  otelInstrumentNames,
  otelMeterProviderRegistered,
  OTEL_METRIC_PREFIX,
  OTEL_SCOPE,
  OTEL_SPAN_NAME,
  spanAttributes,
  type OpenTelemetryOptions,
  type OpenTelemetrySinks,
} from './otel';
export {
  CounterMetrics,
  JsonLogger,
  Metric,
  noMetrics,
  silentLogger,
  type LogFields,
  type LogLevel,
  type Logger,
  type MetricName,
  type Metrics,
} from './observability';
