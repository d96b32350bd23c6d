/**
 * Environment → typed, validated, frozen configuration of the functions. Every problem is
 * a {@link ConfigurationError} naming the variable and what was expected; secret values
 * are never echoed.
 *
 * | Variable | Required | Default | Meaning |
 * |---|---|---|---|
 * | `MSAL_CLIENT_ID` | yes | | Application (client) id of this app: a GUID (or, for a local authority, an app id of letters, digits, `.`, `_`, `-`). |
 * | `MSAL_AUTHORITY` | yes | | `https://login.microsoftonline.com/<tenant-id>` or any Entra-compatible authority (https, with a tenant path). |
 * | `MSAL_KNOWN_AUTHORITIES` | no | none | Comma-separated `host[:port]` list trusted without instance discovery (B2C, CIAM, a local authority). |
 * | `MSAL_CLIENT_SECRET` | one of three | | The client secret. Prefer the two below outside development. |
 * | `MSAL_CLIENT_SECRET_ARN` | one of three | | ARN of an AWS Secrets Manager secret whose SecretString is the client secret; read once per cold start. |
 * | `MSAL_CLIENT_CERTIFICATE_PATH` | one of three | | PEM file holding the certificate's private key and its certificate (chain); the SHA-256 thumbprint is computed. |
 * | `MSAL_CLIENT_CERTIFICATE_SEND_X5C` | no | `false` | `true` to send the certificate chain (subject name / issuer authentication). |
 * | `EXTRA_CA_FILE` | no | none | PEM file of CA certificates to trust, besides the system store, for the authority, JWKS, downstream API and store / key services (local development). Give each CA a distinct subject: OpenSSL finds a self-signed CA by subject, so two `CN=localhost` certificates collide (the local stack shares one). |
 * | `TOKEN_CACHE_STORE` | when not implied | implied by the one store setting present (`TOKEN_CACHE_TABLE_NAME` → `dynamodb`, `TOKEN_CACHE_COSMOS_ENDPOINT` → `cosmos`) | `dynamodb`, `cosmos` or `memory` (one process only: tests and local runs). |
 * | `TOKEN_CACHE_TABLE_NAME` | with `dynamodb` | | DynamoDB table name (hash key `pk`, TTL attribute `expiresAt`). |
 * | `AWS_ENDPOINT_URL_DYNAMODB` | no | the regional endpoint | DynamoDB endpoint (dynalite locally). |
 * | `TOKEN_CACHE_COSMOS_ENDPOINT` | with `cosmos` | | Cosmos DB account endpoint, `https://<account>.documents.azure.com:443/`. |
 * | `TOKEN_CACHE_COSMOS_DATABASE` | with `cosmos` | | Cosmos DB database id. |
 * | `TOKEN_CACHE_COSMOS_CONTAINER` | with `cosmos` | | Cosmos DB container id (partition key `/pk`, `defaultTtl: -1`). |
 * | `TOKEN_CACHE_COSMOS_KEY` | no | Azure credential | Cosmos DB account key; without it the Azure credential below is used. |
 * | `TOKEN_CACHE_KEY_RING` | when not implied | implied by the one key setting present (`TOKEN_CACHE_KMS_KEY_ID`, `TOKEN_CACHE_KEYVAULT_KEY_ID`, `TOKEN_CACHE_LOCAL_MASTER_KEY`) | `aws-kms`, `azure-keyvault` or `local` (a master key from the environment: development only). |
 * | `TOKEN_CACHE_KMS_KEY_ID` | with `aws-kms` | | KMS key id, key ARN, alias name (`alias/x`) or alias ARN. |
 * | `AWS_ENDPOINT_URL_KMS` | no | the regional endpoint | KMS endpoint (local/kms locally). |
 * | `AWS_ENDPOINT_URL_SECRETS_MANAGER` | no | the regional endpoint | Secrets Manager endpoint (local development). |
 * | `AWS_REGION` | no | the SDK's resolution | Region of the AWS clients (Lambda sets it). |
 * | `TOKEN_CACHE_KEYVAULT_KEY_ID` | with `azure-keyvault` | | `https://<vault>.vault.azure.net/keys/<name>` (follows rotations) or `.../keys/<name>/<version>`. |
 * | `TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID` | with `azure-keyvault` | | The EC P-256 key that signs (attests) data keys, same forms; a different key from `TOKEN_CACHE_KEYVAULT_KEY_ID`. |
 * | `TOKEN_CACHE_LOCAL_MASTER_KEY` | with `local` | | 32 random bytes, base64. |
 * | `TOKEN_CACHE_AZURE_CREDENTIAL` | no | `default` | Credential for Key Vault and key-less Cosmos DB: `default` (DefaultAzureCredential: managed identity, environment, CLI) or `app` (this app's own client secret at `MSAL_AUTHORITY`, e.g. against a local authority). |
 * | `TOKEN_CACHE_L1_MAX_BYTES` | no | `16777216` | Bytes of opened partitions kept in process; `0` turns the in-process cache off. |
 * | `TOKEN_CACHE_L1_TTL_SECONDS` | no | `300` | Longest an in-process entry is served without a store read. |
 * | `DOWNSTREAM_URL` | yes | | The API called with the acquired token (https; http only for localhost). |
 * | `DOWNSTREAM_SCOPES` | yes | | Scopes requested on behalf of the caller, space- or comma-separated, e.g. `api://downstream/Data.Read`. |
 * | `DAEMON_SCOPE` | no | `<resource of the first downstream scope>/.default` | The one `/.default` scope of the daemon's app-only token. |
 * | `DOWNSTREAM_TIMEOUT_MS` | no | `10000` | Timeout of one downstream call. |
 * | `API_AUDIENCE` | no | `api://<MSAL_CLIENT_ID>,<MSAL_CLIENT_ID>` | Accepted `aud` of incoming tokens, comma-separated. |
 * | `API_ISSUER` | no | from `MSAL_AUTHORITY`: `<authority>/v2.0` (plus `https://sts.windows.net/<tenant>/` on login.microsoftonline.com) | Accepted `iss` of incoming tokens, comma-separated. Required when the authority's tenant is not a tenant id. |
 * | `API_JWKS_URI` | no | `<authority>/discovery/v2.0/keys` | Where the signing keys of incoming tokens are published. |
 * | `API_REQUIRED_SCOPES` | no | none | Incoming tokens must grant one of these scopes (`scp`) or app roles (`roles`), comma-separated; otherwise 403. |
 * | `LOG_LEVEL` | no | `info` | `debug`, `info`, `warn`, `error` or `silent`. |
 */
