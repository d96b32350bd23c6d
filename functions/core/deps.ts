/**
 * What the handlers need, built once per process at the first invocation: the config, the
 * token cache, the bearer validator and the downstream client. Nothing here is
 * user-specific; per-caller state lives in the cache's partitions.
 */
import { createBearerValidator, type BearerValidator } from '../../shared/auth/bearer';
import type { TokenCache } from '../../shared/cache/types';
import type { CacheConfig, Environment } from '../../shared/config';
import { JsonLogger, type Logger, type Metrics } from '../../shared/observability';
import { trustedCas, type RuntimeOptions } from '../../shared/runtime';
import { isMultiTenantAuthority, loadFunctionConfig, type FunctionConfig } from './config';
import { createDownstreamClient, type DownstreamClient } from './downstream';

/** What {@link handleWebApi} uses. */
export interface WebApiDeps {
  /** `evictAccessToken` removes a token the downstream API revoked (CAE); without it the retry still runs. */
  readonly cache: Pick<TokenCache, 'acquireTokenOnBehalfOf'> & Partial<Pick<TokenCache, 'evictAccessToken'>>;
  readonly validator: BearerValidator;
  readonly downstream: DownstreamClient;
  /** Scopes requested on behalf of the caller. */
  readonly scopes: readonly string[];
  /**
   * Run the OBO exchange in the caller's tenant (the validated `tid`): the configured
   * authority is `organizations`/`common`. @default false (the configured authority)
   */
  readonly oboInCallerTenant?: boolean;
  /**
   * The authority callers sign in at, named (`authorization_uri`) in the step-up challenge
   * relayed from Conditional Access. @default none (the challenge names no authority)
   */
  readonly authority?: string;
  readonly logger: Logger;
}

/** What {@link runDaemon} uses. */
export interface DaemonDeps {
  readonly cache: Pick<TokenCache, 'acquireTokenForApp'>;
  readonly downstream: DownstreamClient;
  /** The `/.default` scope of the app-only token. */
  readonly appScope: string;
  /** Run once per tenant (`DAEMON_TENANTS`), each in its own app partition. @default the authority's tenant */
  readonly tenants?: readonly string[];
  readonly logger: Logger;
}

/** Everything both handlers use, from one config. */
export interface FunctionDeps extends WebApiDeps, DaemonDeps {
  readonly cache: TokenCache;
  readonly config: FunctionConfig;
}

/** A cloud's composition: `createTokenCacheFromConfig` of `msal-cloud-cache/aws` or `/azure`. */
export type CacheFactory = (config: CacheConfig, options: RuntimeOptions) => Promise<TokenCache>;

/** Ready dependencies, or a function producing them on first use. */
export type DepsSource<T> = T | (() => Promise<T>);

/** Options of {@link createFunctionDeps}. */
export interface FunctionDepsOptions {
  /** Builds the token cache: the cloud's composition. */
  readonly createCache: CacheFactory;
  /** @default process.env */
  readonly env?: Environment;
  /** A loaded config; `env` is ignored when given. @default loadFunctionConfig(env) */
  readonly config?: FunctionConfig;
  /** @default a JsonLogger at the configured level */
  readonly logger?: Logger;
  /** @default the composition's: EMF on Lambda (msal-cloud-cache/aws), OTel when a meter provider is registered (msal-cloud-cache/azure) */
  readonly metrics?: Metrics;
}

/**
 * Builds the dependencies of both handlers from the environment.
 * @throws ConfigurationError naming the variable at fault
 */
export async function createFunctionDeps(options: FunctionDepsOptions): Promise<FunctionDeps> {
  const config = options.config ?? loadFunctionConfig(options.env ?? process.env);
  const logger =
    options.logger ?? new JsonLogger({ level: config.logLevel, base: { component: 'functions' } });
  const ca = trustedCas(config);
  // Without metrics the cloud's composition picks its default (EMF on Lambda, OTel on Azure).
  const cache = await options.createCache(config, {
    logger,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(ca ? { ca } : {}),
  });
  if (config.api.requiredScopes === '*') {
    logger.warn('API_REQUIRED_SCOPES is "*": the web API exchanges any delegated token for this audience', {
      setting: 'API_REQUIRED_SCOPES',
    });
  }
  const multiTenant = config.api.multiTenant;
  if (multiTenant && multiTenant.allowedTenants.length === 0) {
    logger.warn('API_ALLOWED_TENANTS is unset: the multi-tenant web API accepts tokens of any tenant', {
      setting: 'API_ALLOWED_TENANTS',
    });
  }
  return {
    config,
    cache,
    logger,
    validator: createBearerValidator({
      issuer: multiTenant
        ? {
            multiTenant: {
              authorityHost: multiTenant.authorityHost,
              allowedTenants: multiTenant.allowedTenants,
            },
          }
        : config.api.issuers,
      audience: config.api.audiences,
      jwksUri: config.api.jwksUri,
      // Only delegated tokens: the OBO route acts on behalf of a user; app-only tokens get 403.
      requiredScopes: config.api.requiredScopes,
      ...(ca ? { ca } : {}),
    }),
    downstream: createDownstreamClient({
      url: config.downstream.url,
      timeoutMs: config.downstream.timeoutMs,
      ...(ca ? { ca } : {}),
    }),
    scopes: config.downstream.scopes,
    oboInCallerTenant: isMultiTenantAuthority(config.msal.tenant),
    authority: config.msal.authority,
    appScope: config.downstream.appScope,
    ...(config.downstream.tenants ? { tenants: config.downstream.tenants } : {}),
  };
}

/**
 * Memoises an async factory: the first call starts it, later calls share the result. A
 * failure is not kept, so a cold start that hit a transient error (Secrets Manager
 * throttling) is retried by the next invocation.
 */
export function lazy<T>(factory: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= factory().catch((e: unknown) => {
      pending = undefined;
      throw e;
    });
    return pending;
  };
}

/** Resolves a {@link DepsSource}. */
export function resolveDeps<T>(source: DepsSource<T>): Promise<T> {
  return typeof source === 'function' ? (source as () => Promise<T>)() : Promise.resolve(source);
}
