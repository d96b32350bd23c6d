/**
 * A downstream API stub for tests and `npm start`: it checks the bearer token it receives
 * exactly as a real resource server would (signature from the local authority's JWKS,
 * issuer, audience, expiry, optionally a scope) and answers who called. It can revoke a
 * user's tokens as a CAE resource does (downstream-revocation.ts): 401 with a claims challenge.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ANY_SCOPE, createBearerValidator } from '../shared/auth/bearer';
import { AuthenticationError } from '../shared/errors';
import type { LocalAuthority } from './authority/types';
import { RevocationList, type DownstreamRevocation } from './downstream-revocation';
import { listen, readBody, sendJson } from './http';

/** Options of {@link startDownstreamApi}. */
export interface DownstreamApiOptions {
  /** The authority whose tokens are accepted (its default tenant's issuer and JWKS). */
  readonly authority: Pick<LocalAuthority, 'issuer' | 'jwksUri' | 'ca'>;
  /** Accepted `aud` value(s): the downstream API's client id or application ID URI. */
  readonly audience: string | readonly string[];
  /**
   * The delegated scope (in `scp`) a user's token, and the app permission (in `roles`) an
   * app-only token, must grant: checked separately, as a resource server does.
   * @default none: any user or app-only token for the audience
   */
  readonly requiredScope?: string;
  /** Port on localhost. @default 0 (a free one) */
  readonly port?: number;
  /** Tenants whose tokens are accepted (each tenant's issuer). @default the authority's default tenant */
  readonly tenants?: readonly string[];
}

/** One request the stub received; never the token. */
export interface DownstreamCall {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** Why the token was refused (an AuthenticationError reason). */
  readonly reason?: string;
  /** The caller's object id (a user's, or the app's service principal's). */
  readonly oid?: string;
  /** The calling app (`appid`, or `azp`). */
  readonly appid?: string;
  /** The token's id (`uti`), to tell tokens apart without the token. */
  readonly tokenId?: string;
  /** True when the token was refused with a CAE claims challenge (a revoked user). */
  readonly challenged?: boolean;
}

/** A fault the stub answers with instead of serving. */
export interface DownstreamFault {
  /** Status of the answer. */
  readonly status: number;
  /** A body that is not JSON, to test clients' handling of it. @default false: a JSON error body */
  readonly garbageBody?: boolean;
}

