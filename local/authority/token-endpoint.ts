/**
 * The token endpoint's grants, with Entra's semantics: authenticated confidential
 * clients, `/.default` for client credentials, validated OBO assertions, refresh tokens
 * bound to their client and revocable, one-time authorization codes with PKCE.
 *
 * Why not oauth2-mock-server's OAuth2Service for these: its token handler authenticates
 * no client, accepts any code or refresh token, returns unbound random refresh tokens,
 * has one issuer for all tenants and answers the OBO grant with `invalid_grant`. Those
 * checks are what the cache's tests exercise, so the grants are handled here; signing,
 * keys and the JWKS still come from its OAuth2Issuer (see tokens.ts).
 */
import { createHash } from 'node:crypto';
import { decodeJwt, errors, type JWTPayload } from 'jose';
import { ConfigurationError } from '../../shared/errors';
import {
  authenticateClient,
  FederatedIssuers,
  registration,
  type AuthenticatedClient,
  type RegisteredClient,
} from './clients';
import {
  CAE_TOKEN_LIFETIME_SECONDS,
  ConditionalAccess,
  readClaimsParameter,
  type RequestedClaims,
} from './conditional-access';
import { GRAPH_RESOURCE, GrantType, OIDC_SCOPES } from './constants';
import { Entra } from './entra-errors';
import {
  appAccessTokenClaims,
  clientInfo,
  idTokenClaims,
  nowSeconds,
  opaqueToken,
  userAccessTokenClaims,
  type TokenSigner,
  type TokenUser,
} from './tokens';
import type { IssueAuthCodeOptions, LocalClient, LocalUser, RevocationFilter } from './types';

/** Entra's authorization codes live about ten minutes. */
const AUTH_CODE_LIFETIME_SECONDS = 600;
const ID_TOKEN_LIFETIME_SECONDS = 3600;
/** What `scp` says for `<resource>/.default`: there is no consent registry here to expand it. */
const DEFAULT_DELEGATED_PERMISSION = 'user_impersonation';

interface RefreshTokenRecord {
  readonly clientId: string;
  readonly user: TokenUser;
  revoked: boolean;
}

interface AuthCodeRecord {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly user: TokenUser;
  readonly codeChallenge?: string;
  readonly nonce?: string;
  readonly expiresAt: number;
  redeemed: boolean;
}

/** One authenticated token request, as every grant handler receives it. */
interface GrantRequest {
  /** The tenant in the request path. */
  readonly tenantId: string;
  readonly caller: AuthenticatedClient;
  readonly params: URLSearchParams;
  readonly asked: RequestedClaims;
}

/** The scopes of a delegated request, split the way Entra does: one resource plus OIDC scopes. */
interface RequestedScopes {
  /** The scopes as requested, echoed in the response's `scope`. */
  readonly scope: string;
  /** The access token's `aud`. */
  readonly resource: string;
  /** The access token's `scp`. */
  readonly permissions: readonly string[];
  readonly oidc: ReadonlySet<string>;
}

function parseDelegatedScopes(scope: string): RequestedScopes {
  const all = [...new Set(scope.split(' ').filter((s) => s.length > 0))];
  const oidc = new Set(all.filter((s) => OIDC_SCOPES.has(s)));
  const resources = new Set<string>();
  const permissions: string[] = [];
  for (const s of all.filter((x) => !OIDC_SCOPES.has(x))) {
    const slash = s.lastIndexOf('/');
    // A bare permission (`User.Read`) is Microsoft Graph's, as in Entra.
    resources.add(slash < 0 ? GRAPH_RESOURCE : s.slice(0, slash));
    const permission = slash < 0 ? s : s.slice(slash + 1);
    permissions.push(permission === '.default' ? DEFAULT_DELEGATED_PERMISSION : permission);
  }
  if (resources.size > 1) throw Entra.multipleResources();
  const [resource = GRAPH_RESOURCE] = resources;
  return {
    scope: all.join(' '),
    resource,
    permissions: permissions.length > 0 ? permissions : [...oidc].filter((s) => s !== 'offline_access'),
    oidc,
  };
}

/** The user of a delegated token, with defaults applied. */
function tokenUser(user: LocalUser, defaultTenantId: string): TokenUser {
  return {
    oid: user.oid,
    tenantId: user.tenantId ?? defaultTenantId,
    preferredUsername: user.preferredUsername,
    name: user.name ?? user.preferredUsername,
  };
}

