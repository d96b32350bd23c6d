/**
 * The local authority driven by its real clients: msal-node's ConfidentialClientApplication
 * (over HttpsNetworkClient trusting the dev CA), @azure/identity, and plain HTTPS.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { ClientSecretCredential } from '@azure/identity';
import {
  ConfidentialClientApplication,
  InteractionRequiredAuthError,
  ServerError,
  type AccountInfo,
  type AuthenticationResult,
  type Configuration,
} from '@azure/msal-node';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import {
  DEFAULT_USER,
  GrantType,
  startLocalAuthority,
  type LocalAuthority,
  type LocalUser,
} from '../../local/authority';
import { createDevCertificate, type DevCertificate } from '../../local/tls';
import { HttpsNetworkClient } from '../../shared/cache/http';
import { ConfigurationError } from '../../shared/errors';
import { rejection } from '../support/expect-errors';
import { httpsRequest } from '../support/https-request';

const DAEMON = { clientId: 'daemon-app', clientSecret: 'daemon-secret', roles: ['Data.Read.All'] };
const WEB_API = { clientId: 'web-api', clientSecret: 'web-api-secret' };
const WEB_APP = { clientId: 'web-app', clientSecret: 'web-app-secret' };
const CERT_APP_ID = 'cert-app';
const DOWNSTREAM = 'api://downstream';
const REDIRECT_URI = 'https://app.localhost/auth/callback';
const USER: LocalUser = {
  oid: 'c5f0e6a4-2d3b-4f1e-9a8b-7c6d5e4f3a2b',
  preferredUsername: 'megan@contoso.example',
  name: 'Megan Bowen',
};

let authority: LocalAuthority;
let clientCertificate: DevCertificate;
const networks: HttpsNetworkClient[] = [];

beforeAll(async () => {
  clientCertificate = await createDevCertificate();
  authority = await startLocalAuthority({
    clients: [DAEMON, WEB_API, WEB_APP, { clientId: CERT_APP_ID, certificatePem: clientCertificate.cert }],
  });
});

afterAll(async () => {
  for (const network of networks) network.destroy();
  await authority.stop();
});

beforeEach(() => {
  authority.setFault(undefined);
  authority.setAccessTokenLifetime(3600);
  authority.counters.reset();
});

function network(): HttpsNetworkClient {
  const client = new HttpsNetworkClient({ ca: authority.ca });
  networks.push(client);
  return client;
}

type Credentials = Pick<NonNullable<Configuration['auth']>, 'clientSecret' | 'clientCertificate'>;

/** A fresh MSAL app (empty in-memory cache) configured with the authority's metadata. */
function msalApp(
  clientId: string,
  credentials: Credentials,
  withMetadata = true,
): ConfidentialClientApplication {
  const metadata = authority.msalMetadata();
  return new ConfidentialClientApplication({
    auth: {
      clientId,
      authority: authority.authority(),
      ...credentials,
      ...(withMetadata ? metadata : { knownAuthorities: metadata.knownAuthorities }),
    },
    system: { networkClient: network() },
  });
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

/** A plain HTTPS request, trusting the dev CA. */
async function call(
  method: 'GET' | 'POST',
  path: string,
  form?: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const reply = await httpsRequest(
    `${authority.url}${path}`,
    {
      method,
      ca: authority.ca,
      headers: { ...headers, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    },
    body,
  );
  return {
    status: reply.status,
    headers: reply.headers,
    body: JSON.parse(reply.text) as Record<string, unknown>,
  };
}

/** The daemon's raw client-credentials form for `scope`. */
function daemonForm(scope = `${DOWNSTREAM}/.default`): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    client_id: DAEMON.clientId,
    client_secret: DAEMON.clientSecret,
    scope,
  };
}

function tokenRequest(form: Record<string, string>, headers?: Record<string, string>): Promise<RawResponse> {
  return call('POST', `/${authority.tenantId}/oauth2/v2.0/token`, form, headers);
}

/** Verifies a token against the JWKS the authority serves, as a resource server would. */
async function verify(token: string, audience: string): Promise<JWTPayload> {
  const jwks = await call('GET', `/${authority.tenantId}/discovery/v2.0/keys`);
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks.body as never), {
    issuer: authority.issuer(),
    audience,
    algorithms: ['RS256'],
  });
  return payload;
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function refreshTokenSecrets(app: ConfidentialClientApplication): string[] {
  const cache = JSON.parse(app.getTokenCache().serialize()) as {
    RefreshToken: Record<string, { secret: string }>;
  };
  return Object.values(cache.RefreshToken).map((rt) => rt.secret);
}

