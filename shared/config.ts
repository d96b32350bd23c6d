/**
 * The cache's own settings from the environment (`MSAL_*`, `TOKEN_CACHE_*`, plus the
 * development-only `EXTRA_CA_FILE`): typed, validated, frozen. Each maps to one option of
 * {@link TokenCacheOptions}, and together they cover all of it. Every problem is reported at
 * once, in one {@link ConfigurationError} whose `problems` name each variable and what was
 * expected; secret values are never echoed. No I/O: files and secrets are read when the
 * cache is built (`createTokenCacheFromEnv` in `msal-cloud-cache/aws` or `/azure`).
 *
 * The handlers' own settings (`DOWNSTREAM_*`, `API_*`, `DAEMON_SCOPE`) live with the
 * handlers (functions/core/config.ts); the README lists every variable.
 */
import { inspect } from 'node:util';
import { CLIENT_CAPABILITY } from './auth/claims';
import type { DataKeyCacheOptions, L1Options, TokenCacheOptions } from './cache/types';
import {
  CONFLICT_RETRY_DEFAULTS,
  DATA_KEY_BYTES,
  DATA_KEY_CACHE_DEFAULTS,
  L1_DEFAULTS,
  TOKEN_CACHE_DEFAULTS,
} from './defaults';
import { MAX_L1_JITTER } from './cache/l1';
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
  | { readonly kind: 'certificate'; readonly path: string; readonly sendX5c: boolean }
  /** IAM outbound identity federation: STS GetWebIdentityToken as the client assertion. */
  | {
      readonly kind: 'aws-web-identity';
      readonly durationSeconds: number;
      /** `AWS_ENDPOINT_URL_STS` (local runs); the regional endpoint otherwise. */
      readonly endpoint?: string;
    }
  /** The managed identity's token for api://AzureADTokenExchange as the client assertion. */
  | {
      readonly kind: 'azure-managed-identity';
      /** A user-assigned identity's client id; the system-assigned identity when absent. */
      readonly clientId?: string;
    };

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
  | {
      readonly kind: 'redis';
      /** `rediss://host:port` (or `redis://` to a loopback host), without credentials. */
      readonly url: string;
      readonly cluster: boolean;
      readonly username?: string;
      readonly password?: SecretValue;
      readonly keyPrefix?: string;
    }
  | { readonly kind: 'memory' };

/** Which key ring wraps the data keys. */
export type KeyRingConfig =
  | { readonly kind: 'aws-kms'; readonly keyId: string; readonly endpoint?: string }
  | {
      readonly kind: 'azure-keyvault';
      readonly keyId: string;
      /** The EC P-256 key that signs (attests) the data keys. */
      readonly signingKeyId: string;
    }
  | {
      readonly kind: 'local';
      readonly masterKey: SecretValue;
      readonly keyId: string;
      /** Earlier master keys by id, for blobs sealed before a rotation. */
      readonly previousKeys: Readonly<Record<string, SecretValue>>;
    };

/** The validated configuration of the token cache. */
export interface CacheConfig {
  readonly msal: {
    readonly clientId: string;
    /** Without a trailing slash. */
    readonly authority: string;
    /** The authority's first path segment (a tenant id, domain, or `common`). */
    readonly tenant: string;
    readonly knownAuthorities: readonly string[];
    readonly credential: CredentialSource;
    /** MSAL_CLIENT_CAPABILITIES, e.g. `['cp1']` for CAE tokens; empty: none. */
    readonly clientCapabilities: readonly string[];
  };
  /** Development only: path of a PEM file of extra CAs to trust. */
  readonly extraCaFile?: string;
  readonly awsRegion?: string;
  readonly store: StoreConfig;
  readonly keyRing: KeyRingConfig;
  /** Credential of the Azure services (Key Vault, Cosmos DB without a key); `app` is for development. */
  readonly azureCredential: 'default' | 'app';
  /** `false` when the in-process cache is off. */
  readonly l1: (Required<Omit<L1Options, 'jitter'>> & Pick<L1Options, 'jitter'>) | false;
  /** Concurrent first loads of one partition in the process share one store read. */
  readonly sharedReads: boolean;
  readonly dataKeys: Required<DataKeyCacheOptions>;
  readonly userSlidingWindowSeconds: number;
  readonly compressAboveBytes: number | false;
  readonly conflictRetries: Required<NonNullable<TokenCacheOptions['conflictRetries']>>;
  /** Coalescing of token requests: in the process and across instances, in the process only, or none. */
  readonly coalescing: 'on' | 'local' | 'off';
  readonly logLevel: LogLevel;
}

