/**
 * The handler tests both clouds share: the same core behind an API Gateway event and behind
 * an Azure Functions request must answer the same. Each cloud's test file builds its world
 * (its local services and how its adapter is called) and runs these cases against it.
 */
import type { DaemonSummary } from '../../functions/core/daemon';
import { DaemonRunError } from '../../functions/core/daemon';
import { lazy, type FunctionDeps } from '../../functions/core/deps';
import type { WebRequest } from '../../functions/core/web-api';
import { GrantType, type LocalAuthority } from '../../local/authority';
import type { DownstreamApi } from '../../local/downstream';
import { badHttpInput, get, mintBadInputTokens, post, type Tokens } from './bad-http-input';
import { CapturingLogger } from './cache-harness';
import { mintScopelessTokens, SCOPELESS_CASES, type ScopelessTokens } from './scopeless-tokens';
import { registerSecret } from './secret-registry';

/** A handler's answer, whichever adapter gave it. */
export interface HandlerResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** One separately constructed function instance: its own config, cache, clients and logger. */
export interface HandlerInstance {
  /** Calls the web API; `requestId` is what the platform names the invocation. */
  web(request: WebRequest, requestId?: string): Promise<HandlerResponse>;
  /** Runs the daemon once as its schedule would; `runId` is the platform's invocation id. */
  daemon(runId?: string): Promise<DaemonSummary>;
  readonly logger: CapturingLogger;
}

/** One cloud's adapter over the local services, as the cases need it. */
export interface HandlerWorld {
  readonly authority: LocalAuthority;
  readonly downstream: DownstreamApi;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tokens: Tokens;
  readonly scopeless: ScopelessTokens;
  instance(overrides?: Record<string, string | undefined>): HandlerInstance;
  /** Key-service calls that make or open a data key (KMS GenerateDataKey + Decrypt, Key Vault wrap + unwrap). */
  keyCalls(): number;
  /** Key-service calls that make a new data key. */
  keyGenerates(): number;
  /** Reads of the client secret from a secret store. */
  secretReads(): number;
  /** Token-endpoint calls an instance makes for itself at its cold start (its Key Vault token on Azure). */
  readonly coldStartTokenCalls: number;
  /** Secret-store reads an instance makes at its cold start. */
  readonly coldStartSecretReads: number;
}

/** The delegated scope the web API requires (API_REQUIRED_SCOPES); the authority's user tokens carry it by default. */
export const API_SCOPE = 'access_as_user';
/** The downstream API's audience; the handlers ask for its `.default` scope. */
export const DOWNSTREAM_AUDIENCE = 'api://downstream';

/** The web API's app registration and the local services every cloud's handlers call. */
export type HandlerApp = Pick<HandlerWorld, 'authority' | 'downstream' | 'clientId' | 'clientSecret'>;

/** The part of a world that differs by cloud: how an instance is called and what its key service counts. */
export type HandlerCloud = Omit<HandlerWorld, keyof HandlerApp | 'tokens' | 'scopeless'>;

/** The handlers' settings both clouds share: the app, its authority, the downstream and the required scope. */
export function handlerEnv(app: HandlerApp, caFile: string): Record<string, string> {
  return {
    MSAL_CLIENT_ID: app.clientId,
    MSAL_AUTHORITY: app.authority.authority(),
    MSAL_KNOWN_AUTHORITIES: app.authority.host,
    EXTRA_CA_FILE: caFile,
    DOWNSTREAM_URL: app.downstream.url,
    DOWNSTREAM_SCOPES: `${DOWNSTREAM_AUDIENCE}/.default`,
    API_REQUIRED_SCOPES: API_SCOPE,
    LOG_LEVEL: 'debug',
  };
}

/** A world for {@link describeHandlerCases}, with the bad-input and scopeless tokens minted for the app. */
export async function handlerWorld(app: HandlerApp, cloud: HandlerCloud): Promise<HandlerWorld> {
  const { authority, clientId, clientSecret } = app;
  return {
    ...app,
    ...cloud,
    tokens: await mintBadInputTokens(authority, clientId),
    scopeless: await mintScopelessTokens(authority, {
      apiClientId: clientId,
      apiClientSecret: clientSecret,
      scope: API_SCOPE,
    }),
  };
}

