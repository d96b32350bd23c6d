/**
 * Fast hits, proved against msal-node itself: generated MSAL cache documents (several
 * clients, authorities and realms, scopes in several spellings, OBO assertion hashes,
 * expiries either side of the refresh margin, refresh_on, Bearer and other token types,
 * odd keys, duplicates, cache-key components) and generated requests go both to
 * FastHits and to a real ConfidentialClientApplication primed with the same document,
 * whose network refuses every call. Wherever FastHits serves, msal-node must serve the
 * same token from its cache without a network call, with an equal result.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  ConfidentialClientApplication,
  type AuthenticationResult,
  type INetworkModule,
  type NetworkResponse,
} from '@azure/msal-node';
import { FastHits, hasClaims, type FastHitRequest } from '../../../shared/cache/fast-hit';
import { parseDocument } from '../../../shared/cache/cache-document';

const CLIENT = '0b7c3f2a-1d4e-4a6b-9c8d-7e6f5a4b3c2d';
const OTHER_CLIENT = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const TENANT_A = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const TENANT_B = 'f8cdef31-a31e-4b4a-93e4-5f571e91255a';
const HOST = 'login.microsoftonline.com';
/** The public cloud's aliases as msal-node knows them: tokens under any of them match. */
const ALIASES = [HOST, 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'];
const ENVIRONMENTS = [...ALIASES, 'login.example.org'];
const SCOPES = [
  'api://downstream/.default',
  'API://Downstream/.default',
  'api://b/read',
  'api://b/write',
  'User.Read',
  'user.read',
  'Mail.Send',
  'openid',
  'offline_access',
];
const ASSERTIONS = ['assertion-one.a.b', 'assertion-two.c.d', 'assertion-three.e.f'];
const hashOf = (s: string): string => createHash('sha256').update(s).digest('base64url');

const authorityOf = (tenant: string): string => `https://${HOST}/${tenant}`;

/** A network that refuses: any call means msal-node did not serve from its cache. */
class RefusingNetwork implements INetworkModule {
  calls = 0;
  sendGetRequestAsync<T>(): Promise<NetworkResponse<T>> {
    this.calls += 1;
    return Promise.reject(new Error('the test authority must not be reached'));
  }
  sendPostRequestAsync<T>(): Promise<NetworkResponse<T>> {
    this.calls += 1;
    return Promise.reject(new Error('the test authority must not be reached'));
  }
}

function msalClient(tenant: string, network: INetworkModule): ConfidentialClientApplication {
  const authority = authorityOf(tenant);
  return new ConfidentialClientApplication({
    auth: {
      clientId: CLIENT,
      authority,
      clientSecret: 'property-test-secret',
      authorityMetadata: JSON.stringify({
        token_endpoint: `${authority}/oauth2/v2.0/token`,
        authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
        issuer: `https://${HOST}/${tenant}/v2.0`,
        jwks_uri: `${authority}/discovery/v2.0/keys`,
      }),
      cloudDiscoveryMetadata: JSON.stringify({
        tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
        metadata: [{ preferred_network: HOST, preferred_cache: 'login.windows.net', aliases: ALIASES }],
      }),
    },
    system: { networkClient: network },
  });
}

type Outcome = { served: false } | { served: true; result: AuthenticationResult };

/** msal-node's answer over `json`: served from its cache (no network call), or not. */
async function msalAnswer(request: FastHitRequest, tenant: string, json: string): Promise<Outcome> {
  const network = new RefusingNetwork();
  const cca = msalClient(tenant, network);
  cca.getTokenCache().deserialize(json);
  let result: AuthenticationResult | null;
  try {
    result =
      request.kind === 'obo'
        ? await cca.acquireTokenOnBehalfOf({ oboAssertion: request.assertion!, scopes: [...request.scopes] })
        : await cca.acquireTokenByClientCredential({ scopes: [...request.scopes] });
  } catch {
    return { served: false };
  }
  return result && result.fromCache && network.calls === 0 ? { served: true, result } : { served: false };
}

/** The result without what differs per call by design (a fresh correlation id). */
function comparable(r: AuthenticationResult): Record<string, unknown> {
  const { correlationId, ...rest } = r;
  expect(typeof correlationId).toBe('string');
  return rest;
}

const nowSeconds = (): number => Math.round(Date.now() / 1000);

interface TokenSpec {
  readonly kind: 'obo' | 'app';
  readonly client: string;
  readonly environment: string | undefined;
  readonly realm: string;
  readonly homeAccountId: string | undefined;
  readonly credentialType: string;
  readonly target: string;
  readonly assertionHash: string | undefined;
  readonly tokenType: string | undefined;
  /** Seconds from now; never within 2 s of the 300 s margin, so a clock tick cannot flip a case. */
  readonly expiresIn: number;
  readonly extended: boolean;
  readonly refreshIn: number | undefined;
  readonly components: boolean;
  /** msal's key, its upper-case spelling, one without the scopes, or one with nothing msal looks for. */
  readonly keyStyle: 'msal' | 'opaque' | 'upper' | 'noscopes';
  readonly copies: number;
  readonly secret: string;
}

/** Mostly `likely`, sometimes any of `others`: cases near a hit, where the differences matter. */
const mostly = <T>(likely: T, others: fc.Arbitrary<T>, weight = 5): fc.Arbitrary<T> =>
  fc.oneof({ weight, arbitrary: fc.constant(likely) }, { weight: 1, arbitrary: others });

/** A token shaped around `request` (each field sometimes something else). */
const tokenSpec = (request: FastHitRequest, tenant: string): fc.Arbitrary<TokenSpec> => {
  const kind = request.kind;
  return fc.record({
    kind: fc.constant(kind),
    client: mostly(CLIENT, fc.constantFrom(OTHER_CLIENT, CLIENT.toUpperCase())),
    environment: mostly<string | undefined>(
      HOST,
      fc.constantFrom<string | undefined>(...ENVIRONMENTS, undefined),
      3,
    ),
    realm: mostly(tenant, fc.constantFrom(TENANT_A, TENANT_B, TENANT_A.toUpperCase(), 'organizations'), 3),
    homeAccountId:
      kind === 'app'
        ? mostly<string | undefined>('', fc.constantFrom<string | undefined>('uid.utid', undefined))
        : fc.constantFrom<string | undefined>('uid.utid', '', undefined),
    credentialType: mostly('AccessToken', fc.constantFrom('AccessToken_With_AuthScheme', 'accesstoken')),
    target: fc.oneof(
      // The request's scopes, perhaps with others, in another order or spelling.
      {
        weight: 6,
        arbitrary: fc
          .tuple(fc.subarray(SCOPES, { maxLength: 2 }), fc.boolean(), fc.boolean())
          .map(([extra, upper, reverse]) => {
            const all = [...request.scopes, ...extra];
            const spelled = upper ? all.map((x) => x.toUpperCase()) : all;
            return (reverse ? spelled.reverse() : spelled).join(' ');
          }),
      },
      { weight: 3, arbitrary: fc.subarray(SCOPES, { minLength: 1, maxLength: 4 }).map((x) => x.join(' ')) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('', '   ', ' api://b/read  api://b/read ', 'api://b/read\tapi://b/write'),
      },
    ),
    assertionHash:
      kind === 'obo'
        ? mostly<string | undefined>(
            hashOf(request.assertion!),
            fc.constantFrom<string | undefined>(...ASSERTIONS.map(hashOf), undefined, ''),
            3,
          )
        : fc.constantFrom<string | undefined>(undefined, undefined, hashOf(ASSERTIONS[0])),
    tokenType: mostly<string | undefined>(
      'Bearer',
      fc.constantFrom<string | undefined>('bearer', 'pop', 'DPoP', 'ssh-cert', undefined),
      4,
    ),
    expiresIn: fc.oneof(
      fc.constantFrom(-3600, -1, 0, 150, 290, 297, 303, 310, 3599),
      fc.integer({ min: -7200, max: 7200 }).filter((n) => Math.abs(n - 300) > 2),
    ),
    extended: mostly(true, fc.constant(false), 20),
    refreshIn: fc.constantFrom<number | undefined>(undefined, undefined, undefined, -60, 1800),
    components: mostly(false, fc.constant(true), 8),
    keyStyle: fc.constantFrom<TokenSpec['keyStyle']>(
      'msal',
      'msal',
      'msal',
      'msal',
      'msal',
      'opaque',
      'upper',
      'noscopes',
    ),
    copies: mostly(1, fc.constant(2), 8),
    secret: fc.constantFrom('s1', 's2', 's3', 's4', 's5', 's6'),
  });
};

function entityOf(t: TokenSpec, index: number, now: number): Array<[string, Record<string, unknown>]> {
  const secret = `${t.secret}-${index}-access-token-value`;
  const entity: Record<string, unknown> = {
    home_account_id: t.homeAccountId,
    environment: t.environment,
    credential_type: t.credentialType,
    client_id: t.client,
    secret,
    realm: t.realm,
    target: t.target,
    cached_at: String(now - 60),
    expires_on: String(now + t.expiresIn),
    ...(t.extended ? { extended_expires_on: String(now + t.expiresIn + 3600) } : {}),
    ...(t.refreshIn !== undefined ? { refresh_on: String(now + t.refreshIn) } : {}),
    ...(t.tokenType !== undefined ? { token_type: t.tokenType } : {}),
    ...(t.assertionHash !== undefined ? { userAssertionHash: t.assertionHash } : {}),
    ...(t.components ? { additionalCacheKeyComponents: { client_claims: '{"xms_cc":["cp1"]}' } } : {}),
  };
  const msalKey = [
    t.homeAccountId ?? '',
    t.environment ?? '',
    t.credentialType,
    t.client,
    t.realm,
    t.target,
    '',
    '',
  ]
    .join('-')
    .toLowerCase();
  const key =
    t.keyStyle === 'msal'
      ? msalKey
      : t.keyStyle === 'upper'
        ? msalKey.toUpperCase()
        : t.keyStyle === 'noscopes'
          ? `${t.client}-${t.realm}-token-${index}`
          : `opaque-${index}`;
  const out: Array<[string, Record<string, unknown>]> = [[key, entity]];
  for (let c = 1; c < t.copies; c++)
    out.push([`${key}-copy${c}`, { ...entity, secret: `${secret}-copy${c}` }]);
  return out;
}

/** A whole document: the tokens, plus an account and id token as an OBO response leaves them. */
function documentOf(tokens: readonly TokenSpec[], withAccount: boolean): string {
  const now = nowSeconds();
  const accessTokens = Object.fromEntries(tokens.flatMap((t, i) => entityOf(t, i, now)));
  const doc: Record<string, Record<string, unknown>> = {
    Account: {},
    IdToken: {},
    AccessToken: accessTokens,
    RefreshToken: {},
    AppMetadata: {},
  };
  if (withAccount) {
    doc.Account[`uid.utid-${HOST}-${TENANT_A}`] = {
      home_account_id: 'uid.utid',
      environment: HOST,
      realm: TENANT_A,
      local_account_id: 'uid',
      username: 'someone@example.com',
      authority_type: 'MSSTS',
      tenantProfiles: [
        JSON.stringify({ tenantId: TENANT_A, localAccountId: 'uid', name: '', isHomeTenant: true }),
      ],
    };
    doc.IdToken[`uid.utid-${HOST}-idtoken-${CLIENT}-${TENANT_A}---`] = {
      home_account_id: 'uid.utid',
      environment: HOST,
      credential_type: 'IdToken',
      client_id: CLIENT,
      secret: 'eyJhbGciOiJub25lIn0.eyJvaWQiOiJ1aWQiLCJ0aWQiOiJ1dGlkIn0.',
      realm: TENANT_A,
    };
  }
  return JSON.stringify(doc);
}

const requestOf = (kind: 'obo' | 'app'): fc.Arbitrary<{ request: FastHitRequest; tenant: string }> =>
  fc
    .record({
      // Requests rarely name an OIDC scope (msal-node adds and strips those itself).
      scopes: fc.oneof(
        { weight: 9, arbitrary: fc.subarray(SCOPES.slice(0, 7), { minLength: 1, maxLength: 3 }) },
        { weight: 1, arbitrary: fc.subarray(SCOPES, { minLength: 1, maxLength: 3 }) },
      ),
      assertion: fc.constantFrom(...ASSERTIONS),
      tenant: fc.constantFrom(TENANT_A, TENANT_A, TENANT_B),
    })
    .map(({ scopes, assertion, tenant }) => ({
      request: kind === 'obo' ? { kind, scopes, assertion } : { kind, scopes },
      tenant,
    }));

/** Runs msal-node once over a plain document and lets FastHits learn from its result. */
async function teach(
  fast: FastHits,
  request: FastHitRequest,
  tenant: string,
  environment: string,
): Promise<void> {
  const json = documentOf([accessTokenFor(request, tenant, environment, 'seed')], false);
  const answer = await msalAnswer(request, tenant, json);
  if (!answer.served) throw new Error('the seed document was not served by msal-node');
  fast.learn(request, authorityOf(tenant), 'seed', { json, version: environment }, answer.result);
}

/** One plain access token (an hour, msal-node's own key style) answering `request` in `tenant`. */
function accessTokenFor(
  request: FastHitRequest,
  tenant: string,
  environment: string,
  secret: string,
): TokenSpec {
  return {
    kind: request.kind,
    client: CLIENT,
    environment,
    realm: tenant,
    homeAccountId: request.kind === 'app' ? '' : 'uid.utid',
    credentialType: 'AccessToken',
    target: request.scopes.join(' '),
    assertionHash: request.kind === 'obo' ? hashOf(request.assertion!) : undefined,
    tokenType: 'Bearer',
    expiresIn: 3600,
    extended: true,
    refreshIn: undefined,
    components: false,
    keyStyle: 'msal',
    copies: 1,
    secret,
  };
}

async function taughtFastHits(): Promise<FastHits> {
  const fast = new FastHits(CLIENT);
  const obo: FastHitRequest = { kind: 'obo', scopes: ['api://b/read'], assertion: ASSERTIONS[0] };
  const app: FastHitRequest = { kind: 'app', scopes: ['api://b/read'] };
  for (const tenant of [TENANT_A, TENANT_B]) await teach(fast, obo, tenant, HOST);
  // App tokens: tenant A seen under two aliases, tenant B under one; the others stay unknown.
  await teach(fast, app, TENANT_A, HOST);
  await teach(fast, app, TENANT_A, 'login.windows.net');
  await teach(fast, app, TENANT_B, HOST);
  return fast;
}

describe('FastHits against msal-node', () => {
  async function differential(
    kind: 'obo' | 'app',
    numRuns: number,
  ): Promise<{ cases: number; msalServed: number; fastServed: number }> {
    const fast = await taughtFastHits();
    const local = { cases: 0, msalServed: 0, fastServed: 0 };
    let version = 0;
    await fc.assert(
      fc.asyncProperty(
        requestOf(kind).chain(({ request, tenant }) =>
          fc.record({
            request: fc.constant(request),
            tenant: fc.constant(tenant),
            tokens: fc.array(tokenSpec(request, tenant), { minLength: 1, maxLength: 4 }),
            withAccount: fc.boolean(),
          }),
        ),
        async ({ request, tenant, tokens, withAccount }) => {
          const json = documentOf(tokens, withAccount);
          const served = fast.serve(request, authorityOf(tenant), 'key', {
            json,
            version: String(++version),
          });
          // The session's parsed document in place of a second parse: the same answer.
          const fromDoc = fast.serve(request, authorityOf(tenant), 'key-doc', {
            json,
            version: String(version),
            doc: parseDocument(json),
          });
          expect(fromDoc === undefined).toBe(served === undefined);
          if (served && fromDoc) expect(comparable(fromDoc)).toEqual(comparable(served));
          const msal = await msalAnswer(request, tenant, json);
          local.cases += 1;
          if (msal.served) local.msalServed += 1;
          if (!served) return;
          local.fastServed += 1;
          // Served here: msal-node served the very same result from its cache.
          expect(msal.served).toBe(true);
          if (msal.served) expect(comparable(served)).toEqual(comparable(msal.result));
        },
      ),
      { numRuns },
    );
    return local;
  }

  /** One differential test: `runs` generated cases of `kind`, with a floor on what each side serves. */
  function differentialCase(
    label: string,
    kind: 'obo' | 'app',
    runs: number,
    floors: { msalServed: number; fastShare: number },
    timeoutMs: number,
  ): void {
    it(
      `${label}: whatever FastHits serves, msal-node serves identically (${runs.toLocaleString('en-US')} generated cases)`,
      async () => {
        const c = await differential(kind, runs);
        expect(c.cases).toBe(runs);
        // Not vacuous: both sides serve a real share of the cases.
        expect(c.msalServed).toBeGreaterThan(floors.msalServed);
        expect(c.fastServed).toBeGreaterThan(floors.fastShare * c.msalServed);
      },
      timeoutMs,
    );
  }

  differentialCase('OBO', 'obo', 2000, { msalServed: 100, fastShare: 0.5 }, 240_000);
  differentialCase('app', 'app', 500, { msalServed: 25, fastShare: 0.3 }, 120_000);

  it('serves nothing before msal-node has answered for the authority', async () => {
    const fast = new FastHits(CLIENT);
    const request: FastHitRequest = { kind: 'obo', scopes: ['api://b/read'], assertion: ASSERTIONS[0] };
    const json = documentOf([accessTokenFor(request, TENANT_A, HOST, 's1')], false);
    expect(fast.serve(request, authorityOf(TENANT_A), 'k', { json, version: '1' })).toBeUndefined();
    const msal = await msalAnswer(request, TENANT_A, json);
    expect(msal.served).toBe(true);
    if (msal.served) fast.learn(request, authorityOf(TENANT_A), 'k', { json, version: '1' }, msal.result);
    const served = fast.serve(request, authorityOf(TENANT_A), 'k', { json, version: '1' });
    expect(served?.accessToken).toBe(msal.served ? msal.result.accessToken : 'unreachable');
    // Claims or forceRefresh: always msal-node's.
    expect(
      fast.serve({ ...request, claims: '{"access_token":{}}' }, authorityOf(TENANT_A), 'k', {
        json,
        version: '1',
      }),
    ).toBeUndefined();
    expect(
      fast.serve({ ...request, forceRefresh: true }, authorityOf(TENANT_A), 'k', { json, version: '1' }),
    ).toBeUndefined();
    expect(hasClaims({ claimsFromClient: 'x' })).toBe(true);
    expect(hasClaims({ scopes: ['a'], claims: undefined })).toBe(false);
  });
});