/**
 * Defaults of the settings, in the units of their variables: the library's own defaults
 * (shared/defaults.ts) converted, never written twice.
 */
export const CacheConfigDefaults = {
  l1MaxBytes: L1_DEFAULTS.maxBytes,
  l1TtlSeconds: L1_DEFAULTS.ttlMs / 1000,
  l1Jitter: L1_DEFAULTS.jitter,
  sharedReads: TOKEN_CACHE_DEFAULTS.sharedReads,
  dataKeyMaxAgeSeconds: DATA_KEY_CACHE_DEFAULTS.maxAgeMs / 1000,
  dataKeyMaxUses: DATA_KEY_CACHE_DEFAULTS.maxUses,
  dataKeyMaxUnwrapped: DATA_KEY_CACHE_DEFAULTS.maxUnwrapped,
  dataKeyMaxUnwrappedAgeSeconds: DATA_KEY_CACHE_DEFAULTS.maxUnwrappedAgeMs / 1000,
  userSlidingWindowSeconds: TOKEN_CACHE_DEFAULTS.userSlidingWindowSeconds,
  compressAboveBytes: TOKEN_CACHE_DEFAULTS.compressAboveBytes,
  conflictMaxAttempts: CONFLICT_RETRY_DEFAULTS.maxAttempts,
  conflictBaseDelayMs: CONFLICT_RETRY_DEFAULTS.baseDelayMs,
  conflictMaxDelayMs: CONFLICT_RETRY_DEFAULTS.maxDelayMs,
  localKeyId: 'local-1',
  webIdentityTokenDurationSeconds: 900,
} as const;

/** The cache's variables, in the README's order. */
export const CacheVariables = [
  'MSAL_CLIENT_ID',
  'MSAL_AUTHORITY',
  'MSAL_KNOWN_AUTHORITIES',
  'MSAL_CLIENT_CAPABILITIES',
  'MSAL_CLIENT_SECRET',
  'MSAL_CLIENT_SECRET_ARN',
  'MSAL_CLIENT_CERTIFICATE_PATH',
  'MSAL_CLIENT_CERTIFICATE_SEND_X5C',
  'MSAL_CLIENT_ASSERTION_SOURCE',
  'MSAL_MANAGED_IDENTITY_CLIENT_ID',
  'MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS',
  'AWS_ENDPOINT_URL_STS',
  'TOKEN_CACHE_STORE',
  'TOKEN_CACHE_TABLE_NAME',
  'AWS_ENDPOINT_URL_DYNAMODB',
  'TOKEN_CACHE_COSMOS_ENDPOINT',
  'TOKEN_CACHE_COSMOS_DATABASE',
  'TOKEN_CACHE_COSMOS_CONTAINER',
  'TOKEN_CACHE_COSMOS_KEY',
  'TOKEN_CACHE_REDIS_URL',
  'TOKEN_CACHE_REDIS_CLUSTER',
  'TOKEN_CACHE_REDIS_USERNAME',
  'TOKEN_CACHE_REDIS_PASSWORD',
  'TOKEN_CACHE_REDIS_KEY_PREFIX',
  'TOKEN_CACHE_KEY_RING',
  'TOKEN_CACHE_KMS_KEY_ID',
  'AWS_ENDPOINT_URL_KMS',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'AWS_REGION',
  'TOKEN_CACHE_KEYVAULT_KEY_ID',
  'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
  'TOKEN_CACHE_AZURE_CREDENTIAL',
  'TOKEN_CACHE_LOCAL_MASTER_KEY',
  'TOKEN_CACHE_LOCAL_KEY_ID',
  'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
  'TOKEN_CACHE_L1_MAX_BYTES',
  'TOKEN_CACHE_L1_TTL_SECONDS',
  'TOKEN_CACHE_L1_JITTER',
  'TOKEN_CACHE_SHARED_READS',
  'TOKEN_CACHE_DATA_KEY_MAX_AGE_SECONDS',
  'TOKEN_CACHE_DATA_KEY_MAX_USES',
  'TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED',
  'TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED_AGE_SECONDS',
  'TOKEN_CACHE_USER_SLIDING_WINDOW_SECONDS',
  'TOKEN_CACHE_COMPRESS_ABOVE_BYTES',
  'TOKEN_CACHE_CONFLICT_MAX_ATTEMPTS',
  'TOKEN_CACHE_CONFLICT_BASE_DELAY_MS',
  'TOKEN_CACHE_CONFLICT_MAX_DELAY_MS',
  'TOKEN_CACHE_COALESCING',
  'LOG_LEVEL',
  'EXTRA_CA_FILE',
] as const;

