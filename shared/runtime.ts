/**
 * What every per-cloud composition shares, without a cloud SDK: the CAs to trust, the
 * client credential from a secret or a certificate file, and the assembly of a
 * {@link TokenCache} from a config and the store and key ring a cloud built for it.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { HttpsNetworkClient } from './cache/http';
import { createTokenCache } from './cache/token-cache';
import type { ClientCredential, TokenCache, TokenCacheOptions } from './cache/types';
import {
  cacheOptionsOf,
  type CacheConfig,
  type Environment,
  type KeyRingConfig,
  type StoreConfig,
} from './config';
import type { KeyRing } from './crypto/keyring';
import { LocalKeyRing } from './crypto/local-keyring';
import { ConfigurationError } from './errors';
import { JsonLogger, type Logger, type Metrics } from './observability';
import { buildRegisteredStore } from './store/factories';
import { MemoryStore } from './store/memory';
import type { TokenStore } from './store/store';

/** What a per-cloud `createTokenCacheFromConfig` needs besides the config. */
export interface RuntimeOptions {
  /** @default a JsonLogger at the configured level */
  readonly logger?: Logger;
  /** @default no metrics */
  readonly metrics?: Metrics;
  /** CAs to trust, as {@link trustedCas} returns them. @default trustedCas(config) */
  readonly ca?: readonly string[];
  /** Per-result metadata callback (see TokenCacheOptions.onResult). @default the composition's (OTel spans on Azure when a provider is registered), else none */
  readonly onResult?: TokenCacheOptions['onResult'];
}

/** Options of a cloud's `createTokenCacheFromEnv`: the runtime options plus the environment. */
export interface FromEnvOptions extends RuntimeOptions {
  /** @default process.env */
  readonly env?: Environment;
}

/** The logger a composition uses when none is given: JSON at the configured level. */
export function defaultLogger(config: Pick<CacheConfig, 'logLevel'>): Logger {
  return new JsonLogger({ level: config.logLevel, base: { component: 'msal-cloud-cache' } });
}

/** The parts a cloud builds for {@link assembleTokenCache}. */
export interface CacheParts {
  readonly store: TokenStore;
  readonly keyRing: KeyRing;
  readonly credential: ClientCredential;
  readonly ca: readonly string[] | undefined;
  readonly logger: Logger | undefined;
  readonly metrics: Metrics | undefined;
  readonly onResult?: TokenCacheOptions['onResult'];
}

/**
 * The CAs every client of this process trusts: the system store plus `EXTRA_CA_FILE`, or
 * `undefined` (the system store) when no extra file is configured. Node's `ca` options
 * replace the system store, so the system roots are included explicitly.
 * @throws ConfigurationError naming EXTRA_CA_FILE when it cannot be read or holds no certificate
 */
export function trustedCas(config: Pick<CacheConfig, 'extraCaFile'>): readonly string[] | undefined {
  if (!config.extraCaFile) return undefined;
  const pem = readSettingFile('EXTRA_CA_FILE', config.extraCaFile, 'a PEM file of CA certificates');
  const certificates = pemBlocks(pem, 'CERTIFICATE');
  if (certificates.length === 0) {
    throw new ConfigurationError(
      'EXTRA_CA_FILE',
      `expected a PEM file of CA certificates, got ${JSON.stringify(config.extraCaFile)} with no "BEGIN CERTIFICATE" block`,
    );
  }
  return [...rootCertificates, ...certificates];
}

/**
 * The client credential a config names when no cloud service is needed to read it: the
 * secret itself, or the certificate file's key and thumbprint; `undefined` otherwise.
 * @throws ConfigurationError naming the variable when the file is unusable
 */
export function localClientCredential(config: Pick<CacheConfig, 'msal'>): ClientCredential | undefined {
  const source = config.msal.credential;
  switch (source.kind) {
    case 'secret':
      return { clientSecret: source.secret.reveal() };
    case 'certificate':
      return { clientCertificate: readCertificate(source.path, source.sendX5c) };
    default:
      return undefined;
  }
}

/** The in-process store, or `undefined` for a store a cloud builds. */
export function localStore(config: Pick<CacheConfig, 'store'>): TokenStore | undefined {
  return config.store.kind === 'memory' ? new MemoryStore() : undefined;
}

/** The local key ring, or `undefined` for a ring a cloud builds. */
export function localKeyRing(config: Pick<CacheConfig, 'keyRing'>): KeyRing | undefined {
  const ring = config.keyRing;
  if (ring.kind !== 'local') return undefined;
  return new LocalKeyRing({
    masterKey: ring.masterKey.reveal(),
    keyId: ring.keyId,
    previousKeys: Object.fromEntries(
      Object.entries(ring.previousKeys).map(([id, key]) => [id, key.reveal()]),
    ),
  });
}

/**
 * The store of a config that does not name this entry point's own cloud store
 * (`cloudKind`): Redis through its registered factory, or the in-process store.
 * @throws ConfigurationError for another cloud's store, naming the entry point that builds it
 */
