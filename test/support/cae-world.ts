/**
 * A test world for Conditional Access and CAE (issue 21): the local authority with a
 * Conditional Access rule, the local downstream API (which can revoke a user's tokens), one
 * shared store, and "containers": separately constructed token caches behind the real web
 * API handlers (the core, the Lambda adapter and the Azure Functions adapter).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { createWebApiHandler as createLambdaHandler } from '../../functions/aws/web-api';
import { createWebApiHandler as createAzureHandler } from '../../functions/azure/web-api';
import type { WebApiDeps } from '../../functions/core/deps';
import { createDownstreamClient, type DownstreamClient } from '../../functions/core/downstream';
import { handleWebApi } from '../../functions/core/web-api';
import { startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startDownstreamApi, type DownstreamApi } from '../../local/downstream';
import { createBearerValidator } from '../../shared/auth/bearer';
import { HttpsNetworkClient } from '../../shared/cache/http';
import { logicalKey, storeKey } from '../../shared/cache/partitions';
import { createTokenCache } from '../../shared/cache/token-cache';
import type { TokenCache, TokenCacheOptions } from '../../shared/cache/types';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { CounterMetrics } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import { CapturingLogger } from './cache-harness';
import { apiGatewayEvent } from './lambda-events';
import { registerSecret } from './secret-registry';

export const CAE_API_CLIENT_ID = '4c2e8a10-6b3d-4f5e-9a1c-7d8e9f0a1b2c';
const CAE_API_CLIENT_SECRET = 'local-cae-web-api-secret';
export const DOWNSTREAM_AUDIENCE = 'api://downstream';
export const DOWNSTREAM_SCOPE = `${DOWNSTREAM_AUDIENCE}/.default`;
const API_SCOPE = 'access_as_user';
/** The user the Conditional Access rule covers (needs authentication context c1 for the downstream API). */
export const CAROL = 'c0a1c0a1-0000-4000-8000-00000000ca01';
export const ALICE = 'a11ce000-0000-4000-8000-0000000a11ce';

/** One answer of the web API, whichever transport carried it. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Which handler a request goes through. */
export type Transport = 'core' | 'aws' | 'azure';

/** One container: its own cache (L1, data keys, metrics), logger and downstream client. */
export interface CaeContainer {
  readonly cache: TokenCache;
  readonly logger: CapturingLogger;
  readonly metrics: CounterMetrics;
  readonly deps: WebApiDeps;
  /** `GET /api/downstream` with the caller's token, through `transport` (@default core). */
  call(token: string, transport?: Transport): Promise<Answer>;
}

export interface CaeWorld {
  readonly authority: LocalAuthority;
  readonly downstream: DownstreamApi;
  readonly store: MemoryStore;
  /** The key ring every container uses (to open what the store holds). */
  readonly keyRing: LocalKeyRing;
  /**
   * A new container; `cache` options override the defaults (L1 off), `capabilities` the
   * client capabilities (@default ['cp1']).
   */
  container(cache?: Partial<TokenCacheOptions>, capabilities?: readonly string[]): CaeContainer;
  /** An incoming token for the web API, of `oid`, with `acrs` when the user stepped up. */
  userToken(oid: string, acrs?: readonly string[]): Promise<string>;
  /** The store key of a caller's OBO partition. */
  storeKeyOf(assertion: string): string;
  stop(): Promise<void>;
}

