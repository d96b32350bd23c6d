/**
 * The Functions-ready composition: the cache's settings from the environment (the same
 * variables the handlers read) turned into a {@link TokenCache} over Cosmos DB and Key
 * Vault (or the in-process store and local key ring), authenticated with the Function
 * App's identity.
 */
import { Agent } from 'node:https';
import { CosmosClient } from '@azure/cosmos';
import {
  ClientAssertionCredential,
  ClientSecretCredential,
  DefaultAzureCredential,
  type TokenCredential,
} from '@azure/identity';
import type { ClientCredential, TokenCache } from '../cache/types';
import { loadCacheConfig, type CacheConfig } from '../config';
import type { KeyRing } from '../crypto/keyring';
import { COSMOS_STORE_DEFAULTS } from '../defaults';
import { ConfigurationError } from '../errors';
import type { Logger, Metrics } from '../observability';
import { openTelemetry, otelMeterProviderRegistered } from '../otel';
import {
  assembleTokenCache,
  collectProblem,
  isLoopback,
  localClientCredential,
  trustedCas,
  unsupportedKind,
  defaultLogger,
  type FromEnvOptions,
  type RuntimeOptions,
  otherKeyRing,
  otherStore,
} from '../runtime';

export type { FromEnvOptions } from '../runtime';
import type { TokenStore } from '../store/store';
import { CosmosStore } from './cosmos-store';
import { KeyVaultKeyRing } from './keyvault-keyring';
import { managedIdentityAssertion } from './managed-identity-assertion';

const ENTRY = 'msal-cloud-cache/azure';

/**
 * Builds the token cache from the environment (see the README's configuration table).
 * Call once per process, lazily, and reuse the result.
 * A configuration at fault rejects the promise (it never throws synchronously) with one
 * ConfigurationError listing every variable at fault: the settings, the store, the key ring
 * and the credential source together.
 * @example
 * import { createTokenCacheFromEnv } from 'msal-cloud-cache/azure';
 * const cache = createTokenCacheFromEnv(); // a promise, awaited per invocation
 */
export async function createTokenCacheFromEnv(options: FromEnvOptions = {}): Promise<TokenCache> {
  return createTokenCacheFromConfig(loadCacheConfig(options.env ?? process.env), options);
}

/**
 * Builds the token cache a loaded config describes (once per process).
 * @throws ConfigurationError naming the variable at fault
 */
export async function createTokenCacheFromConfig(
  config: CacheConfig,
  options: RuntimeOptions = {},
): Promise<TokenCache> {
  const ca = options.ca ?? trustedCas(config);
  const problems: ConfigurationError[] = [];
  const logger = options.logger ?? defaultLogger(config);
  const credential = collectProblem(problems, () =>
    resolveClientCredential(config, { logger, metrics: options.metrics }),
  );
  const azure = collectProblem(problems, () => azureCredential(config, credential, ca));
  const store = collectProblem(problems, () => createStore(config, ca, azure));
  const keyRing = collectProblem(problems, () => createKeyRing(config, ca, azure));
  if (problems.length > 0) throw ConfigurationError.of(problems);
  // With a meter provider registered (useAzureMonitor(), the OTel SDK), metrics and spans go to it.
  const otel = options.metrics === undefined && otelMeterProviderRegistered() ? openTelemetry() : undefined;
  const onResult = options.onResult ?? otel?.onResult;
  return assembleTokenCache(config, {
    store: store!,
    keyRing: keyRing!,
    credential: credential!,
    ca,
    logger,
    metrics: options.metrics ?? otel?.metrics,
    ...(onResult ? { onResult } : {}),
  });
}

/**
 * The client credential the config points at: the secret itself, the certificate file's
 * key and thumbprint, or (no secret) the managed identity's token as the client assertion,
 * fetched once per token lifetime.
 * @throws ConfigurationError naming the variable when the file is unusable, or for a source only AWS can read
 */
