/** Azure Functions inputs as the host builds them, for handler tests. */
import { randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import type { WebRequest } from '../../functions/core/web-api';

/**
 * An HttpRequest as the Functions host delivers it: header values are bytes read as
 * Latin-1 (a Fetch Headers object refuses anything wider, and NUL, CR and LF cannot cross
 * the wire), repeated headers joined with ", ".
 */
export function functionsRequest(request: WebRequest): HttpRequest {
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

/** The context the host gives one invocation of `functionName`. */
export function invocation(functionName: string, invocationId: string = randomUUID()): InvocationContext {
  return new InvocationContext({ invocationId, functionName, logHandler: () => undefined });
}

/** A timer trigger's input, on time, with its last and next runs a quarter hour either side. */
export function timer(): Timer {
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