/** A running downstream stub. */
export interface DownstreamApi {
  /** `http://localhost:PORT/api/data`: the URL to configure as DOWNSTREAM_URL. */
  readonly url: string;
  /** Every request received so far, oldest first. */
  calls(): readonly DownstreamCall[];
  /** Makes every request fail with this answer, or recover with `undefined`. */
  setFault(fault: DownstreamFault | undefined): void;
  /**
   * Revokes a user's tokens (CAE): they are refused with 401 and a claims challenge;
   * also `POST /_admin/revoke` with `{"oid": "..."}`. Returns the revocation time.
   */
  revoke(revocation: DownstreamRevocation): number;
  /** Lifts a user's revocation. */
  restore(oid: string): void;
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * Starts the stub on localhost (plain HTTP).
 * @example
 * const downstream = await startDownstreamApi({ authority, audience: 'api://downstream' });
 * // DOWNSTREAM_URL = downstream.url
 */
export async function startDownstreamApi(options: DownstreamApiOptions): Promise<DownstreamApi> {
  const validator = createBearerValidator({
    issuer: options.tenants?.length
      ? options.tenants.map((t) => options.authority.issuer(t))
      : options.authority.issuer(),
    audience: options.audience,
    jwksUri: options.authority.jwksUri(),
    ca: options.authority.ca,
    requiredScopes: options.requiredScope ? [options.requiredScope] : ANY_SCOPE,
    requiredAppPermissions: options.requiredScope ? [options.requiredScope] : ANY_SCOPE,
  });
  const calls: DownstreamCall[] = [];
  let fault: DownstreamFault | undefined;
  const revocations = new RevocationList(
    `${options.authority.issuer().replace(/\/v2\.0$/, '')}/oauth2/v2.0/authorize`,
  );

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const body = (await readBody(req, MAX_BODY_BYTES)).toString('utf8');
    if (method === 'POST' && path === '/_admin/revoke') {
      adminRevoke(body, res);
      return;
    }
    if (fault) {
      calls.push({ method, path, status: fault.status });
      if (fault.garbageBody) {
        res.writeHead(fault.status, { 'content-type': 'text/html' }).end('<html>upstream error</html>');
      } else {
        send(res, fault.status, { ok: false, error: 'injected_fault' });
      }
      return;
    }
    try {
      const { claims } = await validator.validate(req.headers.authorization);
      const oid = typeof claims.oid === 'string' ? claims.oid : undefined;
      const appidClaim = claims.appid ?? claims.azp;
      const appid = typeof appidClaim === 'string' ? appidClaim : undefined;
      const tokenId = typeof claims.uti === 'string' ? claims.uti : undefined;
      const challenge = revocations.check(claims);
      if (challenge) {
        calls.push({
          method,
          path,
          status: 401,
          reason: 'revoked',
          challenged: true,
          ...(oid ? { oid } : {}),
          ...(tokenId ? { tokenId } : {}),
        });
        res.setHeader('www-authenticate', challenge);
        send(res, 401, { ok: false, error: 'insufficient_claims' });
        return;
      }
      const scopes =
        typeof claims.scp === 'string'
          ? claims.scp.split(' ')
          : Array.isArray(claims.roles)
            ? claims.roles.filter((r): r is string => typeof r === 'string')
            : [];
      calls.push({
        method,
        path,
        status: 200,
        ...(oid ? { oid } : {}),
        ...(appid ? { appid } : {}),
        ...(tokenId ? { tokenId } : {}),
      });
      send(res, 200, {
        ok: true,
        caller: { oid, appid },
        scopes,
        ...(method === 'POST' ? { received: parseJson(body) } : {}),
      });
    } catch (e) {
      if (!(e instanceof AuthenticationError)) throw e;
      const status = e.reason === 'insufficient_scope' ? 403 : 401;
      calls.push({ method, path, status, reason: e.reason });
      res.setHeader(
        'www-authenticate',
        `Bearer error="${status === 403 ? 'insufficient_scope' : 'invalid_token'}"`,
      );
      send(res, status, { ok: false, error: e.reason });
    }
  }

  /** `POST /_admin/revoke {"oid": "<user object id>", "always"?: true}`: development only. */
  function adminRevoke(body: string, res: ServerResponse): void {
    const request = parseJson(body) as { oid?: unknown; always?: unknown } | null;
    const oid = request?.oid;
    if (typeof oid !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(oid)) {
      send(res, 400, { ok: false, error: 'expected a JSON body {"oid": "<user object id>"}' });
      return;
    }
    const revokedAt = revocations.revoke({ oid, always: request?.always === true });
    send(res, 200, { ok: true, revoked: oid, revokedAt });
  }

  const server: Server = createServer((req, res) => {
    serve(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { ok: false, error: 'stub_failure' });
      else res.destroy();
    });
  });
  const port = await listen(server, options.port ?? 0);

  return {
    url: `http://localhost:${port}/api/data`,
    calls: () => [...calls],
    setFault(next) {
      fault = next;
    },
    revoke: (revocation) => revocations.revoke(revocation),
    restore: (oid) => revocations.restore(oid),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

/** A JSON answer the stub's callers must not cache. */
function send(res: ServerResponse, status: number, body: unknown): void {
  sendJson(res, status, body, { 'content-type': 'application/json', 'cache-control': 'no-store' });
}

function parseJson(text: string): unknown {
  try {
    return text.length > 0 ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}