describe('startLocalAuthority', () => {
  it('serves an Entra v2 OpenID configuration and a JWKS over HTTPS trusted through the dev CA', async () => {
    const config = await call('GET', `/${authority.tenantId}/v2.0/.well-known/openid-configuration`);
    const jwks = await call('GET', authority.jwksUri().slice(authority.url.length));

    expect(config.status).toBe(200);
    expect(config.body).toMatchObject({
      issuer: authority.issuer(),
      token_endpoint: `${authority.authority()}/oauth2/v2.0/token`,
      authorization_endpoint: `${authority.authority()}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${authority.authority()}/oauth2/v2.0/logout`,
      jwks_uri: authority.jwksUri(),
      response_types_supported: expect.arrayContaining(['code']) as unknown,
    });
    expect(jwks.body.keys).toEqual([
      expect.objectContaining({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) as unknown }),
    ]);
    expect(JSON.stringify(jwks.body)).not.toMatch(/"d"|"p"|"q"/);
    expect(authority.counters.metadata()).toBe(1);
    expect(authority.counters.jwks()).toBe(1);
  });

  it('serves instance discovery for the host', async () => {
    const discovery = await call('GET', '/common/discovery/instance?api-version=1.1');

    expect(discovery.body).toEqual({
      tenant_discovery_endpoint: `${authority.url}/common/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        { preferred_network: authority.host, preferred_cache: authority.host, aliases: [authority.host] },
      ],
    });
    expect(authority.counters.metadata()).toBe(1);
  });

  it('answers unknown routes with 404', async () => {
    const response = await call('GET', `/${authority.tenantId}/oauth2/v2.0/token`);

    expect(response.status).toBe(404);
  });

  it('rejects invalid options before listening', async () => {
    await expect(startLocalAuthority({ port: -1 })).rejects.toThrow(ConfigurationError);
    await expect(startLocalAuthority({ tenantId: 'a/b' })).rejects.toThrow(ConfigurationError);
    await expect(startLocalAuthority({ clients: [{ clientId: 'no-credential' }] })).rejects.toThrow(
      /needs clientSecret, certificatePem or federatedCredentials/,
    );
    await expect(startLocalAuthority({ accessTokenLifetimeSeconds: 1.5 })).rejects.toThrow(
      ConfigurationError,
    );
    expect(() => authority.setAccessTokenLifetime(0)).toThrow(ConfigurationError);
  });
});

describe('client credentials', () => {
  it('issues an app token that MSAL caches: the second call makes no request', async () => {
    const app = msalApp(DAEMON.clientId, { clientSecret: DAEMON.clientSecret });

    const first = await app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] });
    const second = await app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] });

    expect(first?.fromCache).toBe(false);
    expect(second?.fromCache).toBe(true);
    expect(second?.accessToken).toBe(first?.accessToken);
    expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);
    expect(authority.counters.token()).toBe(1);
    const claims = await verify(first!.accessToken, DOWNSTREAM);
    expect(claims).toMatchObject({
      azp: DAEMON.clientId,
      appid: DAEMON.clientId,
      azpacr: '1',
      idtyp: 'app',
      roles: DAEMON.roles,
      tid: authority.tenantId,
      ver: '2.0',
    });
    expect(claims.oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(claims.sub).toBe(claims.oid);
    expect(claims.exp! - claims.iat!).toBe(3600);
  });

  it('gives every token a unique jti and the service principal a stable oid', async () => {
    const a = await msalApp(DAEMON.clientId, {
      clientSecret: DAEMON.clientSecret,
    }).acquireTokenByClientCredential({
      scopes: [`${DOWNSTREAM}/.default`],
    });
    const b = await msalApp(DAEMON.clientId, {
      clientSecret: DAEMON.clientSecret,
    }).acquireTokenByClientCredential({
      scopes: [`${DOWNSTREAM}/.default`],
    });

    const [ca, cb] = [decodeJwt(a!.accessToken), decodeJwt(b!.accessToken)];
    expect(ca.jti).not.toBe(cb.jti);
    expect(ca.oid).toBe(cb.oid);
    expect(authority.counters.token(GrantType.ClientCredentials)).toBe(2);
  });

  it('answers Entra-shaped: no scope, refresh token or id_token', async () => {
    const response = await tokenRequest(daemonForm());

    expect(response.status).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(Object.keys(response.body).sort()).toEqual([
      'access_token',
      'expires_in',
      'ext_expires_in',
      'token_type',
    ]);
    expect(response.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600 });
  });

  it('requires a single <resource>/.default scope', async () => {
    const response = await tokenRequest(daemonForm(`${DOWNSTREAM}/Data.Read`));

    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_scope', error_codes: [1002012] });
  });

  it('authenticates a client by a certificate-signed client assertion', async () => {
    const thumbprintSha256 = new X509Certificate(clientCertificate.cert).fingerprint256.replace(/:/g, '');
    const app = msalApp(CERT_APP_ID, {
      clientCertificate: { thumbprintSha256, privateKey: clientCertificate.key },
    });

    const result = await app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] });

    expect(await verify(result!.accessToken, DOWNSTREAM)).toMatchObject({ azp: CERT_APP_ID, azpacr: '2' });
  });

  it('rejects a client assertion signed by an unregistered certificate', async () => {
    const other = await createDevCertificate();
    const thumbprintSha256 = new X509Certificate(other.cert).fingerprint256.replace(/:/g, '');
    const app = msalApp(CERT_APP_ID, { clientCertificate: { thumbprintSha256, privateKey: other.key } });

    const error = await rejection(app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] }));

    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_client', errorNo: 700027, status: 401 });
  });

  it('rejects a client assertion whose signature does not match the registered certificate', async () => {
    const other = await createDevCertificate();
    // Claims to be the registered certificate (its thumbprint) but is signed with another key.
    const thumbprintSha256 = new X509Certificate(clientCertificate.cert).fingerprint256.replace(/:/g, '');
    const app = msalApp(CERT_APP_ID, { clientCertificate: { thumbprintSha256, privateKey: other.key } });

    const error = await rejection(app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] }));

    expect(error).toMatchObject({ errorCode: 'invalid_client', errorNo: 700027 });
    expect((error as ServerError).errorMessage).toMatch(/did not match the expected signature/);
  });
});

describe('client authentication', () => {
  it('answers a wrong secret with 401 invalid_client that MSAL surfaces', async () => {
    const app = msalApp(DAEMON.clientId, { clientSecret: 'wrong' });

    const error = await rejection(app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] }));

    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_client', errorNo: 7000215, status: 401 });
    expect((error as ServerError).errorMessage).toMatch(/AADSTS7000215: Invalid client secret provided/);
  });

  it('shapes errors like Entra, echoing the client-request-id', async () => {
    const response = await tokenRequest(
      {
        grant_type: 'client_credentials',
        client_id: DAEMON.clientId,
        client_secret: 'wrong',
        scope: `${DOWNSTREAM}/.default`,
      },
      { 'client-request-id': '11111111-2222-3333-4444-555555555555' },
    );

    expect(response.status).toBe(401);
    expect(response.body).toEqual({
      error: 'invalid_client',
      error_description: expect.stringMatching(
        /^AADSTS7000215: .*\r\nTrace ID: .*\r\nCorrelation ID: 11111111-/s,
      ) as unknown,
      error_codes: [7000215],
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/) as unknown,
      trace_id: expect.any(String) as unknown,
      correlation_id: '11111111-2222-3333-4444-555555555555',
      error_uri: 'https://login.microsoftonline.com/error?code=7000215',
    });
  });

  it.each([
    ['an unknown client', { client_id: 'nobody', client_secret: 'x' }, 400, 'unauthorized_client', 700016],
    ['no credential', { client_id: DAEMON.clientId }, 401, 'invalid_client', 7000218],
    ['no client_id', { client_secret: 'x' }, 400, 'invalid_request', 900144],
  ])('refuses %s', async (_case, client, status, error, code) => {
    const response = await tokenRequest({
      grant_type: 'client_credentials',
      scope: `${DOWNSTREAM}/.default`,
      ...client,
    });

    expect(response.status).toBe(status);
    expect(response.body).toMatchObject({ error, error_codes: [code] });
  });

  it('refuses an unsupported grant type', async () => {
    const response = await tokenRequest({
      grant_type: 'password',
      client_id: DAEMON.clientId,
      client_secret: 'x',
    });

    expect(response.body).toMatchObject({ error: 'unsupported_grant_type', error_codes: [70003] });
    expect(authority.counters.token('password')).toBe(1);
  });
});

describe('on-behalf-of', () => {
  const scopes = [`${DOWNSTREAM}/Data.Read`];

  async function obo(assertion: string): Promise<AuthenticationResult | null> {
    return msalApp(WEB_API.clientId, { clientSecret: WEB_API.clientSecret }).acquireTokenOnBehalfOf({
      oboAssertion: assertion,
      scopes,
    });
  }

  it('exchanges a user token for a downstream token for the same user, cached by MSAL', async () => {
    const assertion = await authority.mintUserToken({ audience: `api://${WEB_API.clientId}`, ...USER });
    const app = msalApp(WEB_API.clientId, { clientSecret: WEB_API.clientSecret });

    const first = await app.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes });
    const second = await app.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes });

    expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
    expect(second?.fromCache).toBe(true);
    expect(first?.account?.homeAccountId).toBe(`${USER.oid}.${authority.tenantId}`);
    expect(first?.account?.username).toBe(USER.preferredUsername);
    expect(first?.idToken).toBeTruthy();
    expect(await verify(first!.accessToken, DOWNSTREAM)).toMatchObject({
      oid: USER.oid,
      tid: authority.tenantId,
      preferred_username: USER.preferredUsername,
      name: USER.name,
      scp: 'Data.Read',
      azp: WEB_API.clientId,
    });
    expect(refreshTokenSecrets(app)).toHaveLength(1);
  });

  it('accepts an assertion whose audience is the bare client id', async () => {
    const assertion = await authority.mintUserToken({ audience: WEB_API.clientId });

    const result = await obo(assertion);

    expect(decodeJwt(result!.accessToken)).toMatchObject({ oid: DEFAULT_USER.oid, aud: DOWNSTREAM });
  });

  it('rejects an expired assertion', async () => {
    const assertion = await authority.mintUserToken({
      audience: `api://${WEB_API.clientId}`,
      expiresInSeconds: -60,
    });

    const error = await rejection(obo(assertion));

    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'invalid_grant', errorNo: 500133 });
  });

  it('rejects an assertion that is not valid yet', async () => {
    const assertion = await authority.mintUserToken({
      audience: `api://${WEB_API.clientId}`,
      notBeforeOffsetSeconds: 600,
    });

    expect(await rejection(obo(assertion))).toMatchObject({ errorCode: 'invalid_grant', errorNo: 500133 });
  });

  it('rejects an assertion for another audience', async () => {
    const assertion = await authority.mintUserToken({ audience: 'api://someone-else' });

    const error = await rejection(obo(assertion));

    expect(error).toMatchObject({ errorCode: 'invalid_grant', errorNo: 500131 });
    expect((error as ServerError).errorMessage).toMatch(/api:\/\/someone-else/);
  });

  it('rejects an assertion signed by a foreign key under the authority key id', async () => {
    const genuine = await authority.mintUserToken({ audience: `api://${WEB_API.clientId}` });
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(decodeJwt(genuine))
      .setProtectedHeader(decodeProtectedHeader(genuine) as { alg: string })
      .sign(privateKey);

    const error = await rejection(obo(forged));

    expect(error).toMatchObject({ errorCode: 'invalid_grant', errorNo: 50013 });
    expect((error as ServerError).errorMessage).toMatch(/signature validation/);
  });

  it('rejects an assertion from an issuer it does not own', async () => {
    const assertion = await authority.mintUserToken({
      audience: `api://${WEB_API.clientId}`,
      issuer: `https://login.microsoftonline.com/${authority.tenantId}/v2.0`,
    });

    expect(await rejection(obo(assertion))).toMatchObject({ errorCode: 'invalid_grant', errorNo: 50013 });
  });

  it('rejects an app-only token as assertion', async () => {
    const appToken = await msalApp(DAEMON.clientId, {
      clientSecret: DAEMON.clientSecret,
    }).acquireTokenByClientCredential({
      scopes: [`api://${WEB_API.clientId}/.default`],
    });

    expect(await rejection(obo(appToken!.accessToken))).toMatchObject({
      errorCode: 'invalid_grant',
      errorNo: 50013,
    });
  });

  it('keeps accepting tokens of the previous key after a key rotation', async () => {
    const before = await authority.mintUserToken({ audience: `api://${WEB_API.clientId}` });
    const kid = await authority.rotateSigningKey();
    const after = await authority.mintUserToken({ audience: `api://${WEB_API.clientId}` });

    const jwks = await call('GET', `/${authority.tenantId}/discovery/v2.0/keys`);

    expect(decodeProtectedHeader(after).kid).toBe(kid);
    expect(decodeProtectedHeader(before).kid).not.toBe(kid);
    expect((jwks.body.keys as unknown[]).length).toBeGreaterThanOrEqual(2);
    expect(await obo(before)).toBeTruthy();
    expect(await obo(after)).toBeTruthy();
  });
});

