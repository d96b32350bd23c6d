import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  HttpRequest,
  InvocationContext,
  type HttpRequestInit,
  type HttpResponseInit,
  type Timer,
} from '@azure/functions';
import { createDaemonHandler, DAEMON_SCHEDULE } from '../../functions/azure/daemon';
import { createWebApiHandler } from '../../functions/azure/web-api';
import { DaemonRunError } from '../../functions/core/daemon';
import { createDeps } from '../../functions/azure/deps';
import { lazy, type FunctionDeps } from '../../functions/core/deps';
import { WebApiLimits, type WebRequest } from '../../functions/core/web-api';
import { GrantType, startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startDownstreamApi, type DownstreamApi } from '../../local/downstream';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { badHttpInput, get, mintBadInputTokens, post, type Tokens } from '../support/bad-http-input';
import { CapturingLogger } from '../support/cache-harness';
import { mintScopelessTokens, SCOPELESS_CASES, type ScopelessTokens } from '../support/scopeless-tokens';
import { registerSecret } from '../support/secret-registry';
import { createDevCertificate } from '../../local/tls';

const CLIENT_ID = '8a4e2b17-6c3d-4f90-b5a2-1e7d9c0f3b64';
const CLIENT_SECRET = 'azure-handler-test-client-secret';
const DOWNSTREAM_AUDIENCE = 'api://downstream';
/** The delegated scope the web API requires (API_REQUIRED_SCOPES); the authority's user tokens carry it by default. */
const API_SCOPE = 'access_as_user';
const INVOCATION_ID = '0f5e6d7c-1111-4222-8333-444455556666';
const RUN_A = '0f5e6d7c-aaaa-4222-8333-444455556666';
const RUN_B = '0f5e6d7c-bbbb-4222-8333-444455556666';

/**
 * An HttpRequest as the Functions host delivers it: header values are bytes read as
 * Latin-1 (a Fetch Headers object refuses anything wider, and NUL, CR and LF cannot cross
 * the wire), repeated headers joined with ", ".
 */
function functionsRequest(request: WebRequest): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const joined = (typeof value === 'string' ? [value] : value)
      .map((v) =>
        Buffer.from(v, 'utf8')
          .toString('latin1')
          .replace(/[\0\r\n]/g, ' '),
      )
      .join(', ');
    headers[key] = headers[key] === undefined ? joined : `${headers[key]}, ${joined}`;
  }
  return new HttpRequest({
    method: request.method,
    url: `http://localhost:7071${request.path}`,
    headers,
    ...(request.body !== undefined ? { body: { string: request.body } } : {}),
  });
}

/** A body the host streams in: `total` bytes in 16 KiB chunks, counting what the handler pulls. */
function countingBody(total: number): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const stream = Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += chunk.length) {
        pulled += Math.min(chunk.length, total - sent);
        yield chunk.subarray(0, Math.min(chunk.length, total - sent));
      }
    })(),
  );
  return { stream, pulled: () => pulled };
}

/**
 * An HttpRequest with a streamed body, built as the host's streaming path builds it
 * (`createStreamRequest` in @azure/functions: a Fetch Request over the incoming stream,
 * `duplex: 'half'`); `nativeRequest` is that path's (untyped) init field.
 */
function streamedRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Readable,
): HttpRequest {
  const nativeRequest = new Request(`http://localhost:7071${path}`, {
    method,
    headers,
    body: Readable.toWeb(body) as ReadableStream,
    duplex: 'half',
  });
  return new HttpRequest({ nativeRequest } as HttpRequestInit);
}

function invocation(functionName: string, invocationId: string = randomUUID()): InvocationContext {
  return new InvocationContext({ invocationId, functionName, logHandler: () => undefined });
}

function timer(): Timer {
  const now = new Date();
  return {
    isPastDue: false,
    schedule: { adjustForDST: true },
    scheduleStatus: {
      last: new Date(now.getTime() - 15 * 60_000).toISOString(),
      next: new Date(now.getTime() + 15 * 60_000).toISOString(),
      lastUpdated: now.toISOString(),
    },
  };
}

function parse(response: HttpResponseInit): Record<string, unknown> & {
  error?: { code: string; message: string; requestId: string };
} {
  const headers = response.headers as Record<string, string>;
  expect(headers['content-type']).toBe('application/json; charset=utf-8');
  expect(typeof response.body).toBe('string');
  return JSON.parse(response.body as string) as ReturnType<typeof parse>;
}

