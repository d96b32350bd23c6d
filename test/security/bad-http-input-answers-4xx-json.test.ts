/**
 * Bad HTTP input, generated (issue 7, item 4). The fixed table of named cases
 * (test/support/bad-http-input.ts) runs through both web-API adapters in
 * test/integration/{aws,azure}-handlers.test.ts; this suite goes past it with fast-check:
 * random methods, paths, header sets (repeated, mixed-case, junk), Authorization values
 * built from every forged and valid token, bodies of any shape, and API Gateway events of
 * odd shapes, through the real Lambda and Azure Functions adapters over the real bearer
 * validation, token cache, local authority and downstream stub (the token pool also holds
 * real app-only, ID and scp-less tokens). Invariants: the handler
 * never throws, never answers 5xx, always answers JSON (`{"error":{code,message,requestId}}`
 * unless 200), echoes no token, and keeps its headers printable. The two daemons, whose
 * trigger is not HTTP, are fed junk triggers and must ignore them.
 */
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import type { APIGatewayProxyEventV2, ScheduledEvent } from 'aws-lambda';
import * as fc from 'fast-check';
import { createDaemonHandler as createAwsDaemon } from '../../functions/aws/daemon';
import { createWebApiHandler as createAwsWebApi } from '../../functions/aws/web-api';
import { createDaemonHandler as createAzureDaemon } from '../../functions/azure/daemon';
import { createWebApiHandler as createAzureWebApi } from '../../functions/azure/web-api';
import type { DaemonDeps, WebApiDeps } from '../../functions/core/deps';
import { createDownstreamClient, type DownstreamClient } from '../../functions/core/downstream';
import { startDownstreamApi, type DownstreamApi } from '../../local/downstream';
import { createBearerValidator } from '../../shared/auth/bearer';
import { mintBadInputTokens, type Tokens } from '../support/bad-http-input';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  CapturingLogger,
  DOWNSTREAM_SCOPE,
  type CacheWorld,
} from '../support/cache-harness';
import { mintScopelessTokens } from '../support/scopeless-tokens';
import { startSecureWorld } from '../support/security-world';

/** Generated requests per web-API adapter. */
const RUNS = 1000;

/** A request before an adapter shapes it. */
interface RawRequest {
  readonly method: string;
  readonly path: string;
  /** Header name and value pairs, repeats and any case allowed. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: string | undefined;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

let world: CacheWorld;
let downstreamApi: DownstreamApi;
let downstream: DownstreamClient;
let tokens: Tokens;
const logger = new CapturingLogger();
let webDeps: WebApiDeps;
let daemonDeps: DaemonDeps;

beforeAll(async () => {
  world = await startSecureWorld();
  downstreamApi = await startDownstreamApi({ authority: world.authority, audience: 'api://downstream' });
  downstream = createDownstreamClient({ url: downstreamApi.url });
  // The forged tokens plus real ones that carry no delegated scope (app-only, ID, scp-less).
  tokens = {
    ...(await mintBadInputTokens(world.authority, API_CLIENT_ID)),
    ...(await mintScopelessTokens(world.authority, {
      apiClientId: API_CLIENT_ID,
      apiClientSecret: API_CLIENT_SECRET,
      scope: 'access_as_user',
    })),
  };
  const { cache } = world.instance({ logger });
  webDeps = {
    cache,
    validator: createBearerValidator({
      issuer: world.authority.issuer(),
      audience: API_CLIENT_ID,
      jwksUri: world.authority.jwksUri(),
      ca: world.authority.ca,
      requiredScopes: ['access_as_user'],
    }),
    downstream,
    scopes: [DOWNSTREAM_SCOPE],
    logger,
  };
  daemonDeps = { cache, downstream, appScope: DOWNSTREAM_SCOPE, logger };
});

afterAll(async () => {
  downstream.close();
  await downstreamApi.stop();
  await world.stop();
});

// --- generators ------------------------------------------------------------------------

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const tokenString = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: min, maxLength: max });

// Weighted towards the served route, so that most requests get past the router.
const method = fc.oneof(
  { arbitrary: fc.constantFrom('GET', 'POST'), weight: 4 },
  { arbitrary: fc.constantFrom('PUT', 'PATCH', 'DELETE', 'OPTIONS', 'get', 'Post', 'TRACE'), weight: 1 },
  { arbitrary: tokenString(1, 12), weight: 1 },
);

const path = fc.oneof(
  { arbitrary: fc.constant('/api/downstream'), weight: 6 },
  fc.constantFrom(
    '/api/downstream',
    '/api/downstream/',
    '/healthz',
    '/API/DOWNSTREAM',
    '//api//downstream',
    '/api/downstream/../healthz',
    '/api/downstream%2F',
    '/api/downstream?x=1&y',
    '/api/%2e%2e/healthz',
    '/',
  ),
  fc.webPath(),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((s) => `/${s}`),
);

/** Authorization values built from the forged tokens, schemes and junk. */
function authorization(t: Tokens): fc.Arbitrary<string> {
  const anyToken = fc.constantFrom(...Object.values(t));
  return fc.oneof(
    { arbitrary: fc.constant(`Bearer ${t.valid}`), weight: 3 },
    { arbitrary: anyToken.map((token) => `Bearer ${token}`), weight: 3 },
    fc
      .tuple(fc.constantFrom('bearer', 'BEARER', 'Bearer ', 'Basic', 'Digest', 'Token', ''), anyToken)
      .map(([scheme, token]) => `${scheme} ${token}`),
    fc.tuple(anyToken, fc.string({ maxLength: 20 })).map(([token, junk]) => `Bearer ${token}${junk}`),
    fc.array(anyToken, { minLength: 2, maxLength: 3 }).map((all) => all.map((x) => `Bearer ${x}`).join(', ')),
    fc.string({ unit: 'binary', maxLength: 60 }),
  );
}

function headers(t: Tokens): fc.Arbitrary<Array<readonly [string, string]>> {
  const auth = fc.tuple(fc.constantFrom('authorization', 'Authorization', 'AUTHORIZATION'), authorization(t));
  const contentType = fc.tuple(
    fc.constant('content-type'),
    fc.constantFrom(
      'application/json',
      'application/vnd.api+json; charset=utf-8',
      'text/plain',
      'application/jsonx',
      '',
    ),
  );
  const junk = fc.tuple(tokenString(1, 20), fc.string({ unit: 'binary', maxLength: 40 }));
  return fc
    .tuple(
      fc.array(auth, { maxLength: 2 }),
      fc.option(contentType, { nil: undefined }),
      fc.array(junk, { maxLength: 4 }),
    )
    .map(([a, c, j]) => [...a, ...(c ? [c] : []), ...j]);
}

const body = fc.option(
  fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.json({ maxDepth: 3 }),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('{"a":1}', '[]', 'null', '"', '{"__proto__":{"x":1}}', 'x'.repeat(70_000)),
  ),
  { nil: undefined },
);