describe('authorization code', () => {
  const scopes = [`${DOWNSTREAM}/Data.Read`];

  function webApp(): ConfidentialClientApplication {
    return msalApp(WEB_APP.clientId, { clientSecret: WEB_APP.clientSecret });
  }

  /** A code the authority issues to the web app for USER and `scopes`, with `extra` (PKCE, nonce). */
  function webAppCode(extra: { codeChallenge?: string; nonce?: string } = {}): string {
    return authority.issueAuthCode({
      clientId: WEB_APP.clientId,
      redirectUri: REDIRECT_URI,
      scopes,
      user: USER,
      ...extra,
    });
  }

  it('redeems a code with PKCE into an account with homeAccountId oid.tid', async () => {
    const { verifier, challenge } = pkcePair();
    const code = webAppCode({ codeChallenge: challenge, nonce: 'n-0S6_WzA2Mj' });

    const result = await webApp().acquireTokenByCode({
      code,
      scopes,
      redirectUri: REDIRECT_URI,
      codeVerifier: verifier,
      nonce: 'n-0S6_WzA2Mj',
    });

    expect(result.account).toMatchObject({
      homeAccountId: `${USER.oid}.${authority.tenantId}`,
      localAccountId: USER.oid,
      tenantId: authority.tenantId,
      username: USER.preferredUsername,
      name: USER.name,
    });
    expect(result.idTokenClaims).toMatchObject({
      aud: WEB_APP.clientId,
      nonce: 'n-0S6_WzA2Mj',
      iss: authority.issuer(),
    });
    expect(await verify(result.accessToken, DOWNSTREAM)).toMatchObject({ oid: USER.oid, scp: 'Data.Read' });
    expect(authority.counters.token(GrantType.AuthorizationCode)).toBe(1);
  });

  it('redeems a code only once', async () => {
    const code = webAppCode();
    await webApp().acquireTokenByCode({ code, scopes, redirectUri: REDIRECT_URI });

    const error = await rejection(webApp().acquireTokenByCode({ code, scopes, redirectUri: REDIRECT_URI }));

    expect(error).toMatchObject({ errorCode: 'invalid_grant', errorNo: 54005 });
  });

  it.each([
    ['a wrong code_verifier', { code_verifier: 'not-the-verifier' }, 501481],
    ['a missing code_verifier', { code_verifier: '' }, 501481],
    ['another redirect_uri', { redirect_uri: 'https://evil.example/cb' }, 500112],
    ['another client', { client_id: WEB_API.clientId, client_secret: WEB_API.clientSecret }, 70000],
    ['a scope beyond the consented ones', { scope: `${DOWNSTREAM}/Data.Write openid` }, 70011],
  ])('refuses a redemption with %s', async (_case, override, code) => {
    const { verifier, challenge } = pkcePair();
    const authCode = webAppCode({ codeChallenge: challenge });

    const response = await tokenRequest({
      grant_type: 'authorization_code',
      client_id: WEB_APP.clientId,
      client_secret: WEB_APP.clientSecret,
      code: authCode,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
      scope: `${scopes[0]} openid offline_access`,
      ...override,
    });

    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({
      error: expect.stringMatching(/^invalid_/) as unknown,
      error_codes: [code],
    });
  });

  it('refuses to issue a code for an unregistered client', () => {
    expect(() =>
      authority.issueAuthCode({ clientId: 'nobody', redirectUri: REDIRECT_URI, scopes, user: USER }),
    ).toThrow(ConfigurationError);
  });
});

