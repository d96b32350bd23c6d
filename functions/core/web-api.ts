/**
 * The web API, independent of the cloud: a request in, a response out. Both the Lambda
 * and the Azure Functions adapters call {@link handleWebApi}; they only translate.
 *
 * Routes: `GET /api/downstream` (call the downstream API on behalf of the caller),
 * `POST /api/downstream` (the same, forwarding a JSON object body), `GET /healthz`.
 * Every error body is `{"error":{"code","message","requestId"}}`; bad input always gets a
 * 4xx; no token, secret or stack ever appears in a body or a log line.
 *
 * Conditional Access and CAE (docs/conditional-access.md): Entra's claims challenge on the
 * exchange is relayed as 401 `WWW-Authenticate: Bearer ... error="insufficient_claims",
 * claims="<base64>"`; a downstream 401 with such a challenge evicts the revoked token,
 * acquires once with the claims and retries the call once.
 */
import { randomUUID } from 'node:crypto';
import { BearerFailure } from '../../shared/auth/bearer';
import { claimsChallengeOf, insufficientClaimsChallenge } from '../../shared/auth/claims';
import {
  cacheLogFields,
  cacheMetadataOf,
  type CachedAuthenticationResult,
} from '../../shared/cache/metadata';
import type { Partition } from '../../shared/cache/types';
import {
  AuthenticationError,
  ConfigurationError,
  ErrorCode,
  InteractionRequiredError,
  isTokenCacheError,
  TokenAcquisitionError,
} from '../../shared/errors';
import { JsonLogger, type LogFields, type Logger } from '../../shared/observability';
import { resolveDeps, type DepsSource, type WebApiDeps } from './deps';
import { DownstreamError } from './downstream';
import { errorFields } from './safe-log';

/** A transport-neutral HTTP request. Header names may be in any case. */
export interface WebRequest {
  readonly method: string;
  /** The path without the query string, e.g. `/api/downstream`. */
  readonly path: string;
  /** Header values; an array when the transport kept repeated headers apart. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The body, decoded to text (`undefined` or `''` when there is none). */
  readonly body?: string;
  /**
   * Bytes of a body the adapter did not read in full: its declared `content-length`, or
   * what it had read when it stopped past {@link WebApiLimits.maxBodyBytes}. The core
   * answers 413 when it is over the limit. @default the size of `body`
   */
  readonly bodyBytes?: number;
  /** The platform's request id (Lambda request id, Functions invocation id). @default a random UUID */
  readonly requestId?: string;
}

/** A transport-neutral HTTP response; `body` is always JSON. */
export interface WebResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Limits of {@link handleWebApi}. */
export const WebApiLimits = {
  /** Total bytes of header names and values; more gets 431. */
  maxHeaderBytes: 32 * 1024,
  /** Bytes of request body; more gets 413. */
  maxBodyBytes: 64 * 1024,
  /** Seconds a client is told to wait after a 503. */
  retryAfterSeconds: 5,
} as const;

interface Route {
  readonly name: string;
  readonly methods: readonly string[];
}

const ROUTES: Readonly<Record<string, Route>> = {
  '/api/downstream': { name: 'downstream', methods: ['GET', 'POST'] },
  '/healthz': { name: 'healthz', methods: ['GET'] },
};

const fallbackLogger = new JsonLogger({ level: 'warn', base: { component: 'functions' } });

/** An error answer, thrown inside the handler and rendered once at the end. */
class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Whether {@link handleWebApi} reads the body of this request: only a POST to the API
 * route. An adapter reads no body for anything else (GET, `/healthz`, unknown routes).
 */
export function readsBody(method: string, path: string): boolean {
  const route = ROUTES[normalizePath(path)];
  return route?.name === 'downstream' && typeof method === 'string' && method.toUpperCase() === 'POST';
}

/**
 * Handles one request of the web API.
 * @param deps ready dependencies, or a function producing them (called at most once per
 *   request, only for routes that need them)
 * @example
 * const response = await handleWebApi(
 *   { method: 'GET', path: '/api/downstream', headers: { authorization: `Bearer ${token}` } },
 *   processDeps,
 * );
 */
