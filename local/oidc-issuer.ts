/**
 * An OpenID issuer for the local identity emulators (STS `GetWebIdentityToken`, the managed
 * identity endpoint): one RS256 key, `/.well-known/openid-configuration` and the JWKS, so
 * that the local authority verifies their tokens as Entra verifies a federated credential's
 * issuer: discovery, then the keys it names.
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, SignJWT, type JWK } from 'jose';
import { sendJson } from './http';

/** Path of the JWKS below the issuer URL. */
const JWKS_PATH = '/.well-known/jwks.json';

/** Signs tokens as one issuer and serves its discovery document and keys. */
export class LocalOidcIssuer {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly kid = randomUUID();
  private publicJwk: JWK | undefined;
  private discoveryCalls = 0;

  /** @param issuer the `iss` of every token, without a trailing slash */
  constructor(readonly issuer: string) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** Discovery and JWKS requests served so far. */
  get discoveryRequests(): number {
    return this.discoveryCalls;
  }

  /** Signs `claims` (RS256, `typ: JWT`, this issuer's `kid`); `iss` is set to this issuer. */
  sign(claims: Record<string, unknown>): Promise<string> {
    return new SignJWT({ ...claims, iss: this.issuer })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: this.kid })
      .sign(this.privateKey);
  }

  /** Serves the discovery routes; `false` when the request is for another route. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (req.method !== 'GET') return false;
    if (path === '/.well-known/openid-configuration') {
      this.discoveryCalls++;
      sendJson(res, 200, {
        issuer: this.issuer,
        jwks_uri: `${this.issuer}${JWKS_PATH}`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
      return true;
    }
    if (path === JWKS_PATH) {
      this.discoveryCalls++;
      this.publicJwk ??= { ...(await exportJWK(this.publicKey)), kid: this.kid, alg: 'RS256', use: 'sig' };
      sendJson(res, 200, { keys: [this.publicJwk] });
      return true;
    }
    return false;
  }
}