describe('refresh token', () => {
  const scopes = [`${DOWNSTREAM}/Data.Read`];

  async function signedIn(
    user: LocalUser = USER,
  ): Promise<{ app: ConfidentialClientApplication; account: AccountInfo; first: AuthenticationResult }> {
    const app = msalApp(WEB_APP.clientId, { clientSecret: WEB_APP.clientSecret });
    const code = authority.issueAuthCode({
      clientId: WEB_APP.clientId,
      redirectUri: REDIRECT_URI,
      scopes,
      user,
    });
    const first = await app.acquireTokenByCode({ code, scopes, redirectUri: REDIRECT_URI });
    return { app, account: first.account!, first };
  }

  it('serves acquireTokenSilent with forceRefresh from the refresh token, rotating it', async () => {
    const { app, account, first } = await signedIn();
    const [oldRefreshToken] = refreshTokenSecrets(app);

    const refreshed = await app.acquireTokenSilent({ account, scopes, forceRefresh: true });

    expect(authority.counters.token(GrantType.RefreshToken)).toBe(1);
    expect(refreshed.fromCache).toBe(false);
    expect(refreshed.accessToken).not.toBe(first.accessToken);
    expect(refreshed.account?.homeAccountId).toBe(account.homeAccountId);
    expect(await verify(refreshed.accessToken, DOWNSTREAM)).toMatchObject({
      oid: USER.oid,
      scp: 'Data.Read',
    });
    const [newRefreshToken] = refreshTokenSecrets(app);
    expect(newRefreshToken).toBeDefined();
    expect(newRefreshToken).not.toBe(oldRefreshToken);
  });

  it('refreshes silently when the cached access token is about to expire', async () => {
    authority.setAccessTokenLifetime(60); // inside MSAL's 300 s renewal margin
    const { app, account, first } = await signedIn();
    authority.setAccessTokenLifetime(3600);

    const silent = await app.acquireTokenSilent({ account, scopes });

    expect(decodeJwt(first.accessToken).exp! - decodeJwt(first.accessToken).iat!).toBe(60);
    expect(silent.fromCache).toBe(false);
    expect(authority.counters.token(GrantType.RefreshToken)).toBe(1);
  });

  it('keeps the previous refresh token valid after rotation, as Entra does', async () => {
    const { app, account } = await signedIn();
    const [oldRefreshToken] = refreshTokenSecrets(app);
    await app.acquireTokenSilent({ account, scopes, forceRefresh: true });

    const response = await tokenRequest({
      grant_type: 'refresh_token',
      client_id: WEB_APP.clientId,
      client_secret: WEB_APP.clientSecret,
      refresh_token: oldRefreshToken,
      scope: `${scopes[0]} openid profile offline_access`,
      client_info: '1',
    });

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      token_type: 'Bearer',
      scope: `${scopes[0]} openid profile offline_access`,
    });
    expect(Object.keys(response.body)).toEqual(
      expect.arrayContaining([
        'access_token',
        'refresh_token',
        'id_token',
        'client_info',
        'expires_in',
        'ext_expires_in',
      ]),
    );
  });

  it('answers a revoked refresh token with an error MSAL treats as interaction required', async () => {
    const user = { ...USER, oid: 'f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b' };
    const { app, account } = await signedIn(user);

    expect(authority.revokeRefreshTokens({ oid: user.oid })).toBe(1);
    const error = await rejection(app.acquireTokenSilent({ account, scopes, forceRefresh: true }));

    expect(error).toBeInstanceOf(InteractionRequiredAuthError);
    expect(error).toMatchObject({ errorCode: 'invalid_grant', subError: 'bad_token' });
  });

  it.each([
    ['issued to another client', WEB_API, 70000],
    ['unknown', WEB_APP, 9002313],
  ])('refuses a refresh token %s', async (_case, client, code) => {
    const { app } = await signedIn();
    const [refreshToken] = refreshTokenSecrets(app);

    const response = await tokenRequest({
      grant_type: 'refresh_token',
      client_id: client.clientId,
      client_secret: client.clientSecret,
      refresh_token: code === 9002313 ? 'not-a-refresh-token' : refreshToken,
      scope: `${scopes[0]} offline_access`,
    });

    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: 'invalid_grant', error_codes: [code] });
  });
});