function request(t: Tokens): fc.Arbitrary<RawRequest> {
  return fc.record({ method, path, headers: headers(t), body });
}

// --- invariants ------------------------------------------------------------------------

function checkAnswer(raw: RawRequest, answer: Answer): void {
  const where = `${raw.method} ${JSON.stringify(raw.path)}`;
  if (answer.status >= 500 || answer.status < 200 || (answer.status >= 300 && answer.status < 400)) {
    throw new Error(`${where}: status ${answer.status}, body ${answer.body}`);
  }
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  const parsed = JSON.parse(answer.body) as Record<string, unknown>;
  if (answer.status === 200) {
    expect(typeof parsed['requestId']).toBe('string');
  } else {
    expect(parsed).toEqual({
      error: {
        code: expect.stringMatching(/^[a-z_]+$/) as string,
        message: expect.any(String) as string,
        requestId: expect.any(String) as string,
      },
    });
  }
  for (const [name, value] of Object.entries(answer.headers)) {
    if (!/^[\x20-\x7e]*$/.test(value)) throw new Error(`${where}: header ${name} is not printable: ${value}`);
  }
  const visible = `${answer.body}\n${JSON.stringify(answer.headers)}`;
  for (const token of Object.values(tokens)) {
    if (visible.includes(token) || visible.includes(token.split('.')[1] || '\u0000')) {
      throw new Error(`${where}: the answer echoes a token`);
    }
  }
}

function describeStatuses(statuses: Map<number, number>): string {
  return [...statuses]
    .sort(([a], [b]) => a - b)
    .map(([status, n]) => `${n} x ${status}`)
    .join(', ');
}

// --- adapters --------------------------------------------------------------------------

/** An API Gateway HTTP API (payload 2.0) event, in one of the shapes a handler may meet. */
function apiGatewayEvent(raw: RawRequest, shape: { stage: string; base64: boolean }): APIGatewayProxyEventV2 {
  const headerMap: Record<string, string> = {};
  for (const [name, value] of raw.headers) {
    const key = name.toLowerCase();
    headerMap[key] = headerMap[key] === undefined ? value : `${headerMap[key]},${value}`;
  }
  const rawPath = shape.stage === '$default' ? raw.path : `/${shape.stage}${raw.path}`;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers: headerMap,
    requestContext: {
      accountId: '123456789012',
      apiId: 'fuzz',
      domainName: 'fuzz.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'fuzz',
      http: {
        method: raw.method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.9',
        userAgent: 'fuzz',
      },
      requestId: 'fuzz-request',
      routeKey: '$default',
      stage: shape.stage,
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: shape.base64,
    ...(raw.body === undefined
      ? {}
      : { body: shape.base64 ? Buffer.from(raw.body).toString('base64') : raw.body }),
  };
}

/**
 * The request as the Functions host hands it over: header values are Latin-1 bytes (no
 * NUL, CR or LF can cross the wire), repeats joined with ", ". Undefined when the host
 * could not have built it (a URL or method the Fetch API refuses, a body on GET or HEAD).
 */
