/**
 * The handlers' configuration: the cache's settings (shared/config.ts) plus the handlers'
 * own layer (`DOWNSTREAM_*`, `API_*`, `DAEMON_SCOPE`). Every problem of both layers is
 * reported at once, each naming its variable.
 */
import {
  CacheVariables,
  EnvReader,
  GUID_PATTERN,
  deepFreeze,
  invalid,
  missing,
  readCacheConfig,
  type CacheConfig,
  type CacheVariable,
  type Environment,
} from '../../shared/config';
import { ConfigurationError } from '../../shared/errors';

/** The handlers' own variables. */
export const HandlerVariables = [
  'DOWNSTREAM_URL',
  'DOWNSTREAM_SCOPES',
  'DAEMON_SCOPE',
  'DAEMON_TENANTS',
  'DOWNSTREAM_TIMEOUT_MS',
  'API_AUDIENCE',
  'API_ISSUER',
  'API_JWKS_URI',
  'API_REQUIRED_SCOPES',
  'API_ALLOWED_TENANTS',
] as const;

/** Every variable the handlers read: the cache's and their own. */
export const FunctionVariables = [...CacheVariables, ...HandlerVariables] as const;

/** One of {@link FunctionVariables}. */
export type FunctionVariable = CacheVariable | (typeof HandlerVariables)[number];

/** The handlers' own settings. */
export interface HandlerConfig {
  readonly downstream: {
    readonly url: string;
    /** Scopes requested on behalf of a caller. */
    readonly scopes: readonly string[];
    /** The daemon's `/.default` scope. */
    readonly appScope: string;
    /** DAEMON_TENANTS: the daemon runs once per tenant, lower case. Absent: the authority's tenant. */
    readonly tenants?: readonly string[];
    readonly timeoutMs: number;
  };
  /** Validation of incoming bearer tokens. */
  readonly api: {
    readonly audiences: readonly string[];
    /** Accepted issuers; empty with {@link HandlerConfig.api.multiTenant}. */
    readonly issuers: readonly string[];
    /**
     * Set when MSAL_AUTHORITY is `organizations`/`common` and API_ISSUER is unset: `iss` must
     * be the issuer of the token's own `tid`, and the OBO exchange runs in that tenant.
     */
    readonly multiTenant?: {
      /** `https://login.microsoftonline.com`: MSAL_AUTHORITY's origin. */
      readonly authorityHost: string;
      /** API_ALLOWED_TENANTS, lower case; empty: any tenant (warned at cold start). */
      readonly allowedTenants: readonly string[];
    };
    readonly jwksUri: string;
    /** Delegated scopes (`scp`) one of which a caller's token must carry, or `'*'` for any. */
    readonly requiredScopes: readonly string[] | '*';
  };
}

/** What the handlers run on: the cache's settings and their own. */
export type FunctionConfig = CacheConfig & HandlerConfig;

const SCOPE = /^[\x21-\x7e]+$/;
const SCOPES_EXPECTED = 'space- or comma-separated scopes, e.g. "api://downstream/Data.Read"';

/**
 * Reads and validates both layers.
 * @throws ConfigurationError listing every variable that is missing or invalid
 * @example const config = loadFunctionConfig(); // process.env
 */
export function loadFunctionConfig(env: Environment = process.env): FunctionConfig {
  const read = new EnvReader(env);
  const cache = readCacheConfig(read);
  const handlers = readHandlerConfig(read, cache);
  read.done();
  return deepFreeze({ ...cache, ...handlers });
}

