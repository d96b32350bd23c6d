/**
 * The bad-HTTP-input table (issue 7, item 4) every web-API handler must survive with a 4xx
 * JSON error: transport-neutral requests, turned into API Gateway events or Azure
 * HttpRequests by each handler test. Tokens come from the local authority (or are forged
 * against its real published key) and are registered with the secret scan.
 */
import { createPublicKey } from 'node:crypto';
import { exportSPKI, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose';
import { WebApiLimits, type WebRequest } from '../../functions/core/web-api';
import type { LocalAuthority } from '../../local/authority';
import { httpsRequest } from './https-request';
import { registerSecret } from './secret-registry';

/** The public signing keys the local authority serves. */
async function fetchJwks(url: string, ca: string): Promise<{ keys: JWK[] }> {
  return JSON.parse((await httpsRequest(url, { ca })).text) as { keys: JWK[] };
}

/** Tokens for the bad-input table; all minted once. */
export type Tokens = Record<
  | 'valid'
  | 'expired'
  | 'notYetValid'
  | 'wrongAudience'
  | 'wrongIssuer'
  | 'otherTenant'
  | 'hs256WithPublicKey'
  | 'algNone'
  | 'rs384'
  | 'unknownKid'
  | 'tampered',
  string
>;

export interface BadInputCase {
  readonly name: string;
  /** The request, given the minted tokens. */
  readonly request: (t: Tokens) => WebRequest;
  readonly status: number;
  readonly code: string;
  readonly wwwAuthenticate?: RegExp;
  readonly allow?: string;
}

export const get = (headers: WebRequest['headers'] = {}, path = '/api/downstream'): WebRequest => ({
  method: 'GET',
  path,
  headers,
});
export const post = (token: string, body: string, contentType = 'application/json'): WebRequest => ({
  method: 'POST',
  path: '/api/downstream',
  headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
  body,
});
/** A challenge naming the token invalid, with a printable description. */
const invalidToken = /^Bearer error="invalid_token", error_description="[\x20-\x21\x23-\x7e]+"$/;

/** A request whose Authorization header is `authorization`, refused 401 with `code` (and the challenge `wwwAuthenticate`). */
function withAuthorization(
  name: string,
  authorization: string | ((t: Tokens) => string),
  code: string,
  wwwAuthenticate?: RegExp,
): BadInputCase {
  return {
    name,
    request: (t) =>
      get({ authorization: typeof authorization === 'string' ? authorization : authorization(t) }),
    status: 401,
    code,
    ...(wwwAuthenticate ? { wwwAuthenticate } : {}),
  };
}

/** A request bearing the minted token `token`, refused 401 with `code` (and the challenge `wwwAuthenticate`). */
function withToken(name: string, token: keyof Tokens, code: string, wwwAuthenticate?: RegExp): BadInputCase {
  return withAuthorization(name, (t) => `Bearer ${t[token]}`, code, wwwAuthenticate);
}

/** At least 30 requests and the status and error code each must get. */
export const badHttpInput: readonly BadInputCase[] = [
  {
    name: 'no Authorization header',
    request: () => get(),
    status: 401,
    code: 'missing_token',
    wwwAuthenticate: /^Bearer$/,
  },
  withAuthorization('an empty Authorization header', '', 'missing_token'),
  withAuthorization('the Bearer scheme without a token', 'Bearer', 'missing_token'),
  {
    name: 'Authorization repeated (kept apart)',
    request: (t) => get({ authorization: [`Bearer ${t.valid}`, `Bearer ${t.valid}`] }),
    status: 401,
    code: 'multiple_tokens',
    wwwAuthenticate: /^Bearer error="invalid_request"/,
  },
  {
    name: 'Authorization repeated (joined with a comma)',
    request: (t) => get({ authorization: `Bearer ${t.valid}, Bearer ${t.valid}` }),
    status: 401,
    code: 'multiple_tokens',
  },
  {
    name: 'Authorization under two spellings of its name',
    request: (t) => get({ Authorization: `Bearer ${t.valid}`, authorization: `Bearer ${t.valid}` }),
    status: 401,
    code: 'multiple_tokens',
  },
  withAuthorization('the Basic scheme', 'Basic dXNlcjpwYXNz', 'invalid_scheme', /^Bearer$/),
  {
    name: 'a token without a scheme',
    request: (t) => get({ authorization: t.valid }),
    status: 401,
    code: 'invalid_scheme',
  },
  {
    name: 'a token followed by junk',
    request: (t) => get({ authorization: `Bearer ${t.valid} junk` }),
    status: 401,
    code: 'invalid_scheme',
  },
  withAuthorization('a one-segment token', 'Bearer abcdef', 'malformed_token', invalidToken),
  withAuthorization('a two-segment token', 'Bearer abc.def', 'malformed_token'),
  withAuthorization('junk unicode as the token', 'Bearer ☃.💥.\u0000', 'malformed_token'),
  withAuthorization('a token with a non-JSON header', 'Bearer bm90IGpzb24.e30.c2ln', 'malformed_token'),
  withToken('alg none', 'algNone', 'unsupported_algorithm', invalidToken),
  withToken('HS256 signed with the public key', 'hs256WithPublicKey', 'unsupported_algorithm'),
  withToken('RS384, outside the allow-list', 'rs384', 'unsupported_algorithm'),
  withToken('an expired token', 'expired', 'expired', invalidToken),
  withToken('nbf in the future', 'notYetValid', 'not_yet_valid'),
  withToken('a token for another audience', 'wrongAudience', 'invalid_audience'),
  withToken('a token of another issuer', 'wrongIssuer', 'invalid_issuer'),
  withToken('a token of another tenant', 'otherTenant', 'invalid_issuer'),
  withToken('a token signed by an unknown key', 'unknownKid', 'unknown_key'),
  withToken('a token edited after signing', 'tampered', 'invalid_signature'),
  {
    name: 'a token over 16 KiB',
    request: () => get({ authorization: `Bearer ${'a'.repeat(17_000)}.b.c` }),
    status: 401,
    code: 'oversize_token',
  },
  {
    name: 'headers over the limit',
    request: (t) =>
      get({ authorization: `Bearer ${t.valid}`, 'x-padding': 'p'.repeat(WebApiLimits.maxHeaderBytes) }),
    status: 431,
    code: 'headers_too_large',
  },
  {
    name: 'a body over the limit',
    request: (t) => post(t.valid, JSON.stringify({ pad: 'p'.repeat(WebApiLimits.maxBodyBytes) })),
    status: 413,
    code: 'payload_too_large',
  },
  {
    name: 'invalid JSON',
    request: (t) => post(t.valid, '{"unterminated": '),
    status: 400,
    code: 'invalid_json',
  },
  {
    name: 'junk unicode as the JSON body',
    request: (t) => post(t.valid, '\u0000\ud800☃{'),
    status: 400,
    code: 'invalid_json',
  },
  { name: 'an empty JSON body', request: (t) => post(t.valid, ''), status: 400, code: 'invalid_json' },
  { name: 'a JSON array body', request: (t) => post(t.valid, '[1,2]'), status: 400, code: 'invalid_body' },
  { name: 'a JSON null body', request: (t) => post(t.valid, 'null'), status: 400, code: 'invalid_body' },
  {
    name: 'a body that is not JSON',
    request: (t) => post(t.valid, 'a=b', 'application/x-www-form-urlencoded'),
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'an unknown route',
    request: (t) => get({ authorization: `Bearer ${t.valid}` }, '/api/other'),
    status: 404,
    code: 'not_found',
  },
  { name: 'the root path', request: () => get({}, '/'), status: 404, code: 'not_found' },
  { name: 'an empty path', request: () => get({}, ''), status: 404, code: 'not_found' },
  {
    name: 'a path of junk unicode',
    request: () => get({}, '/api/☃/\u0000/%ZZ'),
    status: 404,
    code: 'not_found',
  },
  {
    name: 'DELETE on the API route',
    request: (t) => ({
      method: 'DELETE',
      path: '/api/downstream',
      headers: { authorization: `Bearer ${t.valid}` },
    }),
    status: 405,
    code: 'method_not_allowed',
    allow: 'GET, POST',
  },
  {
    name: 'an invented method',
    request: () => ({ method: 'BREW', path: '/api/downstream', headers: {} }),
    status: 405,
    code: 'method_not_allowed',
    allow: 'GET, POST',
  },
  {
    name: 'PUT on the health route',
    request: () => ({ method: 'PUT', path: '/healthz', headers: {} }),
    status: 405,
    code: 'method_not_allowed',
    allow: 'GET',
  },
];

/**
 * Mints one token per bad-input case for a web API whose audience is `audience`, plus a
 * valid one, and registers them all with the secret scan.
 */
export async function mintBadInputTokens(authority: LocalAuthority, audience: string): Promise<Tokens> {
  const userToken = (options: Record<string, unknown> = {}) =>
    authority.mintUserToken({ audience, ...options });
  const jwks = await fetchJwks(authority.jwksUri(), authority.ca);
  const published = jwks.keys[0];
  const publicPem = await exportSPKI((await importJWK(published, 'RS256')) as CryptoKey);
  const rogue = await generateKeyPair('RS256', { extractable: true });
  const rogue384 = await generateKeyPair('RS384', { extractable: true });
  const valid = await userToken();
  const [header, payload, signature] = valid.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const tokens: Tokens = {
    valid,
    expired: await userToken({ expiresInSeconds: -3600 }),
    notYetValid: await userToken({ notBeforeOffsetSeconds: 3600 }),
    wrongAudience: await userToken({ audience: 'api://someone-else' }),
    wrongIssuer: await userToken({ issuer: 'https://evil.example.test/v2.0' }),
    otherTenant: await userToken({ tenantId: '11111111-2222-4333-8444-555555555555' }),
    hs256WithPublicKey: await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: published.kid, typ: 'JWT' })
      .sign(new TextEncoder().encode(publicPem)),
    algNone: `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`,
    rs384: await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS384', kid: published.kid })
      .sign(rogue384.privateKey),
    unknownKid: await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'rogue-key' })
      .sign(rogue.privateKey),
    tampered: `${header}.${Buffer.from(JSON.stringify({ ...claims, oid: 'someone-else' })).toString('base64url')}.${signature}`,
  };
  for (const token of Object.values(tokens)) registerSecret('signed-jwt', token);
  if (createPublicKey(publicPem).asymmetricKeyType !== 'rsa') throw new Error('the JWKS holds no RSA key');
  return tokens;
}