import { inspect } from 'node:util';
import { ConfigurationError } from './errors';
import type { LogLevel } from './observability';

/** A secret from the environment: serialises and prints as `[redacted]`, so logging a config cannot leak it. */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  /** The secret itself; pass it straight to the client that needs it. */
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}

/** Where the confidential client's credential comes from. */
export type CredentialSource =
  | { readonly kind: 'secret'; readonly secret: SecretValue }
  | { readonly kind: 'secrets-manager'; readonly secretArn: string; readonly endpoint?: string }
  | { readonly kind: 'certificate'; readonly path: string; readonly sendX5c: boolean };

/** Which store holds the encrypted partitions. */
export type StoreConfig =
  | { readonly kind: 'dynamodb'; readonly tableName: string; readonly endpoint?: string }
  | {
      readonly kind: 'cosmos';
      readonly endpoint: string;
      readonly databaseId: string;
      readonly containerId: string;
      readonly key?: SecretValue;
    }
  | { readonly kind: 'memory' };

/** Which key ring wraps the data keys. */
export type KeyRingConfig =
  | { readonly kind: 'aws-kms'; readonly keyId: string; readonly endpoint?: string }
  | { readonly kind: 'azure-keyvault'; readonly keyId: string; readonly signingKeyId: string }
  | { readonly kind: 'local'; readonly masterKey: SecretValue };

