/**
 * Public types of the token cache facade.
 */
import type { ConfidentialClientApplication, INetworkModule } from '@azure/msal-node';
import type { KeyRing } from '../crypto/keyring';
import type { Logger, Metrics } from '../observability';
import type { CacheMetadata, CachedAuthenticationResult } from './metadata';
import type { TokenStore } from '../store/store';

/** A client certificate for certificate credentials (preferred over secrets in production). */
export interface ClientCertificate {
  /** SHA-256 thumbprint of the certificate, hex. */
  readonly thumbprintSha256: string;
  /** PEM private key. */
  readonly privateKey: string;
  /** PEM certificate chain, sent as x5c (needed for subject-name/issuer auth). */
  readonly x5c?: string;
}

/** The one credential of the confidential client: exactly one of these. */
export type ClientCredential =
  | { readonly clientSecret: string; readonly clientCertificate?: never; readonly clientAssertion?: never }
  | {
      readonly clientCertificate: ClientCertificate;
      readonly clientSecret?: never;
      readonly clientAssertion?: never;
    }
  | {
      /** A signed assertion, or a callback producing one (e.g. a federated workload identity token). */
      readonly clientAssertion: string | (() => Promise<string>);
      readonly clientSecret?: never;
      readonly clientCertificate?: never;
    };

/** MSAL settings of the confidential client the cache acquires through. */
export type MsalOptions = {
  /** Application (client) id. */
  readonly clientId: string;
  /** `https://login.microsoftonline.com/<tenant-id>` or any Entra-compatible authority. */
  readonly authority: string;
  /**
   * Hosts to trust without instance discovery (B2C, CIAM, ADFS, a local authority).
   * @default [] (Microsoft public-cloud hosts are known to MSAL)
   */
  readonly knownAuthorities?: readonly string[];
  /** Network module for MSAL's HTTP calls (e.g. one trusting a private CA). @default MSAL's own */
  readonly networkClient?: INetworkModule;
  /**
   * Client capabilities declared to Entra, e.g. `['cp1']`: the app handles claims
   * challenges, so Entra issues it CAE tokens (long-lived, revocable by the resource).
   * See docs/conditional-access.md. @default [] (none)
   */
  readonly clientCapabilities?: readonly string[];
} & ClientCredential;

/** Bounds of the in-process L1 cache of opened partitions (defaults: shared/defaults.ts, exported from the root). */
export interface L1Options {
  /** Total bytes of plaintext cache JSON kept (16 MiB). @defaultValue {@link L1_DEFAULTS.maxBytes} */
  readonly maxBytes?: number;
  /** Longest an entry is served without a store read (5 minutes). @defaultValue {@link L1_DEFAULTS.ttlMs} */
  readonly ttlMs?: number;
  /**
   * Each entry lives a random `ttlMs * (1 - jitter)` to `ttlMs`, so a fleet that loaded a
   * hot partition at once (a deploy) does not re-read it in step (docs/scale.md). 0 to 0.5.
   * @defaultValue {@link L1_DEFAULTS.jitter}
   */
  readonly jitter?: number;
}

/** Bounds of the data-key cache (see docs/envelope.md). */
export interface DataKeyCacheOptions {
  /** Longest one data key is used for new writes (5 minutes). @defaultValue {@link DATA_KEY_CACHE_DEFAULTS.maxAgeMs} */
  readonly maxAgeMs?: number;
  /** Most envelopes sealed with one data key. @defaultValue {@link DATA_KEY_CACHE_DEFAULTS.maxUses} */
  readonly maxUses?: number;
  /** Unwrapped data keys kept for reads. @defaultValue {@link DATA_KEY_CACHE_DEFAULTS.maxUnwrapped} */
  readonly maxUnwrapped?: number;
  /**
   * Longest an unwrapped data key is reused for reads before the ring is asked again:
   * with the opened-envelope memo's age, the revocation window (a disabled master key
   * stops warm instances reading within this time). 15 minutes.
   * @defaultValue {@link DATA_KEY_CACHE_DEFAULTS.maxUnwrappedAgeMs}
   */
  readonly maxUnwrappedAgeMs?: number;
}

