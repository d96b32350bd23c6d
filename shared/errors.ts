/**
 * One error hierarchy for the whole library. Every error carries a stable `code` from
 * {@link ErrorCode} (safe to switch on and to put in metrics), a message that says what
 * was received and what to do, and the original error as `cause`.
 */
export const ErrorCode = {
  /** A setting is missing or invalid. Raised at construction / config load. */
  Configuration: 'CONFIGURATION',
  /** The store could not be read or written (network, throttling, server error). */
  StoreUnavailable: 'STORE_UNAVAILABLE',
  /** A conditional write lost: the item changed since it was read. */
  VersionConflict: 'VERSION_CONFLICT',
  /** Conflicting writes kept winning after every bounded retry. */
  ConflictRetriesExhausted: 'CONFLICT_RETRIES_EXHAUSTED',
  /** A stored blob cannot be opened: tampered, truncated, foreign, unknown key. */
  EnvelopeInvalid: 'ENVELOPE_INVALID',
  /** The key service (KMS, Key Vault, local) refused or failed. */
  KeyService: 'KEY_SERVICE',
  /** The blob does not fit in one store item even after pruning and compression. */
  SizeLimit: 'SIZE_LIMIT',
  /** An incoming bearer token was missing or failed validation. */
  Authentication: 'AUTHENTICATION',
  /** The identity provider refused or failed a token request. */
  TokenAcquisition: 'TOKEN_ACQUISITION',
  /** No cached account for a silent user request: the user must sign in again. */
  InteractionRequired: 'INTERACTION_REQUIRED',
  /** The platform identity (AWS STS, Azure managed identity) gave no client assertion. */
  ClientAssertion: 'CLIENT_ASSERTION',
  /** A `claims` value (a request's, Entra's, a downstream API's) is not a bounded JSON object. */
  InvalidClaims: 'INVALID_CLAIMS',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class of every error this library throws. */
export class TokenCacheError extends Error {
  override readonly name: string = 'TokenCacheError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** One problem of a configuration: the setting (option path or env variable) and what is wrong. */
export interface ConfigurationProblem {
  readonly setting: string;
  readonly message: string;
}

/**
 * A setting is missing or invalid; `setting` names it (an option path or env variable).
 * A configuration read from the environment reports every problem at once
 * ({@link ConfigurationError.of}): `problems` holds them all, `setting` the first.
 */
export class ConfigurationError extends TokenCacheError {
  override readonly name = 'ConfigurationError';
  readonly problems: readonly ConfigurationProblem[];
  constructor(
    readonly setting: string,
    message: string,
    options?: ErrorOptions & { problems?: readonly ConfigurationProblem[] },
  ) {
    const problems = options?.problems ?? [{ setting, message }];
    super(
      ErrorCode.Configuration,
      problems.length === 1
        ? `${setting}: ${message}`
        : `${setting}: ${message}\nand ${problems.length - 1} more configuration problem${problems.length > 2 ? 's' : ''}:\n${problems
            .slice(1)
            .map((p) => `- ${p.setting}: ${p.message}`)
            .join('\n')}`,
      options,
    );
    this.problems = problems;
  }

  /** One error for one or more problems, each on its own line of the message. */
  static of(errors: readonly ConfigurationError[]): ConfigurationError {
    if (errors.length === 1) return errors[0];
    const problems = errors.flatMap((e) => e.problems);
    return new ConfigurationError(problems[0].setting, problems[0].message, { problems, cause: errors[0] });
  }
}

/** The store failed; `throttled` is true when the service asked us to slow down. */
export class StoreUnavailableError extends TokenCacheError {
  override readonly name = 'StoreUnavailableError';
  constructor(
    readonly store: string,
    readonly operation: 'read' | 'write' | 'delete',
    message: string,
    options?: ErrorOptions & { throttled?: boolean },
  ) {
    super(ErrorCode.StoreUnavailable, `${store} ${operation} failed: ${message}`, options);
    this.throttled = options?.throttled ?? false;
  }
  readonly throttled: boolean;
}

/** A conditional write or delete lost the race; re-read, merge, retry. */
export class VersionConflictError extends TokenCacheError {
  override readonly name = 'VersionConflictError';
  constructor(
    readonly store: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.VersionConflict, `${store}: the item changed since it was read`, options);
  }
}

/** Every bounded retry of a conflicting write lost; the tokens stay valid in memory. */
export class ConflictRetriesExhaustedError extends TokenCacheError {
  override readonly name = 'ConflictRetriesExhaustedError';
  constructor(
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(
      ErrorCode.ConflictRetriesExhausted,
      `gave up after ${attempts} conflicting writes; raise cache.conflictRetries.maxAttempts if this partition is this contended`,
      options,
    );
  }
}

/** Why an envelope could not be opened. Stable: used as a metric tag. */
export const EnvelopeFailure = {
  /** Too short, bad magic, or a header field runs past the end. */
  Malformed: 'malformed',
  /** The format version byte is not one this build can read. */
  UnsupportedVersion: 'unsupported-version',
  /** Sealed by a different key ring than the one configured. */
  ForeignKeyRing: 'foreign-key-ring',
  /** The key service could not unwrap the data key (unknown or wrong key). */
  UnknownKey: 'unknown-key',
  /** AES-GCM authentication failed: tampered, truncated, or another partition's blob. */
  AuthenticationFailed: 'authentication-failed',
  /** Authenticated, but the plaintext is not an MSAL cache document. */
  BadPlaintext: 'bad-plaintext',
  /** The key ring requires a data-key attestation (format v2) and the blob has none (e.g. a v1 Key Vault envelope): forgeable, never trusted. */
  Unattested: 'unattested',
  /** The data-key attestation does not verify, or names a signing key other than the configured one. */
  BadAttestation: 'bad-attestation',
} as const;
export type EnvelopeFailure = (typeof EnvelopeFailure)[keyof typeof EnvelopeFailure];

/** A stored blob cannot be opened; it is never served and only replaced by a conditional write. */
export class EnvelopeError extends TokenCacheError {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly reason: EnvelopeFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.EnvelopeInvalid, `cannot open envelope (${reason}): ${message}`, options);
  }
}

