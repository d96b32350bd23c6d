/**
 * Validation of incoming bearer tokens (RFC 6750) for the web API: one header, the Bearer
 * scheme, a compact JWS in canonical base64url signed by a key from the issuer's JWKS with
 * an allowed algorithm, the issuer (a fixed list, or for a multi-tenant API the issuer of the
 * token's own `tid`, with an optional tenant allow-list), audience, exp and nbf claims checked, then authorized:
 * delegated scopes in `scp`, app permissions in `roles`, ID tokens never. Every rejection is an
 * {@link AuthenticationError} with a stable `reason` from {@link BearerFailure}; no
 * message ever contains the token.
 */
import { decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { AuthenticationError, AuthenticationFailure, ConfigurationError } from '../errors';
import { sharedRemoteJwks } from './jwks';

/**
 * Why a bearer token was rejected: {@link AuthenticationFailure} under the name this module
 * has always exported.
 */
export const BearerFailure = AuthenticationFailure;
/** One of the {@link BearerFailure} values. */
export type BearerFailure = AuthenticationFailure;

/**
 * Issuer validation of a multi-tenant API (Microsoft.Identity.Web's AadIssuerValidator):
 * `iss` must be the issuer built from the token's own `tid`, a GUID, for this authority host.
 */
export interface MultiTenantIssuer {
  /** The authority host, e.g. `https://login.microsoftonline.com` (national clouds: their host). No path. */
  readonly authorityHost: string;
  /**
   * Tenant ids (GUIDs) whose tokens are accepted; any other tenant gets `tenant_not_allowed`.
   * Empty or absent: every tenant (an explicit opt-out: log it).
   * @default [] (any tenant)
   */
  readonly allowedTenants?: readonly string[];
  /**
   * Also accept the v1 issuer `https://sts.windows.net/<tid>/`.
   * @default true on login.microsoftonline.com, false on any other host
   */
  readonly v1Issuer?: boolean;
}

/** Options of {@link createBearerValidator}. */
export interface BearerValidatorOptions {
  /**
   * Accepted `iss` value(s), exactly as the issuer writes them (single-tenant: any other
   * tenant's token is refused), or `{ multiTenant }`: the issuer of the token's own tenant.
   */
  readonly issuer: string | readonly string[] | { readonly multiTenant: MultiTenantIssuer };
  /** Accepted `aud` value(s): this API's client id and/or application ID URI. */
  readonly audience: string | readonly string[];
  /**
   * The issuer's JWKS document, https (or http to a loopback host, for local development).
   * Required with a fixed issuer list.
   * @default `<authorityHost>/common/discovery/v2.0/keys` with `multiTenant`
   */
  readonly jwksUri?: string;
  /** Accepted signing algorithms; `none` and HMAC algorithms are always refused. @default ['RS256'] */
  readonly algorithms?: readonly string[];
  /** Allowed clock skew for exp and nbf. @default 60 */
  readonly clockToleranceSeconds?: number;
  /** Claims that must be present besides iss and aud. @default ['exp'] (exp is always required) */
  readonly requiredClaims?: readonly string[];
  /**
   * Delegated permissions: a user's token (a non-empty `scp`, `idtyp` not `app`) must carry
   * one of these in `scp`, never in `roles` (Microsoft.Identity.Web's `RequiredScope`).
   * {@link ANY_SCOPE} accepts any delegated token without naming a scope (an explicit
   * opt-out: log it). Empty or absent: delegated tokens are refused. At least one of this
   * and `requiredAppPermissions` must be given.
   * @default [] (no delegated token is accepted)
   */
  readonly requiredScopes?: readonly string[] | typeof ANY_SCOPE;
  /**
   * App permissions: an app-only token (`idtyp: app`, or no `scp` but an `azp`/`appid`)
   * must carry one of these in `roles`, never in `scp` (the app half of
   * `RequiredScopeOrAppPermission`). {@link ANY_SCOPE} accepts any app-only token,
   * even one without roles (test stubs only). Empty or absent: app-only tokens are refused.
   * @default [] (no app-only token is accepted)
   */
  readonly requiredAppPermissions?: readonly string[] | typeof ANY_SCOPE;
  /**
   * CA certificate(s) to trust for the JWKS fetch, PEM. Like node:tls `ca`, they replace the
   * system store: add `tls.rootCertificates` to keep it. @default the system store
   */
  readonly ca?: string | readonly string[];
  /** Longest token accepted, in bytes. @default 16_384 */
  readonly maxTokenBytes?: number;
}

/** The explicit opt-out of naming the scopes or app permissions a token must carry. */
export const ANY_SCOPE = '*';

/** What an accepted token is: a user's access token, or an app's. */
export type BearerTokenKind = 'delegated' | 'app';

/** A token that passed validation, and its verified claims. */
export interface ValidatedBearer {
  /** The raw token, to use as the OBO assertion. Never log it. */
  readonly token: string;
  /** The verified claims. */
  readonly claims: JWTPayload;
  /** `delegated` (a user's token: `scp`) or `app` (an app-only token: `roles`). */
  readonly kind: BearerTokenKind;
  /**
   * The token's tenant (`tid`, lower case) when it is a GUID; with `multiTenant` it is
   * checked against `iss` and the allow-list. Absent when the token has no GUID `tid`.
   */
  readonly tenantId?: string;
}

/** Validates the Authorization header of one request. */
export interface BearerValidator {
  /**
   * @param authorizationHeaderValues every value of the Authorization header (an array when
   *   the transport keeps repeated headers apart), or `undefined` when absent.
   * @throws AuthenticationError with a {@link BearerFailure} reason
   */
  validate(authorizationHeaderValues: string | readonly string[] | undefined): Promise<ValidatedBearer>;
}

// The signature may be empty so that an unsecured (alg none) token is named as such.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const REFUSED_ALGORITHMS = /^(none|HS\d+)$/i;
const KNOWN_SCHEMES = new Set([
  'basic',
  'digest',
  'negotiate',
  'ntlm',
  'pop',
  'dpop',
  'mac',
  'hoba',
  'aws4-hmac-sha256',
]);

/**
 * Creates a validator; the JWKS is fetched lazily and shared per process per URI.
 * @example
 * const validator = createBearerValidator({
 *   issuer: `https://login.microsoftonline.com/${tenantId}/v2.0`,
 *   audience: [clientId, `api://${clientId}`],
 *   jwksUri: `https://login.microsoftonline.com/${tenantId}/discovery/v2.0/keys`,
 * });
 * const { token, claims } = await validator.validate(headers['authorization']);
 */
export function createBearerValidator(options: BearerValidatorOptions): BearerValidator {
  const multiTenant = isMultiTenant(options.issuer) ? tenantIssuers(options.issuer.multiTenant) : undefined;
  const issuers = isMultiTenant(options.issuer) ? [] : toList(options.issuer);
  const jwksUri = options.jwksUri ?? multiTenant?.jwksUri;
  const audiences = toList(options.audience);
  const algorithms = [...(options.algorithms ?? ['RS256'])];
  const clockTolerance = options.clockToleranceSeconds ?? 60;
  const maxTokenBytes = options.maxTokenBytes ?? 16_384;
  const requiredScopes = permissionList(options.requiredScopes, 'requiredScopes');
  const requiredAppPermissions = permissionList(options.requiredAppPermissions, 'requiredAppPermissions');
  if (requiredScopes.length === 0 && requiredAppPermissions.length === 0) {
    throw new ConfigurationError(
      'requiredScopes',
      `expected the delegated scopes (scp) or app permissions (roles) a token must carry, got none; pass "${ANY_SCOPE}" to accept any token of a kind (not recommended)`,
    );
  }
  const requiredClaims = [
    ...new Set(['exp', ...(multiTenant ? ['iss', 'tid'] : []), ...(options.requiredClaims ?? [])]),
  ];

  if (!multiTenant && issuers.length === 0)
    throw new ConfigurationError('issuer', 'expected at least one issuer, got none');
  if (audiences.length === 0)
    throw new ConfigurationError('audience', 'expected at least one audience, got none');
  if (algorithms.length === 0 || algorithms.some((a) => REFUSED_ALGORITHMS.test(a))) {
    throw new ConfigurationError(
      'algorithms',
      `expected asymmetric JWS algorithms such as RS256, got ${JSON.stringify(algorithms)}; "none" and HMAC are never accepted`,
    );
  }
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new ConfigurationError('clockToleranceSeconds', `expected a number >= 0, got ${clockTolerance}`);
  }
  if (jwksUri === undefined) {
    throw new ConfigurationError('jwksUri', 'expected the JWKS URL of the issuer(s), got none');
  }
  checkJwksUri(jwksUri);

  let keys: JWTVerifyGetKey | undefined;
  const getKey: JWTVerifyGetKey = async (header, token) => {
    keys ??= sharedRemoteJwks(jwksUri, options.ca ? { ca: options.ca } : {});
    try {
      return await keys(header, token);
    } catch (e) {
      if (joseCode(e) === 'ERR_JWKS_NO_MATCHING_KEY' || joseCode(e) === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS')
        throw e;
      throw new JwksFetchFailed(e);
    }
  };

  return {
    async validate(values) {
      const token = extractToken(values, maxTokenBytes);
      const alg = headerAlgorithm(token);
      if (!algorithms.includes(alg)) {
        throw fail(
          BearerFailure.UnsupportedAlgorithm,
          `the token is signed with ${printable(alg)}; this API accepts ${algorithms.join(', ')}`,
        );
      }
      let claims: JWTPayload;
      try {
        ({ payload: claims } = await jwtVerify(token, getKey, {
          // Multi-tenant: `iss` is checked below, against the token's own (verified) `tid`.
          ...(multiTenant ? {} : { issuer: issuers }),
          audience: audiences,
          algorithms,
          clockTolerance,
          requiredClaims,
        }));
      } catch (e) {
        throw translate(e);
      }
      const tenantId = multiTenant ? checkTenant(claims, multiTenant) : guidTenant(claims);
      const kind = authorize(claims, requiredScopes, requiredAppPermissions);
      return { token, claims, kind, ...(tenantId !== undefined ? { tenantId } : {}) };
    },
  };
}

const TENANT_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface TenantIssuers {
  /** The v2 issuer, then the v1 one if accepted, of a tenant. */
  readonly issuersOf: (tid: string) => readonly string[];
  /** The tenant an issuer of this host names, if it is of one of the accepted forms. */
  readonly tenantOf: (iss: string) => string | undefined;
  /** Lower-case GUIDs; empty: any tenant. */
  readonly allowed: ReadonlySet<string>;
  readonly jwksUri: string;
}

function isMultiTenant(
  issuer: BearerValidatorOptions['issuer'],
): issuer is { readonly multiTenant: MultiTenantIssuer } {
  return typeof issuer === 'object' && !Array.isArray(issuer) && 'multiTenant' in issuer;
}

/** The issuer forms of `multiTenant`, validated. */
function tenantIssuers(options: MultiTenantIssuer): TenantIssuers {
  let host: URL;
  try {
    host = new URL(options.authorityHost);
  } catch (cause) {
    throw new ConfigurationError(
      'issuer.multiTenant.authorityHost',
      `expected an https URL such as https://login.microsoftonline.com, got ${JSON.stringify(options.authorityHost)}`,
      { cause },
    );
  }
  if (host.protocol !== 'https:' || host.pathname !== '/' || host.search || host.hash || host.username) {
    throw new ConfigurationError(
      'issuer.multiTenant.authorityHost',
      `expected an https URL without a path, such as https://login.microsoftonline.com, got ${JSON.stringify(options.authorityHost)}`,
    );
  }
  const allowed = [...(options.allowedTenants ?? [])];
  const notGuid = allowed.filter((t) => typeof t !== 'string' || !TENANT_GUID.test(t));
  if (notGuid.length > 0) {
    throw new ConfigurationError(
      'issuer.multiTenant.allowedTenants',
      `expected tenant ids (GUIDs), got ${JSON.stringify(notGuid)}`,
    );
  }
  const origin = host.origin;
  const v1 = options.v1Issuer ?? host.hostname === 'login.microsoftonline.com';
  const v2Form = new RegExp(`^${escapeRegExp(origin)}/([^/]+)/v2\\.0$`);
  const v1Form = /^https:\/\/sts\.windows\.net\/([^/]+)\/$/;
  return {
    issuersOf: (tid) => [`${origin}/${tid}/v2.0`, ...(v1 ? [`https://sts.windows.net/${tid}/`] : [])],
    tenantOf: (iss) => v2Form.exec(iss)?.[1] ?? (v1 ? v1Form.exec(iss)?.[1] : undefined),
    allowed: new Set(allowed.map((t) => t.toLowerCase())),
    jwksUri: `${origin}/common/discovery/v2.0/keys`,
  };
}

/**
 * The token's tenant, checked: `tid` a GUID, `iss` exactly an issuer of that tenant on
 * this host, the tenant allowed. Runs after the signature is verified.
 */
function checkTenant(claims: JWTPayload, tenants: TenantIssuers): string {
  const { tid, iss } = claims;
  if (typeof tid !== 'string' || !TENANT_GUID.test(tid)) {
    throw fail(
      BearerFailure.InvalidTenant,
      `the token's tenant (tid) ${printable(tid)} is not a tenant id (a GUID); get a token from the configured authority`,
    );
  }
  if (typeof iss !== 'string' || !tenants.issuersOf(tid).includes(iss)) {
    const named = typeof iss === 'string' ? tenants.tenantOf(iss) : undefined;
    if (named !== undefined) {
      throw fail(
        BearerFailure.TenantMismatch,
        `the token's issuer ${printable(iss)} names tenant ${printable(named)}, not the token's own tenant ${printable(tid)}`,
      );
    }
    throw fail(
      BearerFailure.InvalidIssuer,
      `the token's issuer ${printable(iss)} is not the issuer of its tenant ${printable(tid)} on this authority; get a token from the configured authority`,
    );
  }
  const tenantId = tid.toLowerCase();
  if (tenants.allowed.size > 0 && !tenants.allowed.has(tenantId)) {
    throw fail(
      BearerFailure.TenantNotAllowed,
      `tokens of tenant ${printable(tid)} are not accepted by this API; ask its operator to allow the tenant`,
    );
  }
  return tenantId;
}

/** `tid` in lower case when it is a GUID (fixed issuer list: the issuer check already happened). */
function guidTenant(claims: JWTPayload): string | undefined {
  return typeof claims.tid === 'string' && TENANT_GUID.test(claims.tid)
    ? claims.tid.toLowerCase()
    : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The token of a single `Bearer` Authorization header value. */
function extractToken(values: string | readonly string[] | undefined, maxTokenBytes: number): string {
  const list = values === undefined ? [] : typeof values === 'string' ? [values] : values;
  const present = list.filter((v) => v.trim().length > 0);
  if (present.length === 0) {
    throw fail(
      BearerFailure.MissingToken,
      'no bearer token: send "Authorization: Bearer <access token for this API>"',
    );
  }
  if (present.length > 1) {
    throw fail(
      BearerFailure.MultipleTokens,
      `the Authorization header was sent ${present.length} times; send exactly one bearer token`,
    );
  }
  const value = present[0].trim();
  // A JWT never contains a comma: one here means repeated headers joined by the transport.
  if (value.includes(',')) {
    throw fail(
      BearerFailure.MultipleTokens,
      'the Authorization header holds a comma-separated list; send exactly one bearer token',
    );
  }
  if (value.toLowerCase() === 'bearer') {
    throw fail(
      BearerFailure.MissingToken,
      'the Bearer scheme came without a token; send "Bearer <access token>"',
    );
  }
  const match = /^(\S+)\s+(\S+)$/.exec(value);
  if (!match) {
    throw fail(
      BearerFailure.InvalidScheme,
      /\s/.test(value)
        ? 'the Authorization header is not "<scheme> <credentials>"; send "Bearer <access token>"'
        : 'the Authorization header has no scheme; send "Bearer <access token>"',
    );
  }
  const scheme = match[1];
  const token = match[2];
  if (scheme.toLowerCase() !== 'bearer') {
    // Only well-known scheme names are echoed: an unknown "scheme" may be a pasted secret.
    const named = KNOWN_SCHEMES.has(scheme.toLowerCase()) ? `"${scheme}"` : 'not Bearer';
    throw fail(
      BearerFailure.InvalidScheme,
      `the Authorization scheme is ${named}; send "Bearer <access token>"`,
    );
  }
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes > maxTokenBytes) {
    throw fail(
      BearerFailure.OversizeToken,
      `the bearer token is ${bytes} bytes; the limit is ${maxTokenBytes}`,
    );
  }
  if (!COMPACT_JWS.test(token)) {
    throw fail(
      BearerFailure.MalformedToken,
      'the bearer token is not a signed JWT (three base64url segments separated by dots)',
    );
  }
  const segment = nonCanonicalSegment(token);
  if (segment !== undefined) {
    throw fail(
      BearerFailure.MalformedToken,
      `the bearer token's ${segment} is not canonical base64url (unpadded, unused bits zero); send the token exactly as issued`,
    );
  }
  return token;
}

const SEGMENT_NAMES = ['header', 'payload', 'signature'] as const;

/**
 * The first segment whose decoding re-encodes to other text, if any. Decoders ignore the
 * unused low bits of a segment's last character, so without this one token has many
 * spellings (up to 16 per segment), each hashed to a new OBO partition and token request.
 */
function nonCanonicalSegment(token: string): (typeof SEGMENT_NAMES)[number] | undefined {
  const segments = token.split('.');
  for (let i = 0; i < segments.length; i++) {
    if (Buffer.from(segments[i], 'base64url').toString('base64url') !== segments[i]) return SEGMENT_NAMES[i];
  }
  return undefined;
}

/** The `alg` of the protected header, or a malformed_token failure. */
function headerAlgorithm(token: string): string {
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch (cause) {
    throw fail(BearerFailure.MalformedToken, 'the bearer token header is not base64url-encoded JSON', cause);
  }
  if (typeof alg !== 'string' || alg.length === 0) {
    throw fail(BearerFailure.MalformedToken, 'the bearer token header has no "alg"');
  }
  return alg;
}

/** Marks a failure to fetch the key set, which is not the caller's fault. */
class JwksFetchFailed extends Error {
  constructor(cause: unknown) {
    super('JWKS fetch failed', { cause });
  }
}

/** jose's error (and the claim it names) to an AuthenticationError. */
function translate(e: unknown): AuthenticationError {
  if (e instanceof AuthenticationError) return e;
  if (e instanceof JwksFetchFailed) {
    return fail(
      BearerFailure.JwksUnavailable,
      "the issuer's signing keys could not be fetched; retry later",
      e.cause,
    );
  }
  const claim = (e as { claim?: unknown }).claim;
  const reason = (e as { reason?: unknown }).reason;
  const payload = (e as { payload?: JWTPayload }).payload ?? {};
  switch (joseCode(e)) {
    case 'ERR_JWT_EXPIRED':
      return fail(
        BearerFailure.Expired,
        `the token expired at ${isoTime(payload.exp)}; get a new token from the authority`,
        e,
      );
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'missing') {
        return fail(BearerFailure.MissingClaim, `the token has no ${printable(claim)} claim`, e);
      }
      if (claim === 'nbf' && reason === 'check_failed') {
        return fail(
          BearerFailure.NotYetValid,
          `the token is not valid before ${isoTime(payload.nbf)}; check the clocks of the caller and the issuer`,
          e,
        );
      }
      if (claim === 'aud') {
        return fail(
          BearerFailure.InvalidAudience,
          `the token's audience ${printable(payload.aud)} is not this API; request a token with a scope of this API`,
          e,
        );
      }
      if (claim === 'iss') {
        return fail(
          BearerFailure.InvalidIssuer,
          `the token's issuer ${printable(payload.iss)} is not trusted by this API; get a token from the configured authority`,
          e,
        );
      }
      return fail(
        BearerFailure.InvalidClaim,
        `the token's ${printable(claim)} claim is invalid (${printable(reason)})`,
        e,
      );
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return fail(
        BearerFailure.UnsupportedAlgorithm,
        'the token is signed with an algorithm this API refuses',
        e,
      );
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return fail(
        BearerFailure.UnknownKey,
        "the token's signing key is not in the issuer's key set; get a new token from the configured authority",
        e,
      );
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return fail(BearerFailure.InvalidSignature, "the token's signature does not verify", e);
    case 'ERR_JWT_INVALID':
    case 'ERR_JWS_INVALID':
    case 'ERR_JWK_INVALID':
      return fail(BearerFailure.MalformedToken, 'the bearer token is not a valid signed JWT', e);
    default:
      return fail(BearerFailure.MalformedToken, 'the bearer token could not be verified', e);
  }
}

