/**
 * Real tokens that are valid for the web API (signature, issuer, audience, expiry) but
 * carry no delegated scope of it, obtained from the local authority the way an attacker in
 * the tenant would: another app's client-credentials token for the API, one whose app role
 * is named like the API's scope, an ID token of a sign-in to the API's own app
 * registration, and a user token with an empty `scp`. The web API must answer each with
 * 403 insufficient_scope and no call to the authority.
 */
import type { LocalAuthority } from '../../local/authority';
import { httpsRequest } from './https-request';
import { registerSecret } from './secret-registry';

/** The tokens, by case name. */
export interface ScopelessTokens {
  /** Client credentials of another app in the tenant, `api://<api>/.default`: `idtyp: app`, no roles. */
  readonly appOnlyWithoutRoles: string;
  /** The same from an app holding an app role named like the API's delegated scope. */
  readonly appRoleNamedLikeScope: string;
  /** The id_token of a sign-in to the API's own app registration (`aud` = its client id). */
  readonly idToken: string;
  /** A user's access token for the API with an empty `scp`. */
  readonly withoutScp: string;
}

/** Options of {@link mintScopelessTokens}. */
export interface ScopelessTokenOptions {
  /** The web API's client id (its audience). */
  readonly apiClientId: string;
  /** The web API's client secret (to redeem the sign-in that yields the ID token). */
  readonly apiClientSecret: string;
  /** The delegated scope the API requires; the rogue app role gets this name. */
  readonly scope: string;
}

async function postForm(
  url: string,
  ca: string,
  form: Record<string, string>,
): Promise<Record<string, unknown>> {
  const reply = await httpsRequest(
    url,
    { method: 'POST', ca, headers: { 'content-type': 'application/x-www-form-urlencoded' } },
    new URLSearchParams(form).toString(),
  );
  const parsed = JSON.parse(reply.text) as Record<string, unknown>;
  if (reply.status !== 200) throw new Error(`token endpoint answered ${reply.status}`);
  return parsed;
}

/**
 * Registers two rogue apps with the authority and obtains the four tokens (six token
 * endpoint calls: read the counters after this). Every token and secret is registered
 * with the secret scan.
 */
export async function mintScopelessTokens(
  authority: LocalAuthority,
  options: ScopelessTokenOptions,
): Promise<ScopelessTokens> {
  const tokenUrl = `${authority.authority()}/oauth2/v2.0/token`;
  const plain = { clientId: '7e1a9c40-0000-4b2d-8e6f-00000000a001', clientSecret: 'rogue-app-secret-1' };
  const roled = { clientId: '7e1a9c40-0000-4b2d-8e6f-00000000a002', clientSecret: 'rogue-app-secret-2' };
  authority.registerClient(plain);
  authority.registerClient({ ...roled, roles: [options.scope] });
  for (const secret of [plain.clientSecret, roled.clientSecret, options.apiClientSecret]) {
    registerSecret('client-secret', secret);
  }

  const appToken = async (client: { clientId: string; clientSecret: string }) =>
    String(
      (
        await postForm(tokenUrl, authority.ca, {
          grant_type: 'client_credentials',
          client_id: client.clientId,
          client_secret: client.clientSecret,
          scope: `api://${options.apiClientId}/.default`,
        })
      ).access_token,
    );

  const redirectUri = 'https://web-api.example.test/signin-oidc';
  const code = authority.issueAuthCode({
    clientId: options.apiClientId,
    redirectUri,
    scopes: ['openid', 'profile'],
    user: { oid: '5c0ffee0-0000-4000-8000-0000000000d1', preferredUsername: 'victim@example.com' },
    nonce: 'nonce-of-the-sign-in',
  });
  const signIn = await postForm(tokenUrl, authority.ca, {
    grant_type: 'authorization_code',
    client_id: options.apiClientId,
    client_secret: options.apiClientSecret,
    code,
    redirect_uri: redirectUri,
    scope: 'openid profile',
  });

  const tokens: ScopelessTokens = {
    appOnlyWithoutRoles: await appToken(plain),
    appRoleNamedLikeScope: await appToken(roled),
    idToken: String(signIn.id_token),
    withoutScp: await authority.mintUserToken({
      audience: options.apiClientId,
      oid: '5c0ffee0-0000-4000-8000-0000000000d2',
      scopes: [],
    }),
  };
  for (const [, key] of SCOPELESS_CASES) registerSecret('signed-jwt', tokens[key]);
  for (const token of [String(signIn.access_token)]) {
    registerSecret('signed-jwt', token);
  }
  return tokens;
}

/** The cases as `[name, key]` pairs, for `it.each`: `tokens[key]` is the token. */
export const SCOPELESS_CASES: ReadonlyArray<readonly [string, keyof ScopelessTokens]> = [
  ['an app-only token without roles from another app of the tenant', 'appOnlyWithoutRoles'],
  ['an app-only token whose app role is named like the required scope', 'appRoleNamedLikeScope'],
  ["an ID token issued to the API's own client id", 'idToken'],
  ['a user token without scp', 'withoutScp'],
];