/** The instances one world has built, so that their downstream clients can be closed. */
export class InstanceBuilder {
  private readonly built: Array<Promise<FunctionDeps>> = [];

  /** Lazily built dependencies, as the platform builds them on the first invocation. */
  deps(create: () => Promise<FunctionDeps>): () => Promise<FunctionDeps> {
    return lazy(() => {
      const pending = create();
      this.built.push(pending);
      return pending;
    });
  }

  /** Closes every built instance's downstream client; instances whose start failed are passed over. */
  async close(): Promise<void> {
    for (const pending of this.built) {
      await pending.then(
        (deps) => deps.downstream.close(),
        () => undefined,
      );
    }
  }
}

/** Parses a handler's JSON body, checking the content type every answer carries. */
export function parse(response: HandlerResponse): Record<string, unknown> & {
  error?: { code: string; message: string; requestId: string };
} {
  expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
  return JSON.parse(response.body) as ReturnType<typeof parse>;
}

/** Runs `fn` with console.error captured, and returns what it printed. */
async function withStderr(fn: () => Promise<void>): Promise<() => string> {
  const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await fn();
    const printed = stderr.mock.calls.map((a) => String(a[0])).join('\n');
    return () => printed;
  } finally {
    stderr.mockRestore();
  }
}

/** Registers the cases every cloud's handlers must pass; `world` is read once `beforeAll` has built it. */
export function describeHandlerCases(world: () => HandlerWorld): void {
  describe('web API', () => {
    describe('bad input', () => {
      const shared = { instance: undefined as HandlerInstance | undefined };

      it.each(badHttpInput.map((c) => [c.name, c] as const))(
        'answers %s with a 4xx JSON error and logs no token',
        async (_name, c) => {
          const { authority, tokens } = world();
          shared.instance ??= world().instance();
          const { web, logger } = shared.instance;
          const tokenCalls = authority.counters.token();

          const response = await web(c.request(tokens), 'req-bad-input');

          expect(response.status).toBe(c.status);
          expect(parse(response)).toEqual({
            error: { code: c.code, message: expect.any(String) as string, requestId: 'req-bad-input' },
          });
          if (c.allow) expect(response.headers.allow).toBe(c.allow);
          if (c.status === 401) expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
          const visible = `${response.body}\n${JSON.stringify(response.headers)}\n${logger.text()}`;
          for (const token of Object.values(tokens)) expect(visible).not.toContain(token);
          expect(authority.counters.token()).toBe(tokenCalls);
        },
      );
    });

    describe('tokens that carry no delegated scope of the API', () => {
      const shared = { instance: undefined as HandlerInstance | undefined };

      it.each(SCOPELESS_CASES)(
        'answers %s with 403 insufficient_scope and no call to the authority',
        async (_name, key) => {
          const { authority, scopeless } = world();
          shared.instance ??= world().instance();
          const token = scopeless[key];
          const tokenCalls = authority.counters.token();

          const response = await shared.instance.web(get({ authorization: `Bearer ${token}` }), 'req-s');

          expect(response.status).toBe(403);
          expect(response.headers['www-authenticate']).toMatch(
            /^Bearer error="insufficient_scope", error_description="/,
          );
          expect(parse(response)).toEqual({
            error: { code: 'insufficient_scope', message: expect.any(String) as string, requestId: 'req-s' },
          });
          expect(authority.counters.token() - tokenCalls).toBe(0);
          expect(`${response.body}${shared.instance.logger.text()}`).not.toContain(token);
        },
      );

      it.each(['appOnlyWithoutRoles', 'idToken'] as const)(
        'fails the cold start without API_REQUIRED_SCOPES, naming it, and asks the authority for nothing (%s)',
        async (key) => {
          const { authority, scopeless } = world();
          const { web } = world().instance({ API_REQUIRED_SCOPES: undefined });
          const tokenCalls = authority.counters.token();
          let response: HandlerResponse | undefined;

          const stderr = await withStderr(async () => {
            response = await web(get({ authorization: `Bearer ${scopeless[key]}` }));
          });

          expect(response?.status).toBe(500);
          expect(parse(response!).error?.code).toBe('configuration_error');
          expect(stderr()).toContain('API_REQUIRED_SCOPES: expected');
          expect(authority.counters.token() - tokenCalls).toBe(0);
        },
      );

      it('with the explicit opt-out API_REQUIRED_SCOPES="*", warns at cold start, serves any delegated token and still refuses the rest', async () => {
        const { authority, clientId, scopeless } = world();
        const { web, logger } = world().instance({ API_REQUIRED_SCOPES: '*' });
        const user = await authority.mintUserToken({
          audience: clientId,
          oid: '7e3f1c2a-0003-4b5c-8d9e-0a1b2c3d4e5f',
          scopes: ['Something.Else'],
        });
        registerSecret('assertion', user);
        const obo = authority.counters.token(GrantType.OnBehalfOf);

        const served = await web(get({ authorization: `Bearer ${user}` }));
        const refused = [];
        for (const [, key] of SCOPELESS_CASES) {
          refused.push((await web(get({ authorization: `Bearer ${scopeless[key]}` }))).status);
        }

        expect(served.status).toBe(200);
        expect(refused).toEqual([403, 403, 403, 403]);
        expect(authority.counters.token(GrantType.OnBehalfOf) - obo).toBe(1);
        expect(
          logger.lines.filter((l) => l.level === 'warn' && l.fields?.['setting'] === 'API_REQUIRED_SCOPES'),
        ).toHaveLength(1);
      });
    });

    it('serves a caller from two instances: the second asks the authority only for itself and opens the data key once at its cold start', async () => {
      const w = world();
      const { authority, clientId, clientSecret } = w;
      const oid = '7e3f1c2a-0001-4b5c-8d9e-0a1b2c3d4e5f';
      const token = await authority.mintUserToken({ audience: clientId, oid });
      registerSecret('assertion', token);
      const first = w.instance();
      const second = w.instance();
      const request = () => get({ authorization: `Bearer ${token}` });
      const obo = authority.counters.token(GrantType.OnBehalfOf);
      const secretReads = w.secretReads();

      const a1 = await first.web(request());
      const keyAfterA1 = w.keyCalls();
      const a2 = await first.web(request());
      const keyAfterA2 = w.keyCalls();
      const generatesBeforeB = w.keyGenerates();
      const tokenCallsBeforeB = authority.counters.token();
      const clientCredentialsBeforeB = authority.counters.token(GrantType.ClientCredentials);
      const b1 = await second.web(request());
      const keyAfterB1 = w.keyCalls();
      const b2 = await second.web(request());

      expect([a1.status, a2.status, b1.status, b2.status]).toEqual([200, 200, 200, 200]);
      expect(parse(a1)).toMatchObject({
        fromCache: false,
        data: { ok: true, caller: { oid, appid: clientId } },
      });
      expect([parse(a2).fromCache, parse(b1).fromCache, parse(b2).fromCache]).toEqual([true, true, true]);
      expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(obo + 1);
      // The second instance never asks for the caller's token; on Azure it asks for its own Key Vault token.
      expect(authority.counters.token() - tokenCallsBeforeB).toBe(w.coldStartTokenCalls);
      expect(authority.counters.token(GrantType.ClientCredentials) - clientCredentialsBeforeB).toBe(
        w.coldStartTokenCalls,
      );
      // Warm requests make no key-service call; a cold instance opens the stored data key once.
      expect(keyAfterA2).toBe(keyAfterA1);
      expect(w.keyGenerates()).toBe(generatesBeforeB);
      expect(keyAfterB1 - keyAfterA2).toBe(1);
      expect(w.keyCalls()).toBe(keyAfterB1);
      expect(w.secretReads() - secretReads).toBe(2 * w.coldStartSecretReads);
      for (const { logger } of [first, second]) {
        expect(logger.text()).not.toContain(token);
        expect(logger.text()).not.toContain(clientSecret);
      }
      const line = second.logger.lines.find((l) => l.message === 'request');
      expect(line?.fields).toMatchObject({ route: 'downstream', status: 200, tokenFromCache: true });
    });

    it('forwards a JSON body', async () => {
      const { web } = world().instance();

      const response = await web(post(world().tokens.valid, '{"greeting":"grüezi ☃"}'));

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ data: { received: { greeting: 'grüezi ☃' } } });
    });

    it('answers healthz', async () => {
      const response = await world().instance().web(get({}, '/healthz'));

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ status: 'ok' });
    });

    it('answers 500 configuration_error when the environment is incomplete', async () => {
      const { web } = world().instance({ DOWNSTREAM_URL: undefined });
      let response: HandlerResponse | undefined;

      const stderr = await withStderr(async () => {
        response = await web(get({ authorization: `Bearer ${world().tokens.valid}` }));
      });

      expect(response?.status).toBe(500);
      expect(parse(response!).error?.code).toBe('configuration_error');
      expect(stderr()).toContain('DOWNSTREAM_URL');
    });
  });

  describe('daemon', () => {
    afterEach(() => world().downstream.setFault(undefined));

    it('gets an app token, calls downstream and logs one summary; a second instance reuses the token', async () => {
      const w = world();
      const first = w.instance();
      const second = w.instance();
      const appTokens = w.authority.counters.token(GrantType.ClientCredentials);
      const runB = '0f5e6d7c-bbbb-4222-8333-444455556666';

      const a = await first.daemon('0f5e6d7c-aaaa-4222-8333-444455556666');
      const afterA = w.authority.counters.token();
      const b = await second.daemon(runB);

      expect(a).toMatchObject({ ok: true, tokenFromCache: false, downstreamStatus: 200 });
      expect(b).toMatchObject({ ok: true, tokenFromCache: true, downstreamStatus: 200 });
      // Client credentials: the daemon's app token once, plus each instance's own token at its cold start.
      expect(w.authority.counters.token(GrantType.ClientCredentials) - appTokens).toBe(
        1 + 2 * w.coldStartTokenCalls,
      );
      expect(w.authority.counters.token() - afterA).toBe(w.coldStartTokenCalls);
      expect(w.downstream.calls().at(-1)).toMatchObject({ status: 200, appid: w.clientId });
      const summaries = second.logger.lines.filter((l) => l.message === 'daemon run');
      expect(summaries).toHaveLength(1);
      expect(summaries[0].fields).toMatchObject({
        runId: runB,
        ok: true,
        tokenFromCache: true,
        downstreamStatus: 200,
      });
      expect(typeof summaries[0].fields?.acquireMs).toBe('number');
    });

    it('fails the run, with one error line, when downstream answers non-2xx', async () => {
      const { daemon, logger } = world().instance();
      world().downstream.setFault({ status: 503 });

      await expect(daemon()).rejects.toThrow(DaemonRunError);

      const errors = logger.lines.filter((l) => l.message === 'daemon run failed');
      expect(errors).toHaveLength(1);
      expect(errors[0].fields).toMatchObject({ stage: 'downstream', downstreamStatus: 503, ok: false });
    });

    it('fails the run, with one error line, when downstream is unreachable', async () => {
      const { daemon, logger } = world().instance({ DOWNSTREAM_URL: 'http://localhost:9/api/data' });

      await expect(daemon()).rejects.toThrow(DaemonRunError);

      const errors = logger.lines.filter((l) => l.message === 'daemon run failed');
      expect(errors).toHaveLength(1);
      expect(errors[0].fields).toMatchObject({ stage: 'downstream', errorName: 'DownstreamError' });
    });
  });
}