/** Why a key service call failed. Stable: used as a metric tag. */
export const KeyServiceFailure = {
  NotFound: 'not-found',
  Disabled: 'disabled',
  AccessDenied: 'access-denied',
  InvalidCiphertext: 'invalid-ciphertext',
  /** The data-key attestation does not verify (a forged or altered envelope header). */
  BadAttestation: 'bad-attestation',
  Throttled: 'throttled',
  Unavailable: 'unavailable',
  Unknown: 'unknown',
} as const;
export type KeyServiceFailure = (typeof KeyServiceFailure)[keyof typeof KeyServiceFailure];

/** The key service failed or refused. */
export class KeyServiceError extends TokenCacheError {
  override readonly name = 'KeyServiceError';
  constructor(
    readonly keyRing: string,
    readonly operation: 'generate' | 'unwrap',
    readonly reason: KeyServiceFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.KeyService, `${keyRing} ${operation} failed (${reason}): ${message}`, options);
  }
}

/** The blob is larger than one store item can hold. */
export class SizeLimitError extends TokenCacheError {
  override readonly name = 'SizeLimitError';
  constructor(
    readonly store: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      ErrorCode.SizeLimit,
      `${store}: item of ${size} bytes exceeds the ${limit}-byte limit; the previous item was kept. ` +
        'Enable compression or reduce the scopes cached per caller.',
    );
  }
}

/** Why a bearer token was rejected. Stable: used in WWW-Authenticate, logs and metrics. */
export const AuthenticationFailure = {
  /** No Authorization header, or an empty one. */
  MissingToken: 'missing_token',
  /** The header was repeated, or holds a comma-separated list. */
  MultipleTokens: 'multiple_tokens',
  /** A scheme other than Bearer, or no scheme at all. */
  InvalidScheme: 'invalid_scheme',
  /** The token is longer than the limit (16 KiB by default). */
  OversizeToken: 'oversize_token',
  /** Not a compact JWS: three canonical base64url segments (unpadded, unused bits zero) with a JSON header. */
  MalformedToken: 'malformed_token',
  /** `alg` is `none`, symmetric, or otherwise outside the allow-list. */
  UnsupportedAlgorithm: 'unsupported_algorithm',
  /** No key in the issuer's key set matches the token's `kid` / `alg`. */
  UnknownKey: 'unknown_key',
  /** The signature does not verify with the issuer's key. */
  InvalidSignature: 'invalid_signature',
  /** `exp` is in the past (beyond the clock tolerance). */
  Expired: 'expired',
  /** `nbf` is in the future (beyond the clock tolerance). */
  NotYetValid: 'not_yet_valid',
  /** `aud` names no audience this API accepts. */
  InvalidAudience: 'invalid_audience',
  /** `iss` is not an issuer this API trusts. */
  InvalidIssuer: 'invalid_issuer',
  /** A required claim is absent. */
  MissingClaim: 'missing_claim',
  /** A claim is present but unusable (e.g. a non-numeric `exp`). */
  InvalidClaim: 'invalid_claim',
  /** Multi-tenant validation: `tid` is not a tenant id (a GUID). An absent `tid` is `missing_claim`. */
  InvalidTenant: 'invalid_tenant',
  /** Multi-tenant validation: `iss` names another tenant than the token's own `tid`. */
  TenantMismatch: 'tenant_mismatch',
  /** Multi-tenant validation: the token's tenant is not in this API's allow-list. */
  TenantNotAllowed: 'tenant_not_allowed',
  /**
   * The token is valid but does not authorize this call: a delegated token without a
   * required scope in `scp`, an app-only token without a required app permission in
   * `roles` (or any app-only token where none is accepted), or not an access token at all
   * (an ID token).
   */
  InsufficientScope: 'insufficient_scope',
  /** The issuer's key set could not be fetched: not the caller's fault, retry later. */
  JwksUnavailable: 'jwks_unavailable',
} as const;
/** One of the {@link AuthenticationFailure} values. */
export type AuthenticationFailure = (typeof AuthenticationFailure)[keyof typeof AuthenticationFailure];