/** The validated configuration of the functions. */
export interface AppConfig {
  readonly msal: {
    readonly clientId: string;
    /** Without a trailing slash. */
    readonly authority: string;
    /** The authority's first path segment (a tenant id, domain, or `common`). */
    readonly tenant: string;
    readonly knownAuthorities: readonly string[];
    readonly credential: CredentialSource;
  };
  /** Path of a PEM file of extra CAs to trust. */
  readonly extraCaFile?: string;
  readonly awsRegion?: string;
  readonly store: StoreConfig;
  readonly keyRing: KeyRingConfig;
  /** Credential of the Azure services (Key Vault, Cosmos DB without a key). */
  readonly azureCredential: 'default' | 'app';
  /** `false` when the in-process cache is off. */
  readonly l1: { readonly maxBytes: number; readonly ttlMs: number } | false;
  readonly downstream: {
    readonly url: string;
    /** Scopes requested on behalf of a caller. */
    readonly scopes: readonly string[];
    /** The daemon's `/.default` scope. */
    readonly appScope: string;
    readonly timeoutMs: number;
  };
  /** Validation of incoming bearer tokens. */
  readonly api: {
    readonly audiences: readonly string[];
    readonly issuers: readonly string[];
    readonly jwksUri: string;
    readonly requiredScopes: readonly string[];
  };
  readonly logLevel: LogLevel;
}

/** The environment variables {@link loadConfig} reads. */
export const ConfigVariables = [
  'MSAL_CLIENT_ID',
  'MSAL_AUTHORITY',
  'MSAL_KNOWN_AUTHORITIES',
  'MSAL_CLIENT_SECRET',
  'MSAL_CLIENT_SECRET_ARN',
  'MSAL_CLIENT_CERTIFICATE_PATH',
  'MSAL_CLIENT_CERTIFICATE_SEND_X5C',
  'EXTRA_CA_FILE',
  'TOKEN_CACHE_STORE',
  'TOKEN_CACHE_TABLE_NAME',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'TOKEN_CACHE_COSMOS_ENDPOINT',
  'TOKEN_CACHE_COSMOS_DATABASE',
  'TOKEN_CACHE_COSMOS_CONTAINER',
  'TOKEN_CACHE_COSMOS_KEY',
  'TOKEN_CACHE_KEY_RING',
  'TOKEN_CACHE_KMS_KEY_ID',
  'AWS_ENDPOINT_URL_KMS',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_REGION',
  'TOKEN_CACHE_KEYVAULT_KEY_ID',
  'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
  'TOKEN_CACHE_LOCAL_MASTER_KEY',
  'TOKEN_CACHE_AZURE_CREDENTIAL',
  'TOKEN_CACHE_L1_MAX_BYTES',
  'TOKEN_CACHE_L1_TTL_SECONDS',
  'DOWNSTREAM_URL',
  'DOWNSTREAM_SCOPES',
  'DAEMON_SCOPE',
  'DOWNSTREAM_TIMEOUT_MS',
  'API_AUDIENCE',
  'API_ISSUER',
  'API_JWKS_URI',
  'API_REQUIRED_SCOPES',
  'LOG_LEVEL',
] as const;

/** One of {@link ConfigVariables}. */
export type ConfigVariable = (typeof ConfigVariables)[number];

/** The environment as {@link loadConfig} reads it. */
export type Environment = Readonly<Record<string, string | undefined>>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;
const SCOPE = /^[\x21-\x7e]+$/;
const SECRETS_MANAGER_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const AUTHORITY_EXPECTED = 'an https URL with a tenant, e.g. https://login.microsoftonline.com/<tenant-id>';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Reads and validates the configuration (no I/O: files and secrets are read by the
 * runtime at cold start).
 * @throws ConfigurationError naming the first variable that is missing or invalid
 * @example const config = loadConfig(); // process.env
 */
