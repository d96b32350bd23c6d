import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HttpRequest, type HttpRequestInit, type HttpResponseInit } from '@azure/functions';
import { createDaemonHandler, DAEMON_SCHEDULE } from '../../functions/azure/daemon';
import { createWebApiHandler } from '../../functions/azure/web-api';
import { createDeps } from '../../functions/azure/deps';
import { WebApiLimits } from '../../functions/core/web-api';
import { CapturingLogger } from '../support/cache-harness';
import { azureCacheEnv, startAzureServices, type AzureServices } from '../support/cloud-services';
import { functionsRequest, invocation, timer } from '../support/functions-events';
import { describeHandlerCases, handlerEnv, handlerWorld } from '../support/handler-cases';
import { DOWNSTREAM_AUDIENCE, InstanceBuilder, parse } from '../support/handler-cases';
import type { HandlerInstance, HandlerResponse, HandlerWorld } from '../support/handler-cases';

const CLIENT_ID = '8a4e2b17-6c3d-4f90-b5a2-1e7d9c0f3b64';
const CLIENT_SECRET = 'azure-handler-test-client-secret';
const INVOCATION_ID = '0f5e6d7c-1111-4222-8333-444455556666';

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

/** A Functions result as the shared cases read it; the host needs the body as a string. */
function response(result: HttpResponseInit): HandlerResponse {
  expect(typeof result.body).toBe('string');
  return {
    status: result.status ?? 0,
    headers: result.headers as Record<string, string>,
    body: result.body as string,
  };
}

describe('Azure Functions handlers', () => {
  let services: AzureServices;
  let dir: string;
  let env: Record<string, string>;
  let world: HandlerWorld;
  const instances = new InstanceBuilder();

  /** A separately constructed Function App instance: its own config, cache, clients and logger. */
  function app(overrides: Record<string, string | undefined> = {}) {
    const logger = new CapturingLogger();
    const deps = instances.deps(() => createDeps({ env: { ...env, ...overrides }, logger }));
    return { webApi: createWebApiHandler(deps), daemon: createDaemonHandler(deps), logger };
  }

  /** The instance behind the shared cases: a request id is the host's invocation id. */
  function instance(overrides?: Record<string, string | undefined>): HandlerInstance {
    const { webApi, daemon, logger } = app(overrides);
    return {
      logger,
      web: async (request, requestId) =>
        response(await webApi(functionsRequest(request), invocation('web-api', requestId))),
      daemon: (runId) => daemon(timer(), invocation('daemon', runId)),
    };
  }

  beforeAll(async () => {
    services = await startAzureServices({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      downstreamAudience: DOWNSTREAM_AUDIENCE,
    });
    const { authority, cosmos, vault, downstream } = services;
    dir = mkdtempSync(join(tmpdir(), 'azure-handlers-'));
    writeFileSync(join(dir, 'ca.pem'), services.certificate.cert);
    const app = { authority, downstream, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };
    env = {
      ...handlerEnv(app, join(dir, 'ca.pem')),
      MSAL_CLIENT_SECRET: CLIENT_SECRET,
      ...(await azureCacheEnv(cosmos, vault, 'token-cache')),
    };
    world = await handlerWorld(app, {
      instance,
      keyCalls: () => vault.counters.calls('wrapKey') + vault.counters.calls('unwrapKey'),
      keyGenerates: () => vault.counters.calls('wrapKey'),
      // The client secret comes from the app settings, not from a secret store.
      secretReads: () => 0,
      coldStartTokenCalls: 1,
      coldStartSecretReads: 0,
    });
  });

  afterAll(async () => {
    await instances.close();
    await services.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describeHandlerCases(() => world);

  describe('Functions host', () => {
    describe('request bodies', () => {
      const HUGE = 100 * 1024 * 1024;
      const auth = () => ({
        authorization: `Bearer ${world.tokens.valid}`,
        'content-type': 'application/json',
      });

      it('answers a streamed body past the limit 413 after reading little more than the limit, without content-length', async () => {
        const { webApi } = app();
        const body = countingBody(HUGE);

        const result = await webApi(
          streamedRequest('POST', '/api/downstream', auth(), body.stream),
          invocation('web-api', INVOCATION_ID),
        );

        console.log(
          `413 after pulling ${body.pulled()} of ${HUGE} streamed bytes (limit ${WebApiLimits.maxBodyBytes})`,
        );
        expect(result.status).toBe(413);
        expect(parse(response(result)).error).toMatchObject({
          code: 'payload_too_large',
          requestId: INVOCATION_ID,
        });
        expect(body.pulled()).toBeGreaterThan(WebApiLimits.maxBodyBytes);
        expect(body.pulled()).toBeLessThan(4 * WebApiLimits.maxBodyBytes);
      });

      it('believes a content-length over the limit and reads none of the body', async () => {
        const { webApi } = app();
        const body = countingBody(HUGE);

        const result = await webApi(
          streamedRequest(
            'POST',
            '/api/downstream',
            { ...auth(), 'content-length': String(HUGE) },
            body.stream,
          ),
          invocation('web-api'),
        );

        console.log(`413 on content-length after pulling ${body.pulled()} of ${HUGE} streamed bytes`);
        expect(result.status).toBe(413);
        expect(parse(response(result)).error?.message).toBe(
          `the body is at least ${HUGE} bytes; the limit is ${WebApiLimits.maxBodyBytes}`,
        );
        expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
      });

      it.each([
        ['an unauthenticated POST to /healthz', 'POST', '/healthz', 405],
        ['a PUT to the API route', 'PUT', '/api/downstream', 405],
        ['a POST to an unknown route', 'POST', '/api/other', 404],
      ])('reads no body for %s', async (_name, method, path, status) => {
        const { webApi } = app();
        const body = countingBody(HUGE);

        const result = await webApi(streamedRequest(method, path, {}, body.stream), invocation('web-api'));

        console.log(`${method} ${path}: ${status} after pulling ${body.pulled()} of ${HUGE} streamed bytes`);
        expect(result.status).toBe(status);
        expect(body.pulled()).toBeLessThanOrEqual(64 * 1024);
      });

      it('still reads and forwards a streamed body under the limit', async () => {
        const { webApi } = app();
        const json = JSON.stringify({ pad: 'p'.repeat(40_000) });

        const result = await webApi(
          streamedRequest('POST', '/api/downstream', auth(), Readable.from([Buffer.from(json)])),
          invocation('web-api'),
        );

        expect(result.status).toBe(200);
        expect(parse(response(result))).toMatchObject({ data: { received: { pad: 'p'.repeat(40_000) } } });
      });
    });
  });

  describe('daemon on a timer', () => {
    it('runs on a six-field NCRONTAB schedule', () => {
      expect(DAEMON_SCHEDULE.split(' ')).toHaveLength(6);
    });
  });
});