function fail(reason: BearerFailure, message: string, cause?: unknown): AuthenticationError {
  return new AuthenticationError(reason, message, cause === undefined ? undefined : { cause });
}

function joseCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** `required` as a list: [ANY_SCOPE] for the opt-out, [] when absent. */
function permissionList(
  required: readonly string[] | typeof ANY_SCOPE | undefined,
  name: string,
): readonly string[] {
  if (required === undefined) return [];
  if (required === ANY_SCOPE) return [ANY_SCOPE];
  const list = [...required];
  if (list.some((s) => typeof s !== 'string' || !/^[\x21-\x7e]+$/.test(s))) {
    throw new ConfigurationError(name, `expected scope names without spaces, got ${JSON.stringify(list)}`);
  }
  if (list.includes(ANY_SCOPE) && list.length > 1) {
    throw new ConfigurationError(
      name,
      `"${ANY_SCOPE}" accepts any scope: give it alone, not with ${JSON.stringify(list)}`,
    );
  }
  return list;
}

/**
 * What the token is, if this API accepts it; an `insufficient_scope` failure otherwise.
 * Delegated scopes are looked up in `scp` only and app permissions in `roles` only, so an
 * app role named like a scope grants nothing delegated (as in Microsoft.Identity.Web).
 */
function authorize(
  claims: JWTPayload,
  requiredScopes: readonly string[],
  requiredAppPermissions: readonly string[],
): BearerTokenKind {
  const scp = typeof claims.scp === 'string' ? claims.scp.split(' ').filter((s) => s.length > 0) : [];
  const roles = Array.isArray(claims.roles)
    ? claims.roles.filter((r): r is string => typeof r === 'string')
    : [];
  const client = typeof claims.azp === 'string' || typeof claims.appid === 'string';
  // Only ID tokens carry these; an access token never does.
  const idTokenOnly = ['nonce', 'at_hash', 'c_hash'].some((c) => claims[c] !== undefined);
  if (idTokenOnly || (scp.length === 0 && claims.idtyp !== 'app' && !client)) {
    throw fail(
      BearerFailure.InsufficientScope,
      'the token is an ID token, not an access token; request an access token for a scope of this API',
    );
  }
  if (claims.idtyp === 'app' || scp.length === 0) {
    if (requiredAppPermissions.length === 0) {
      throw fail(
        BearerFailure.InsufficientScope,
        requiredScopes.includes(ANY_SCOPE)
          ? 'the token is an app-only token; this API acts on behalf of a signed-in user: send a delegated access token'
          : `the token is an app-only token; this API acts on behalf of a signed-in user: send a delegated access token with one of the scopes ${requiredScopes.join(', ')}`,
      );
    }
    if (
      !requiredAppPermissions.includes(ANY_SCOPE) &&
      !roles.some((r) => requiredAppPermissions.includes(r))
    ) {
      throw fail(
        BearerFailure.InsufficientScope,
        `the app-only token carries none of the app permissions (roles) this API requires (${requiredAppPermissions.join(', ')}); assign one of them to the calling app`,
      );
    }
    return 'app';
  }
  if (requiredScopes.length === 0) {
    throw fail(
      BearerFailure.InsufficientScope,
      `the token is a delegated (user) token; this API accepts only app-only tokens with one of the app permissions ${requiredAppPermissions.join(', ')}`,
    );
  }
  if (!requiredScopes.includes(ANY_SCOPE) && !scp.some((s) => requiredScopes.includes(s))) {
    throw fail(
      BearerFailure.InsufficientScope,
      `the token grants none of the delegated scopes this API requires (${requiredScopes.join(', ')}); request one of them`,
    );
  }
  return 'delegated';
}

function toList(value: string | readonly string[]): string[] {
  return (typeof value === 'string' ? [value] : [...value]).filter((v) => v.length > 0);
}

function checkJwksUri(jwksUri: string): void {
  let url: URL;
  try {
    url = new URL(jwksUri);
  } catch (cause) {
    throw new ConfigurationError(
      'jwksUri',
      `expected an absolute https URL, got ${JSON.stringify(jwksUri)}`,
      {
        cause,
      },
    );
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigurationError(
      'jwksUri',
      `expected an https URL (http only for localhost), got ${JSON.stringify(jwksUri)}`,
    );
  }
}

/** A claim value fit to quote in a message: printable ASCII, bounded, quoted. */
function printable(value: unknown): string {
  const text = Array.isArray(value) ? value.map(String).join(' ') : String(value);
  const clean = text.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, "'");
  return `"${clean.length > 64 ? `${clean.slice(0, 64)}...` : clean}"`;
}

function isoTime(epochSeconds: unknown): string {
  return typeof epochSeconds === 'number' && Number.isFinite(epochSeconds) && Math.abs(epochSeconds) < 1e11
    ? new Date(epochSeconds * 1000).toISOString()
    : printable(epochSeconds);
}