export function loadConfig(env: Environment = process.env): AppConfig {
  const read = reader(env);

  const clientId = read.required('MSAL_CLIENT_ID', 'a GUID or app id');
  if (!GUID.test(clientId) && !APP_ID.test(clientId)) {
    throw invalid('MSAL_CLIENT_ID', 'a GUID or app id', clientId);
  }
  const { authority, tenant } = parseAuthority(read.required('MSAL_AUTHORITY', AUTHORITY_EXPECTED));
  const knownAuthorities = read.list('MSAL_KNOWN_AUTHORITIES', ',');
  for (const host of knownAuthorities) {
    if (!HOST.test(host)) throw invalid('MSAL_KNOWN_AUTHORITIES', 'host[:port] names, comma-separated', host);
  }

  const credential = readCredential(read);
  const azureCredential = read.oneOf('TOKEN_CACHE_AZURE_CREDENTIAL', ['default', 'app'] as const, 'default');
  if (azureCredential === 'app' && credential.kind === 'certificate') {
    throw new ConfigurationError(
      'TOKEN_CACHE_AZURE_CREDENTIAL',
      '"app" needs a client secret (MSAL_CLIENT_SECRET or MSAL_CLIENT_SECRET_ARN); with a certificate use "default"',
    );
  }

  const scopesExpected = 'space- or comma-separated scopes, e.g. "api://downstream/Data.Read"';
  const rawScopes = read.required('DOWNSTREAM_SCOPES', scopesExpected);
  const downstreamScopes = rawScopes.split(/[\s,]+/).filter((s) => s.length > 0);
  if (downstreamScopes.length === 0 || !downstreamScopes.every((s) => SCOPE.test(s))) {
    throw invalid('DOWNSTREAM_SCOPES', scopesExpected, rawScopes);
  }
  const appScope = read.optional('DAEMON_SCOPE') ?? defaultAppScope(downstreamScopes[0]);
  if (!/^\S+\/\.default$/.test(appScope)) {
    throw invalid(
      'DAEMON_SCOPE',
      'one scope ending in "/.default", e.g. "api://downstream/.default"',
      appScope,
    );
  }

  const issuers = read.list('API_ISSUER', ',');
  if (issuers.length === 0) issuers.push(...defaultIssuers(authority, tenant));
  for (const issuer of issuers) read.url('API_ISSUER', issuer, { anyScheme: true });
  const audiences = read.list('API_AUDIENCE', ',');
  if (audiences.length === 0) audiences.push(`api://${clientId}`, clientId);

  const l1MaxBytes = read.integer('TOKEN_CACHE_L1_MAX_BYTES', 16 * 1024 * 1024, 0);
  const l1TtlSeconds = read.integer('TOKEN_CACHE_L1_TTL_SECONDS', 300, 1);

  const config: AppConfig = {
    msal: { clientId, authority, tenant, knownAuthorities, credential },
    extraCaFile: read.optional('EXTRA_CA_FILE'),
    awsRegion: read.optional('AWS_REGION'),
    store: readStore(read),
    keyRing: readKeyRing(read),
    azureCredential,
    l1: l1MaxBytes === 0 ? false : { maxBytes: l1MaxBytes, ttlMs: l1TtlSeconds * 1000 },
    downstream: {
      url: read.url('DOWNSTREAM_URL', read.required('DOWNSTREAM_URL', 'the URL of the downstream API')),
      scopes: downstreamScopes,
      appScope,
      timeoutMs: read.integer('DOWNSTREAM_TIMEOUT_MS', 10_000, 1),
    },
    api: {
      audiences,
      issuers,
      jwksUri: read.url('API_JWKS_URI', read.optional('API_JWKS_URI') ?? `${authority}/discovery/v2.0/keys`),
      requiredScopes: read.list('API_REQUIRED_SCOPES', ','),
    },
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
  };
  return deepFreeze(config);
}

type Reader = ReturnType<typeof reader>;

function reader(env: Environment) {
  const optional = (name: ConfigVariable): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  return {
    optional,
    required(name: ConfigVariable, expected: string): string {
      const value = optional(name);
      if (value === undefined) throw missing(name, expected, env[name]);
      return value;
    },
    list(name: ConfigVariable, separator: string | RegExp): string[] {
      return (optional(name) ?? '')
        .split(separator)
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    },
    integer(name: ConfigVariable, fallback: number, min: number): number {
      const value = optional(name);
      if (value === undefined) return fallback;
      if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
        throw invalid(name, `a whole number >= ${min}`, value);
      }
      return Number(value);
    },
    boolean(name: ConfigVariable, fallback: boolean): boolean {
      const value = optional(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw invalid(name, '"true" or "false"', value);
    },
    /** The kind named by the only one of `signals` that is set; `undefined` when none or several are. */
    implied<T extends string>(
      name: ConfigVariable,
      signals: Partial<Record<ConfigVariable, T>>,
    ): T | undefined {
      if (optional(name) !== undefined) return undefined;
      const present = (Object.keys(signals) as ConfigVariable[]).filter((v) => optional(v) !== undefined);
      if (present.length > 1) {
        throw new ConfigurationError(
          name,
          `is required when several of ${present.join(', ')} are set; it is not set`,
        );
      }
      return present.length === 1 ? signals[present[0]] : undefined;
    },
    oneOf<T extends string>(name: ConfigVariable, allowed: readonly T[], fallback?: T): T {
      const value = optional(name);
      if (value === undefined) {
        if (fallback !== undefined) return fallback;
        throw missing(name, `one of ${allowed.join(', ')}`, env[name]);
      }
      if (!(allowed as readonly string[]).includes(value))
        throw invalid(name, `one of ${allowed.join(', ')}`, value);
      return value as T;
    },
    /** An absolute https URL (http only to a loopback host), without a trailing slash. */
    url(name: ConfigVariable, value: string, options: { anyScheme?: boolean } = {}): string {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw invalid(name, 'an absolute URL', value);
      }
      if (
        !options.anyScheme &&
        url.protocol !== 'https:' &&
        !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))
      ) {
        throw invalid(name, 'an https URL (http only for localhost)', value);
      }
      return value;
    },
  };
}

