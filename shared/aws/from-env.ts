/**
 * The Lambda-ready composition: the cache's settings from the environment (the same
 * variables the handlers read) turned into a {@link TokenCache} over DynamoDB and KMS (or
 * the in-process store and local key ring), with the client secret read from Secrets
 * Manager when configured so.
 */
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ClientCredential, TokenCache } from '../cache/types';
import { loadCacheConfig, type CacheConfig } from '../config';
import { DYNAMODB_STORE_DEFAULTS, KMS_KEY_RING_DEFAULTS } from '../defaults';
import { ConfigurationError } from '../errors';
import type { Logger, Metrics } from '../observability';
import { peerError } from '../peers';
import {
  assembleTokenCache,
  collectProblem,
  localClientCredential,
  trustedCas,
  unsupportedKind,
  defaultLogger,
  type FromEnvOptions,
  otherKeyRing,
  otherStore,
} from '../runtime';

export type { FromEnvOptions } from '../runtime';
import type { KeyRing } from '../crypto/keyring';
import type { TokenStore } from '../store/store';
import { DynamoDbStore } from './dynamodb-store';
import { emfEnabled, lambdaMetrics } from './emf';
import { KmsKeyRing } from './kms-keyring';
import { webIdentityAssertion } from './web-identity-assertion';

const ENTRY = 'msal-cloud-cache/aws';

/**
 * Builds the token cache from the environment (see the README's configuration table).
 * Call once per process, lazily, and reuse the result. Without `metrics`, it writes
 * CloudWatch EMF on Lambda (see {@link emfEnabled}; flush with `flushMetrics()`).
 * A configuration at fault rejects the promise (it never throws synchronously) with one
 * ConfigurationError listing every variable at fault: the settings, the store, the key ring
 * and the credential source together.
 * @example
 * import { createTokenCacheFromEnv } from 'msal-cloud-cache/aws';
 * let cache: Promise<TokenCache> | undefined;
 * export const handler = async (event) => {
 *   cache ??= createTokenCacheFromEnv();
 *   const token = await (await cache).acquireTokenForApp({ scopes: ['api://downstream/.default'] });
 * };
 */
export async function createTokenCacheFromEnv(options: FromEnvOptions = {}): Promise<TokenCache> {
  return createTokenCacheFromConfig(loadCacheConfig(options.env ?? process.env), options);
}

/**
 * Builds the token cache a loaded config describes. Reads the client secret from Secrets
 * Manager or the certificate from its file (once: call this once per process).
 * @throws ConfigurationError naming the variable at fault
 */
export async function createTokenCacheFromConfig(
  config: CacheConfig,
  options: FromEnvOptions = {},
): Promise<TokenCache> {
  const ca = options.ca ?? trustedCas(config);
  const problems: ConfigurationError[] = [];
  const store = collectProblem(problems, () => createStore(config, ca));
  const keyRing = collectProblem(problems, () => createKeyRing(config, ca));
  const env = options.env ?? process.env;
  const metrics =
    options.metrics ?? collectProblem(problems, () => (emfEnabled(env) ? lambdaMetrics({ env }) : undefined));
  const logger = options.logger ?? defaultLogger(config);
  const credential = collectProblem(problems, () =>
    clientCredentialSource(config, ca, { logger, ...(metrics ? { metrics } : {}) }),
  );
  if (problems.length > 0) throw ConfigurationError.of(problems);
  return assembleTokenCache(config, {
    store: store!,
    keyRing: keyRing!,
    credential: await credential!(),
    ca,
    logger,
    metrics,
    ...(options.onResult ? { onResult: options.onResult } : {}),
  });
}

/**
 * The client credential the config points at: the secret itself, the SecretString of the
 * Secrets Manager secret, the certificate file's key and thumbprint, or (no secret) STS
 * `GetWebIdentityToken` as the client assertion, fetched once per token lifetime.
 * @throws ConfigurationError naming the variable when the secret or file is unusable, or for a source only Azure can use
 */
export async function resolveClientCredential(
  config: Pick<CacheConfig, 'msal' | 'awsRegion'>,
  ca?: readonly string[],
  observe: { readonly logger?: Logger; readonly metrics?: Metrics } = {},
): Promise<ClientCredential> {
  return clientCredentialSource(config, ca, observe)();
}

/**
 * {@link resolveClientCredential} in two steps, so that a credential setting at fault is
 * reported with every other problem: the checks now (the source suits this entry point, the
 * certificate file reads, the Secrets Manager client is installed), the Secrets Manager read
 * when the returned function is called.
 * @throws ConfigurationError naming the variable at fault
 */
