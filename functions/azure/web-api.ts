/**
 * Azure Functions (v4 programming model) HTTP handler of the web API. It only translates
 * the request to the shared core and the answer back. host.json sets `routePrefix` to ""
 * so the routes are `/api/downstream` and `/healthz`, as on AWS; every method is bound so
 * that the core, not the host, answers 405.
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import type { DepsSource, WebApiDeps } from '../core/deps';
import { processDeps } from './deps';
import { handleWebApi } from '../core/web-api';

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
    const body = request.body ? await request.text() : undefined;
    const response = await handleWebApi(
      {
        method: request.method,
        path: new URL(request.url).pathname,
        headers,
        ...(body !== undefined ? { body } : {}),
        requestId: context.invocationId,
      },
      deps,
    );
    return { status: response.status, headers: { ...response.headers }, body: response.body };
  };
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