function readCredential(read: Reader): CredentialSource {
  const secret = read.optional('MSAL_CLIENT_SECRET');
  const secretArn = read.optional('MSAL_CLIENT_SECRET_ARN');
  const certificatePath = read.optional('MSAL_CLIENT_CERTIFICATE_PATH');
  const given = [
    secret && 'MSAL_CLIENT_SECRET',
    secretArn && 'MSAL_CLIENT_SECRET_ARN',
    certificatePath && 'MSAL_CLIENT_CERTIFICATE_PATH',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new ConfigurationError(
      'MSAL_CLIENT_SECRET',
      `expected exactly one of MSAL_CLIENT_SECRET, MSAL_CLIENT_SECRET_ARN or MSAL_CLIENT_CERTIFICATE_PATH, got ${
        given.length === 0 ? 'none' : given.join(' and ')
      }`,
    );
  }
  if (secret) return { kind: 'secret', secret: new SecretValue(secret) };
  if (secretArn) {
    if (!SECRETS_MANAGER_ARN.test(secretArn)) {
      throw invalid(
        'MSAL_CLIENT_SECRET_ARN',
        'a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>)',
        secretArn,
      );
    }
    const endpoint = read.optional('AWS_ENDPOINT_URL_SECRETS_MANAGER');
    return {
      kind: 'secrets-manager',
      secretArn,
      ...(endpoint ? { endpoint: read.url('AWS_ENDPOINT_URL_SECRETS_MANAGER', endpoint) } : {}),
    };
  }
  return {
    kind: 'certificate',
    path: certificatePath!,
    sendX5c: read.boolean('MSAL_CLIENT_CERTIFICATE_SEND_X5C', false),
  };
}

function readStore(read: Reader): StoreConfig {
  const kind = read.oneOf(
    'TOKEN_CACHE_STORE',
    ['dynamodb', 'cosmos', 'memory'] as const,
    read.implied('TOKEN_CACHE_STORE', {
      TOKEN_CACHE_TABLE_NAME: 'dynamodb',
      TOKEN_CACHE_COSMOS_ENDPOINT: 'cosmos',
    }),
  );
  switch (kind) {
    case 'dynamodb': {
      const tableName = read.required('TOKEN_CACHE_TABLE_NAME', 'the DynamoDB table name');
      if (!/^[A-Za-z0-9_.-]{3,255}$/.test(tableName)) {
        throw invalid(
          'TOKEN_CACHE_TABLE_NAME',
          'a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)',
          tableName,
        );
      }
      const endpoint = read.optional('AWS_ENDPOINT_URL_DYNAMODB');
      return {
        kind,
        tableName,
        ...(endpoint ? { endpoint: read.url('AWS_ENDPOINT_URL_DYNAMODB', endpoint) } : {}),
      };
    }
    case 'cosmos': {
      const endpoint = read.url(
        'TOKEN_CACHE_COSMOS_ENDPOINT',
        read.required('TOKEN_CACHE_COSMOS_ENDPOINT', 'the Cosmos DB account endpoint'),
      );
      const key = read.optional('TOKEN_CACHE_COSMOS_KEY');
      return {
        kind,
        endpoint,
        databaseId: read.required('TOKEN_CACHE_COSMOS_DATABASE', 'the Cosmos DB database id'),
        containerId: read.required('TOKEN_CACHE_COSMOS_CONTAINER', 'the Cosmos DB container id'),
        ...(key ? { key: new SecretValue(key) } : {}),
      };
    }
    case 'memory':
      return { kind };
  }
}