describe('fault switch', () => {
  it('makes MSAL surface the server error', async () => {
    authority.setFault({ status: 503 });
    const app = msalApp(DAEMON.clientId, { clientSecret: DAEMON.clientSecret });

    const error = await rejection(app.acquireTokenByClientCredential({ scopes: [`${DOWNSTREAM}/.default`] }));

    expect(error).toBeInstanceOf(ServerError);
    expect(error).toMatchObject({ errorCode: 'temporarily_unavailable', status: 503 });
    expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);
  });

  it('fails `count` requests with Retry-After, then recovers', async () => {
    authority.setFault({ status: 429, count: 1, retryAfterSeconds: 7 });
    const form = daemonForm();

    const throttled = await tokenRequest(form);
    const recovered = await tokenRequest(form);

    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('7');
    expect(throttled.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(recovered.status).toBe(200);
  });

  it('answers 500 as server_error until cleared', async () => {
    authority.setFault({ status: 500 });
    const form = daemonForm();

    const failed = await tokenRequest(form);
    authority.setFault(undefined);
    const recovered = await tokenRequest(form);

    expect(failed.status).toBe(500);
    expect(failed.body).toMatchObject({ error: 'server_error', error_codes: [50000] });
    expect(recovered.status).toBe(200);
  });
});