/** Tenant path segments that are not one tenant. */
const TENANT_ALIASES: ReadonlySet<string> = new Set(['common', 'organizations', 'consumers']);

/** URLs of a tenant, supplied by the server that knows its port. */
export interface TenantUrls {
  issuer(tenantId: string): string;
  tokenEndpoint(tenantId: string): string;
}

/** Token endpoint state (clients, codes, refresh tokens) and its grants. */
export class TokenEndpoint {
  private readonly clients = new Map<string, RegisteredClient>();
  private readonly codes = new Map<string, AuthCodeRecord>();
  private readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly issuers = new FederatedIssuers();
  private lifetimeSeconds: number;
  /** Conditional Access policies, applied to on-behalf-of requests. */
  readonly conditionalAccess = new ConditionalAccess();

  constructor(
    private readonly signer: TokenSigner,
    private readonly urls: TenantUrls,
    private readonly defaultTenantId: string,
    accessTokenLifetimeSeconds: number,
    /** Lifetime of CAE tokens (the client sent `xms_cc` with `cp1`). */
    private readonly caeLifetimeSeconds: number = CAE_TOKEN_LIFETIME_SECONDS,
  ) {
    this.lifetimeSeconds = checkLifetime(accessTokenLifetimeSeconds);
  }

  /** Registers or replaces a client. */
  register(client: LocalClient): void {
    this.clients.set(client.clientId, registration(client));
  }

  /** Sets the lifetime of access tokens issued from now on. */
  setAccessTokenLifetime(seconds: number): void {
    this.lifetimeSeconds = checkLifetime(seconds);
  }

  /** Stores a completed sign-in; returns the code that redeems it once. */
  issueCode(options: IssueAuthCodeOptions): string {
    if (!this.clients.has(options.clientId)) {
      throw new ConfigurationError(
        'issueAuthCode.clientId',
        `'${options.clientId}' is not a registered client`,
      );
    }
    if (!options.redirectUri) throw new ConfigurationError('issueAuthCode.redirectUri', 'must not be empty');
    if (!options.user?.oid || !options.user.preferredUsername) {
      throw new ConfigurationError('issueAuthCode.user', 'needs oid and preferredUsername');
    }
    const code = opaqueToken();
    this.codes.set(code, {
      clientId: options.clientId,
      redirectUri: options.redirectUri,
      scopes: [...options.scopes],
      user: tokenUser(options.user, this.defaultTenantId),
      ...(options.codeChallenge !== undefined ? { codeChallenge: options.codeChallenge } : {}),
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
      expiresAt: nowSeconds() + AUTH_CODE_LIFETIME_SECONDS,
      redeemed: false,
    });
    return code;
  }

  /** Revokes matching refresh tokens; returns how many were live. */
  revoke(filter: RevocationFilter = {}): number {
    let count = 0;
    for (const record of this.refreshTokens.values()) {
      if (record.revoked) continue;
      if (filter.oid !== undefined && record.user.oid !== filter.oid) continue;
      if (filter.clientId !== undefined && record.clientId !== filter.clientId) continue;
      record.revoked = true;
      count++;
    }
    return count;
  }

  /** Serves one token request for `tenantId` (the path segment); throws EntraError when Entra would refuse it. */
  async handle(tenantId: string, params: URLSearchParams): Promise<Record<string, unknown>> {
    const grantType = params.get('grant_type');
    if (!grantType) throw Entra.missingParameter('grant_type');
    if (!(Object.values(GrantType) as string[]).includes(grantType))
      throw Entra.unsupportedGrantType(grantType);
    const caller = await authenticateClient(params, this.clients, {
      tenantId,
      tokenEndpoint: this.urls.tokenEndpoint(tenantId),
      issuers: this.issuers,
    });
    const asked = readClaimsParameter(params.get('claims'));
    if (!asked) throw Entra.invalidClaims();
    const grant: GrantRequest = { tenantId, caller, params, asked };
    switch (grantType as GrantType) {
      case GrantType.ClientCredentials:
        return this.clientCredentials(grant);
      case GrantType.OnBehalfOf:
        return this.onBehalfOf(grant);
      case GrantType.RefreshToken:
        return this.refreshToken(grant);
      case GrantType.AuthorizationCode:
        return this.authorizationCode(grant);
    }
  }

  /** CAE tokens for a client that declared `cp1`: longer-lived, marked with `xms_cc`. */
  private lifetimeFor(asked: RequestedClaims): { seconds: number; claims: Record<string, unknown> } {
    return asked.cae
      ? { seconds: this.caeLifetimeSeconds, claims: { xms_cc: ['cp1'] } }
      : { seconds: this.lifetimeSeconds, claims: {} };
  }