describe('Azure Functions handlers', () => {
  let authority: LocalAuthority;
  let cosmos: LocalCosmos;
  let vault: LocalKeyVault;
  let downstream: DownstreamApi;
  let tokens: Tokens;
  let scopeless: ScopelessTokens;
  let dir: string;
  let env: Record<string, string>;
  const built: Array<Promise<FunctionDeps>> = [];

  /** A separately constructed Function App instance: its own config, cache, clients and logger. */
  function instance(overrides: Record<string, string | undefined> = {}) {
    const logger = new CapturingLogger();
    const deps = lazy(() => {
      const pending = createDeps({ env: { ...env, ...overrides }, logger });
      built.push(pending);
      return pending;
    });
    return { webApi: createWebApiHandler(deps), daemon: createDaemonHandler(deps), logger };
  }

  const vaultCalls = () => vault.counters.calls('wrapKey') + vault.counters.calls('unwrapKey');

  beforeAll(async () => {
    // One certificate for every local HTTPS server, as the local stack does: OpenSSL looks a
    // self-signed certificate up by subject, so two CN=localhost CAs in one trust list collide.
    const certificate = await createDevCertificate();
    authority = await startLocalAuthority({
      certificate,
      clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    });
    registerSecret('client-secret', CLIENT_SECRET);
    [cosmos, vault, downstream] = await Promise.all([
      startLocalCosmos(),
      startLocalKeyVault({ certificate, authorityUrl: authority.url, tenantId: authority.tenantId }),
      startDownstreamApi({ authority, audience: DOWNSTREAM_AUDIENCE }),
    ]);
    const key = await vault.createKey('token-cache');
    const signingKey = await vault.createKey('token-cache-sign', { kty: 'EC' });
    dir = mkdtempSync(join(tmpdir(), 'azure-handlers-'));
    writeFileSync(join(dir, 'ca.pem'), certificate.cert);
    env = {
      MSAL_CLIENT_ID: CLIENT_ID,
      MSAL_AUTHORITY: authority.authority(),
      MSAL_KNOWN_AUTHORITIES: authority.host,
      MSAL_CLIENT_SECRET: CLIENT_SECRET,
      EXTRA_CA_FILE: join(dir, 'ca.pem'),
      TOKEN_CACHE_COSMOS_ENDPOINT: cosmos.endpoint,
      TOKEN_CACHE_COSMOS_DATABASE: cosmos.databaseId,
      TOKEN_CACHE_COSMOS_CONTAINER: cosmos.containerId,
      TOKEN_CACHE_COSMOS_KEY: cosmos.key,
      TOKEN_CACHE_KEYVAULT_KEY_ID: `${vault.vaultUrl}/keys/${key.name}`,
      TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: `${vault.vaultUrl}/keys/${signingKey.name}`,
      TOKEN_CACHE_AZURE_CREDENTIAL: 'app',
      DOWNSTREAM_URL: downstream.url,
      DOWNSTREAM_SCOPES: `${DOWNSTREAM_AUDIENCE}/.default`,
      API_REQUIRED_SCOPES: API_SCOPE,
      LOG_LEVEL: 'debug',
    };
    tokens = await mintBadInputTokens(authority, CLIENT_ID);
    scopeless = await mintScopelessTokens(authority, {
      apiClientId: CLIENT_ID,
      apiClientSecret: CLIENT_SECRET,
      scope: API_SCOPE,
    });
  });

  afterAll(async () => {
    for (const pending of built) {
      await pending.then(
        (deps) => deps.downstream.close(),
        () => undefined,
      );
    }
    await Promise.all([downstream.stop(), vault.stop(), cosmos.stop(), authority.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('web API', () => {
    describe('bad input', () => {
      const shared = { app: undefined as ReturnType<typeof instance> | undefined };

      it.each(badHttpInput.map((c) => [c.name, c] as const))(
        'answers %s with a 4xx JSON error and logs no token',
        async (_name, c) => {
          shared.app ??= instance();
          const { webApi, logger } = shared.app;
          const tokenCalls = authority.counters.token();

          const response = await webApi(
            functionsRequest(c.request(tokens)),
            invocation('web-api', INVOCATION_ID),
          );

          expect(response.status).toBe(c.status);
          expect(parse(response)).toEqual({
            error: { code: c.code, message: expect.any(String) as string, requestId: INVOCATION_ID },
          });
          const headers = response.headers as Record<string, string>;
          if (c.allow) expect(headers.allow).toBe(c.allow);
          if (c.status === 401) expect(headers['www-authenticate']).toMatch(/^Bearer/);
          const visible = `${response.body as string}\n${JSON.stringify(headers)}\n${logger.text()}`;
          for (const token of Object.values(tokens)) expect(visible).not.toContain(token);
          expect(authority.counters.token()).toBe(tokenCalls);
        },
      );
    });

    describe('tokens that carry no delegated scope of the API', () => {
      const shared = { app: undefined as ReturnType<typeof instance> | undefined };

      it.each(SCOPELESS_CASES)(
        'answers %s with 403 insufficient_scope and no call to the authority',
        async (_name, key) => {
          shared.app ??= instance();
          const token = scopeless[key];
          const tokenCalls = authority.counters.token();

          const response = await shared.app.webApi(
            functionsRequest(get({ authorization: `Bearer ${token}` })),
            invocation('web-api', INVOCATION_ID),
          );

          expect(response.status).toBe(403);
          expect((response.headers as Record<string, string>)['www-authenticate']).toMatch(
            /^Bearer error="insufficient_scope", error_description="/,
          );
          expect(parse(response)).toEqual({
            error: {
              code: 'insufficient_scope',
              message: expect.any(String) as string,
              requestId: INVOCATION_ID,
            },
          });
          expect(authority.counters.token() - tokenCalls).toBe(0);
          expect(`${response.body as string}${shared.app.logger.text()}`).not.toContain(token);
        },
      );

      it('fails the cold start without API_REQUIRED_SCOPES, naming it', async () => {
        const { webApi } = instance({ API_REQUIRED_SCOPES: undefined });
        const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
        const tokenCalls = authority.counters.token();

        try {
          const response = await webApi(
            functionsRequest(get({ authorization: `Bearer ${scopeless.idToken}` })),
            invocation('web-api'),
          );

          expect(response.status).toBe(500);
          expect(parse(response).error?.code).toBe('configuration_error');
          expect(stderr.mock.calls.map((a) => String(a[0])).join('\n')).toContain(
            'API_REQUIRED_SCOPES: expected',
          );
          expect(authority.counters.token() - tokenCalls).toBe(0);
        } finally {
          stderr.mockRestore();
        }
      });
    });

    describe('request bodies', () => {
      const HUGE = 100 * 1024 * 1024;
      const auth = () => ({ authorization: `Bearer ${tokens.valid}`, 'content-type': 'application/json' });

      it('answers a streamed body past the limit 413 after reading little more than the limit, without content-length', async () => {
        const { webApi } = instance();
        const body = countingBody(HUGE);

        const response = await webApi(
          streamedRequest('POST', '/api/downstream', auth(), body.stream),
          invocation('web-api', INVOCATION_ID),
        );

        console.log(
          `413 after pulling ${body.pulled()} of ${HUGE} streamed bytes (limit ${WebApiLimits.maxBodyBytes})`,
        );
        expect(response.status).toBe(413);
        expect(parse(response).error).toMatchObject({ code: 'payload_too_large', requestId: INVOCATION_ID });
        expect(body.pulled()).toBeGreaterThan(WebApiLimits.maxBodyBytes);
        expect(body.pulled()).toBeLessThan(4 * WebApiLimits.maxBodyBytes);
      });

      it('believes a content-length over the limit and reads none of the body', async () => {
        const { webApi } = instance();
        const body = countingBody(HUGE);

        const response = await webApi(
          streamedRequest(
            'POST',
            '/api/downstream',
            { ...auth(), 'content-length': String(HUGE) },
            body.stream,
          ),
          invocation('web-api'),
        );

        console.log(`413 on content-length after pulling ${body.pulled()} of ${HUGE} streamed bytes`);
        expect(response.status).toBe(413);
        expect(parse(response).error?.message).toBe(
          `the body is at least ${HUGE} bytes; the limit is ${WebApiLimits.maxBodyBytes}`,
        );
        expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
      });

      it.each([
        ['an unauthenticated POST to /healthz', 'POST', '/healthz', 405],
        ['a PUT to the API route', 'PUT', '/api/downstream', 405],
        ['a POST to an unknown route', 'POST', '/api/other', 404],
      ])('reads no body for %s', async (_name, method, path, status) => {
        const { webApi } = instance();
        const body = countingBody(HUGE);

        const response = await webApi(streamedRequest(method, path, {}, body.stream), invocation('web-api'));

        console.log(`${method} ${path}: ${status} after pulling ${body.pulled()} of ${HUGE} streamed bytes`);
        expect(response.status).toBe(status);
        expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
      });

      it('still reads and forwards a streamed body under the limit', async () => {
        const { webApi } = instance();
        const json = JSON.stringify({ pad: 'p'.repeat(40_000) });

        const response = await webApi(
          streamedRequest('POST', '/api/downstream', auth(), Readable.from([Buffer.from(json)])),
          invocation('web-api'),
        );

        expect(response.status).toBe(200);
        expect(parse(response)).toMatchObject({ data: { received: { pad: 'p'.repeat(40_000) } } });
      });
    });

    it('serves a caller from two instances: the second makes no token-endpoint call and one unwrap at its cold start', async () => {
      const token = await authority.mintUserToken({
        audience: CLIENT_ID,
        oid: '3b9d2f4e-0002-4c1a-9e8f-1a2b3c4d5e6f',
      });
      registerSecret('assertion', token);
      const first = instance();
      const second = instance();
      const request = () => functionsRequest(get({ authorization: `Bearer ${token}` }));
      const obo = authority.counters.token(GrantType.OnBehalfOf);

      const a1 = await first.webApi(request(), invocation('web-api'));
      const vaultAfterA1 = vaultCalls();
      const a2 = await first.webApi(request(), invocation('web-api'));
      const vaultAfterA2 = vaultCalls();
      const tokenCallsBeforeB = authority.counters.token();
      const clientCredentialsBeforeB = authority.counters.token(GrantType.ClientCredentials);
      const b1 = await second.webApi(request(), invocation('web-api'));
      const vaultAfterB1 = vaultCalls();
      const b2 = await second.webApi(request(), invocation('web-api'));

      process.stdout.write(
        first.logger.lines
          .filter((l) => l.level !== 'debug' && l.level !== 'info')
          .map((l) => JSON.stringify(l))
          .join('\n') + '\n',
      );
      expect([a1.status, a2.status, b1.status, b2.status]).toEqual([200, 200, 200, 200]);
      expect(parse(a1)).toMatchObject({
        fromCache: false,
        data: { ok: true, caller: { oid: '3b9d2f4e-0002-4c1a-9e8f-1a2b3c4d5e6f', appid: CLIENT_ID } },
      });
      expect([parse(a2).fromCache, parse(b1).fromCache, parse(b2).fromCache]).toEqual([true, true, true]);
      expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(obo + 1);
      // The second instance asks the authority only for its own Key Vault token, never for the caller's.
      expect(authority.counters.token() - tokenCallsBeforeB).toBe(1);
      expect(authority.counters.token(GrantType.ClientCredentials) - clientCredentialsBeforeB).toBe(1);
      expect(vaultAfterA2).toBe(vaultAfterA1);
      expect(vault.counters.calls('unwrapKey')).toBeGreaterThanOrEqual(1);
      expect(vaultAfterB1 - vaultAfterA2).toBe(1);
      expect(vaultCalls()).toBe(vaultAfterB1);
      for (const { logger } of [first, second]) {
        expect(logger.text()).not.toContain(token);
        expect(logger.text()).not.toContain(CLIENT_SECRET);
      }
    });

    it('forwards a JSON body', async () => {
      const { webApi } = instance();

      const response = await webApi(
        functionsRequest(post(tokens.valid, '{"greeting":"grüezi ☃"}')),
        invocation('web-api'),
      );

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ data: { received: { greeting: 'grüezi ☃' } } });
    });

    it('answers healthz', async () => {
      const response = await instance().webApi(functionsRequest(get({}, '/healthz')), invocation('healthz'));

      expect(response.status).toBe(200);
      expect(parse(response)).toMatchObject({ status: 'ok' });
    });
  });

  describe('daemon', () => {
    afterEach(() => downstream.setFault(undefined));

    it('runs on a six-field NCRONTAB schedule', () => {
      expect(DAEMON_SCHEDULE.split(' ')).toHaveLength(6);
    });

    it('gets an app token, calls downstream and logs one summary; a second instance reuses the token', async () => {
      const first = instance();
      const second = instance();
      const appTokens = authority.counters.token(GrantType.ClientCredentials);

      const a = await first.daemon(timer(), invocation('daemon', RUN_A));
      const b = await second.daemon(timer(), invocation('daemon', RUN_B));

      expect(a).toMatchObject({ ok: true, tokenFromCache: false, downstreamStatus: 200 });
      expect(b).toMatchObject({ ok: true, tokenFromCache: true, downstreamStatus: 200 });
      // Client-credential requests: the daemon's app token once, plus each instance's Key Vault token.
      expect(authority.counters.token(GrantType.ClientCredentials) - appTokens).toBeLessThanOrEqual(3);
      expect(downstream.calls().at(-1)).toMatchObject({ status: 200, appid: CLIENT_ID });
      const summary = second.logger.lines.filter((l) => l.message === 'daemon run');
      expect(summary).toHaveLength(1);
      expect(summary[0].fields).toMatchObject({ runId: RUN_B, ok: true, tokenFromCache: true });
    });

    it('fails the invocation when downstream is unreachable', async () => {
      const { daemon, logger } = instance({ DOWNSTREAM_URL: 'http://localhost:9/api/data' });

      await expect(daemon(timer(), invocation('daemon'))).rejects.toThrow(DaemonRunError);

      const errors = logger.lines.filter((l) => l.message === 'daemon run failed');
      expect(errors).toHaveLength(1);
      expect(errors[0].fields).toMatchObject({ stage: 'downstream', errorName: 'DownstreamError' });
    });
  });
});