export function resolveClientCredential(
  config: Pick<CacheConfig, 'msal'>,
  observe: { readonly logger?: Logger; readonly metrics?: Metrics } = {},
): ClientCredential {
  const local = localClientCredential(config);
  if (local) return local;
  const source = config.msal.credential;
  if (source.kind === 'azure-managed-identity') {
    const assertions = managedIdentityAssertion({
      ...(source.clientId ? { clientId: source.clientId } : {}),
      ...(observe.logger ? { logger: observe.logger } : {}),
      ...(observe.metrics ? { metrics: observe.metrics } : {}),
    });
    return { clientAssertion: assertions.callback };
  }
  const supported = [
    'MSAL_CLIENT_ASSERTION_SOURCE=azure-managed-identity',
    'MSAL_CLIENT_SECRET',
    'MSAL_CLIENT_CERTIFICATE_PATH',
  ];
  throw source.kind === 'secrets-manager'
    ? unsupportedKind('MSAL_CLIENT_SECRET_ARN', source.kind, ENTRY, supported)
    : unsupportedKind('MSAL_CLIENT_ASSERTION_SOURCE', source.kind, ENTRY, supported);
}

/** The identity for Key Vault and key-less Cosmos DB. */
function azureCredential(
  config: CacheConfig,
  credential: ClientCredential | undefined,
  ca: readonly string[] | undefined,
): TokenCredential | undefined {
  const needed =
    config.keyRing.kind === 'azure-keyvault' || (config.store.kind === 'cosmos' && !config.store.key);
  if (!needed) return undefined;
  if (config.azureCredential === 'default') return new DefaultAzureCredential();
  // Development only: this app's own credential at the configured (local) authority.
  const authority = new URL(config.msal.authority);
  const options = {
    authorityHost: authority.origin,
    disableInstanceDiscovery: config.msal.knownAuthorities.includes(authority.host),
    ...(ca ? { tlsOptions: { ca: [...ca] } } : {}),
  };
  const assertion = credential?.clientAssertion;
  if (assertion) {
    const get = typeof assertion === 'string' ? () => Promise.resolve(assertion) : assertion;
    return new ClientAssertionCredential(config.msal.tenant, config.msal.clientId, get, options);
  }
  if (!credential?.clientSecret) {
    throw new ConfigurationError(
      'TOKEN_CACHE_AZURE_CREDENTIAL',
      '"app" needs a client secret (MSAL_CLIENT_SECRET) or MSAL_CLIENT_ASSERTION_SOURCE',
    );
  }
  return new ClientSecretCredential(
    config.msal.tenant,
    config.msal.clientId,
    credential.clientSecret,
    options,
  );
}

function createStore(
  config: CacheConfig,
  ca: readonly string[] | undefined,
  azure: TokenCredential | undefined,
): TokenStore {
  const store = config.store;
  if (store.kind !== 'cosmos') return otherStore(config, ca, ENTRY, 'cosmos');
  const client = new CosmosClient({
    endpoint: store.endpoint,
    ...(store.key ? { key: store.key.reveal() } : { aadCredentials: azure ?? new DefaultAzureCredential() }),
    ...(ca && store.endpoint.startsWith('https:')
      ? { agent: new Agent({ keepAlive: true, ca: [...ca] }) }
      : {}),
    connectionPolicy: {
      requestTimeout: COSMOS_STORE_DEFAULTS.timeoutMs,
      // An emulator has no regional endpoints to discover; the account endpoint is all there is.
      ...(isLoopback(store.endpoint) ? { enableEndpointDiscovery: false } : {}),
    },
  });
  return new CosmosStore({ container: client.database(store.databaseId).container(store.containerId) });
}

/** The key ring a config names (Key Vault or local); also used by the operator CLI. */
export function createKeyRing(
  config: CacheConfig,
  ca: readonly string[] | undefined,
  azure: TokenCredential | undefined,
): KeyRing {
  const ring = config.keyRing;
  if (ring.kind !== 'azure-keyvault') return otherKeyRing(config, ENTRY, 'azure-keyvault');
  return new KeyVaultKeyRing({
    keyId: ring.keyId,
    signingKeyId: ring.signingKeyId,
    credential: azure ?? new DefaultAzureCredential(),
    cryptographyClientOptions: {
      ...(ca ? { tlsOptions: { ca: [...ca] } } : {}),
      // A local vault answers the challenge for https://vault.azure.net from localhost.
      ...(isLoopback(ring.keyId) ? { disableChallengeResourceVerification: true } : {}),
    },
  });
}