export async function handleWebApi(request: WebRequest, deps: DepsSource<WebApiDeps>): Promise<WebResponse> {
  const started = performance.now();
  const requestId = safeRequestId(request.requestId);
  const method = typeof request.method === 'string' ? request.method.toUpperCase() : '';
  const fields: LogFields = { requestId, method: KNOWN_METHODS.has(method) ? method : 'OTHER' };
  let logger: Logger = fallbackLogger;
  let response: WebResponse;
  try {
    const headers = normalizeHeaders(request.headers);
    const route = ROUTES[normalizePath(request.path)];
    fields.route = route?.name ?? 'unknown';
    checkSizes(headers, request.body, request.bodyBytes);
    if (!route) throw new HttpProblem(404, 'not_found', 'no such route; the API serves GET /api/downstream');
    if (!route.methods.includes(method)) {
      throw new HttpProblem(405, 'method_not_allowed', `${route.methods.join(' or ')} only on this route`, {
        allow: route.methods.join(', '),
      });
    }
    let ready: WebApiDeps;
    try {
      ready = await resolveDeps(deps);
    } catch (e) {
      throw notReady(e);
    }
    logger = ready.logger;
    const data =
      route.name === 'healthz'
        ? { status: 'ok' }
        : await downstream(ready, method, headers, request, requestId, fields);
    response = json(200, { ...data, requestId }, requestId);
  } catch (e) {
    response = problemResponse(e, requestId, fields);
    if (response.status >= 500) {
      logger.error('request failed', {
        ...fields,
        ...errorFields(e instanceof HttpProblem && e.cause ? e.cause : e),
      });
    }
  }
  fields.status = response.status;
  fields.totalMs = Math.round(performance.now() - started);
  logger.info('request', fields);
  return response;
}

async function downstream(
  deps: WebApiDeps,
  method: string,
  headers: Map<string, string[]>,
  request: WebRequest,
  requestId: string,
  fields: LogFields,
): Promise<Record<string, unknown>> {
  const { token, tenantId } = await deps.validator.validate(headers.get('authorization'));
  // A multi-tenant API exchanges in the caller's tenant: a token without one is refused.
  if (deps.oboInCallerTenant && tenantId === undefined) {
    throw new AuthenticationError(
      BearerFailure.InvalidTenant,
      "the token's tenant (tid) is not a tenant id (a GUID); get a token from the configured authority",
    );
  }
  const forwarded = method === 'POST' ? parseJsonObject(headers, request.body) : undefined;
  const inTenant = deps.oboInCallerTenant && tenantId !== undefined ? { tenantId } : {};

  const acquire = async (claims?: string): Promise<CachedAuthenticationResult> => {
    const acquireStarted = performance.now();
    let result: CachedAuthenticationResult;
    try {
      result = await deps.cache.acquireTokenOnBehalfOf({
        assertion: token,
        scopes: deps.scopes,
        ...inTenant,
        ...(claims !== undefined ? { claims } : {}),
      });
    } catch (e) {
      // Conditional Access wants more of the user: relay Entra's challenge so the client can step up.
      if (e instanceof InteractionRequiredError && e.claims !== undefined) {
        fields.claimsChallenge = 'authority';
        throw new HttpProblem(
          401,
          'insufficient_claims',
          'the downstream API requires the user to satisfy a Conditional Access claims challenge: acquire a new token for this API interactively with the claims in the WWW-Authenticate header (base64-decoded JSON), then call again with it',
          { 'www-authenticate': insufficientClaimsChallenge(e.claims, deps.authority) },
          { cause: e },
        );
      }
      throw e;
    }
    fields.acquireMs = Math.round(performance.now() - acquireStarted);
    fields.tokenFromCache = result.fromCache;
    // Where the token came from and what each step cost: kinds, reasons, counts, durations.
    const metadata = cacheMetadataOf(result);
    if (metadata) Object.assign(fields, cacheLogFields(metadata));
    return result;
  };
  const call = async (accessToken: string) => {
    const answer = await deps.downstream.call({
      accessToken,
      method: method === 'POST' ? 'POST' : 'GET',
      ...(forwarded !== undefined ? { body: forwarded } : {}),
      requestId,
    });
    fields.downstreamStatus = answer.status;
    fields.downstreamMs = Math.round(answer.durationMs);
    return answer;
  };

  let result = await acquire();
  let answer = await call(result.accessToken);
  if (answer.status === 401) {
    const challenge = claimsChallengeOf(answer.wwwAuthenticate);
    if (challenge?.invalid) {
      // Never echoed, never retried on: only why it was refused is logged.
      fields.claimsRejected = challenge.invalid.reason;
    } else if (challenge) {
      // CAE: the downstream API revoked this token. Remove it from the stored partition (so
      // no instance serves it again), acquire once with the claims asked for, retry once.
      fields.claimsChallenge = 'downstream';
      fields.evicted = await evict(deps, { kind: 'obo', assertion: token, ...inTenant }, result.accessToken);
      result = await acquire(challenge.claims);
      answer = await call(result.accessToken);
      fields.downstreamRetries = 1;
      if (answer.status === 401) {
        throw new HttpProblem(
          502,
          'downstream_rejected_token',
          'the downstream API rejected the token acquired for its claims challenge too; not retried again',
        );
      }
    }
  }
  if (answer.status < 200 || answer.status >= 300) {
    throw new HttpProblem(502, 'downstream_error', `the downstream API answered ${answer.status}`);
  }
  return { fromCache: result.fromCache, data: answer.body };
}

