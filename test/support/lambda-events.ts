/** AWS Lambda events as the services build them, for handler tests. */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, ScheduledEvent } from 'aws-lambda';
import type { WebRequest } from '../../functions/core/web-api';

/** An API Gateway HTTP API payload-2.0 event, built as API Gateway builds it from a request. */
export function apiGatewayEvent(
  request: WebRequest,
  options: { stage?: string; base64?: boolean } = {},
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = { host: 'abc123.execute-api.eu-west-1.amazonaws.com' };
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    // API Gateway lower-cases names and joins repeated headers with commas.
    const key = name.toLowerCase();
    const joined = typeof value === 'string' ? value : value.join(',');
    headers[key] = headers[key] === undefined ? joined : `${headers[key]},${joined}`;
  }
  const stage = options.stage ?? '$default';
  const rawPath = stage === '$default' ? request.path : `/${stage}${request.path}`;
  const now = Date.now();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method: request.method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.7',
        userAgent: 'jest',
      },
      requestId: `apigw-${randomUUID()}`,
      routeKey: '$default',
      stage,
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    ...(request.body !== undefined
      ? options.base64
        ? { body: Buffer.from(request.body).toString('base64'), isBase64Encoded: true }
        : { body: request.body, isBase64Encoded: false }
      : { isBase64Encoded: false }),
  };
}

/** An EventBridge scheduled event, as the daemon's schedule rule delivers it. */
export function scheduledEvent(): ScheduledEvent {
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