/** One of {@link CacheVariables}. */
export type CacheVariable = (typeof CacheVariables)[number];

/** The environment as the loaders read it. */
export type Environment = Readonly<Record<string, string | undefined>>;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;
const KEY_ID = /^[A-Za-z0-9._-]{1,255}$/;
const SECRETS_MANAGER_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);
const AUTHORITY_EXPECTED = 'an https URL with a tenant, e.g. https://login.microsoftonline.com/<tenant-id>';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

/**
 * Reads and validates the cache's settings.
 * @throws ConfigurationError listing every variable that is missing or invalid
 * @example const config = loadCacheConfig(); // process.env
 */
export function loadCacheConfig(env: Environment = process.env): CacheConfig {
  const read = new EnvReader(env);
  const config = readCacheConfig(read);
  read.done();
  return deepFreeze(config);
}

/**
 * The cache's settings from a shared {@link EnvReader}, for loaders that add their own
 * layer (the handlers); problems are collected in `read`, the caller calls `read.done()`.
 */
export function readCacheConfig(read: EnvReader): CacheConfig {
  const clientId = read.attempt(() => {
    const value = read.required('MSAL_CLIENT_ID', 'a GUID or app id');
    if (!GUID.test(value) && !APP_ID.test(value)) throw invalid('MSAL_CLIENT_ID', 'a GUID or app id', value);
    return value;
  }, '');
  const { authority, tenant } = read.attempt(
    () => parseAuthority(read.required('MSAL_AUTHORITY', AUTHORITY_EXPECTED)),
    { authority: '', tenant: '' },
  );
  const knownAuthorities = read.attempt(() => {
    const hosts = read.list('MSAL_KNOWN_AUTHORITIES', ',');
    for (const host of hosts) {
      if (!HOST.test(host))
        throw invalid('MSAL_KNOWN_AUTHORITIES', 'host[:port] names, comma-separated', host);
    }
    return hosts;
  }, []);
  const clientCapabilities = read.attempt(() => {
    const names = read.list('MSAL_CLIENT_CAPABILITIES', ',');
    const bad = names.find((n) => !CLIENT_CAPABILITY.test(n));
    if (bad !== undefined) {
      throw invalid(
        'MSAL_CLIENT_CAPABILITIES',
        'comma-separated client capabilities such as "cp1" (letters, digits, _ and -, up to 32 each)',
        bad.slice(0, 64),
      );
    }
    return [...new Set(names)];
  }, []);
  const credential = read.attempt<CredentialSource | undefined>(() => readCredential(read), undefined);
  const azureCredential = read.attempt(() => {
    const value = read.oneOf('TOKEN_CACHE_AZURE_CREDENTIAL', ['default', 'app'] as const, 'default');
    if (value === 'app' && credential?.kind === 'certificate') {
      throw new ConfigurationError(
        'TOKEN_CACHE_AZURE_CREDENTIAL',
        '"app" needs a client secret (MSAL_CLIENT_SECRET or MSAL_CLIENT_SECRET_ARN) or MSAL_CLIENT_ASSERTION_SOURCE; with a certificate use "default"',
      );
    }
    return value;
  }, 'default' as const);

  const d = CacheConfigDefaults;
  const l1MaxBytes = read.integer('TOKEN_CACHE_L1_MAX_BYTES', d.l1MaxBytes, 0);
  const l1TtlSeconds = read.integer('TOKEN_CACHE_L1_TTL_SECONDS', d.l1TtlSeconds, 1);
  const l1Jitter = read.fraction('TOKEN_CACHE_L1_JITTER', d.l1Jitter, MAX_L1_JITTER);
  const compress = read.attempt(() => {
    const value = read.optional('TOKEN_CACHE_COMPRESS_ABOVE_BYTES');
    if (value?.toLowerCase() === 'false') return false as const;
    return read.integer('TOKEN_CACHE_COMPRESS_ABOVE_BYTES', d.compressAboveBytes, 0, ', or "false"');
  }, d.compressAboveBytes);

  return {
    msal: {
      clientId,
      authority,
      tenant,
      knownAuthorities,
      credential: credential ?? { kind: 'secret', secret: new SecretValue('') },
      clientCapabilities,
    },
    extraCaFile: read.optional('EXTRA_CA_FILE'),
    awsRegion: read.optional('AWS_REGION'),
    store: read.attempt<StoreConfig>(() => readStore(read), { kind: 'memory' }),
    keyRing: read.attempt<KeyRingConfig>(() => readKeyRing(read), {
      kind: 'aws-kms',
      keyId: '',
    }),
    azureCredential,
    l1: l1MaxBytes === 0 ? false : { maxBytes: l1MaxBytes, ttlMs: l1TtlSeconds * 1000, jitter: l1Jitter },
    sharedReads: read.boolean('TOKEN_CACHE_SHARED_READS', d.sharedReads),
    dataKeys: {
      maxAgeMs: read.integer('TOKEN_CACHE_DATA_KEY_MAX_AGE_SECONDS', d.dataKeyMaxAgeSeconds, 1) * 1000,
      maxUses: read.integer('TOKEN_CACHE_DATA_KEY_MAX_USES', d.dataKeyMaxUses, 1),
      maxUnwrapped: read.integer('TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED', d.dataKeyMaxUnwrapped, 1),
      maxUnwrappedAgeMs:
        read.integer('TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED_AGE_SECONDS', d.dataKeyMaxUnwrappedAgeSeconds, 1) *
        1000,
    },
    userSlidingWindowSeconds: read.integer(
      'TOKEN_CACHE_USER_SLIDING_WINDOW_SECONDS',
      d.userSlidingWindowSeconds,
      1,
    ),
    compressAboveBytes: compress,
    conflictRetries: {
      maxAttempts: read.integer('TOKEN_CACHE_CONFLICT_MAX_ATTEMPTS', d.conflictMaxAttempts, 1),
      baseDelayMs: read.integer('TOKEN_CACHE_CONFLICT_BASE_DELAY_MS', d.conflictBaseDelayMs, 0),
      maxDelayMs: read.integer('TOKEN_CACHE_CONFLICT_MAX_DELAY_MS', d.conflictMaxDelayMs, 0),
    },
    coalescing: read.oneOf('TOKEN_CACHE_COALESCING', ['on', 'local', 'off'] as const, 'on'),
    logLevel: read.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
  };
}

