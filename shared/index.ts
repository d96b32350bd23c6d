/**
 * msal-cloud-cache: a persistent, envelope-encrypted, per-caller MSAL token cache for
 * serverless functions. Start with {@link createTokenCache}.
 */
export { createTokenCache, TokenCacheDefaults } from './cache/token-cache';
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
export { DynamoDbStore, type DynamoDbStoreOptions } from './store/dynamodb';
export { CosmosStore, type CosmosStoreOptions } from './store/cosmos';

export type { KeyRing, DataKey } from './crypto/keyring';
export { LocalKeyRing, type LocalKeyRingOptions } from './crypto/local-keyring';
export { KmsKeyRing, type KmsKeyRingOptions } from './crypto/aws-kms-keyring';
export { KeyVaultKeyRing, type KeyVaultKeyRingOptions } from './crypto/azure-keyvault-keyring';
export { DataKeyCache } from './crypto/data-key-cache';
export { Envelope, parseEnvelopeHeader, type EnvelopeHeader } from './crypto/envelope';

export { createBearerValidator, BearerFailure } from './auth/bearer';
export type { BearerValidator, BearerValidatorOptions, ValidatedBearer } from './auth/bearer';

export { loadConfig, type AppConfig } from './config';
export { createTokenCacheFromConfig } from './runtime';

export * from './errors';
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