/** The handlers' layer from a shared reader (problems are collected in `read`). */
export function readHandlerConfig(read: EnvReader, cache: CacheConfig): HandlerConfig {
  const { clientId, authority, tenant } = cache.msal;
  const scopes = read.attempt(() => {
    const raw = read.required('DOWNSTREAM_SCOPES', SCOPES_EXPECTED);
    const list = raw.split(/[\s,]+/).filter((s) => s.length > 0);
    if (list.length === 0 || !list.every((s) => SCOPE.test(s)))
      throw invalid('DOWNSTREAM_SCOPES', SCOPES_EXPECTED, raw);
    return list;
  }, [] as string[]);
  const appScope = read.attempt(() => {
    const value = read.optional('DAEMON_SCOPE') ?? (scopes.length > 0 ? defaultAppScope(scopes[0]) : '');
    if (value !== '' && !/^\S+\/\.default$/.test(value)) {
      throw invalid(
        'DAEMON_SCOPE',
        'one scope ending in "/.default", e.g. "api://downstream/.default"',
        value,
      );
    }
    return value;
  }, '');

  const daemonTenants = read.attempt(() => {
    const list = read.list('DAEMON_TENANTS', ',');
    if (!list.every((t) => GUID_PATTERN.test(t))) {
      throw invalid(
        'DAEMON_TENANTS',
        "comma-separated tenant ids (GUIDs), or unset for the authority's tenant",
        list.join(','),
      );
    }
    return [...new Set(list.map((t) => t.toLowerCase()))];
  }, [] as string[]);
  const explicitIssuers = read.list('API_ISSUER', ',').length > 0;
  const multiTenant = !explicitIssuers && authority !== '' && isMultiTenantAuthority(tenant);
  const issuers = read.attempt(() => {
    const list = read.list('API_ISSUER', ',');
    if (list.length === 0 && authority !== '' && !multiTenant)
      list.push(...defaultIssuers(authority, tenant));
    for (const issuer of list) read.url('API_ISSUER', issuer, { anyScheme: true });
    return list;
  }, [] as string[]);
  const allowedTenants = read.attempt(
    () => readAllowedTenants(read, multiTenant, explicitIssuers),
    [] as string[],
  );
  const audiences = read.list('API_AUDIENCE', ',');
  if (audiences.length === 0) audiences.push(`api://${clientId}`, clientId);

  return {
    downstream: {
      url: read.attempt(
        () => read.url('DOWNSTREAM_URL', read.required('DOWNSTREAM_URL', 'the URL of the downstream API')),
        '',
      ),
      scopes,
      appScope,
      ...(daemonTenants.length > 0 ? { tenants: daemonTenants } : {}),
      timeoutMs: read.integer('DOWNSTREAM_TIMEOUT_MS', 10_000, 1),
    },
    api: {
      audiences,
      issuers,
      ...(multiTenant ? { multiTenant: { authorityHost: new URL(authority).origin, allowedTenants } } : {}),
      jwksUri: read.attempt(() => {
        const value = read.optional('API_JWKS_URI');
        // Derived from a valid authority only: a bad MSAL_AUTHORITY is reported once, as itself.
        if (value === undefined && multiTenant)
          return `${new URL(authority).origin}/common/discovery/v2.0/keys`;
        if (value === undefined) return authority === '' ? '' : `${authority}/discovery/v2.0/keys`;
        return read.url('API_JWKS_URI', value);
      }, ''),
      requiredScopes: read.attempt(() => readRequiredScopes(read), [] as string[]),
    },
  };
}

/** Whether an authority's tenant segment is one of Entra's multi-tenant aliases. */
export function isMultiTenantAuthority(tenant: string): boolean {
  return ['organizations', 'common'].includes(tenant.toLowerCase());
}

/** API_ALLOWED_TENANTS: GUIDs, only for a multi-tenant authority without API_ISSUER. */
function readAllowedTenants(read: EnvReader, multiTenant: boolean, explicitIssuers: boolean): string[] {
  const expected = 'comma-separated tenant ids (GUIDs), or unset to accept any tenant';
  const list = read.list('API_ALLOWED_TENANTS', ',');
  if (list.length === 0) return [];
  if (!list.every((t) => GUID_PATTERN.test(t)))
    throw invalid('API_ALLOWED_TENANTS', expected, list.join(','));
  if (!multiTenant) {
    throw new ConfigurationError(
      'API_ALLOWED_TENANTS',
      explicitIssuers
        ? 'is set with API_ISSUER: the issuer list already names the accepted tenants; unset one of them'
        : "applies to a multi-tenant API only (MSAL_AUTHORITY's tenant `organizations` or `common`); a single-tenant API accepts its own tenant only",
    );
  }
  return [...new Set(list.map((t) => t.toLowerCase()))];
}

/** Fail closed: the scopes are required; `*` alone is the explicit, logged opt-out. */
function readRequiredScopes(read: EnvReader): readonly string[] | '*' {
  const expected =
    'the delegated scopes a caller\'s token must carry in scp, comma-separated, e.g. "access_as_user" ("*" accepts any delegated scope: not recommended)';
  const scopes = read.list('API_REQUIRED_SCOPES', ',');
  if (scopes.length === 0) throw missing('API_REQUIRED_SCOPES', expected, undefined);
  if (scopes.length === 1 && scopes[0] === '*') return '*';
  if (!scopes.every((s) => SCOPE.test(s) && s !== '*')) {
    throw invalid('API_REQUIRED_SCOPES', expected, scopes.join(','));
  }
  return scopes;
}

/** Issuers of v2 (and, on the public cloud, v1) tokens of a tenant; needs a tenant id. */
function defaultIssuers(authority: string, tenant: string): string[] {
  if (!GUID_PATTERN.test(tenant)) {
    throw new ConfigurationError(
      'API_ISSUER',
      `required when MSAL_AUTHORITY's tenant is a domain, not a tenant id (got "${tenant}"); set the issuer(s) incoming tokens carry, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0 (with "organizations" or "common" the issuer of each token's own tenant is accepted)`,
    );
  }
  const issuers = [`${authority}/v2.0`];
  if (new URL(authority).host === 'login.microsoftonline.com')
    issuers.push(`https://sts.windows.net/${tenant}/`);
  return issuers;
}

/** `api://downstream/Data.Read` → `api://downstream/.default`. */
function defaultAppScope(scope: string): string {
  const slash = scope.lastIndexOf('/');
  if (slash <= 0 || scope.endsWith('//')) {
    throw new ConfigurationError(
      'DAEMON_SCOPE',
      `cannot be derived from DOWNSTREAM_SCOPES "${scope}" (no resource prefix); set it, e.g. "api://downstream/.default"`,
    );
  }
  return `${scope.slice(0, slash)}/.default`;
}
