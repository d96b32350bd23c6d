import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2, ScheduledEvent } from 'aws-lambda';
import { createDaemonHandler } from '../../functions/aws/daemon';
import { createWebApiHandler } from '../../functions/aws/web-api';
import { DaemonRunError } from '../../functions/core/daemon';
import { createDeps } from '../../functions/aws/deps';
import { lazy, type FunctionDeps } from '../../functions/core/deps';
import { GrantType, startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startDownstreamApi, type DownstreamApi } from '../../local/downstream';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets-manager';
import { badHttpInput, get, mintBadInputTokens, post, type Tokens } from '../support/bad-http-input';
import { CapturingLogger } from '../support/cache-harness';
import { mintScopelessTokens, SCOPELESS_CASES, type ScopelessTokens } from '../support/scopeless-tokens';
import { apiGatewayEvent } from '../support/lambda-events';
import { registerSecret } from '../support/secret-registry';

const CLIENT_ID = '2d7c9e41-8b3a-4f6d-a1e5-9c0b7d3f2e18';
const CLIENT_SECRET = 'aws-handler-test-client-secret';
const DOWNSTREAM_AUDIENCE = 'api://downstream';
/** The delegated scope the web API requires (API_REQUIRED_SCOPES); the authority's user tokens carry it by default. */
const API_SCOPE = 'access_as_user';

function scheduledEvent(): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/token-cache-daemon'],
    detail: {},
  };
}

function parse(result: APIGatewayProxyStructuredResultV2): Record<string, unknown> & {
  error?: { code: string; message: string; requestId: string };
} {
  expect(result.headers?.['content-type']).toBe('application/json; charset=utf-8');
  return JSON.parse(result.body ?? '') as ReturnType<typeof parse>;
}