/**
 * The {@link TokenCacheOptions} a config sets, besides msal, store and key ring (which the
 * per-cloud composition builds).
 */
export function cacheOptionsOf(
  config: CacheConfig,
): Pick<
  TokenCacheOptions,
  | 'l1'
  | 'sharedReads'
  | 'dataKeys'
  | 'userSlidingWindowSeconds'
  | 'compressAboveBytes'
  | 'conflictRetries'
  | 'coalescing'
> {
  return {
    l1: config.l1,
    sharedReads: config.sharedReads,
    dataKeys: config.dataKeys,
    userSlidingWindowSeconds: config.userSlidingWindowSeconds,
    compressAboveBytes: config.compressAboveBytes,
    conflictRetries: config.conflictRetries,
    coalescing: config.coalescing === 'off' ? false : { lease: config.coalescing === 'on' },
  };
}

/**
 * Reads variables and collects every problem instead of stopping at the first: each read
 * that fails records a {@link ConfigurationError} and returns a fallback; {@link done}
 * throws them all as one.
 */
export class EnvReader {
  private readonly problems: ConfigurationError[] = [];

  constructor(private readonly env: Environment) {}

  /** The trimmed value, or `undefined` when unset or blank. */
  optional(name: string): string | undefined {
    const value = this.env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  }

  /** @throws ConfigurationError when unset or blank (inside {@link attempt}) */
  required(name: string, expected: string): string {
    const value = this.optional(name);
    if (value === undefined) throw missing(name, expected, this.env[name]);
    return value;
  }

  list(name: string, separator: string | RegExp): string[] {
    return (this.optional(name) ?? '')
      .split(separator)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
  }

