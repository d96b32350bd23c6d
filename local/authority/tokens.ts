/**
 * Token signing and the claim sets of Entra v2 tokens. Keys, the JWKS and signing come
 * from oauth2-mock-server's OAuth2Issuer; this module decides what goes in the tokens.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { OAuth2Issuer } from 'oauth2-mock-server';

/** Current time in whole seconds, the unit of JWT time claims. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** An opaque, unguessable handle (refresh tokens, authorization codes). */
export function opaqueToken(): string {
  return randomBytes(48).toString('base64url');
}

/** A GUID-shaped id derived from `parts`: stable per input, like Entra's per-tenant service principal ids. */
export function derivedGuid(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\n')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Entra's `sub` is pairwise: the same user has a different subject in each application. */
function pairwiseSubject(oid: string, application: string): string {
  return createHash('sha256').update(`${oid}\n${application}`).digest('base64url');
}

/** Signs JWTs with the authority's current key and verifies its own tokens. */
export class TokenSigner {
  private readonly issuer = new OAuth2Issuer();
  private currentKid = '';
  private keySet: ReturnType<typeof createLocalJWKSet> | undefined;

  private constructor() {
    // OAuth2Issuer refuses to sign without a URL; every token sets its own `iss` below.
    this.issuer.url = 'urn:local-authority';
  }

  /**
   * A signer with the given private JWKs (the last one signs), or one fresh RS256 key.
   * Passing the keys a previous run exported keeps its tokens valid across a restart.
   */
  static async create(privateKeys: readonly Record<string, unknown>[] = []): Promise<TokenSigner> {
    const signer = new TokenSigner();
    for (const jwk of privateKeys) signer.currentKid = (await signer.issuer.keys.add({ ...jwk })).kid;
    if (!signer.currentKid) await signer.rotate();
    return signer;
  }

  /** Every key with its private fields, oldest first, for {@link TokenSigner.create}. Secret: keep it local. */
  exportPrivateKeys(): Record<string, unknown>[] {
    const keys = this.issuer.keys.toJSON(true) as unknown as Record<string, unknown>[];
    // The current key last, so it signs again after a reload.
    return [
      ...keys.filter((k) => k['kid'] !== this.currentKid),
      ...keys.filter((k) => k['kid'] === this.currentKid),
    ];
  }

  /** Adds a new key and signs with it from now on; returns its kid. */
  async rotate(): Promise<string> {
    const key = await this.issuer.keys.generate('RS256');
    this.currentKid = key.kid;
    this.keySet = undefined;
    return key.kid;
  }

  /** The public keys, as served on the JWKS endpoint. */
  jwks(): JSONWebKeySet {
    return { keys: this.issuer.keys.toJSON().map((key) => ({ ...key, use: 'sig' })) };
  }

  /** Signs `claims` exactly as given (RS256, header `typ`, `alg`, `kid`). */
  sign(claims: JWTPayload): Promise<string> {
    return this.issuer.buildToken({
      kid: this.currentKid,
      scopesOrTransform: (_header, payload) => {
        // Replace OAuth2Issuer's default iss/iat/nbf/exp: the caller's claims are the whole payload.
        for (const name of Object.keys(payload)) delete payload[name];
        Object.assign(payload, claims);
      },
    });
  }

  /** Verifies the signature and `exp`/`nbf` of a token this authority signed; throws jose errors otherwise. */
  async verify(token: string): Promise<JWTPayload> {
    this.keySet ??= createLocalJWKSet(this.jwks());
    const { payload } = await jwtVerify(token, this.keySet, { algorithms: ['RS256'] });
    return payload;
  }
}

/** The user a delegated token speaks for, with the tenant resolved. */
export interface TokenUser {
  readonly oid: string;
  readonly tenantId: string;
  readonly preferredUsername: string;
  readonly name: string;
}

/** `client_info` as Entra returns it: base64url JSON of uid and utid; msal-node makes `uid.utid` the homeAccountId. */
export function clientInfo(user: TokenUser): string {
  return Buffer.from(JSON.stringify({ uid: user.oid, utid: user.tenantId })).toString('base64url');
}

interface Lifetime {
  readonly issuer: string;
  readonly lifetimeSeconds: number;
  readonly notBeforeOffsetSeconds?: number;
}

function timeClaims(t: Lifetime): JWTPayload {
  const now = nowSeconds();
  const id = randomUUID();
  // Entra names its unique token id `uti`; `jti` is the registered claim generic validators read.
  return {
    iss: t.issuer,
    iat: now,
    nbf: now + (t.notBeforeOffsetSeconds ?? 0),
    exp: now + t.lifetimeSeconds,
    uti: id,
    jti: id,
  };
}

/** What every access token is issued for: its lifetime, audience and client. */
type ClientToken = Lifetime & {
  readonly audience: string;
  readonly clientId: string;
  readonly clientAuth: ClientAuthMethod;
};

/** What every access token says of its audience, lifetime and the client it was issued to. */
function clientClaims(t: ClientToken): JWTPayload {
  return {
    aud: t.audience,
    ...timeClaims(t),
    // v2 tokens name the client `azp`; `appid` is the v1 name that many validators still read.
    azp: t.clientId,
    appid: t.clientId,
    azpacr: t.clientAuth,
  };
}

/** An app-only (client credentials) access token: `idtyp: app`, `roles`, the service principal's `oid`. */
export function appAccessTokenClaims(
  t: ClientToken & { readonly tenantId: string; readonly roles: readonly string[] },
): JWTPayload {
  const servicePrincipalId = derivedGuid('service-principal', t.tenantId, t.clientId);
  return {
    ...clientClaims(t),
    idtyp: 'app',
    oid: servicePrincipalId,
    sub: servicePrincipalId,
    tid: t.tenantId,
    ...(t.roles.length > 0 ? { roles: [...t.roles] } : {}),
    ver: '2.0',
  };
}

/** A delegated access token: the user's `oid`, `tid`, `preferred_username`, `scp`. */
export function userAccessTokenClaims(
  t: ClientToken & { readonly user: TokenUser; readonly scp: readonly string[] },
): JWTPayload {
  return {
    ...clientClaims(t),
    name: t.user.name,
    oid: t.user.oid,
    preferred_username: t.user.preferredUsername,
    scp: t.scp.join(' '),
    sub: pairwiseSubject(t.user.oid, t.audience),
    tid: t.user.tenantId,
    ver: '2.0',
  };
}

/** An id_token for `clientId`, with the nonce of the sign-in if there was one. */
export function idTokenClaims(
  t: Lifetime & { readonly clientId: string; readonly user: TokenUser; readonly nonce?: string },
): JWTPayload {
  return {
    aud: t.clientId,
    ...timeClaims(t),
    name: t.user.name,
    ...(t.nonce !== undefined ? { nonce: t.nonce } : {}),
    oid: t.user.oid,
    preferred_username: t.user.preferredUsername,
    sub: pairwiseSubject(t.user.oid, t.clientId),
    tid: t.user.tenantId,
    ver: '2.0',
  };
}

/** `azpacr`: how the client authenticated. '0' public client, '1' secret, '2' certificate. */
export type ClientAuthMethod = '1' | '2';