describe('metadata', () => {
  it('lets MSAL configured with msalMetadata() make no metadata or JWKS calls', async () => {
    const assertion = await authority.mintUserToken({ audience: `api://${WEB_API.clientId}` });

    await msalApp(DAEMON.clientId, { clientSecret: DAEMON.clientSecret }).acquireTokenByClientCredential({
      scopes: [`${DOWNSTREAM}/.default`],
    });
    await msalApp(WEB_API.clientId, { clientSecret: WEB_API.clientSecret }).acquireTokenOnBehalfOf({
      oboAssertion: assertion,
      scopes: [`${DOWNSTREAM}/.default`],
    });

    expect(authority.counters.token()).toBe(2);
    expect(authority.counters.metadata()).toBe(0);
    expect(authority.counters.jwks()).toBe(0);
  });

  it('is what MSAL fetches when it is not given the metadata', async () => {
    await msalApp(
      DAEMON.clientId,
      { clientSecret: DAEMON.clientSecret },
      false,
    ).acquireTokenByClientCredential({
      scopes: [`${DOWNSTREAM}/.default`],
    });

    expect(authority.counters.metadata()).toBe(1);
  });
});

describe('@azure/identity', () => {
  it('ClientSecretCredential gets a token with authorityHost and the dev CA', async () => {
    const credential = new ClientSecretCredential(authority.tenantId, DAEMON.clientId, DAEMON.clientSecret, {
      authorityHost: authority.url,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: authority.ca },
    });

    const token = await credential.getToken(`${DOWNSTREAM}/.default`);

    expect(await verify(token.token, DOWNSTREAM)).toMatchObject({ azp: DAEMON.clientId, idtyp: 'app' });
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now());
    expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);
  });
});