  private async clientCredentials(grant: GrantRequest): Promise<Record<string, unknown>> {
    const { tenantId, caller, params, asked } = grant;
    const scope = required(params, 'scope');
    const scopes = scope.split(' ').filter((s) => s.length > 0);
    const [only] = scopes;
    if (scopes.length !== 1 || only === undefined || !only.endsWith('/.default')) {
      throw Entra.clientCredentialsScope(scope);
    }
    const lifetime = this.lifetimeFor(asked);
    const accessToken = await this.signer.sign({
      ...appAccessTokenClaims({
        issuer: this.urls.issuer(tenantId),
        lifetimeSeconds: lifetime.seconds,
        tenantId,
        audience: only.slice(0, -'/.default'.length),
        clientId: caller.client.clientId,
        clientAuth: caller.method,
        roles: caller.client.roles,
      }),
      ...lifetime.claims,
    });
    // Entra's client credentials response has no `scope`, `refresh_token` or `id_token`.
    return {
      token_type: 'Bearer',
      expires_in: lifetime.seconds,
      ext_expires_in: lifetime.seconds,
      access_token: accessToken,
    };
  }

  private async onBehalfOf(grant: GrantRequest): Promise<Record<string, unknown>> {
    const { tenantId: pathTenant, caller, params, asked } = grant;
    const use = required(params, 'requested_token_use');
    if (use !== 'on_behalf_of') throw Entra.invalidParameter('requested_token_use', use);
    const assertion = required(params, 'assertion');
    const requested = parseDelegatedScopes(required(params, 'scope'));
    const claims = await this.verifyAssertion(assertion);
    const clientId = caller.client.clientId;
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud ?? ''];
    if (!audiences.some((aud) => aud === clientId || aud === `api://${clientId}`)) {
      throw Entra.assertionAudience(audiences.join(' '), clientId);
    }
    if (typeof claims.oid !== 'string' || typeof claims.scp !== 'string' || claims.idtyp === 'app') {
      throw Entra.assertionInvalid('on-behalf-of needs a delegated (user) access token with oid and scp');
    }
    const tenantId = claims.tid as string;
    // Entra exchanges an assertion in its own tenant only; the aliases resolve to it.
    if (
      !TENANT_ALIASES.has(pathTenant.toLowerCase()) &&
      pathTenant.toLowerCase() !== tenantId.toLowerCase()
    ) {
      throw Entra.assertionInvalid(
        `the assertion was issued by tenant '${tenantId}', not '${pathTenant}'; exchange it at /${tenantId}`,
      );
    }
    const preferredUsername = stringClaim(claims, 'preferred_username') ?? stringClaim(claims, 'upn') ?? '';
    const user: TokenUser = {
      oid: claims.oid,
      tenantId,
      preferredUsername,
      name: stringClaim(claims, 'name') ?? preferredUsername,
    };
    // Conditional Access: a policy for this user and resource, or a resource's own challenge,
    // wants an authentication context the assertion does not carry.
    const challenge = this.conditionalAccess.challenge(claims, requested.resource, asked);
    if (challenge) throw Entra.stepUpRequired(requested.resource, challenge.claims);
    const acrs = Array.isArray(claims.acrs) ? claims.acrs.filter((c) => typeof c === 'string') : [];
    return this.delegatedTokens(grant, user, requested, undefined, acrs.length ? { acrs } : {});
  }

  /** Signature with our keys, exp/nbf, then an issuer of ours matching the token's own tenant. */
  private async verifyAssertion(assertion: string): Promise<JWTPayload> {
    let claims: JWTPayload;
    try {
      claims = await this.signer.verify(assertion);
    } catch (e) {
      if (
        e instanceof errors.JWTExpired ||
        (e instanceof errors.JWTClaimValidationFailed && e.claim === 'nbf')
      ) {
        throw Entra.assertionTime(Number(decodeJwt(assertion).exp ?? 0));
      }
      if (e instanceof errors.JWKSNoMatchingKey) {
        throw Entra.assertionSignature('The key used to sign the assertion is not one of the issuer keys.');
      }
      if (e instanceof errors.JOSEError) {
        throw Entra.assertionSignature(
          'The provided signature value did not match the expected signature value.',
        );
      }
      throw e;
    }
    if (typeof claims.tid !== 'string' || claims.iss !== this.urls.issuer(claims.tid)) {
      throw Entra.assertionInvalid(
        `the issuer '${String(claims.iss)}' is not this authority's issuer of tenant '${String(claims.tid)}'`,
      );
    }
    return claims;
  }

  private async refreshToken(grant: GrantRequest): Promise<Record<string, unknown>> {
    const { caller, params } = grant;
    const record = this.refreshTokens.get(required(params, 'refresh_token'));
    if (!record) throw Entra.malformedGrant();
    if (record.clientId !== caller.client.clientId) throw Entra.grantOfOtherClient('refresh token');
    if (record.revoked) throw Entra.refreshTokenRevoked();
    // Entra does not invalidate a redeemed refresh token: the new one rotates in, the old
    // one stays valid until revoked. Concurrent function instances rely on that.
    return this.delegatedTokens(grant, record.user, parseDelegatedScopes(required(params, 'scope')));
  }

  private async authorizationCode(grant: GrantRequest): Promise<Record<string, unknown>> {
    const { caller, params } = grant;
    const record = this.codes.get(required(params, 'code'));
    const redirectUri = required(params, 'redirect_uri');
    if (!record) throw Entra.malformedGrant();
    if (record.redeemed) throw Entra.codeRedeemed();
    if (record.expiresAt <= nowSeconds()) throw Entra.codeExpired();
    if (record.clientId !== caller.client.clientId) throw Entra.grantOfOtherClient('authorization code');
    if (record.redirectUri !== redirectUri) throw Entra.redirectMismatch(redirectUri, record.redirectUri);
    if (record.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier');
      const challenge = verifier && createHash('sha256').update(verifier).digest('base64url');
      if (challenge !== record.codeChallenge) throw Entra.pkceMismatch();
    }
    const requested = parseDelegatedScopes(params.get('scope') ?? record.scopes.join(' '));
    const consented = new Set(record.scopes);
    const beyond = requested.scope.split(' ').find((s) => !OIDC_SCOPES.has(s) && !consented.has(s));
    if (beyond !== undefined) throw Entra.invalidScope(beyond);
    // Spent before the first await, so two concurrent redemptions cannot both succeed.
    record.redeemed = true;
    return this.delegatedTokens(grant, record.user, requested, record.nonce);
  }

  /**
   * Access token for the requested resource; a refresh token if `offline_access` was
   * asked for, an id_token if `openid` was, `client_info` if the client sent
   * `client_info=1` (msal-node does). Guest accounts are not modelled: tokens carry the
   * user's home tenant.
   */
  private async delegatedTokens(
    { caller, params, asked }: GrantRequest,
    user: TokenUser,
    requested: RequestedScopes,
    nonce?: string,
    extraClaims: Record<string, unknown> = {},
  ): Promise<Record<string, unknown>> {
    const clientId = caller.client.clientId;
    const issuer = this.urls.issuer(user.tenantId);
    const lifetime = this.lifetimeFor(asked);
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: requested.scope,
      expires_in: lifetime.seconds,
      ext_expires_in: lifetime.seconds,
      access_token: await this.signer.sign({
        ...userAccessTokenClaims({
          issuer,
          lifetimeSeconds: lifetime.seconds,
          audience: requested.resource,
          clientId,
          clientAuth: caller.method,
          user,
          scp: requested.permissions,
        }),
        ...lifetime.claims,
        ...extraClaims,
      }),
    };
    if (requested.oidc.has('offline_access')) {
      const refreshToken = opaqueToken();
      this.refreshTokens.set(refreshToken, { clientId, user, revoked: false });
      body.refresh_token = refreshToken;
    }
    if (requested.oidc.has('openid')) {
      body.id_token = await this.signer.sign(
        idTokenClaims({
          issuer,
          lifetimeSeconds: ID_TOKEN_LIFETIME_SECONDS,
          clientId,
          user,
          ...(nonce ? { nonce } : {}),
        }),
      );
    }
    if (params.get('client_info') === '1') body.client_info = clientInfo(user);
    return body;
  }
}

/** Validates an access token lifetime; throws ConfigurationError. */
export function checkLifetime(seconds: number): number {
  if (!Number.isInteger(seconds) || seconds <= 0) {
    throw new ConfigurationError('accessTokenLifetimeSeconds', `must be a positive integer, got ${seconds}`);
  }
  return seconds;
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') throw Entra.missingParameter(name);
  return value;
}

function stringClaim(claims: JWTPayload, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' ? value : undefined;
}
