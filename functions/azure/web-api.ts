/**
 * Azure Functions (v4 programming model) HTTP handler of the web API. It only translates
 * the request to the shared core and the answer back. host.json sets `routePrefix` to ""
 * so the routes are `/api/downstream` and `/healthz`, as on AWS; every method is bound so
 * that the core, not the host, answers 405.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type { DepsSource, WebApiDeps } from '../core/deps';
import { handleWebApi, readsBody, WebApiLimits } from '../core/web-api';
import { processDeps } from './deps';

/** An HTTP-triggered handler. */
export type AzureWebApiHandler = (
  request: HttpRequest,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

/**
 * Builds a handler over its own dependencies (tests build two, as two Function App instances).
 * @default the process-wide dependencies from process.env, built at the first invocation
 */
export function createWebApiHandler(deps: DepsSource<WebApiDeps> = processDeps): AzureWebApiHandler {
  return async (request, context) => {
    const headers: Record<string, string> = {};
    // The Fetch Headers object lower-cases names and joins repeated values with ", ".
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const path = new URL(request.url).pathname;
    // Only the route that uses a body reads one, and never more than the core accepts.
    const body = readsBody(request.method, path) ? await readCapped(request, WebApiLimits.maxBodyBytes) : {};
    const response = await handleWebApi(
      {
        method: request.method,
        path,
        headers,
        ...body,
        requestId: context.invocationId,
      },
      deps,
    );
    return { status: response.status, headers: { ...response.headers }, body: response.body };
  };
}

/**
 * The body as text, or, when it is over `limit` bytes, only how many bytes were seen: a
 * declared content-length over the limit is believed without reading anything, and a
 * streamed body is read until it passes the limit, then cancelled.
 */
async function readCapped(
  request: HttpRequest,
  limit: number,
): Promise<{ body?: string; bodyBytes?: number }> {
  const declared = request.headers.get('content-length')?.trim();
  if (declared && /^\d+$/.test(declared) && Number(declared) > limit) return { bodyBytes: Number(declared) };
  const stream = request.body;
  if (!stream) return {};
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = (await reader.read()) as { done: boolean; value?: Uint8Array };
      if (done || !value) break;
      size += value.byteLength;
      if (size > limit) {
        await reader.cancel();
        return { bodyBytes: size };
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return { body: Buffer.concat(chunks).toString('utf8') };
}

const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;

/**
 * Registers the web API's routes with the Functions host (call it from the app's main
 * module; functions/azure/app.ts does).
 * @default the process-wide dependencies from process.env, built at the first invocation
 */
export function registerWebApi(deps: DepsSource<WebApiDeps> = processDeps): AzureWebApiHandler {
  const handler = createWebApiHandler(deps);
  app.http('web-api', { route: 'api/downstream', methods: [...methods], authLevel: 'anonymous', handler });
  app.http('healthz', { route: 'healthz', methods: [...methods], authLevel: 'anonymous', handler });
  return handler;
}
