/**
 * A managed-identity endpoint as App Service and Azure Functions expose it, for the local
 * stack and tests: `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...` with the
 * `X-IDENTITY-HEADER: $IDENTITY_HEADER` secret, `client_id` (or `mi_res_id` /
 * `principal_id`) naming a user-assigned identity, none for the system-assigned one;
 * answers `{access_token, expires_on, resource, token_type, client_id}`. What
 * @azure/identity's ManagedIdentityCredential (through msal-node) sends and reads.
 *
 * In Azure, Entra itself issues these tokens; here the endpoint is their issuer (with
 * discovery and JWKS), so the local authority trusts it as a federated credential's issuer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen, sendJson, stopServer } from './http';
import { LocalOidcIssuer } from './oidc-issuer';

/** A managed identity of the app: its client (application) id and its principal (object) id, the token's `sub`. */
export interface LocalIdentity {
  readonly clientId: string;
  readonly principalId: string;
}

/** Options of {@link startLocalManagedIdentity}. */
export interface LocalManagedIdentityOptions {
  /** TCP port on localhost. @default 0 (any free port) */
  readonly port?: number;
  /** The `tid` claim. @default '90bb045f-08cc-4e4a-8ed4-45f406fd29fe' (the local authority's) */
  readonly tenantId?: string;
  /** The system-assigned identity; `null` when the app has none. @default LOCAL_SYSTEM_IDENTITY */
  readonly systemAssigned?: LocalIdentity | null;
  /** User-assigned identities. @default [LOCAL_USER_ASSIGNED_IDENTITY] */
  readonly userAssigned?: readonly LocalIdentity[];
  /** Lifetime of issued tokens. @default 86_400 (managed identity tokens live about a day) */
  readonly tokenLifetimeSeconds?: number;
}

/** A fault the endpoint answers with instead of a token. */
export interface ManagedIdentityFault {
  /** `unavailable`: 503; `slow`: answers after `delayMs`. */
  readonly kind: 'unavailable' | 'slow';
  /** For `slow`. @default 10_000 */
  readonly delayMs?: number;
  /** How many requests it affects. @default Infinity */
  readonly count?: number;
}

/** A running local managed-identity endpoint. */
export interface LocalManagedIdentity {
  /** `IDENTITY_ENDPOINT`. */
  readonly endpoint: string;
  /** `IDENTITY_HEADER`: the per-process secret the platform sets. */
  readonly header: string;
  /** Both variables, for the function's environment. */
  readonly env: { readonly IDENTITY_ENDPOINT: string; readonly IDENTITY_HEADER: string };
  /** The tokens' `iss`, to register as the federated credential's issuer. */
  readonly issuer: string;
  /** Token requests received (failed ones too). */
  calls(): number;
  setFault(fault: ManagedIdentityFault | undefined): void;
  stop(): Promise<void>;
}

/** Development values, not identities of anything real. */
export const LOCAL_SYSTEM_IDENTITY: LocalIdentity = {
  clientId: '6b1c7e52-0f7a-4c1d-9e55-31a0c2f9d001',
  principalId: 'c3d4e5f6-1a2b-4c3d-8e9f-0a1b2c3d4e01',
};
export const LOCAL_USER_ASSIGNED_IDENTITY: LocalIdentity = {
  clientId: '0e2a4c6d-8f10-4a32-b456-7890abcdef02',
  principalId: 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e002',
};

/** Starts the endpoint. */
export async function startLocalManagedIdentity(
  options: LocalManagedIdentityOptions = {},
): Promise<LocalManagedIdentity> {
  const header = randomBytes(24).toString('hex');
  const tenantId = options.tenantId ?? '90bb045f-08cc-4e4a-8ed4-45f406fd29fe';
  const system = options.systemAssigned === undefined ? LOCAL_SYSTEM_IDENTITY : options.systemAssigned;
  const users = options.userAssigned ?? [LOCAL_USER_ASSIGNED_IDENTITY];
  const lifetime = options.tokenLifetimeSeconds ?? 86_400;
  let calls = 0;
  let fault: (ManagedIdentityFault & { remaining: number }) | undefined;
  // Known once the port is: the issuer URL names it.
  const ref: { issuer?: LocalOidcIssuer } = {};

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (await ref.issuer!.serve(req, res, url.pathname)) return;
    if (req.method !== 'GET' || url.pathname !== '/msi/token') {
      return sendJson(res, 404, { statusCode: 404, message: 'Not found' });
    }
    calls++;
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.kind === 'unavailable') {
        return sendJson(res, 503, {
          statusCode: 503,
          message: 'The managed identity endpoint is unavailable.',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, fault?.delayMs ?? 10_000).unref());
    }
    if (req.headers['x-identity-header'] !== header) {
      return sendJson(res, 401, { statusCode: 401, message: 'Missing or wrong X-IDENTITY-HEADER.' });
    }
    const q = url.searchParams;
    if (q.get('api-version') !== '2019-08-01') {
      return sendJson(res, 400, {
        statusCode: 400,
        message: `Unsupported api-version '${q.get('api-version') ?? ''}'.`,
      });
    }
    const resource = q.get('resource');
    if (!resource) return sendJson(res, 400, { statusCode: 400, message: 'resource is required.' });
    const wanted = q.get('client_id') ?? q.get('principal_id') ?? q.get('mi_res_id');
    const identity =
      wanted === null
        ? system
        : users.find(
            (u) => u.clientId === wanted || u.principalId === wanted || wanted.endsWith(`/${u.clientId}`),
          );
    if (!identity) {
      return sendJson(res, 400, {
        statusCode: 400,
        message:
          wanted === null
            ? 'No system-assigned managed identity is enabled for this app.'
            : 'No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.',
      });
    }
    const now = Math.floor(Date.now() / 1000);
    const audience = resource.replace(/\/\.default$/, '');
    const token = await ref.issuer!.sign({
      aud: audience,
      sub: identity.principalId,
      oid: identity.principalId,
      tid: tenantId,
      azp: identity.clientId,
      appid: identity.clientId,
      idtyp: 'app',
      iat: now,
      nbf: now,
      exp: now + lifetime,
      uti: randomUUID(),
    });
    sendJson(res, 200, {
      access_token: token,
      expires_on: String(now + lifetime),
      resource,
      token_type: 'Bearer',
      client_id: identity.clientId,
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { statusCode: 500, message: 'internal error' });
      else res.destroy();
    });
  });
  const port = await listen(server, options.port ?? 0);
  const origin = `http://localhost:${port}`;
  const issuer = (ref.issuer = new LocalOidcIssuer(origin));
  const endpoint = `${origin}/msi/token`;
  return {
    endpoint,
    header,
    env: { IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: header },
    issuer: issuer.issuer,
    calls: () => calls,
    setFault(next) {
      fault = next ? { ...next, remaining: next.count ?? Number.POSITIVE_INFINITY } : undefined;
    },
    stop: () => stopServer(server),
  };
}
