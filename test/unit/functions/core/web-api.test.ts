import { createBearerValidator } from '../../../../shared/auth/bearer';
import { ConfigurationError, TokenAcquisitionError } from '../../../../shared/errors';
import { lazy, type WebApiDeps } from '../../../../functions/core/deps';
import { createDownstreamClient, type DownstreamClient } from '../../../../functions/core/downstream';
import { handleWebApi, type WebResponse } from '../../../../functions/core/web-api';
import { GrantType } from '../../../../local/authority';
import { startDownstreamApi, type DownstreamApi } from '../../../../local/downstream';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  CapturingLogger,
  DOWNSTREAM_SCOPE,
  startCacheWorld,
  type CacheWorld,
} from '../../../support/cache-harness';
import { badHttpInput, get, mintBadInputTokens, post, type Tokens } from '../../../support/bad-http-input';
import {
  mintScopelessTokens,
  SCOPELESS_CASES,
  type ScopelessTokens,
} from '../../../support/scopeless-tokens';
import { registerSecret } from '../../../support/secret-registry';
import { tokenSpellings } from '../../../support/token-spellings';

const DOWNSTREAM_AUDIENCE = 'api://downstream';
/** The delegated scope the web API requires; the local authority's user tokens carry it by default. */
const API_SCOPE = 'access_as_user';