/** Why an incoming bearer token was rejected. Stable: used in WWW-Authenticate and metrics. */
export class AuthenticationError extends TokenCacheError {
  override readonly name = 'AuthenticationError';
  constructor(
    readonly reason: AuthenticationFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.Authentication, message, options);
  }
}

/** The identity provider refused or failed; `retryable` for 5xx, throttling or network. */
export class TokenAcquisitionError extends TokenCacheError {
  override readonly name = 'TokenAcquisitionError';
  /** Entra's error code (e.g. `invalid_grant`), or ours (`no_result`, `no_account`). */
  readonly providerCode: string;
  /** True for 5xx, throttling or network failures: the same request may succeed later. */
  readonly retryable: boolean;
  constructor(
    message: string,
    options: { readonly providerCode: string; readonly retryable: boolean; readonly cause?: unknown },
  ) {
    super(ErrorCode.TokenAcquisition, message, options);
    this.providerCode = options.providerCode;
    this.retryable = options.retryable;
  }
}

/** Why a client assertion could not be had. Stable: used as a metric tag. */
export const ClientAssertionFailure = {
  /** The identity service did not answer within the bounded time. */
  Timeout: 'timeout',
  /** Network error, throttling or a server error: the next call may succeed. */
  Unavailable: 'unavailable',
  /** The account, role or identity is not set up for it (will not fix itself). */
  NotPermitted: 'not-permitted',
  /** The service answered with something that is not a usable JWT. */
  Invalid: 'invalid',
} as const;
export type ClientAssertionFailure = (typeof ClientAssertionFailure)[keyof typeof ClientAssertionFailure];

/**
 * The platform identity gave no client assertion (a federated credential's token);
 * `retryable` unless the setup itself is wrong. Never carries the assertion.
 */
export class ClientAssertionError extends TokenCacheError {
  override readonly name = 'ClientAssertionError';
  /** `aws-web-identity` or `azure-managed-identity` (or a custom source's name). */
  readonly source: string;
  readonly reason: ClientAssertionFailure;
  /** False when the setup itself is wrong (it will not fix itself). */
  readonly retryable: boolean;
  constructor(
    message: string,
    options: {
      readonly source: string;
      readonly reason: ClientAssertionFailure;
      readonly retryable: boolean;
      readonly cause?: unknown;
    },
  ) {
    super(
      ErrorCode.ClientAssertion,
      `${options.source}: no client assertion (${options.reason}): ${message}`,
      options,
    );
    this.source = options.source;
    this.reason = options.reason;
    this.retryable = options.retryable;
  }
}

/**
 * The user must interact: no cached account or usable refresh token, or Entra asked for
 * it. `claims` is Entra's claims challenge (validated JSON, see shared/auth/claims.ts) when
 * Conditional Access requires more of the user (MFA, an authentication context): the
 * client must sign in again with those claims.
 */
export class InteractionRequiredError extends TokenCacheError {
  override readonly name = 'InteractionRequiredError';
  readonly claims: string | undefined;
  constructor(message: string, options?: ErrorOptions & { claims?: string }) {
    super(ErrorCode.InteractionRequired, message, options);
    this.claims = options?.claims;
  }
}

/** True when `e` is one of ours with the given code. */
export function isTokenCacheError(e: unknown, code?: ErrorCode): e is TokenCacheError {
  return e instanceof TokenCacheError && (code === undefined || e.code === code);
}
