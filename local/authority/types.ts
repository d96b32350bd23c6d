/**
 * Public types of the local Entra-compatible authority. Kept apart from the server so
 * that tests and the local stack can name them without pulling in the implementation.
 */
import type { DevCertificate } from '../tls';
import type { ConditionalAccessRule } from './conditional-access';

/** A confidential client registered with the authority (an Entra app registration). */
export interface LocalClient {
  /** Application (client) id. Any string; Entra uses a GUID. */
  readonly clientId: string;
  /** Client secret accepted as `client_secret`. @default none: the client must use a certificate */
  readonly clientSecret?: string;
  /** Public certificate (PEM) whose key signs `client_assertion`s. @default none: the client must use a secret */
  readonly certificatePem?: string;
  /** App roles granted to this client, put in the `roles` claim of its app-only tokens. @default [] (no claim) */
  readonly roles?: readonly string[];
  /**
   * Federated identity credentials: `client_assertion`s from these issuers and subjects are
   * accepted in place of a secret, verified with the issuer's JWKS (found through its
   * `/.well-known/openid-configuration`). @default [] (none)
   */
  readonly federatedCredentials?: readonly LocalFederatedCredential[];
}

/** A federated identity credential of an app registration (`az ad app federated-credential create`). */
export interface LocalFederatedCredential {
  /** The assertion's `iss`, exactly. */
  readonly issuer: string;
  /** The assertion's `sub`, exactly. */
  readonly subject: string;
  /** Accepted `aud` values. @default ['api://AzureADTokenExchange'] */
  readonly audiences?: readonly string[];
  /** @default 'federated-<n>' */
  readonly name?: string;
}

/** A user of the directory, as it appears in tokens. */
export interface LocalUser {
  /** Object id: the `oid` claim and the `uid` of `client_info`. */
  readonly oid: string;
  /** The `preferred_username` claim (a UPN or e-mail). */
  readonly preferredUsername: string;
  /** Display name, the `name` claim. @default preferredUsername */
  readonly name?: string;
  /** Home tenant, the `tid` claim and `utid` of `client_info`. @default the authority's tenant */
  readonly tenantId?: string;
}

/** Options of {@link startLocalAuthority}. */
export interface LocalAuthorityOptions {
  /** TCP port on localhost. @default 0 (the OS picks a free one) */
  readonly port?: number;
  /** TLS certificate for localhost, also the CA clients must trust. @default a fresh one from createDevCertificate() */
  readonly certificate?: DevCertificate;
  /** The authority's default tenant. @default DEFAULT_TENANT_ID */
  readonly tenantId?: string;
  /** Confidential clients registered at start; more can be added with registerClient(). @default [] */
  readonly clients?: readonly LocalClient[];
  /** Lifetime of issued access tokens, in seconds. @default 3600 */
  readonly accessTokenLifetimeSeconds?: number;
  /**
   * Private signing JWKs from a previous run's {@link LocalAuthority.exportSigningKeys}, so
   * tokens it issued still verify after a restart. @default one fresh RS256 key
   */
  readonly signingKeys?: readonly Record<string, unknown>[];
  /** Conditional Access policies applied to on-behalf-of requests. @default [] (none) */
  readonly conditionalAccess?: readonly ConditionalAccessRule[];
  /** Lifetime of CAE access tokens (the client declared `cp1`), in seconds. @default 100_800 (28 hours) */
  readonly caeAccessTokenLifetimeSeconds?: number;
}

/** Options of {@link LocalAuthority.mintUserToken}: an access token a client app obtained for a user to call a web API. */
export interface MintUserTokenOptions {
  /** The web API the token is for: the `aud` claim (its client id, or `api://<clientId>`). */
  readonly audience: string;
  /** The user's object id. @default DEFAULT_USER.oid */
  readonly oid?: string;
  /** The user's tenant, also the tenant of the issuer. @default the authority's tenant */
  readonly tenantId?: string;
  /** @default DEFAULT_USER.preferredUsername */
  readonly preferredUsername?: string;
  /** @default DEFAULT_USER.name */
  readonly name?: string;
  /** Delegated permissions, the `scp` claim (a full scope URI keeps only its last segment). @default ['access_as_user'] */
  readonly scopes?: readonly string[];
  /** The app the user signed in to, the `azp` claim. @default DEFAULT_CALLER_CLIENT_ID */
  readonly clientId?: string;
  /** Seconds from now until `exp`; negative mints an expired token. @default 3600 */
  readonly expiresInSeconds?: number;
  /** Seconds from now of `nbf`; positive mints a token that is not valid yet. @default 0 */
  readonly notBeforeOffsetSeconds?: number;
  /** Overrides the `iss` claim (to mint a token of an issuer this authority does not trust). @default issuer(tenantId) */
  readonly issuer?: string;
  /**
   * A guest (B2B) user: the tenant the user comes from, while `tenantId` is the resource
   * tenant that issued the token. Adds Entra's `idp` claim (`https://sts.windows.net/<home>/`);
   * `tid` and `iss` stay the resource tenant's. @default none (a member of `tenantId`)
   */
  readonly homeTenantId?: string;
  /** Leaves out the `tid` claim, or sets it to this value, to mint malformed tokens. @default tenantId */
  readonly tid?: string | null;
  /** Authentication contexts satisfied at sign-in, the `acrs` claim (a step-up: `['c1']`). @default none */
  readonly acrs?: readonly string[];
  /** Authentication methods, the `amr` claim (`['pwd', 'mfa']` after MFA). @default none */
  readonly amr?: readonly string[];
}