function readKeyRing(read: Reader): KeyRingConfig {
  const kind = read.oneOf(
    'TOKEN_CACHE_KEY_RING',
    ['aws-kms', 'azure-keyvault', 'local'] as const,
    read.implied('TOKEN_CACHE_KEY_RING', {
      TOKEN_CACHE_KMS_KEY_ID: 'aws-kms',
      TOKEN_CACHE_KEYVAULT_KEY_ID: 'azure-keyvault',
      TOKEN_CACHE_LOCAL_MASTER_KEY: 'local',
    }),
  );
  switch (kind) {
    case 'aws-kms': {
      const keyId = read.required('TOKEN_CACHE_KMS_KEY_ID', 'a KMS key id, key ARN, alias name or alias ARN');
      const endpoint = read.optional('AWS_ENDPOINT_URL_KMS');
      return { kind, keyId, ...(endpoint ? { endpoint: read.url('AWS_ENDPOINT_URL_KMS', endpoint) } : {}) };
    }
    case 'azure-keyvault': {
      const keyId = read.url(
        'TOKEN_CACHE_KEYVAULT_KEY_ID',
        read.required(
          'TOKEN_CACHE_KEYVAULT_KEY_ID',
          'a Key Vault key id, https://<vault>/keys/<name>[/<version>]',
        ),
      );
      if (!/^https?:\/\/[^/]+\/keys\/[0-9A-Za-z-]+(\/[0-9A-Za-z]+)?$/.test(keyId)) {
        throw invalid('TOKEN_CACHE_KEYVAULT_KEY_ID', 'https://<vault>/keys/<name>[/<version>]', keyId);
      }
      const signingKeyId = read.url(
        'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
        read.required(
          'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
          'the Key Vault EC P-256 key that signs data keys, https://<vault>/keys/<name>[/<version>]',
        ),
      );
      if (!/^https?:\/\/[^/]+\/keys\/[0-9A-Za-z-]+(\/[0-9A-Za-z]+)?$/.test(signingKeyId)) {
        throw invalid(
          'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
          'https://<vault>/keys/<name>[/<version>]',
          signingKeyId,
        );
      }
      return { kind, keyId, signingKeyId };
    }
    case 'local': {
      const masterKey = read.required('TOKEN_CACHE_LOCAL_MASTER_KEY', '32 random bytes, base64');
      const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(masterKey) ? Buffer.from(masterKey, 'base64') : undefined;
      if (bytes?.length !== 32) {
        // Never echo a key, not even a wrong one.
        throw new ConfigurationError(
          'TOKEN_CACHE_LOCAL_MASTER_KEY',
          `expected 32 bytes, base64 (e.g. \`openssl rand -base64 32\`), got ${
            bytes ? `${bytes.length} bytes` : 'a value that is not base64'
          }`,
        );
      }
      return { kind, masterKey: new SecretValue(masterKey) };
    }
  }
}

function parseAuthority(value: string): { authority: string; tenant: string } {
  const expected = AUTHORITY_EXPECTED;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('MSAL_AUTHORITY', expected, value);
  }
  const tenant = url.pathname.split('/').find((s) => s.length > 0);
  if (url.protocol !== 'https:' || !tenant || url.search || url.hash || url.username) {
    throw invalid('MSAL_AUTHORITY', expected, value);
  }
  return { authority: `${url.origin}${url.pathname.replace(/\/+$/, '')}`, tenant };
}

/** Issuers of v2 (and, on the public cloud, v1) tokens of a tenant; needs a tenant id. */
function defaultIssuers(authority: string, tenant: string): string[] {
  if (!GUID.test(tenant)) {
    throw new ConfigurationError(
      'API_ISSUER',
      `required when MSAL_AUTHORITY's tenant is not a tenant id (got "${tenant}"); set the issuer(s) incoming tokens carry, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0`,
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

/** A required variable that is unset or blank (`raw` is what the environment held). */
function missing(name: ConfigVariable, expected: string, raw: string | undefined): ConfigurationError {
  return new ConfigurationError(
    name,
    `expected ${expected}, ${raw === undefined ? 'but it is not set' : `got ${JSON.stringify(raw)}`}`,
  );
}

function invalid(name: ConfigVariable, expected: string, got: string): ConfigurationError {
  return new ConfigurationError(name, `expected ${expected}, got ${JSON.stringify(got)}`);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof SecretValue)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