function functionsRequest(raw: RawRequest): HttpRequest | undefined {
  const headerMap: Record<string, string> = {};
  for (const [name, value] of raw.headers) {
    const key = name.toLowerCase();
    const wire = Buffer.from(value, 'utf8')
      .toString('latin1')
      .replace(/[\0\r\n]/g, ' ');
    headerMap[key] = headerMap[key] === undefined ? wire : `${headerMap[key]}, ${wire}`;
  }
  try {
    return new HttpRequest({
      method: raw.method,
      url: `http://localhost:7071${raw.path}`,
      headers: headerMap,
      ...(raw.body !== undefined && !['GET', 'HEAD'].includes(raw.method.toUpperCase())
        ? { body: { string: raw.body } }
        : {}),
    });
  } catch {
    return undefined;
  }
}

describe(`generated bad HTTP input (${RUNS} requests per adapter)`, () => {
  it('the Lambda web-API handler answers every one with 200 or a 4xx JSON error, echoing no token', async () => {
    const handler = createAwsWebApi(webDeps);
    const statuses = new Map<number, number>();
    const shape = fc.record({ stage: fc.constantFrom('$default', 'prod'), base64: fc.boolean() });

    await fc.assert(
      fc.asyncProperty(request(tokens), shape, async (raw, s) => {
        const result = await handler(apiGatewayEvent(raw, s), { awsRequestId: 'fuzz-lambda' });
        const answer = {
          status: result.statusCode ?? 0,
          headers: Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)])),
          body: result.body ?? '',
        };
        checkAnswer(raw, answer);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );

    // The generator reached the router, the validator, the body checks and the downstream call.
    console.log(`Lambda web API, ${RUNS} generated requests: ${describeStatuses(statuses)}`);
    for (const status of [200, 400, 401, 404, 405, 415])
      expect([status, statuses.get(status)! > 0]).toEqual([status, true]);
  });

  it('the Azure Functions web-API handler answers every one with 200 or a 4xx JSON error, echoing no token', async () => {
    const handler = createAzureWebApi(webDeps);
    const statuses = new Map<number, number>();

    await fc.assert(
      fc.asyncProperty(request(tokens), async (raw) => {
        const httpRequest = functionsRequest(raw);
        if (httpRequest === undefined) return fc.pre(false);
        const response = await handler(
          httpRequest,
          new InvocationContext({ invocationId: 'fuzz-azure', logHandler: () => undefined }),
        );
        const answer = {
          status: response.status ?? 0,
          headers: response.headers as Record<string, string>,
          body: typeof response.body === 'string' ? response.body : JSON.stringify(response.body),
        };
        checkAnswer(raw, answer);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );

    console.log(`Azure Functions web API, ${RUNS} generated requests: ${describeStatuses(statuses)}`);
    for (const status of [200, 400, 401, 404, 405, 415])
      expect([status, statuses.get(status)! > 0]).toEqual([status, true]);
  });

  it('odd API Gateway events (no headers, no requestContext, no rawPath, a body wrongly flagged base64, an empty method) get a 4xx JSON error', async () => {
    const handler = createAwsWebApi(webDeps);
    const base = apiGatewayEvent(
      {
        method: 'POST',
        path: '/api/downstream',
        headers: [['authorization', `Bearer ${tokens.valid}`]],
        body: '{}',
      },
      { stage: '$default', base64: false },
    );
    const odd: Array<[string, APIGatewayProxyEventV2]> = [
      ['no headers at all', { ...base, headers: undefined as unknown as Record<string, string> }],
      ['a body flagged base64 that is not', { ...base, body: '%%%not base64%%%', isBase64Encoded: true }],
      [
        'a JSON body flagged base64 but sent as is',
        { ...base, headers: { ...base.headers, 'content-type': 'application/json' }, isBase64Encoded: true },
      ],
      ['no rawPath', { ...base, rawPath: undefined as unknown as string }],
      [
        'no requestContext',
        { ...base, requestContext: undefined as unknown as APIGatewayProxyEventV2['requestContext'] },
      ],
      [
        'an empty method',
        {
          ...base,
          requestContext: { ...base.requestContext, http: { ...base.requestContext.http, method: '' } },
        },
      ],
    ];
    for (const [name, event] of odd) {
      const result = await handler(event, { awsRequestId: 'fuzz-odd' });
      expect([name, result.statusCode! >= 400 && result.statusCode! < 500]).toEqual([name, true]);
      expect(JSON.parse(result.body ?? '')).toMatchObject({ error: { requestId: 'fuzz-odd' } });
    }
  });
});

describe('junk triggers of the daemons', () => {
  it('the Lambda daemon ignores whatever event it is invoked with', async () => {
    const handler = createAwsDaemon(daemonDeps);
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (event) => {
        const summary = await handler(event as ScheduledEvent, { awsRequestId: 'fuzz-daemon' });
        expect(summary.ok).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('the Azure Functions daemon ignores whatever timer payload it is given', async () => {
    const handler = createAzureDaemon(daemonDeps);
    await fc.assert(
      fc.asyncProperty(fc.anything(), async (timer) => {
        const summary = await handler(
          timer as Timer,
          new InvocationContext({ invocationId: 'fuzz-timer', logHandler: () => undefined }),
        );
        expect(summary.ok).toBe(true);
      }),
      { numRuns: 25 },
    );
  });
});
