/**
 * Lambda handler of the web API behind an API Gateway HTTP API (payload format 2.0). It
 * only translates the event to the shared core and the answer back.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { DepsSource, WebApiDeps } from '../core/deps';
import { flushMetrics } from '../../shared/aws/emf';
import { processDeps, type LambdaHandler } from './deps';
import { handleWebApi } from '../core/web-api';

/** A payload-2.0 handler; the context is optional so a local host can call it too. */
export type WebApiHandler = LambdaHandler<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;

/**
 * Builds a handler over its own dependencies (tests build two, as two Lambda containers).
 * @default the process-wide dependencies from process.env, built at the first invocation
 */
export function createWebApiHandler(deps: DepsSource<WebApiDeps> = processDeps): WebApiHandler {
  return async (event, context) => {
    const stage = event.requestContext?.stage;
    let path = event.rawPath ?? event.requestContext?.http?.path ?? '/';
    // A named stage prefixes the path (`/prod/api/downstream`); `$default` does not.
    if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
    const body =
      event.body !== undefined && event.isBase64Encoded
        ? Buffer.from(event.body, 'base64').toString('utf8')
        : event.body;
    let response;
    try {
      response = await handleWebApi(
        {
          method: event.requestContext?.http?.method ?? '',
          path,
          headers: event.headers ?? {},
          ...(body !== undefined ? { body } : {}),
          requestId: context?.awsRequestId ?? event.requestContext?.requestId,
        },
        deps,
      );
    } finally {
      // EMF lines must be written before the invocation ends: Lambda may freeze the process after.
      flushMetrics();
    }
    return {
      statusCode: response.status,
      headers: { ...response.headers },
      body: response.body,
      isBase64Encoded: false,
    };
  };
}

/** The Lambda entry point (`handler` in the function configuration). */
export const handler: WebApiHandler = createWebApiHandler();
