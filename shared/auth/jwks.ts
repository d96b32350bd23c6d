/**
 * Signing keys of the identity provider, fetched once per process per JWKS URI and kept
 * (jose refetches at most once per cooldown when a token names an unknown `kid`, so a
 * flood of forged kids cannot turn into a flood of JWKS requests).
 */
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createRemoteJWKSet, customFetch, type FetchImplementation, type JWTVerifyGetKey } from 'jose';

/** Options of {@link sharedRemoteJwks}. */
export interface RemoteJwksOptions {
  /** CA certificate(s) to trust for the JWKS fetch, PEM; they replace the system store, as in node:tls. @default the system store */
  readonly ca?: string | readonly string[];
  /** Time after a fetch before an unknown `kid` may trigger another. @default 30_000 */
  readonly cooldownMs?: number;
  /** Time keys are used before a refetch. @default 600_000 (10 minutes) */
  readonly cacheMaxAgeMs?: number;
  /** Per-fetch timeout. @default 5_000 */
  readonly timeoutMs?: number;
}

/** A key set document larger than this is refused (real ones are a few KiB). */
const MAX_JWKS_BYTES = 1024 * 1024;

const sets = new Map<string, JWTVerifyGetKey>();

/**
 * The process-wide key resolver for `jwksUri` (created on first use, then shared by every
 * validator naming the same URI and CA).
 */
export function sharedRemoteJwks(jwksUri: string, options: RemoteJwksOptions = {}): JWTVerifyGetKey {
  const ca = typeof options.ca === 'string' ? [options.ca] : options.ca ? [...options.ca] : undefined;
  const id = `${jwksUri}\n${ca ? createHash('sha256').update(ca.join('\n')).digest('hex') : ''}`;
  let set = sets.get(id);
  if (!set) {
    set = createRemoteJWKSet(new URL(jwksUri), {
      cooldownDuration: options.cooldownMs ?? 30_000,
      cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
      timeoutDuration: options.timeoutMs ?? 5_000,
      [customFetch]: nodeFetch(ca),
    });
    sets.set(id, set);
  }
  return set;
}

/**
 * A fetch for jose over node:http(s) with a keep-alive agent, so a private CA can be
 * trusted per client (global fetch only honours NODE_EXTRA_CA_CERTS, set before start).
 */
function nodeFetch(ca: string[] | undefined): FetchImplementation {
  const httpsAgent = new HttpsAgent({ keepAlive: true, ...(ca ? { ca } : {}) });
  const httpAgent = new HttpAgent({ keepAlive: true });
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const headers: Record<string, string> = {};
      init.headers.forEach((value, name) => {
        headers[name] = value;
      });
      const req = send(
        target,
        {
          method: init.method,
          headers,
          agent: target.protocol === 'https:' ? httpsAgent : httpAgent,
          signal: init.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_JWKS_BYTES) {
              res.destroy(new Error(`JWKS response from ${target.host} exceeds ${MAX_JWKS_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', reject);
          res.on('end', () => {
            const responseHeaders = new Headers();
            const contentType = res.headers['content-type'];
            if (contentType) responseHeaders.set('content-type', contentType);
            // Response refuses a body with 1xx/204/304; jose only accepts 200 anyway.
            const status = res.statusCode ?? 502;
            const bodyAllowed = status >= 200 && status !== 204 && status !== 304;
            resolve(
              new Response(bodyAllowed ? Buffer.concat(chunks) : null, {
                status: status >= 200 && status <= 599 ? status : 502,
                headers: responseHeaders,
              }),
            );
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
}