function clientCredentialSource(
  config: Pick<CacheConfig, 'msal' | 'awsRegion'>,
  ca: readonly string[] | undefined,
  observe: { readonly logger?: Logger; readonly metrics?: Metrics },
): () => Promise<ClientCredential> {
  const local = localClientCredential(config);
  if (local) return () => Promise.resolve(local);
  const source = config.msal.credential;
  switch (source.kind) {
    case 'secrets-manager': {
      const sdk = secretsManagerSdk();
      return async () => ({
        clientSecret: await readSecret(sdk, source.secretArn, source.endpoint, config.awsRegion, ca),
      });
    }
    case 'aws-web-identity': {
      const assertions = webIdentityAssertion({
        ...(config.awsRegion ? { region: config.awsRegion } : {}),
        ...(source.endpoint ? { endpoint: source.endpoint } : {}),
        durationSeconds: source.durationSeconds,
        ...(ca ? { ca } : {}),
        ...(observe.logger ? { logger: observe.logger } : {}),
        ...(observe.metrics ? { metrics: observe.metrics } : {}),
      });
      return () => Promise.resolve({ clientAssertion: assertions.callback });
    }
    default:
      throw unsupportedKind('MSAL_CLIENT_ASSERTION_SOURCE', source.kind, ENTRY, [
        'MSAL_CLIENT_ASSERTION_SOURCE=aws-web-identity',
        'MSAL_CLIENT_SECRET',
        'MSAL_CLIENT_SECRET_ARN',
        'MSAL_CLIENT_CERTIFICATE_PATH',
      ]);
  }
}

function createStore(config: CacheConfig, ca: readonly string[] | undefined): TokenStore {
  const store = config.store;
  if (store.kind !== 'dynamodb') return otherStore(config, ca, ENTRY, 'dynamodb');
  return new DynamoDbStore({
    tableName: store.tableName,
    clientConfig: awsClientConfig(config, store.endpoint, ca, DYNAMODB_STORE_DEFAULTS.timeoutMs),
  });
}

/** The key ring a config names (KMS or local); also used by the operator CLI. */
export function createKeyRing(config: CacheConfig, ca: readonly string[] | undefined): KeyRing {
  const ring = config.keyRing;
  if (ring.kind !== 'aws-kms') return otherKeyRing(config, ENTRY, 'aws-kms');
  return new KmsKeyRing({
    keyId: ring.keyId,
    clientId: config.msal.clientId,
    clientConfig: awsClientConfig(config, ring.endpoint, ca, KMS_KEY_RING_DEFAULTS.timeoutMs),
  });
}

type SecretsManagerSdk = typeof import('@aws-sdk/client-secrets-manager');

/** The Secrets Manager client module: only deployments that keep the secret there need it. */
function secretsManagerSdk(): SecretsManagerSdk {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@aws-sdk/client-secrets-manager') as SecretsManagerSdk;
  } catch (e) {
    throw peerError(ENTRY, 'MSAL_CLIENT_SECRET_ARN', '@aws-sdk/client-secrets-manager', e);
  }
}

async function readSecret(
  sdk: SecretsManagerSdk,
  secretArn: string,
  endpoint: string | undefined,
  region: string | undefined,
  ca: readonly string[] | undefined,
): Promise<string> {
  const { GetSecretValueCommand, SecretsManagerClient } = sdk;
  const client = new SecretsManagerClient({
    ...(region ? { region } : {}),
    ...(endpoint ? { endpoint } : {}),
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 2000,
      requestTimeout: 5000,
      throwOnRequestTimeout: true,
      ...(ca ? { httpsAgent: new Agent({ keepAlive: true, ca: [...ca] }) } : {}),
    }),
  });
  try {
    const result = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    if (typeof result.SecretString !== 'string' || result.SecretString.length === 0) {
      throw new ConfigurationError(
        'MSAL_CLIENT_SECRET_ARN',
        `expected a secret whose SecretString is the client secret, got ${secretArn} without a SecretString`,
      );
    }
    return result.SecretString;
  } catch (e) {
    if (e instanceof ConfigurationError) throw e;
    const name = (e as { name?: unknown }).name;
    // These will not fix themselves: report them as configuration. Anything else (network,
    // throttling) is rethrown as is, and the next invocation tries again.
    if (
      name === 'ResourceNotFoundException' ||
      name === 'AccessDeniedException' ||
      name === 'DecryptionFailure' ||
      name === 'InvalidRequestException' ||
      name === 'InvalidParameterException'
    ) {
      throw new ConfigurationError(
        'MSAL_CLIENT_SECRET_ARN',
        `cannot read ${secretArn} (${String(name)}); check that the secret exists and the function's role may call secretsmanager:GetSecretValue on it`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    client.destroy();
  }
}

/** Region, endpoint override and (with extra CAs) a handler trusting them, bounded per attempt. */
function awsClientConfig(
  config: Pick<CacheConfig, 'awsRegion'>,
  endpoint: string | undefined,
  ca: readonly string[] | undefined,
  timeoutMs: number,
): { region?: string; endpoint?: string; requestHandler?: NodeHttpHandler } {
  return {
    ...(config.awsRegion ? { region: config.awsRegion } : {}),
    ...(endpoint ? { endpoint } : {}),
    ...(ca ? { requestHandler: awsHandler(ca, timeoutMs) } : {}),
  };
}

function awsHandler(ca: readonly string[], timeoutMs: number): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    // Without it the handler only warns when requestTimeout passes, and the call hangs.
    throwOnRequestTimeout: true,
    httpsAgent: new Agent({ keepAlive: true, ca: [...ca] }),
  });
}