/**
 * Coalescing of token requests: identical acquisitions in flight in one process share one
 * call (single flight), and on a miss an instance takes a short lease in the store so the
 * others wait for its token instead of calling the authority too. See the README.
 */
export interface CoalescingOptions {
  /**
   * Take a lease in the store on a miss (cross-instance). Costs one conditional write per
   * miss, nothing on a hit; ignored when the store has no leases.
   * @defaultValue {@link COALESCING_DEFAULTS.lease}
   */
  readonly lease?: boolean;
  /** How long a lease holds unless released: longer than a token call takes. @defaultValue {@link COALESCING_DEFAULTS.leaseTtlMs} */
  readonly leaseTtlMs?: number;
  /** Longest a request waits for another instance's token before calling the authority itself. @defaultValue {@link COALESCING_DEFAULTS.maxWaitMs} */
  readonly maxWaitMs?: number;
  /** First re-read of the partition by a waiter, ms; doubling with jitter. @defaultValue {@link COALESCING_DEFAULTS.pollBaseMs} */
  readonly pollBaseMs?: number;
  /** Longest pause between a waiter's re-reads, ms. @defaultValue {@link COALESCING_DEFAULTS.pollMaxMs} */
  readonly pollMaxMs?: number;
  /** Most distinct acquisitions shared at once in a process; beyond, requests run alone. @defaultValue {@link COALESCING_DEFAULTS.maxInFlight} */
  readonly maxInFlight?: number;
}

/** Options of {@link createTokenCache}. */
export interface TokenCacheOptions {
  readonly msal: MsalOptions;
  readonly store: TokenStore;
  readonly keyRing: KeyRing;
  /** In-process cache of opened partitions, or `false` to read the store on every request. @defaultValue enabled with {@link L1_DEFAULTS} */
  readonly l1?: L1Options | false;
  readonly dataKeys?: DataKeyCacheOptions;
  /** How long a signed-in user's partition lives after its last write (14 days). @defaultValue {@link TOKEN_CACHE_DEFAULTS.userSlidingWindowSeconds} */
  readonly userSlidingWindowSeconds?: number;
  /** Compress the MSAL JSON inside the envelope when it is larger than this many bytes. `false` never compresses. @defaultValue {@link ENVELOPE_DEFAULTS.compressAboveBytes} */
  readonly compressAboveBytes?: number | false;
  /** Bounded retries of a conflicting write (re-read, merge, write again). */
  readonly conflictRetries?: {
    /** @defaultValue {@link CONFLICT_RETRY_DEFAULTS.maxAttempts} */ readonly maxAttempts?: number;
    /** First backoff ceiling; full jitter, doubling each attempt. @defaultValue {@link CONFLICT_RETRY_DEFAULTS.baseDelayMs} */ readonly baseDelayMs?: number;
    /** @defaultValue {@link CONFLICT_RETRY_DEFAULTS.maxDelayMs} */ readonly maxDelayMs?: number;
  };
  /**
   * Concurrent requests of this process loading one partition share one store read
   * (shared/cache/shared-reads.ts), instead of one read each. @defaultValue {@link TOKEN_CACHE_DEFAULTS.sharedReads}
   */
  readonly sharedReads?: boolean;
  /** One token request per caller: single flight and the store lease, or `false` for neither. @defaultValue enabled with {@link COALESCING_DEFAULTS} */
  readonly coalescing?: CoalescingOptions | false;
  /**
   * Serve an OBO or app hit without msal-node when the opened partition provably holds
   * the token msal-node would return (see the README, Fast hits); `false` always asks msal-node.
   * @defaultValue {@link TOKEN_CACHE_DEFAULTS.fastHits}
   */
  readonly fastHits?: boolean;
  /** @default a JsonLogger at level warn */
  readonly logger?: Logger;
  /** @default no metrics */
  readonly metrics?: Metrics;
  /**
   * Called once per successful acquisition with its metadata (the same object as the
   * result's `cache`), e.g. to feed a tracer. Must not throw (a throw is logged and ignored).
   * @default none
   */
  readonly onResult?: (metadata: CacheMetadata) => void;
  /** Clock in epoch milliseconds, for tests. @default Date.now */
  readonly now?: () => number;
}

