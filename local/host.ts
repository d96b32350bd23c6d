/**
 * A local stand-in for the gateway in front of a function: serves a Lambda handler the way
 * API Gateway's HTTP API does (a payload-2.0 event: lower-cased headers, repeated headers
 * joined with commas, binary bodies base64-encoded), or an Azure Functions HTTP handler the
 * way the Functions host does (an HttpRequest and an InvocationContext).
 */
import { randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';

/** A payload-2.0 Lambda handler. */
export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;

/** An HTTP-triggered Azure Functions handler (v4 programming model). */
export type AzureHttpHandler = (
  request: HttpRequest,
  context: InvocationContext,
) => Promise<HttpResponseInit>;

/** One HTTP request as the host received it. */
export interface HostRequest {
  readonly raw: IncomingMessage;
  readonly url: URL;
  readonly body: Buffer;
}

/** What the host writes back. */
export interface HostResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/** Turns a request into a cloud-specific invocation and its result into a response. */
export type HostAdapter = (request: HostRequest) => Promise<HostResponse>;

/** A local-only route served next to the handler (e.g. minting a test token). */
export type LocalRoute = (req: IncomingMessage, res: ServerResponse, body: Buffer) => Promise<void>;

export interface FunctionHostOptions {
  /** The function to serve: see {@link apiGatewayAdapter} and {@link azureFunctionsAdapter}. */
  readonly adapter: HostAdapter;
  /** @default 0 (ephemeral) */
  readonly port?: number;
  /** Routes answered by the host itself, by exact path. */
  readonly localRoutes?: Readonly<Record<string, LocalRoute>>;
  /** Called after each handler invocation (not for local routes). */
  readonly onResponse?: (info: { method: string; path: string; status: number; durationMs: number }) => void;
  /** The gateway's payload limit. @default 10 MiB */
  readonly maxBodyBytes?: number;
}

export interface FunctionHost {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded|.*\+json|.*\+xml))/i;

/** Starts the host on localhost. */
export async function startFunctionHost(options: FunctionHostOptions): Promise<FunctionHost> {
  const maxBodyBytes = options.maxBodyBytes ?? 10 * 1024 * 1024;
  const server: Server = createServer((req, res) => {
    void serve(req, res).catch(() => {
      if (!res.headersSent)
        writeJson(res, 500, { error: { code: 'HOST_ERROR', message: 'the local host failed' } });
      else res.destroy();
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const body = await readBody(req, maxBodyBytes);
    if (body === undefined) {
      writeJson(res, 413, {
        error: { code: 'PAYLOAD_TOO_LARGE', message: `body over ${maxBodyBytes} bytes` },
      });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const local = options.localRoutes?.[url.pathname];
    if (local) {
      await local(req, res, body);
      return;
    }
    const response = await options.adapter({ raw: req, url, body });
    res.writeHead(response.status, response.headers);
    res.end(response.body);
    options.onResponse?.({
      method: req.method ?? 'GET',
      path: url.pathname,
      status: response.status,
      durationMs: performance.now() - started,
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, 'localhost', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://localhost:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Serves a Lambda handler the way API Gateway's HTTP API (payload 2.0) invokes it. */
export function apiGatewayAdapter(handler: HttpApiHandler): HostAdapter {
  return async ({ raw, url, body }) => fromApiGatewayResult(await handler(toEvent(raw, url, body)));
}

/** Serves an Azure Functions HTTP handler the way the Functions host invokes it. */
export function azureFunctionsAdapter(handler: AzureHttpHandler, functionName = 'web-api'): HostAdapter {
  return async ({ raw, url, body }) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.rawHeaders.length; i += 2) {
      const name = raw.rawHeaders[i].toLowerCase();
      headers[name] =
        headers[name] === undefined ? raw.rawHeaders[i + 1] : `${headers[name]}, ${raw.rawHeaders[i + 1]}`;
    }
    const request = new HttpRequest({
      method: raw.method ?? 'GET',
      url: `http://localhost${url.pathname}${url.search}`,
      headers,
      ...(body.length ? { body: { bytes: body } } : {}),
    });
    const context = new InvocationContext({ invocationId: randomUUID(), functionName, logHandler: () => {} });
    const init = await handler(request, context);
    const responseHeaders: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (responseHeaders[k] = v));
    const responseBody =
      init.jsonBody !== undefined
        ? JSON.stringify(init.jsonBody)
        : typeof init.body === 'string'
          ? init.body
          : init.body instanceof Uint8Array
            ? Buffer.from(init.body)
            : '';
    return { status: init.status ?? 200, headers: responseHeaders, body: responseBody };
  };
}

/** The payload-2.0 event API Gateway would send for this request. */
function toEvent(req: IncomingMessage, url: URL, body: Buffer): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    const value = req.rawHeaders[i + 1];
    if (name === 'cookie') {
      cookies.push(...value.split(';').map((c) => c.trim()));
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const contentType = headers['content-type'] ?? '';
  const isText = body.length === 0 || TEXT_TYPES.test(contentType);
  const queryStringParameters: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    queryStringParameters[k] =
      queryStringParameters[k] === undefined ? v : `${queryStringParameters[k]},${v}`;
  }
  const now = Date.now();
  const method = req.method ?? 'GET';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(url.search ? { queryStringParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers['host'] ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !isText,
  };
}

function fromApiGatewayResult(result: APIGatewayProxyResultV2): HostResponse {
  // A bare string or object result is API Gateway's shorthand for 200 application/json.
  const structured: APIGatewayProxyStructuredResultV2 =
    typeof result === 'object' && result !== null && 'statusCode' in result
      ? result
      : { statusCode: 200, body: typeof result === 'string' ? result : JSON.stringify(result) };
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(structured.headers ?? {})) headers[k] = String(v);
  const body = structured.body ?? '';
  return {
    status: structured.statusCode ?? 200,
    headers,
    body: structured.isBase64Encoded ? Buffer.from(body, 'base64') : body,
  };
}

/** The request body, or undefined when it is over the limit. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Writes a JSON response. */
export function writeJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
