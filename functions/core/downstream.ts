/**
 * The HTTP client of the downstream API: keep-alive agents created once per process, the
 * configured CAs trusted, a timeout and a response size cap on every call.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/** Options of {@link createDownstreamClient}. */
export interface DownstreamClientOptions {
  /** The URL every call goes to. */
  readonly url: string;
  /** CA certificates to trust (they replace the system store, as in node:tls). @default the system store */
  readonly ca?: readonly string[];
  /** Timeout of one call, connection included. @default 10_000 */
  readonly timeoutMs?: number;
  /** Longest response body read. @default 1_048_576 (1 MiB) */
  readonly maxResponseBytes?: number;
}

/** One call to the downstream API. */
export interface DownstreamRequest {
  /** The token to present. Never logged. */
  readonly accessToken: string;
  /** @default 'GET' */
  readonly method?: 'GET' | 'POST';
  /** JSON body of a POST. */
  readonly body?: unknown;
  /** Sent as `x-request-id` for correlation. */
  readonly requestId?: string;
}

/** What the downstream API answered. */
export interface DownstreamResponse {
  readonly status: number;
  /** The parsed JSON body (`undefined` when a non-2xx answer had none, or none that parses). */
  readonly body: unknown;
  readonly durationMs: number;
  /** Its `WWW-Authenticate` header on a 401 (a CAE claims challenge, see shared/auth/claims.ts). */
  readonly wwwAuthenticate?: string;
}

/** Why a downstream call produced no usable answer. */
export type DownstreamFailure = 'unreachable' | 'timeout' | 'invalid_response';

/** A downstream call that failed before a usable answer; the message never holds the token. */
export class DownstreamError extends Error {
  override readonly name = 'DownstreamError';
  constructor(
    readonly failure: DownstreamFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Calls the downstream API. */
export interface DownstreamClient {
  /** @throws DownstreamError when there is no usable answer; a non-2xx answer is returned, not thrown */
  call(request: DownstreamRequest): Promise<DownstreamResponse>;
  /** Closes idle keep-alive sockets: `destroy`, as on every store, key ring and client of this library. */
  destroy(): void;
  /** @deprecated Renamed {@link DownstreamClient.destroy}, the one lifecycle verb of this library. */
  close(): void;
}

/**
 * @example
 * const downstream = createDownstreamClient({ url: config.downstream.url, ca });
 * const { status, body } = await downstream.call({ accessToken: result.accessToken });
 */
export function createDownstreamClient(options: DownstreamClientOptions): DownstreamClient {
  const url = new URL(options.url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  const secure = url.protocol === 'https:';
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, ...(options.ca ? { ca: [...options.ca] } : {}) })
    : new HttpAgent({ keepAlive: true });
  const send = secure ? httpsRequest : httpRequest;
  const where = `${url.host}${url.pathname}`;
  const destroy = (): void => agent.destroy();

  return {
    call(request) {
      const started = performance.now();
      const method = request.method ?? 'GET';
      const payload = method === 'POST' ? Buffer.from(JSON.stringify(request.body ?? null)) : undefined;
      const headers: Record<string, string | number> = {
        authorization: `Bearer ${request.accessToken}`,
        accept: 'application/json',
        ...(request.requestId ? { 'x-request-id': request.requestId } : {}),
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
      };
      return new Promise<DownstreamResponse>((resolve, reject) => {
        const req = send(url, { method, headers, agent, timeout: timeoutMs }, (res) => {
          readBody(res, maxBytes).then(
            (text) => {
              const status = res.statusCode ?? 0;
              const durationMs = performance.now() - started;
              const ok = status >= 200 && status < 300;
              let body: unknown;
              try {
                body = text.length > 0 ? JSON.parse(text) : undefined;
              } catch (cause) {
                if (ok) {
                  reject(
                    new DownstreamError(
                      'invalid_response',
                      `${where} answered ${status} with a body that is not JSON`,
                      {
                        cause,
                      },
                    ),
                  );
                  return;
                }
              }
              if (ok && body === undefined) {
                reject(
                  new DownstreamError('invalid_response', `${where} answered ${status} with an empty body`),
                );
                return;
              }
              const challenge = status === 401 ? res.headers['www-authenticate'] : undefined;
              resolve({ status, body, durationMs, ...(challenge ? { wwwAuthenticate: challenge } : {}) });
            },
            (cause: unknown) =>
              reject(
                cause instanceof DownstreamError
                  ? cause
                  : new DownstreamError('unreachable', `${where}: the response broke off`, { cause }),
              ),
          );
        });
        req.on('timeout', () =>
          req.destroy(new DownstreamError('timeout', `${where} did not answer within ${timeoutMs} ms`)),
        );
        req.on('error', (cause) =>
          reject(
            cause instanceof DownstreamError
              ? cause
              : new DownstreamError('unreachable', `${where} is unreachable (${errorCode(cause)})`, {
                  cause,
                }),
          ),
        );
        req.end(payload);
      });
    },
    destroy,
    close: destroy,
  };
}

function readBody(res: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        reject(new DownstreamError('invalid_response', `the response is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('error', reject);
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'network error';
}