/** Options of {@link LocalAuthority.issueAuthCode}: the outcome of a sign-in, without a browser. */
export interface IssueAuthCodeOptions {
  /** The client that will redeem the code. */
  readonly clientId: string;
  /** The redirect URI the redemption must repeat. */
  readonly redirectUri: string;
  /** Scopes the user consented to; the redemption may ask for these or fewer. */
  readonly scopes: readonly string[];
  /** Who signed in. */
  readonly user: LocalUser;
  /** PKCE S256 challenge: base64url(sha256(code_verifier)). @default none: no code_verifier is required */
  readonly codeChallenge?: string;
  /** Nonce of the authorization request, echoed in the id_token. @default none */
  readonly nonce?: string;
}

/** A fault the token endpoint answers with instead of tokens. */
export interface AuthorityFault {
  /** 429 throttled, 500 server error, 503 unavailable. */
  readonly status: 429 | 500 | 503;
  /** How many token requests fail before the endpoint recovers. @default Infinity */
  readonly count?: number;
  /** Value of the Retry-After header. @default no header */
  readonly retryAfterSeconds?: number;
}

/** Request counters, for asserting how many calls a client made. */
export interface AuthorityCounters {
  /**
   * Token endpoint requests with this grant_type (see GrantType), or all of them; only those
   * sent to `/<tenantId>/oauth2/v2.0/token` when a tenant is given. Failed requests count too.
   */
  token(grantType?: string, tenantId?: string): number;
  /** OpenID configuration and instance discovery requests. */
  metadata(): number;
  /** JWKS requests. */
  jwks(): number;
  /** Sets every counter to zero. */
  reset(): void;
}

/** The part of an msal-node `auth` config that lets MSAL use this authority without discovery calls. */
export interface MsalAuthorityMetadata {
  /** `['localhost:PORT']`: skips instance discovery and authority validation. */
  readonly knownAuthorities: string[];
  /** The OpenID configuration, as the JSON string MSAL expects. */
  readonly authorityMetadata: string;
  /** Instance discovery metadata, as the JSON string MSAL expects. */
  readonly cloudDiscoveryMetadata: string;
}

/** Filter of {@link LocalAuthority.revokeRefreshTokens}; omitted fields match everything. */
export interface RevocationFilter {
  /** Only this user's refresh tokens. */
  readonly oid?: string;
  /** Only refresh tokens issued to this client. */
  readonly clientId?: string;
}

/** A running local authority. */
export interface LocalAuthority {
  /** `https://localhost:PORT`, the authority host for @azure/identity's `authorityHost`. */
  readonly url: string;
  /** `localhost:PORT`, for msal-node's `knownAuthorities`. */
  readonly host: string;
  /** The default tenant. */
  readonly tenantId: string;
  /** PEM certificate clients must trust (the server's self-signed certificate). */
  readonly ca: string;
  /** `https://localhost:PORT/<tenant>`, msal-node's `authority`. */
  authority(tenantId?: string): string;
  /** `https://localhost:PORT/<tenant>/v2.0`, the `iss` of tokens of that tenant. */
  issuer(tenantId?: string): string;
  /** `https://localhost:PORT/<tenant>/discovery/v2.0/keys`. */
  jwksUri(tenantId?: string): string;
  /** The OpenID configuration document served for the tenant. */
  openidConfiguration(tenantId?: string): Record<string, unknown>;
  /** knownAuthorities, authorityMetadata and cloudDiscoveryMetadata for msal-node's `auth` config. */
  msalMetadata(tenantId?: string): MsalAuthorityMetadata;
  /** Registers a client, or replaces the registration with the same clientId. */
  registerClient(client: LocalClient): void;
  /** Replaces the Conditional Access policies (see conditional-access.ts). */
  setConditionalAccess(rules: readonly ConditionalAccessRule[]): void;
  /** Sets the lifetime of access tokens issued from now on. msal-node treats tokens within 300 s of expiry as expired. */
  setAccessTokenLifetime(seconds: number): void;
  /** Signs an access token for a user, as if a client app had obtained it; the incoming assertion of OBO. */
  mintUserToken(options: MintUserTokenOptions): Promise<string>;
  /** Records a completed sign-in and returns its one-time authorization code. */
  issueAuthCode(options: IssueAuthCodeOptions): string;
  /** Revokes matching refresh tokens (sign-out everywhere, admin revocation); returns how many. */
  revokeRefreshTokens(filter?: RevocationFilter): number;
  /** The private signing keys, for {@link LocalAuthorityOptions.signingKeys} of a later run. Secret: keep it local. */
  exportSigningKeys(): Record<string, unknown>[];
  /** Adds a new signing key and signs with it from now on; the old key stays in the JWKS. Returns the new kid. */
  rotateSigningKey(): Promise<string>;
  /** Request counters. */
  readonly counters: AuthorityCounters;
  /** Delays every token response by `ms` (counted on arrival), like a remote authority. 0: none. */
  setTokenLatency(ms: number): void;
  /** Makes the token endpoint fail (Entra-shaped errors), or recover with `undefined`. */
  setFault(fault: AuthorityFault | undefined): void;
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}
