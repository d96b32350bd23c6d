/**
 * Every default of the library, once: one constant per options type. The TSDoc of each
 * option points here (`@defaultValue`), the code falls back to these, and the environment
 * configuration (shared/config.ts) derives its defaults from them, so a default changes
 * in one place. This module imports nothing, so the CDK construct can use it too.
 */

/** Bytes of every data key and of an AES-256 master key. */
export const DATA_KEY_BYTES = 32;

/**
 * The `purpose` in the KMS encryption context of every call the KMS key ring makes, and
 * the value the CDK construct's key policy requires (test/infra/token-cache-stack.test.ts
 * ties the two).
 */
export const ENCRYPTION_CONTEXT_PURPOSE = 'msal-token-cache';

/** The KMS encryption context key that names the partition kind (ring and key policy alike). */
export const ENCRYPTION_CONTEXT_KIND_KEY = 'kind';

/**
 * Per-attempt timeout of a store client the library builds, ms: a function's whole budget
 * is seconds, so a silent connection must cost the cache, not the request.
 */
const STORE_ATTEMPT_TIMEOUT_MS = 1500;

/** Per-attempt timeout of a key-service client the library builds, and its whole-call budget, ms. */
const KEY_SERVICE_TIMEOUT_MS = 2000;

/** Defaults of `EnvelopeOptions`. */
export const ENVELOPE_DEFAULTS = {
  /** Plaintexts larger than this are compressed (when that makes them smaller). */
  compressAboveBytes: 1024,
} as const;

/** Defaults of `L1Options`. */
export const L1_DEFAULTS = {
  maxBytes: 16 * 1024 * 1024,
  /** 5 minutes. */
  ttlMs: 5 * 60_000,
  jitter: 0.2,
} as const;

/** Defaults of `DataKeyCacheOptions`. */
export const DATA_KEY_CACHE_DEFAULTS = {
  /** 5 minutes. */
  maxAgeMs: 5 * 60_000,
  maxUses: 10_000,
  maxUnwrapped: 1_000,
  /** 15 minutes. */
  maxUnwrappedAgeMs: 15 * 60_000,
} as const;

/** Defaults of `CoalescingOptions`. */
export const COALESCING_DEFAULTS = {
  lease: true,
  leaseTtlMs: 3000,
  maxWaitMs: 5000,
  pollBaseMs: 20,
  pollMaxMs: 100,
  maxInFlight: 10_000,
} as const;

/** Defaults of `TokenCacheOptions.conflictRetries`. */
export const CONFLICT_RETRY_DEFAULTS = {
  /** 32 writers racing on one partition needed up to 10 in the benchmark. */
  maxAttempts: 20,
  baseDelayMs: 10,
  maxDelayMs: 500,
} as const;

/** Defaults of `TokenCacheOptions` (the nested option types have their own constants). */
export const TOKEN_CACHE_DEFAULTS = {
  /** 14 days. */
  userSlidingWindowSeconds: 14 * 24 * 3600,
  compressAboveBytes: ENVELOPE_DEFAULTS.compressAboveBytes,
  sharedReads: true,
  fastHits: true,
} as const;

/** Defaults of `DynamoDbStoreOptions` (for a client the store builds). */
export const DYNAMODB_STORE_DEFAULTS = {
  /** Connection and request timeout of each attempt. */
  timeoutMs: STORE_ATTEMPT_TIMEOUT_MS,
  maxAttempts: 3,
  /** Reads by a hand-written GetItem while the client's middleware is the SDK's own. */
  leanReads: true,
} as const;

/** Defaults of `CosmosStoreOptions`. */
export const COSMOS_STORE_DEFAULTS = {
  /** Request timeout of each attempt of a client the store builds (the SDK's own is 60 s). */
  timeoutMs: STORE_ATTEMPT_TIMEOUT_MS,
  /** Whole operation, the SDK's retries included. */
  budgetMs: 3000,
} as const;

/** Defaults of `RedisStoreOptions`. */
export const REDIS_STORE_DEFAULTS = {
  keyPrefix: 'msal-cloud-cache:',
  /** Whole operation, connecting included. */
  budgetMs: 1000,
  /** One connection attempt of a client the store builds. */
  connectTimeoutMs: 1000,
} as const;

/** Defaults of `KmsKeyRingOptions`. */
export const KMS_KEY_RING_DEFAULTS = {
  /** Connection and request timeout of each attempt of a client the ring builds. */
  timeoutMs: KEY_SERVICE_TIMEOUT_MS,
  /** Whole call, the SDK's retries included. */
  budgetMs: KEY_SERVICE_TIMEOUT_MS,
} as const;

/** Defaults of `KeyVaultKeyRingOptions`. */
export const KEY_VAULT_KEY_RING_DEFAULTS = {
  /** 5 minutes: the longest a rotation goes unnoticed by a warm instance. */
  currentVersionTtlMs: 5 * 60_000,
} as const;