  /** A whole number `>= min`, or `fallback` when unset; a bad value is recorded and yields `fallback`. */
  integer(name: string, fallback: number, min: number, alternative = ''): number {
    return this.attempt(() => {
      const value = this.optional(name);
      if (value === undefined) return fallback;
      if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
        throw invalid(name, `a whole number >= ${min}${alternative}`, value);
      }
      return Number(value);
    }, fallback);
  }

  /** A decimal number from 0 to `max`, or `fallback` when unset; a bad value is recorded and yields `fallback`. */
  fraction(name: string, fallback: number, max: number): number {
    return this.attempt(() => {
      const value = this.optional(name);
      if (value === undefined) return fallback;
      if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value) || Number(value) > max) {
        throw invalid(name, `a number from 0 to ${max}`, value);
      }
      return Number(value);
    }, fallback);
  }

  boolean(name: string, fallback: boolean): boolean {
    return this.attempt(() => {
      const value = this.optional(name)?.toLowerCase();
      if (value === undefined) return fallback;
      if (value === 'true' || value === '1') return true;
      if (value === 'false' || value === '0') return false;
      throw invalid(name, '"true" or "false"', value);
    }, fallback);
  }

  /** The kind named by the only one of `signals` that is set; `undefined` when none is. @throws when several are */
  implied<T extends string>(name: string, signals: Readonly<Record<string, T>>): T | undefined {
    if (this.optional(name) !== undefined) return undefined;
    const present = Object.keys(signals).filter((v) => this.optional(v) !== undefined);
    if (present.length > 1) {
      throw new ConfigurationError(
        name,
        `is required when several of ${present.join(', ')} are set; it is not set`,
      );
    }
    return present.length === 1 ? signals[present[0]] : undefined;
  }

  /** @throws ConfigurationError (inside {@link attempt}) when unset without a fallback, or not allowed */
  oneOf<T extends string>(name: string, allowed: readonly T[], fallback?: T): T {
    const value = this.optional(name);
    if (value === undefined) {
      if (fallback !== undefined) return fallback;
      throw missing(name, `one of ${allowed.join(', ')}`, this.env[name]);
    }
    if (!(allowed as readonly string[]).includes(value)) {
      const error = invalid(name, `one of ${allowed.join(', ')}`, value);
      if (fallback === undefined) throw error;
      this.problems.push(error);
      return fallback;
    }
    return value as T;
  }

  /** An absolute https URL (http only to a loopback host). @throws ConfigurationError (inside {@link attempt}) */
  url(name: string, value: string, options: { anyScheme?: boolean } = {}): string {
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
  }

  /** Runs `read`; a ConfigurationError it throws is recorded and `fallback` returned. */
  attempt<T>(read: () => T, fallback: T): T {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof ConfigurationError)) throw e;
      this.problems.push(e);
      return fallback;
    }
  }

  /** Records a problem found outside a read. */
  report(error: ConfigurationError): void {
    this.problems.push(error);
  }

  /** @throws ConfigurationError with every recorded problem, if any */
  done(): void {
    if (this.problems.length > 0) throw ConfigurationError.of(this.problems);
  }
}