describe('local authority signing keys across a restart', () => {
  it('verifies tokens of a previous run when started with its exported keys', async () => {
    const first = await startLocalAuthority();
    const token = await first.mintUserToken({ audience: 'api://restart' });
    const keys = first.exportSigningKeys();
    await first.stop();

    const second = await startLocalAuthority({ signingKeys: keys });
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(await fetchJwks(second)), {
        audience: 'api://restart',
      });
      expect(payload.aud).toBe('api://restart');
      expect(keys.every((k) => typeof k['d'] === 'string')).toBe(true);
    } finally {
      await second.stop();
    }
  });

  it('does not verify them with fresh keys', async () => {
    const first = await startLocalAuthority();
    const token = await first.mintUserToken({ audience: 'api://restart' });
    await first.stop();
    const second = await startLocalAuthority();
    try {
      await expect(jwtVerify(token, createLocalJWKSet(await fetchJwks(second)))).rejects.toThrow();
    } finally {
      await second.stop();
    }
  });
});

async function fetchJwks(authority: LocalAuthority): Promise<JSONWebKeySet> {
  const network = new HttpsNetworkClient({ ca: authority.ca });
  try {
    return (await network.sendGetRequestAsync<JSONWebKeySet>(authority.jwksUri())).body;
  } finally {
    network.destroy();
  }
}