/** Starts the authority (Conditional Access for {@link CAROL}) and the downstream API. */
export async function startCaeWorld(): Promise<CaeWorld> {
  const authority = await startLocalAuthority({
    clients: [{ clientId: CAE_API_CLIENT_ID, clientSecret: CAE_API_CLIENT_SECRET }],
    conditionalAccess: [{ users: [CAROL], resources: [DOWNSTREAM_AUDIENCE] }],
  });
  registerSecret('client-secret', CAE_API_CLIENT_SECRET);
  const downstream = await startDownstreamApi({ authority, audience: DOWNSTREAM_AUDIENCE });
  const store = new MemoryStore();
  const masterKey = randomBytes(32);
  registerSecret('master-key', masterKey);
  const network = new HttpsNetworkClient({ ca: authority.ca });
  const clients: DownstreamClient[] = [];
  const validator = createBearerValidator({
    issuer: authority.issuer(),
    audience: [CAE_API_CLIENT_ID, `api://${CAE_API_CLIENT_ID}`],
    jwksUri: authority.jwksUri(),
    ca: authority.ca,
    requiredScopes: [API_SCOPE],
  });
  const keyRing = new LocalKeyRing({ masterKey });
  const options = (
    overrides: Partial<TokenCacheOptions>,
    logger: CapturingLogger,
    metrics: CounterMetrics,
    capabilities: readonly string[],
  ) =>
    ({
      msal: {
        clientId: CAE_API_CLIENT_ID,
        authority: authority.authority(),
        clientSecret: CAE_API_CLIENT_SECRET,
        knownAuthorities: [authority.host],
        networkClient: network,
        clientCapabilities: capabilities,
      },
      store,
      keyRing,
      l1: false,
      logger,
      metrics,
      ...overrides,
    }) satisfies TokenCacheOptions;

  return {
    authority,
    downstream,
    store,
    keyRing,
    container(overrides = {}, capabilities = ['cp1']) {
      const logger = new CapturingLogger();
      const metrics = new CounterMetrics();
      const cache = createTokenCache(options(overrides, logger, metrics, capabilities));
      const client = createDownstreamClient({ url: downstream.url });
      clients.push(client);
      const deps: WebApiDeps = {
        cache,
        validator,
        downstream: client,
        scopes: [DOWNSTREAM_SCOPE],
        authority: authority.authority(),
        logger,
      };
      const lambda = createLambdaHandler(deps);
      const azure = createAzureHandler(deps);
      return {
        cache,
        logger,
        metrics,
        deps,
        async call(token, transport = 'core') {
          const authorization = `Bearer ${token}`;
          if (transport === 'aws') {
            const result = await lambda(
              apiGatewayEvent({ method: 'GET', path: '/api/downstream', headers: { authorization } }),
              { awsRequestId: randomUUID() },
            );
            return {
              status: result.statusCode ?? 0,
              headers: (result.headers ?? {}) as Record<string, string>,
              body: result.body ?? '',
            };
          }
          if (transport === 'azure') {
            const result = await azure(
              new HttpRequest({
                method: 'GET',
                url: 'http://localhost:7071/api/downstream',
                headers: { authorization },
              }),
              new InvocationContext({
                invocationId: randomUUID(),
                functionName: 'web-api',
                logHandler: () => {},
              }),
            );
            return {
              status: result.status ?? 0,
              headers: (result.headers ?? {}) as Record<string, string>,
              body: typeof result.body === 'string' ? result.body : '',
            };
          }
          return handleWebApi({ method: 'GET', path: '/api/downstream', headers: { authorization } }, deps);
        },
      };
    },
    async userToken(oid, acrs) {
      const token = await authority.mintUserToken({
        audience: CAE_API_CLIENT_ID,
        oid,
        preferredUsername: `${oid.slice(0, 8)}@contoso.example`,
        scopes: [API_SCOPE],
        ...(acrs?.length ? { acrs, amr: ['pwd', 'mfa'] } : {}),
      });
      registerSecret('assertion', token);
      return token;
    },
    storeKeyOf(assertion) {
      return storeKey(logicalKey(CAE_API_CLIENT_ID, { kind: 'obo', assertion }));
    },
    async stop() {
      for (const c of clients) c.close();
      network.destroy();
      await downstream.stop();
      await authority.stop();
    },
  };
}

/** The base64 `claims` parameter of a `WWW-Authenticate` value, decoded. */
export function challengeClaims(header: string | undefined): unknown {
  const b64 = /claims="([^"]*)"/.exec(header ?? '')?.[1];
  return b64 === undefined ? undefined : JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
}
