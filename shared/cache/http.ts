/**
 * An MSAL network module over node:https with a keep-alive agent and an optional private
 * CA. msal-node 7 has no agent options of its own; a local authority with a generated
 * certificate, or a corporate proxy CA, needs this.
 */
import { Agent, request } from 'node:https';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';

export interface HttpsNetworkClientOptions {
  /** Extra CA certificate(s) to trust, PEM. @default the system store only */
  readonly ca?: string | readonly string[];
  /** Per-request timeout in milliseconds. @default 10_000 */
  readonly timeoutMs?: number;
}

/**
 * @example
 * const networkClient = new HttpsNetworkClient({ ca: fs.readFileSync('dev-ca.pem', 'utf8') });
 * createTokenCache({ msal: { clientId, authority, clientSecret, networkClient }, ... });
 */
export class HttpsNetworkClient implements INetworkModule {
  private readonly agent: Agent;
  private readonly timeoutMs: number;

  constructor(options: HttpsNetworkClientOptions = {}) {
    const ca = typeof options.ca === 'string' ? [options.ca] : options.ca ? [...options.ca] : undefined;
    this.agent = new Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  sendGetRequestAsync<T>(
    url: string,
    options?: NetworkRequestOptions,
    timeout?: number,
  ): Promise<NetworkResponse<T>> {
    return this.send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>('POST', url, options);
  }

  /** Closes idle keep-alive sockets (tests, shutdown). */
  destroy(): void {
    this.agent.destroy();
  }

  private send<T>(
    method: 'GET' | 'POST',
    url: string,
    options: NetworkRequestOptions | undefined,
    timeout = this.timeoutMs,
  ): Promise<NetworkResponse<T>> {
    return new Promise((resolve, reject) => {
      const body = method === 'POST' ? (options?.body ?? '') : undefined;
      const headers: Record<string, string | number> = { ...options?.headers };
      if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
      const req = request(url, { method, headers, agent: this.agent, timeout }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const responseHeaders: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) responseHeaders[k] = Array.isArray(v) ? v.join(', ') : v;
          }
          let parsed: unknown;
          try {
            parsed = text.length > 0 ? JSON.parse(text) : {};
          } catch (cause) {
            reject(
              new Error(
                `${method} ${new URL(url).pathname}: response is not JSON (status ${res.statusCode})`,
                { cause },
              ),
            );
            return;
          }
          resolve({ headers: responseHeaders, body: parsed as T, status: res.statusCode ?? 0 });
        });
      });
      req.on('timeout', () =>
        req.destroy(new Error(`${method} ${new URL(url).pathname}: timed out after ${timeout} ms`)),
      );
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
}