function readCredential(read: EnvReader): CredentialSource {
  const secret = read.optional('MSAL_CLIENT_SECRET');
  const secretArn = read.optional('MSAL_CLIENT_SECRET_ARN');
  const certificatePath = read.optional('MSAL_CLIENT_CERTIFICATE_PATH');
  const assertionSource = read.optional('MSAL_CLIENT_ASSERTION_SOURCE');
  const given = [
    secret && 'MSAL_CLIENT_SECRET',
    secretArn && 'MSAL_CLIENT_SECRET_ARN',
    certificatePath && 'MSAL_CLIENT_CERTIFICATE_PATH',
    assertionSource && 'MSAL_CLIENT_ASSERTION_SOURCE',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new ConfigurationError(
      'MSAL_CLIENT_SECRET',
      `expected exactly one of MSAL_CLIENT_ASSERTION_SOURCE (aws-web-identity or azure-managed-identity: no secret), MSAL_CLIENT_SECRET, MSAL_CLIENT_SECRET_ARN or MSAL_CLIENT_CERTIFICATE_PATH, got ${
        given.length === 0 ? 'none' : given.join(' and ')
      }`,
    );
  }
  // Read only with azure-managed-identity, so a template may set it whatever the source.
  const managedIdentityClientId = read.optional('MSAL_MANAGED_IDENTITY_CLIENT_ID');
  if (assertionSource !== undefined) return readAssertionSource(read, managedIdentityClientId);
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

function readAssertionSource(read: EnvReader, managedIdentityClientId: string | undefined): CredentialSource {
  const kind = read.oneOf('MSAL_CLIENT_ASSERTION_SOURCE', [
    'aws-web-identity',
    'azure-managed-identity',
  ] as const);
  if (kind === 'azure-managed-identity') {
    if (managedIdentityClientId !== undefined && !GUID.test(managedIdentityClientId)) {
      throw invalid(
        'MSAL_MANAGED_IDENTITY_CLIENT_ID',
        "the user-assigned identity's client id (a GUID)",
        managedIdentityClientId,
      );
    }
    return { kind, ...(managedIdentityClientId ? { clientId: managedIdentityClientId } : {}) };
  }
  if (read.optional('AWS_REGION') === undefined) {
    // The global STS endpoint does not serve GetWebIdentityToken; Lambda always sets it.
    throw new ConfigurationError(
      'AWS_REGION',
      'is required with MSAL_CLIENT_ASSERTION_SOURCE=aws-web-identity (the regional STS endpoint); it is not set',
    );
  }
  const endpoint = read.optional('AWS_ENDPOINT_URL_STS');
  return {
    kind,
    durationSeconds: read.attempt(() => {
      const seconds = read.integer(
        'MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS',
        CacheConfigDefaults.webIdentityTokenDurationSeconds,
        60,
      );
      if (seconds > 3600) {
        throw invalid(
          'MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS',
          'a whole number from 60 to 3600',
          String(seconds),
        );
      }
      return seconds;
    }, CacheConfigDefaults.webIdentityTokenDurationSeconds),
    ...(endpoint ? { endpoint: read.url('AWS_ENDPOINT_URL_STS', endpoint) } : {}),
  };
}

function readStore(read: EnvReader): StoreConfig {
  const kind = read.oneOf(
    'TOKEN_CACHE_STORE',
    ['dynamodb', 'cosmos', 'redis', 'memory'] as const,
    read.implied('TOKEN_CACHE_STORE', {
      TOKEN_CACHE_TABLE_NAME: 'dynamodb',
      TOKEN_CACHE_COSMOS_ENDPOINT: 'cosmos',
      TOKEN_CACHE_REDIS_URL: 'redis',
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
      const problems: ConfigurationError[] = [];
      const field = (f: () => string): string => {
        try {
          return f();
        } catch (e) {
          if (!(e instanceof ConfigurationError)) throw e;
          problems.push(e);
          return '';
        }
      };
      const endpoint = field(() =>
        read.url(
          'TOKEN_CACHE_COSMOS_ENDPOINT',
          read.required('TOKEN_CACHE_COSMOS_ENDPOINT', 'the Cosmos DB account endpoint'),
        ),
      );
      const databaseId = field(() =>
        read.required('TOKEN_CACHE_COSMOS_DATABASE', 'the Cosmos DB database id'),
      );
      const containerId = field(() =>
        read.required('TOKEN_CACHE_COSMOS_CONTAINER', 'the Cosmos DB container id'),
      );
      if (problems.length > 0) throw ConfigurationError.of(problems);
      const key = read.optional('TOKEN_CACHE_COSMOS_KEY');
      return { kind, endpoint, databaseId, containerId, ...(key ? { key: new SecretValue(key) } : {}) };
    }
    case 'redis':
      return readRedis(read);
    case 'memory':
      return { kind };
  }
}

function readRedis(read: EnvReader): StoreConfig {
  const name = 'TOKEN_CACHE_REDIS_URL';
  const value = read.required(name, 'the Redis endpoint, rediss://<host>:<port>');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not echoed: a malformed URL may still hold a password.
    throw new ConfigurationError(
      name,
      'expected an absolute URL such as rediss://<host>:<port>; it does not parse',
    );
  }
  if (url.password !== '' || url.username !== '') {
    throw new ConfigurationError(
      name,
      'holds credentials; put them in TOKEN_CACHE_REDIS_USERNAME and TOKEN_CACHE_REDIS_PASSWORD (kept out of logs)',
    );
  }
  if (url.protocol !== 'rediss:' && !(url.protocol === 'redis:' && LOOPBACK.has(url.hostname))) {
    throw invalid(name, 'a rediss:// URL (TLS; redis:// only for localhost)', value);
  }
  const username = read.optional('TOKEN_CACHE_REDIS_USERNAME');
  const password = read.optional('TOKEN_CACHE_REDIS_PASSWORD');
  const keyPrefix = read.optional('TOKEN_CACHE_REDIS_KEY_PREFIX');
  return {
    kind: 'redis',
    url: value,
    cluster: read.boolean('TOKEN_CACHE_REDIS_CLUSTER', false),
    ...(username ? { username } : {}),
    ...(password ? { password: new SecretValue(password) } : {}),
    ...(keyPrefix ? { keyPrefix } : {}),
  };
}

function readKeyRing(read: EnvReader): KeyRingConfig {
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
      const keyId = keyVaultKeyId(read, 'TOKEN_CACHE_KEYVAULT_KEY_ID', 'a Key Vault key id');
      const signingKeyId = keyVaultKeyId(
        read,
        'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
        'the Key Vault EC P-256 key that signs data keys',
      );
      return { kind, keyId, signingKeyId };
    }
    case 'local': {
      const masterKey = masterKeyOf(
        'TOKEN_CACHE_LOCAL_MASTER_KEY',
        read.required('TOKEN_CACHE_LOCAL_MASTER_KEY', '32 random bytes, base64'),
      );
      const keyId = read.optional('TOKEN_CACHE_LOCAL_KEY_ID') ?? CacheConfigDefaults.localKeyId;
      if (!KEY_ID.test(keyId)) {
        throw invalid('TOKEN_CACHE_LOCAL_KEY_ID', 'a key id of letters, digits, ".", "_", "-"', keyId);
      }
      const previousKeys: Record<string, SecretValue> = {};
      for (const pair of read.list('TOKEN_CACHE_LOCAL_PREVIOUS_KEYS', ',')) {
        const colon = pair.indexOf(':');
        const id = colon > 0 ? pair.slice(0, colon) : '';
        if (!KEY_ID.test(id)) {
          // The pair holds a key: name only its shape.
          throw new ConfigurationError(
            'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
            'expected comma-separated id:base64 pairs (e.g. local-1:<32 bytes, base64>), got an entry without a valid id',
          );
        }
        if (id === keyId || id in previousKeys) {
          throw new ConfigurationError(
            'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
            `names key id "${id}" twice (or the same as TOKEN_CACHE_LOCAL_KEY_ID); give each master key its own id`,
          );
        }
        previousKeys[id] = masterKeyOf('TOKEN_CACHE_LOCAL_PREVIOUS_KEYS', pair.slice(colon + 1), id);
      }
      return { kind, masterKey, keyId, previousKeys };
    }
  }
}