/** Evicts a revoked token; a failure is only logged (the claims request replaces the token anyway). */
async function evict(deps: WebApiDeps, partition: Partition, accessToken: string): Promise<string> {
  if (!deps.cache.evictAccessToken) return 'unsupported';
  try {
    return await deps.cache.evictAccessToken(partition, accessToken);
  } catch (e) {
    deps.logger.warn('could not evict the revoked access token', errorFields(e));
    return 'failed';
  }
}

/** The JSON object body of a POST, or a 400/415. */
function parseJsonObject(headers: Map<string, string[]>, body: string | undefined): unknown {
  const contentType = headers.get('content-type')?.[0] ?? '';
  if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(contentType)) {
    throw new HttpProblem(415, 'unsupported_media_type', 'send the body as application/json');
  }
  if (body === undefined || body.trim() === '') {
    throw new HttpProblem(400, 'invalid_json', 'expected a JSON object body, got an empty body');
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new HttpProblem(400, 'invalid_json', 'the body is not valid JSON; send a JSON object');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpProblem(
      400,
      'invalid_body',
      `expected a JSON object body, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  }
  return value;
}

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
]);

/** Lower-cased names, values kept apart (a repeated header is a list of two). */
function normalizeHeaders(headers: WebRequest['headers'] | undefined): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const values = map.get(key) ?? [];
    values.push(...(typeof value === 'string' ? [value] : value.filter((v) => typeof v === 'string')));
    map.set(key, values);
  }
  return map;
}

function normalizePath(path: string | undefined): string {
  const bare = (typeof path === 'string' ? path : '').split('?')[0];
  return bare.length > 1 ? bare.replace(/\/+$/, '') : bare;
}

function checkSizes(headers: Map<string, string[]>, body: string | undefined, unread?: number): void {
  let headerBytes = 0;
  for (const [name, values] of headers) {
    for (const value of values) headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
  }
  if (headerBytes > WebApiLimits.maxHeaderBytes) {
    throw new HttpProblem(
      431,
      'headers_too_large',
      `the request headers are ${headerBytes} bytes; the limit is ${WebApiLimits.maxHeaderBytes}`,
    );
  }
  const read = typeof body === 'string' ? Buffer.byteLength(body) : 0;
  const bodyBytes = typeof unread === 'number' && Number.isFinite(unread) ? Math.max(unread, read) : read;
  if (bodyBytes > WebApiLimits.maxBodyBytes) {
    throw new HttpProblem(
      413,
      'payload_too_large',
      `the body is ${unread === undefined ? '' : 'at least '}${bodyBytes} bytes; the limit is ${WebApiLimits.maxBodyBytes}`,
    );
  }
}

/** Dependencies failed to build: the operator's problem (500) or a transient one (503). */
function notReady(e: unknown): HttpProblem {
  if (isTokenCacheError(e, ErrorCode.Configuration)) {
    return new HttpProblem(
      500,
      'configuration_error',
      'the service is misconfigured; its logs name the setting',
      {},
      {
        cause: e,
      },
    );
  }
  return new HttpProblem(
    503,
    'not_ready',
    'the service could not start; retry later',
    { 'retry-after': String(WebApiLimits.retryAfterSeconds) },
    { cause: e },
  );
}

/** Any error to its answer; unknown ones become a generic 500. */
function problemResponse(e: unknown, requestId: string, fields: LogFields): WebResponse {
  const problem = toProblem(e);
  fields.code = problem.code;
  return json(
    problem.status,
    { error: { code: problem.code, message: problem.message, requestId } },
    requestId,
    problem.headers,
  );
}

function toProblem(e: unknown): HttpProblem {
  if (e instanceof HttpProblem) return e;
  if (e instanceof AuthenticationError) return authenticationProblem(e);
  const retry = { 'retry-after': String(WebApiLimits.retryAfterSeconds) };
  if (e instanceof TokenAcquisitionError) {
    return e.retryable
      ? new HttpProblem(
          503,
          'identity_provider_unavailable',
          'the identity provider is unavailable; retry later',
          retry,
        )
      : new HttpProblem(
          502,
          'token_acquisition_failed',
          `the identity provider refused the downstream token request (${printable(e.providerCode)})`,
        );
  }
  if (e instanceof InteractionRequiredError) {
    return new HttpProblem(
      403,
      'interaction_required',
      'the downstream API needs the user to sign in again or consent; acquire a new token interactively',
    );
  }
  if (e instanceof DownstreamError) {
    return e.failure === 'invalid_response'
      ? new HttpProblem(
          502,
          'downstream_invalid_response',
          'the downstream API answered with an unusable body',
        )
      : new HttpProblem(
          503,
          'downstream_unavailable',
          'the downstream API is unreachable; retry later',
          retry,
        );
  }
  if (isTokenCacheError(e, ErrorCode.Configuration) || e instanceof ConfigurationError) {
    return new HttpProblem(
      500,
      'configuration_error',
      'the service is misconfigured; its logs name the setting',
    );
  }
  if (
    isTokenCacheError(e, ErrorCode.StoreUnavailable) ||
    isTokenCacheError(e, ErrorCode.KeyService) ||
    isTokenCacheError(e, ErrorCode.ConflictRetriesExhausted)
  ) {
    return new HttpProblem(503, 'cache_unavailable', 'the token cache is unavailable; retry later', retry);
  }
  return new HttpProblem(
    500,
    'internal_error',
    'an unexpected error occurred; quote the requestId when reporting it',
  );
}

/** RFC 6750 challenge: no error code when no bearer was attempted; the reason as error_description. */
function authenticationProblem(e: AuthenticationError): HttpProblem {
  const description = e.message.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
  switch (e.reason) {
    case BearerFailure.JwksUnavailable:
      return new HttpProblem(503, e.reason, e.message, {
        'retry-after': String(WebApiLimits.retryAfterSeconds),
      });
    case BearerFailure.InsufficientScope:
      return new HttpProblem(403, e.reason, e.message, {
        'www-authenticate': `Bearer error="insufficient_scope", error_description="${description}"`,
      });
    case BearerFailure.MissingToken:
    case BearerFailure.InvalidScheme:
      return new HttpProblem(401, e.reason, e.message, { 'www-authenticate': 'Bearer' });
    case BearerFailure.MultipleTokens:
      return new HttpProblem(401, e.reason, e.message, {
        'www-authenticate': `Bearer error="invalid_request", error_description="${description}"`,
      });
    default:
      return new HttpProblem(401, e.reason, e.message, {
        'www-authenticate': `Bearer error="invalid_token", error_description="${description}"`,
      });
  }
}

function json(
  status: number,
  body: unknown,
  requestId: string,
  headers: Readonly<Record<string, string>> = {},
): WebResponse {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-request-id': requestId,
      ...headers,
    },
    body: JSON.stringify(body),
  };
}

/** The platform's id when it is a plain token, else a fresh one (it is echoed in headers and logs). */
function safeRequestId(id: string | undefined): string {
  return typeof id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(id) ? id : randomUUID();
}

function printable(value: string): string {
  return value.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