describe('handleWebApi', () => {
  let world: CacheWorld;
  let downstream: DownstreamApi;
  let tokens: Tokens;
  let scopeless: ScopelessTokens;
  const clients: DownstreamClient[] = [];

  /** Fresh dependencies over the shared store: a new "container" each call. */
  function makeDeps(overrides: Partial<WebApiDeps> = {}): WebApiDeps & { logger: CapturingLogger } {
    const { cache } = world.instance();
    const client = createDownstreamClient({ url: downstream.url });
    clients.push(client);
    return {
      cache,
      validator: createBearerValidator({
        issuer: world.authority.issuer(),
        audience: [API_CLIENT_ID, `api://${API_CLIENT_ID}`],
        jwksUri: world.authority.jwksUri(),
        ca: world.authority.ca,
        requiredScopes: [API_SCOPE],
      }),
      downstream: client,
      scopes: [DOWNSTREAM_SCOPE],
      ...overrides,
      logger: new CapturingLogger(),
    };
  }

  function userToken(
    options: { oid?: string; audience?: string } & Record<string, unknown> = {},
  ): Promise<string> {
    return world.authority.mintUserToken({ audience: API_CLIENT_ID, ...options });
  }

  function parse(
    response: WebResponse,
  ): { error?: { code: string; message: string; requestId: string } } & Record<string, unknown> {
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    return JSON.parse(response.body) as ReturnType<typeof parse>;
  }

  /** Every token of the run must stay out of bodies, headers and log lines. */
  function expectNoToken(response: WebResponse, logger: CapturingLogger): void {
    const visible = `${response.body}\n${JSON.stringify(response.headers)}\n${logger.text()}`;
    for (const token of Object.values(tokens)) {
      expect(visible).not.toContain(token);
      expect(visible).not.toContain(token.split('.')[2] || token);
    }
  }

  beforeAll(async () => {
    world = await startCacheWorld();
    downstream = await startDownstreamApi({ authority: world.authority, audience: DOWNSTREAM_AUDIENCE });
    tokens = await mintBadInputTokens(world.authority, API_CLIENT_ID);
    scopeless = await mintScopelessTokens(world.authority, {
      apiClientId: API_CLIENT_ID,
      apiClientSecret: API_CLIENT_SECRET,
      scope: API_SCOPE,
    });
  });

  afterAll(async () => {
    for (const client of clients) client.close();
    await downstream.stop();
    await world.stop();
  });

  describe('bad input', () => {
    it('has at least 30 cases', () => {
      expect(badHttpInput.length).toBeGreaterThanOrEqual(30);
    });

    it.each(badHttpInput.map((c) => [c.name, c] as const))(
      'answers %s with a 4xx JSON error',
      async (_name, c) => {
        const deps = makeDeps();
        const tokenCalls = world.authority.counters.token();
        const downstreamCalls = downstream.calls().length;

        const response = await handleWebApi({ ...c.request(tokens), requestId: 'req-1' }, deps);

        expect(response.status).toBe(c.status);
        const body = parse(response);
        expect(body).toEqual({
          error: { code: c.code, message: expect.any(String) as string, requestId: 'req-1' },
        });
        expect(body.error?.message.length).toBeGreaterThan(10);
        if (c.wwwAuthenticate) expect(response.headers['www-authenticate']).toMatch(c.wwwAuthenticate);
        if (c.status === 401) expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
        if (c.allow) expect(response.headers.allow).toBe(c.allow);
        expectNoToken(response, deps.logger);
        expect(world.authority.counters.token()).toBe(tokenCalls);
        expect(downstream.calls()).toHaveLength(downstreamCalls);
        expect(deps.logger.lines.filter((l) => l.level === 'error')).toEqual([]);
      },
    );
  });

  describe('GET /api/downstream', () => {
    it('calls downstream on behalf of the caller, then serves the next request from the cache', async () => {
      const token = await userToken({ oid: '0a8c6f2e-1111-4a2b-9c3d-000000000001' });
      registerSecret('assertion', token);
      const deps = makeDeps();
      const obo = world.authority.counters.token(GrantType.OnBehalfOf);

      const first = await handleWebApi(get({ authorization: `Bearer ${token}` }), deps);
      const second = await handleWebApi(get({ Authorization: `bearer ${token}` }), deps);

      expect(first.status).toBe(200);
      expect(parse(first)).toMatchObject({
        fromCache: false,
        data: { ok: true, caller: { oid: '0a8c6f2e-1111-4a2b-9c3d-000000000001', appid: API_CLIENT_ID } },
        requestId: expect.any(String) as string,
      });
      expect(parse(second)).toMatchObject({ fromCache: true, data: { ok: true } });
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(obo + 1);
      expect(first.headers['cache-control']).toBe('no-store');
      expectNoToken(first, deps.logger);
      const line = deps.logger.lines.find((l) => l.message === 'request');
      expect(line?.fields).toMatchObject({
        route: 'downstream',
        status: 200,
        tokenFromCache: false,
        downstreamStatus: 200,
      });
    });

    it('serves a caller from the cache in a separately constructed instance', async () => {
      const token = await userToken({ oid: '0a8c6f2e-1111-4a2b-9c3d-000000000002' });
      registerSecret('assertion', token);
      await handleWebApi(get({ authorization: `Bearer ${token}` }), makeDeps());
      const obo = world.authority.counters.token();

      const response = await handleWebApi(get({ authorization: `Bearer ${token}` }), makeDeps());

      expect(parse(response)).toMatchObject({ fromCache: true });
      expect(world.authority.counters.token()).toBe(obo);
    });
  });

  describe('POST /api/downstream', () => {
    it('forwards the JSON object body', async () => {
      const deps = makeDeps();

      const response = await handleWebApi(post(tokens.valid, '{"query":"ünïcødé ☃","n":1}'), deps);

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ data: { ok: true, received: { query: 'ünïcødé ☃', n: 1 } } });
    });
  });

  describe('GET /healthz', () => {
    it('answers ok without a token', async () => {
      const response = await handleWebApi(get({}, '/healthz/'), makeDeps());

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ status: 'ok' });
    });
  });

  describe('downstream failures', () => {
    afterEach(() => downstream.setFault(undefined));

    it('answers 502 when the downstream API answers non-2xx', async () => {
      downstream.setFault({ status: 500 });
      const deps = makeDeps();

      const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), deps);

      expect(response.status).toBe(502);
      expect(parse(response).error).toMatchObject({
        code: 'downstream_error',
        message: 'the downstream API answered 500',
      });
      expectNoToken(response, deps.logger);
    });

    it('answers 502 when the downstream body is not JSON', async () => {
      downstream.setFault({ status: 200, garbageBody: true });

      const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), makeDeps());

      expect(response.status).toBe(502);
      expect(parse(response).error?.code).toBe('downstream_invalid_response');
    });

    it('answers 503 with Retry-After when the downstream API is unreachable', async () => {
      const gone = await startDownstreamApi({ authority: world.authority, audience: DOWNSTREAM_AUDIENCE });
      await gone.stop();
      const client = createDownstreamClient({ url: gone.url });
      clients.push(client);
      const deps = makeDeps({ downstream: client });

      const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), deps);

      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      expect(parse(response).error?.code).toBe('downstream_unavailable');
      expect(deps.logger.lines.find((l) => l.level === 'error')?.fields).toMatchObject({
        errorName: 'DownstreamError',
      });
      expectNoToken(response, deps.logger);
    });
  });

  describe('identity provider failures', () => {
    afterEach(() => world.authority.setFault(undefined));

    it('answers 503 with Retry-After when the authority is unavailable', async () => {
      const token = await userToken({ oid: '0a8c6f2e-1111-4a2b-9c3d-000000000003' });
      registerSecret('assertion', token);
      world.authority.setFault({ status: 503 });
      const deps = makeDeps();

      const response = await handleWebApi(get({ authorization: `Bearer ${token}` }), deps);

      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('5');
      expect(parse(response).error?.code).toBe('identity_provider_unavailable');
      expectNoToken(response, deps.logger);
      expect(deps.logger.text()).not.toContain(token);
    });

    it('answers 502 when the authority refuses the request', async () => {
      const token = await userToken({ oid: '0a8c6f2e-1111-4a2b-9c3d-000000000004' });
      registerSecret('assertion', token);
      const { cache } = world.instance({
        msal: {
          clientId: API_CLIENT_ID,
          authority: world.authority.authority(),
          clientSecret: `${API_CLIENT_SECRET}-wrong`,
          knownAuthorities: [world.authority.host],
          networkClient: world.network,
        },
      });
      const deps = makeDeps({ cache });

      const response = await handleWebApi(get({ authorization: `Bearer ${token}` }), deps);

      expect(response.status).toBe(502);
      expect(parse(response).error?.code).toBe('token_acquisition_failed');
      expect(parse(response).error?.message).toMatch(
        /^the identity provider refused the downstream token request \(\w+\)$/,
      );
      expect(response.body).not.toContain(`${API_CLIENT_SECRET}-wrong`);
    });

    it('maps a retryable TokenAcquisitionError to 503 and a final one to 502', async () => {
      const failing = (retryable: boolean) =>
        makeDeps({
          cache: {
            acquireTokenOnBehalfOf: () =>
              Promise.reject(
                new TokenAcquisitionError('the authority said no', {
                  providerCode: 'invalid_grant',
                  retryable,
                }),
              ),
          },
        });

      const retry = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), failing(true));
      const final = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), failing(false));

      expect([retry.status, final.status]).toEqual([503, 502]);
    });
  });

  describe('tokens that carry no delegated scope of the API', () => {
    it.each(SCOPELESS_CASES)(
      'answers %s with 403 insufficient_scope before any call to the authority',
      async (_name, key) => {
        const token = scopeless[key];
        const deps = makeDeps();
        const tokenCalls = world.authority.counters.token();
        const downstreamCalls = downstream.calls().length;

        const response = await handleWebApi(
          { ...get({ authorization: `Bearer ${token}` }), requestId: 'req-s' },
          deps,
        );

        expect(response.status).toBe(403);
        expect(response.headers['www-authenticate']).toMatch(
          /^Bearer error="insufficient_scope", error_description="[\x20-\x21\x23-\x7e]+"$/,
        );
        expect(parse(response)).toEqual({
          error: { code: 'insufficient_scope', message: expect.any(String) as string, requestId: 'req-s' },
        });
        expect(world.authority.counters.token() - tokenCalls).toBe(0);
        expect(downstream.calls()).toHaveLength(downstreamCalls);
        expect(`${response.body}${deps.logger.text()}`).not.toContain(token);
      },
    );

    it('serves a user token carrying the scope (the same route, the same validator)', async () => {
      const token = await userToken({
        oid: '0a8c6f2e-1111-4a2b-9c3d-00000000000a',
        scopes: ['Other', API_SCOPE],
      });
      registerSecret('assertion', token);

      const response = await handleWebApi(get({ authorization: `Bearer ${token}` }), makeDeps());

      expect(response.status).toBe(200);
    });
  });

  describe('one token, one spelling', () => {
    it('answers every other base64url spelling of a token 401, so the spelling set costs 1 partition and 1 token call', async () => {
      // A username whose length makes the payload 2 mod 4 long: 16 spellings of it, 16 of the signature.
      let token = '';
      for (let pad = 0; pad < 4; pad++) {
        token = await world.authority.mintUserToken({
          audience: API_CLIENT_ID,
          oid: '0a8c6f2e-1111-4a2b-9c3d-00000000000b',
          preferredUsername: `${'p'.repeat(pad)}spelling@example.com`,
        });
        if (token.split('.')[1].length % 4 === 2) break;
      }
      registerSecret('assertion', token);
      const spellings = tokenSpellings(token);
      for (const s of spellings) registerSecret('assertion', s);
      const deps = makeDeps();
      const itemsBefore = world.store.size;
      const obo = world.authority.counters.token(GrantType.OnBehalfOf);

      const statuses: number[] = [];
      for (const s of spellings) {
        statuses.push((await handleWebApi(get({ authorization: `Bearer ${s}` }), deps)).status);
      }

      console.log(
        `one token, ${spellings.length} spellings: ${statuses.filter((x) => x === 200).length} served, ${world.store.size - itemsBefore} partition(s), ${world.authority.counters.token(GrantType.OnBehalfOf) - obo} OBO call(s)`,
      );
      expect(spellings.length).toBeGreaterThanOrEqual(256);
      expect(statuses[0]).toBe(200);
      expect(statuses.slice(1).every((x) => x === 401)).toBe(true);
      expect(world.store.size - itemsBefore).toBe(1);
      expect(world.authority.counters.token(GrantType.OnBehalfOf) - obo).toBe(1);
    });
  });

  describe('incoming token checks that are not bad input', () => {
    it('answers 403 insufficient_scope when a required scope is missing', async () => {
      const deps = makeDeps({
        validator: createBearerValidator({
          issuer: world.authority.issuer(),
          audience: API_CLIENT_ID,
          jwksUri: world.authority.jwksUri(),
          ca: world.authority.ca,
          requiredScopes: ['Data.Write'],
        }),
      });

      const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), deps);

      expect(response.status).toBe(403);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer error="insufficient_scope"/);
    });

    it('answers 503 when the issuer keys cannot be fetched', async () => {
      const deps = makeDeps({
        validator: createBearerValidator({
          issuer: world.authority.issuer(),
          audience: API_CLIENT_ID,
          jwksUri: 'http://localhost:9/keys',
          requiredScopes: [API_SCOPE],
        }),
      });

      const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), deps);

      expect(response.status).toBe(503);
      expect(parse(response).error?.code).toBe('jwks_unavailable');
    });
  });

  describe('dependencies', () => {
    it('answers 500 configuration_error when the configuration is invalid, naming it only in the log', async () => {
      const factory = () =>
        Promise.reject(new ConfigurationError('DOWNSTREAM_URL', 'expected the URL, but it is not set'));
      const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);

      try {
        const response = await handleWebApi(get({ authorization: `Bearer ${tokens.valid}` }), factory);

        expect(response.status).toBe(500);
        expect(parse(response).error?.code).toBe('configuration_error');
        expect(response.body).not.toContain('DOWNSTREAM_URL');
        const logged = stderr.mock.calls.map((args) => String(args[0])).join('\n');
        expect(logged).toContain('DOWNSTREAM_URL: expected the URL');
        expect(logged).not.toContain(tokens.valid);
      } finally {
        stderr.mockRestore();
      }
    });

    it('answers 503 not_ready when they fail otherwise, and builds them again on the next request', async () => {
      let attempts = 0;
      const ready = makeDeps();
      const factory = lazy(async () => {
        attempts += 1;
        if (attempts === 1) throw new Error('Secrets Manager throttled');
        return ready;
      });

      const first = await handleWebApi(get({}, '/healthz'), factory);
      const second = await handleWebApi(get({}, '/healthz'), factory);
      const third = await handleWebApi(get({}, '/healthz'), factory);

      expect([first.status, second.status, third.status]).toEqual([503, 200, 200]);
      expect(first.headers['retry-after']).toBe('5');
      expect(attempts).toBe(2);
    });

    it('does not build them for a request the router refuses', async () => {
      let built = false;
      const factory = async () => {
        built = true;
        return makeDeps();
      };

      const response = await handleWebApi(get({}, '/nowhere'), factory);

      expect(response.status).toBe(404);
      expect(built).toBe(false);
    });
  });

  describe('the local downstream stub', () => {
    it('refuses a token not issued for it, records why, and never records the token', async () => {
      const client = createDownstreamClient({ url: downstream.url });
      clients.push(client);
      const before = downstream.calls().length;

      const wrongAudience = await client.call({ accessToken: tokens.valid });
      const unsecured = await client.call({ accessToken: tokens.algNone });
      const forged = await client.call({ accessToken: tokens.unknownKid });

      expect([wrongAudience.status, unsecured.status, forged.status]).toEqual([401, 401, 401]);
      expect(wrongAudience.body).toEqual({ ok: false, error: 'invalid_audience' });
      expect(
        downstream
          .calls()
          .slice(before)
          .map((c) => c.reason),
      ).toEqual(['invalid_audience', 'unsupported_algorithm', 'unknown_key']);
      expect(JSON.stringify(downstream.calls())).not.toContain(tokens.valid);
    });

    it('answers 403 when a required scope is missing', async () => {
      const strict = await startDownstreamApi({
        authority: world.authority,
        audience: API_CLIENT_ID,
        requiredScope: 'Data.Write',
      });
      const client = createDownstreamClient({ url: strict.url });
      try {
        const answer = await client.call({ accessToken: tokens.valid });

        expect(answer.status).toBe(403);
        expect(strict.calls()).toEqual([
          { method: 'GET', path: '/api/data', status: 403, reason: 'insufficient_scope' },
        ]);
      } finally {
        client.close();
        await strict.stop();
      }
    });
  });

  describe('unexpected errors', () => {
    it('answers a generic 500 and logs the error without its secrets', async () => {
      const deps = makeDeps({
        cache: {
          acquireTokenOnBehalfOf: () => Promise.reject(new Error(`boom while holding ${tokens.valid}`)),
        },
      });

      const response = await handleWebApi(
        get({ authorization: `Bearer ${tokens.valid}` }, '/api/downstream'),
        deps,
      );

      expect(response.status).toBe(500);
      expect(parse(response).error).toMatchObject({ code: 'internal_error' });
      expect(response.body).not.toContain('boom');
      const line = deps.logger.lines.find((l) => l.level === 'error');
      expect(line?.fields).toMatchObject({
        errorName: 'Error',
        errorMessage: 'boom while holding [redacted]',
      });
      expectNoToken(response, deps.logger);
    });
  });
});