/** A Key Vault key id variable: required, a URL, `https://<vault>/keys/<name>[/<version>]`. */
function keyVaultKeyId(read: EnvReader, variable: string, what: string): string {
  const form = 'https://<vault>/keys/<name>[/<version>]';
  const value = read.url(variable, read.required(variable, `${what}, ${form}`));
  if (!/^https?:\/\/[^/]+\/keys\/[0-9A-Za-z-]+(\/[0-9A-Za-z]+)?$/.test(value)) {
    throw invalid(variable, form, value);
  }
  return value;
}

/** A 32-byte base64 master key; never echoed, not even a wrong one. */
function masterKeyOf(variable: string, value: string, id?: string): SecretValue {
  const bytes = /^[A-Za-z0-9+/_-]+={0,2}$/.test(value) ? Buffer.from(value, 'base64') : undefined;
  if (bytes?.length !== DATA_KEY_BYTES) {
    throw new ConfigurationError(
      variable,
      `expected ${DATA_KEY_BYTES} bytes, base64 (e.g. \`openssl rand -base64 ${DATA_KEY_BYTES}\`)${id ? ` for key "${id}"` : ''}, got ${
        bytes ? `${bytes.length} bytes` : 'a value that is not base64'
      }`,
    );
  }
  return new SecretValue(value);
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

/** A required variable that is unset or blank (`raw` is what the environment held). */
export function missing(name: string, expected: string, raw: string | undefined): ConfigurationError {
  return new ConfigurationError(
    name,
    `expected ${expected}, ${raw === undefined ? 'but it is not set' : `got ${JSON.stringify(raw)}`}`,
  );
}

/** A variable whose value is not what was expected (never use it for a secret's value). */
export function invalid(name: string, expected: string, got: string): ConfigurationError {
  return new ConfigurationError(name, `expected ${expected}, got ${JSON.stringify(got)}`);
}

/** Freezes a config and everything in it (secrets stay opaque). */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof SecretValue)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export { GUID as GUID_PATTERN };