export function otherStore(
  config: Pick<CacheConfig, 'store'>,
  ca: readonly string[] | undefined,
  entry: string,
  cloudKind: StoreConfig['kind'],
): TokenStore {
  const store = config.store;
  if (store.kind === 'redis') return buildRegisteredStore(store, ca);
  return (
    localStore(config) ?? fail(unsupportedKind('TOKEN_CACHE_STORE', store.kind, entry, [cloudKind, 'memory']))
  );
}

/**
 * The key ring of a config that does not name this entry point's own cloud ring
 * (`cloudKind`): the local ring.
 * @throws ConfigurationError for another cloud's ring, naming the entry point that builds it
 */
export function otherKeyRing(
  config: Pick<CacheConfig, 'keyRing'>,
  entry: string,
  cloudKind: KeyRingConfig['kind'],
): KeyRing {
  return (
    localKeyRing(config) ??
    fail(unsupportedKind('TOKEN_CACHE_KEY_RING', config.keyRing.kind, entry, [cloudKind, 'local']))
  );
}

/** A configured kind that this entry point cannot build: say which one can. */
export function unsupportedKind(
  variable:
    'TOKEN_CACHE_STORE' | 'TOKEN_CACHE_KEY_RING' | 'MSAL_CLIENT_SECRET_ARN' | 'MSAL_CLIENT_ASSERTION_SOURCE',
  kind: string,
  entry: string,
  supported: readonly string[],
): ConfigurationError {
  const home: Record<string, string> = {
    dynamodb: 'msal-cloud-cache/aws',
    'aws-kms': 'msal-cloud-cache/aws',
    'secrets-manager': 'msal-cloud-cache/aws',
    'aws-web-identity': 'msal-cloud-cache/aws',
    'azure-managed-identity': 'msal-cloud-cache/azure',
    cosmos: 'msal-cloud-cache/azure',
    'azure-keyvault': 'msal-cloud-cache/azure',
  };
  return new ConfigurationError(
    variable,
    `"${kind}" is built by ${home[kind] ?? 'another entry point'}; ${entry} builds ${supported.join(' or ')}`,
  );
}

/** The token cache from a config and the parts its cloud built (call once per process). */
export function assembleTokenCache(config: CacheConfig, parts: CacheParts): TokenCache {
  return createTokenCache({
    msal: {
      clientId: config.msal.clientId,
      authority: config.msal.authority,
      knownAuthorities: config.msal.knownAuthorities,
      ...(config.msal.clientCapabilities?.length
        ? { clientCapabilities: config.msal.clientCapabilities }
        : {}),
      networkClient: new HttpsNetworkClient(parts.ca ? { ca: parts.ca } : {}),
      ...parts.credential,
    },
    store: parts.store,
    keyRing: parts.keyRing,
    ...cacheOptionsOf(config),
    ...(parts.logger ? { logger: parts.logger } : {}),
    ...(parts.metrics ? { metrics: parts.metrics } : {}),
    ...(parts.onResult ? { onResult: parts.onResult } : {}),
  });
}

/** Whether a URL points at this machine. */
export function isLoopback(url: string): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(new URL(url).hostname);
}

export function readCertificate(
  path: string,
  sendX5c: boolean,
): NonNullable<ClientCredential['clientCertificate']> {
  const variable = 'MSAL_CLIENT_CERTIFICATE_PATH';
  const expected = 'a PEM file with the private key and its certificate';
  const pem = readSettingFile(variable, path, expected);
  const certificates = pemBlocks(pem, 'CERTIFICATE');
  const keyBlock =
    /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(pem);
  if (certificates.length === 0 || !keyBlock) {
    throw new ConfigurationError(
      variable,
      `expected ${expected}, got ${JSON.stringify(path)} with ${certificates.length === 0 ? 'no certificate' : 'no unencrypted private key'}`,
    );
  }
  let leaf: X509Certificate;
  let privateKey: string;
  try {
    leaf = new X509Certificate(certificates[0]);
    const key = createPrivateKey(keyBlock[0]);
    if (!leaf.checkPrivateKey(key)) {
      throw new ConfigurationError(
        variable,
        `the private key in ${JSON.stringify(path)} does not match its first certificate`,
      );
    }
    privateKey = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (e) {
    if (e instanceof ConfigurationError) throw e;
    throw new ConfigurationError(
      variable,
      `expected ${expected}, got ${JSON.stringify(path)} that does not parse`,
      {
        cause: e,
      },
    );
  }
  return {
    thumbprintSha256: leaf.fingerprint256.replace(/:/g, '').toLowerCase(),
    privateKey,
    ...(sendX5c ? { x5c: certificates.join('\n') } : {}),
  };
}

function readSettingFile(variable: string, path: string, expected: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : 'error';
    throw new ConfigurationError(
      variable,
      `expected ${expected}, got ${JSON.stringify(path)} that cannot be read (${reason})`,
      { cause: e },
    );
  }
}

function pemBlocks(pem: string, label: string): string[] {
  return pem.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g')) ?? [];
}

/** Runs `build`; a ConfigurationError it throws is added to `problems` (so all are reported at once). */
export function collectProblem<T>(problems: ConfigurationError[], build: () => T): T | undefined {
  try {
    return build();
  } catch (e) {
    if (!(e instanceof ConfigurationError)) throw e;
    problems.push(e);
    return undefined;
  }
}

/** `throw` as an expression. */
export function fail(error: Error): never {
  throw error;
}