/** Which partition a request's tokens live in. */
export type Partition =
  | { readonly kind: 'app'; readonly tenantId: string }
  | {
      readonly kind: 'obo';
      readonly assertion: string;
      /** The caller's tenant, when the exchange runs there (multi-tenant APIs); part of the key. */
      readonly tenantId?: string;
    }
  | { readonly kind: 'user'; readonly homeAccountId: string };

export interface OnBehalfOfRequest {
  /** The caller's incoming access token (already validated by the web API). */
  readonly assertion: string;
  readonly scopes: readonly string[];
  /**
   * Exchange in this tenant (the validated `tid` of the assertion) instead of the configured
   * authority's: a multi-tenant API on `organizations`/`common`. The partition key names it.
   * @default the configured authority's tenant
   */
  readonly tenantId?: string;
  /**
   * A claims challenge to satisfy (JSON, from Entra or a downstream API's
   * `WWW-Authenticate`): MSAL skips the cached access token, and the new token replaces it
   * in the partition. Validated (shared/auth/claims.ts); never shared with a request
   * without the same claims. @default none
   */
  readonly claims?: string;
}

export interface AppTokenRequest {
  readonly scopes: readonly string[];
  /** Acquire for another tenant than the configured authority's (multi-tenant daemons). */
  readonly tenantId?: string;
}

export interface AuthCodeRequest {
  readonly code: string;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  /** PKCE verifier, when the auth request used a challenge. */
  readonly codeVerifier?: string;
}

export interface SilentUserRequest {
  readonly homeAccountId: string;
  readonly scopes: readonly string[];
  /** Skip the cached access token and redeem the refresh token. @default false */
  readonly forceRefresh?: boolean;
  /** A claims challenge to satisfy, as for {@link OnBehalfOfRequest.claims}. @default none */
  readonly claims?: string;
}

/**
 * What {@link TokenCache.evictAccessToken} did: `removed` from the stored partition,
 * `not-found` (absent, or another instance removed or replaced it already), `failed` (the
 * store or key service failed; nothing was changed, the failure is logged).
 */
export type EvictionOutcome = 'removed' | 'not-found' | 'failed';

/**
 * The token cache: acquire tokens through MSAL with one encrypted, persisted cache
 * partition per caller.
 */
export interface TokenCache {
  /** Web API calling a downstream API on behalf of its caller. Partition: the caller's assertion. */
  acquireTokenOnBehalfOf(request: OnBehalfOfRequest): Promise<CachedAuthenticationResult>;
  /** Daemon / client credentials. Partition: the app in its tenant. */
  acquireTokenForApp(request: AppTokenRequest): Promise<CachedAuthenticationResult>;
  /** Web app redeeming an authorization code. Partition: the signed-in user's home account id. */
  acquireTokenByCode(request: AuthCodeRequest): Promise<CachedAuthenticationResult>;
  /** Web app acquiring for a signed-in user without interaction. @throws InteractionRequiredError */
  acquireTokenSilent(request: SilentUserRequest): Promise<CachedAuthenticationResult>;
  /** Deletes the user's partition from the store and L1. */
  signOut(homeAccountId: string): Promise<void>;
  /**
   * Removes an access token a resource rejected (CAE revocation) from the stored partition,
   * with a conditional write, so other instances stop serving it: at once with L1 off,
   * within `l1.ttlMs` with L1 on (docs/conditional-access.md). Never throws for a store or
   * key-service failure (`failed`).
   * @example
   * await cache.evictAccessToken({ kind: 'obo', assertion }, result.accessToken);
   * const again = await cache.acquireTokenOnBehalfOf({ assertion, scopes, claims });
   */
  evictAccessToken(partition: Partition, accessToken: string): Promise<EvictionOutcome>;
  /**
   * Escape hatch: run any MSAL call on a ConfidentialClientApplication bound to a
   * partition. The partition is loaded before `fn` runs and persisted after.
   * @example
   * const accounts = await cache.withPartition({ kind: 'user', homeAccountId }, (cca) =>
   *   cca.getTokenCache().getAllAccounts());
   */
  withPartition<T>(
    partition: Partition,
    fn: (client: ConfidentialClientApplication) => Promise<T>,
  ): Promise<T>;
  /** The store key of a partition (a hash: the store never holds user ids or assertions). */
  storeKeyOf(partition: Partition): string;
}