describe('AWS handlers', () => {
  let authority: LocalAuthority;
  let dynamo: LocalDynamo;
  let kms: LocalKms;
  let secrets: LocalSecretsManager;
  let downstream: DownstreamApi;
  let tokens: Tokens;
  let scopeless: ScopelessTokens;
  let dir: string;
  let env: Record<string, string>;
  const built: Array<Promise<FunctionDeps>> = [];
  const savedEnv: Record<string, string | undefined> = {};

  /** A separately constructed Lambda container: its own config, cache, clients and logger. */
  function container(overrides: Record<string, string | undefined> = {}) {
    const logger = new CapturingLogger();
    const deps = lazy(() => {
      const pending = createDeps({ env: { ...env, ...overrides }, logger });
      built.push(pending);
      return pending;
    });
    return { webApi: createWebApiHandler(deps), daemon: createDaemonHandler(deps), logger };
  }

  const kmsCalls = () => kms.counters.calls('GenerateDataKey') + kms.counters.calls('Decrypt');

  beforeAll(async () => {
    // Lambda's role gives the SDK credentials through the environment; so do these.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) savedEnv[name] = process.env[name];
    process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'local-test-credentials';

    authority = await startLocalAuthority({
      clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    });
    [dynamo, kms, secrets] = await Promise.all([
      startLocalDynamo(),
      startLocalKms(),
      startLocalSecretsManager(),
    ]);
    downstream = await startDownstreamApi({ authority, audience: DOWNSTREAM_AUDIENCE });
    const key = await kms.createKey({ alias: 'alias/token-cache' });
    const secretArn = await secrets.createSecret('web-api/client-secret', CLIENT_SECRET);
    registerSecret('client-secret', CLIENT_SECRET);
    dir = mkdtempSync(join(tmpdir(), 'aws-handlers-'));
    writeFileSync(join(dir, 'ca.pem'), authority.ca);
    env = {
      MSAL_CLIENT_ID: CLIENT_ID,
      MSAL_AUTHORITY: authority.authority(),
      MSAL_KNOWN_AUTHORITIES: authority.host,
      MSAL_CLIENT_SECRET_ARN: secretArn,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      AWS_REGION: kms.region,
      EXTRA_CA_FILE: join(dir, 'ca.pem'),
      TOKEN_CACHE_TABLE_NAME: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      TOKEN_CACHE_KMS_KEY_ID: key.arn,
      AWS_ENDPOINT_URL_KMS: kms.endpoint,
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
    await Promise.all([downstream.stop(), secrets.stop(), kms.stop(), dynamo.stop(), authority.stop()]);
    rmSync(dir, { recursive: true, force: true });
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  describe('web API', () => {
    describe('bad input', () => {
      const shared = { instance: undefined as ReturnType<typeof container> | undefined };

      it.each(badHttpInput.map((c) => [c.name, c] as const))(
        'answers %s with a 4xx JSON error and logs no token',
        async (_name, c) => {
          shared.instance ??= container();
          const { webApi, logger } = shared.instance;
          const tokenCalls = authority.counters.token();
          const event = apiGatewayEvent(c.request(tokens));

          const result = await webApi(event, { awsRequestId: 'lambda-req-1' });

          expect(result.statusCode).toBe(c.status);
          expect(parse(result)).toEqual({
            error: { code: c.code, message: expect.any(String) as string, requestId: 'lambda-req-1' },
          });
          if (c.allow) expect(result.headers?.allow).toBe(c.allow);
          if (c.status === 401) expect(result.headers?.['www-authenticate']).toMatch(/^Bearer/);
          const visible = `${result.body}\n${JSON.stringify(result.headers)}\n${logger.text()}`;
          for (const token of Object.values(tokens)) expect(visible).not.toContain(token);
          expect(authority.counters.token()).toBe(tokenCalls);
        },
      );
    });

    it('serves a caller from two containers: the second makes no token-endpoint call and one KMS Decrypt at its cold start', async () => {
      const token = await authority.mintUserToken({
        audience: CLIENT_ID,
        oid: '7e3f1c2a-0001-4b5c-8d9e-0a1b2c3d4e5f',
      });
      registerSecret('assertion', token);
      const first = container();
      const second = container();
      const request = () => apiGatewayEvent(get({ authorization: `Bearer ${token}` }));
      const obo = authority.counters.token(GrantType.OnBehalfOf);
      const getSecret = secrets.counters.calls('GetSecretValue');

      const a1 = await first.webApi(request());
      const tokenCallsAfterA1 = authority.counters.token();
      const kmsAfterA1 = kmsCalls();
      const a2 = await first.webApi(request());
      const kmsAfterA2 = kmsCalls();
      const generatesBeforeB = kms.counters.calls('GenerateDataKey');
      const b1 = await second.webApi(request());
      const kmsAfterB1 = kmsCalls();
      const b2 = await second.webApi(request());

      expect([a1.statusCode, a2.statusCode, b1.statusCode, b2.statusCode]).toEqual([200, 200, 200, 200]);
      expect(parse(a1)).toMatchObject({
        fromCache: false,
        data: { ok: true, caller: { oid: '7e3f1c2a-0001-4b5c-8d9e-0a1b2c3d4e5f', appid: CLIENT_ID } },
      });
      expect([parse(a2).fromCache, parse(b1).fromCache, parse(b2).fromCache]).toEqual([true, true, true]);
      expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(obo + 1);
      expect(authority.counters.token()).toBe(tokenCallsAfterA1);
      // Warm requests make no KMS call; a cold container unwraps the stored data key once.
      expect(kmsAfterA2).toBe(kmsAfterA1);
      expect(kms.counters.calls('GenerateDataKey')).toBe(generatesBeforeB);
      expect(kmsAfterB1 - kmsAfterA2).toBe(1);
      expect(kmsCalls()).toBe(kmsAfterB1);
      expect(secrets.counters.calls('GetSecretValue')).toBe(getSecret + 2); // once per cold start
      for (const logger of [first.logger, second.logger]) {
        expect(logger.text()).not.toContain(token);
        expect(logger.text()).not.toContain(CLIENT_SECRET);
      }
      const line = second.logger.lines.find((l) => l.message === 'request');
      expect(line?.fields).toMatchObject({ route: 'downstream', status: 200, tokenFromCache: true });
    });

    it('decodes a base64 body and strips a named stage from the path', async () => {
      const { webApi } = container();
      const event = apiGatewayEvent(post(tokens.valid, '{"greeting":"grüezi ☃"}'), {
        stage: 'prod',
        base64: true,
      });

      const result = await webApi(event);

      expect(result.statusCode).toBe(200);
      expect(parse(result)).toMatchObject({ data: { received: { greeting: 'grüezi ☃' } } });
    });

    it('answers healthz', async () => {
      const result = await container().webApi(apiGatewayEvent(get({}, '/healthz')));

      expect(result.statusCode).toBe(200);
      expect(parse(result)).toMatchObject({ status: 'ok' });
    });

    describe('tokens that carry no delegated scope of the API', () => {
      const shared = { instance: undefined as ReturnType<typeof container> | undefined };

      it.each(SCOPELESS_CASES)(
        'answers %s with 403 insufficient_scope and no call to the authority',
        async (_name, key) => {
          shared.instance ??= container();
          const token = scopeless[key];
          const tokenCalls = authority.counters.token();

          const result = await shared.instance.webApi(
            apiGatewayEvent(get({ authorization: `Bearer ${token}` })),
            {
              awsRequestId: 'lambda-req-s',
            },
          );

          expect(result.statusCode).toBe(403);
          expect(result.headers?.['www-authenticate']).toMatch(
            /^Bearer error="insufficient_scope", error_description="/,
          );
          expect(parse(result)).toEqual({
            error: {
              code: 'insufficient_scope',
              message: expect.any(String) as string,
              requestId: 'lambda-req-s',
            },
          });
          expect(authority.counters.token() - tokenCalls).toBe(0);
          expect(`${result.body}${shared.instance.logger.text()}`).not.toContain(token);
        },
      );

      it('fails the cold start without API_REQUIRED_SCOPES, naming it, and asks the authority for nothing', async () => {
        const { webApi } = container({ API_REQUIRED_SCOPES: undefined });
        const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
        const tokenCalls = authority.counters.token();

        try {
          const result = await webApi(
            apiGatewayEvent(get({ authorization: `Bearer ${scopeless.appOnlyWithoutRoles}` })),
          );

          expect(result.statusCode).toBe(500);
          expect(parse(result).error?.code).toBe('configuration_error');
          expect(stderr.mock.calls.map((a) => String(a[0])).join('\n')).toContain(
            'API_REQUIRED_SCOPES: expected',
          );
          expect(authority.counters.token() - tokenCalls).toBe(0);
        } finally {
          stderr.mockRestore();
        }
      });

      it('with the explicit opt-out API_REQUIRED_SCOPES="*", warns at cold start, serves any delegated token and still refuses the rest', async () => {
        const { webApi, logger } = container({ API_REQUIRED_SCOPES: '*' });
        const user = await authority.mintUserToken({
          audience: CLIENT_ID,
          oid: '7e3f1c2a-0003-4b5c-8d9e-0a1b2c3d4e5f',
          scopes: ['Something.Else'],
        });
        registerSecret('assertion', user);
        const obo = authority.counters.token(GrantType.OnBehalfOf);

        const served = await webApi(apiGatewayEvent(get({ authorization: `Bearer ${user}` })));
        const refused = [];
        for (const [, key] of SCOPELESS_CASES) {
          refused.push(
            (await webApi(apiGatewayEvent(get({ authorization: `Bearer ${scopeless[key]}` })))).statusCode,
          );
        }

        expect(served.statusCode).toBe(200);
        expect(refused).toEqual([403, 403, 403, 403]);
        expect(authority.counters.token(GrantType.OnBehalfOf) - obo).toBe(1);
        expect(
          logger.lines.filter((l) => l.level === 'warn' && l.fields?.['setting'] === 'API_REQUIRED_SCOPES'),
        ).toHaveLength(1);
      });
    });

    it('answers 500 configuration_error when the environment is incomplete', async () => {
      const { webApi } = container({ DOWNSTREAM_URL: undefined });
      const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);

      try {
        const result = await webApi(apiGatewayEvent(get({ authorization: `Bearer ${tokens.valid}` })));

        expect(result.statusCode).toBe(500);
        expect(parse(result).error?.code).toBe('configuration_error');
        expect(stderr.mock.calls.map((a) => String(a[0])).join('\n')).toContain('DOWNSTREAM_URL');
      } finally {
        stderr.mockRestore();
      }
    });
  });

  describe('daemon', () => {
    afterEach(() => downstream.setFault(undefined));

    it('gets an app token, calls downstream and logs one summary; a second container reuses the token', async () => {
      const first = container();
      const second = container();
      const appTokens = authority.counters.token(GrantType.ClientCredentials);

      const a = await first.daemon(scheduledEvent(), { awsRequestId: 'run-a' });
      const afterA = authority.counters.token();
      const b = await second.daemon(scheduledEvent(), { awsRequestId: 'run-b' });

      expect(a).toMatchObject({ ok: true, tokenFromCache: false, downstreamStatus: 200 });
      expect(b).toMatchObject({ ok: true, tokenFromCache: true, downstreamStatus: 200 });
      expect(authority.counters.token(GrantType.ClientCredentials)).toBe(appTokens + 1);
      expect(authority.counters.token()).toBe(afterA);
      expect(downstream.calls().at(-1)).toMatchObject({ status: 200, appid: CLIENT_ID });
      const summaries = second.logger.lines.filter((l) => l.message === 'daemon run');
      expect(summaries).toHaveLength(1);
      expect(summaries[0].fields).toMatchObject({
        runId: 'run-b',
        ok: true,
        tokenFromCache: true,
        downstreamStatus: 200,
      });
      expect(typeof summaries[0].fields?.acquireMs).toBe('number');
    });

    it('fails the run, with one error line, when downstream answers non-2xx', async () => {
      const { daemon, logger } = container();
      downstream.setFault({ status: 503 });

      await expect(daemon(scheduledEvent())).rejects.toThrow(DaemonRunError);

      const errors = logger.lines.filter((l) => l.message === 'daemon run failed');
      expect(errors).toHaveLength(1);
      expect(errors[0].fields).toMatchObject({ stage: 'downstream', downstreamStatus: 503, ok: false });
    });

    it('fails the run at startup when the configuration is invalid', async () => {
      const { daemon } = container({ TOKEN_CACHE_KMS_KEY_ID: undefined });
      const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);

      try {
        const error = await daemon(scheduledEvent()).then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(error).toBeInstanceOf(DaemonRunError);
        expect((error as DaemonRunError).stage).toBe('startup');
        expect(stderr.mock.calls.map((a) => String(a[0])).join('\n')).toContain('TOKEN_CACHE_KEY_RING');
      } finally {
        stderr.mockRestore();
      }
    });
  });
});
