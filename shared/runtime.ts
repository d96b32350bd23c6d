/**
 * The composition root: turns an {@link AppConfig} into a ready {@link TokenCache} (store,
 * key ring, credential, network client). Called once per process, at the first
 * invocation; everything it builds is process-wide and holds nothing user-specific.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { TokenCredential } from '@azure/identity';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpsNetworkClient } from './cache/http';
import { createTokenCache } from './cache/token-cache';
import type { ClientCredential, TokenCache } from './cache/types';
import type { AppConfig } from './config';
import type { KeyRing } from './crypto/keyring';
import { LocalKeyRing } from './crypto/local-keyring';
import { ConfigurationError } from './errors';
import type { Logger, Metrics } from './observability';
import { MemoryStore } from './store/memory';
import type { TokenStore } from './store/store';

/*
 * Cloud SDKs are loaded by the configuration that uses them, not at import: a Lambda never
 * evaluates the Azure SDKs, nor a Function App the AWS ones. Evaluating @azure/cosmos
 * alone takes seconds of a cold start on a small instance.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const sdk = {
  secretsManager: () =>
    require('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager'),
  httpHandler: () => require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler'),
  cosmos: () => require('@azure/cosmos') as typeof import('@azure/cosmos'),
  identity: () => require('@azure/identity') as typeof import('@azure/identity'),
  dynamoStore: () => require('./store/dynamodb') as typeof import('./store/dynamodb'),
  cosmosStore: () => require('./store/cosmos') as typeof import('./store/cosmos'),
  kmsRing: () => require('./crypto/aws-kms-keyring') as typeof import('./crypto/aws-kms-keyring'),
  keyVaultRing: () =>
    require('./crypto/azure-keyvault-keyring') as typeof import('./crypto/azure-keyvault-keyring'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

/** What {@link createTokenCacheFromConfig} needs besides the config. */
export interface RuntimeOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** CAs to trust, as {@link trustedCas} returns them. @default trustedCas(config) */
  readonly ca?: readonly string[];
}

/**
 * The CAs every client of this process trusts: the system store plus `EXTRA_CA_FILE`, or
 * `undefined` (the system store) when no extra file is configured. Node's `ca` options
 * replace the system store, so the system roots are included explicitly.
 * @throws ConfigurationError naming EXTRA_CA_FILE when it cannot be read or holds no certificate
 */
export function trustedCas(config: Pick<AppConfig, 'extraCaFile'>): readonly string[] | undefined {
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
 * Builds the token cache the config describes. Reads the client secret from Secrets
 * Manager or the certificate from its file (once: call this once per process).
 * @example
 * const cache = await createTokenCacheFromConfig(loadConfig(), { logger, metrics });
 */
export async function createTokenCacheFromConfig(
  config: AppConfig,
  options: RuntimeOptions,
): Promise<TokenCache> {
  const ca = options.ca ?? trustedCas(config);
  const credential = await resolveClientCredential(config, ca);
  const azureCredential =
    config.azureCredential === 'app' ? appCredential(config, credential, ca) : undefined;
  return createTokenCache({
    msal: {
      clientId: config.msal.clientId,
      authority: config.msal.authority,
      knownAuthorities: config.msal.knownAuthorities,
      networkClient: new HttpsNetworkClient(ca ? { ca } : {}),
      ...credential,
    },
    store: createStore(config, ca, azureCredential),
    keyRing: createKeyRing(config, ca, azureCredential),
    l1: config.l1,
    logger: options.logger,
    metrics: options.metrics,
  });
}

/**
 * The client credential the config points at: the secret itself, the SecretString of the
 * Secrets Manager secret, or the certificate file's key and thumbprint.
 * @throws ConfigurationError naming the variable when the secret or file is unusable
 */
export async function resolveClientCredential(
  config: Pick<AppConfig, 'msal' | 'awsRegion'>,
  ca?: readonly string[],
): Promise<ClientCredential> {
  const source = config.msal.credential;
  switch (source.kind) {
    case 'secret':
      return { clientSecret: source.secret.reveal() };
    case 'secrets-manager':
      return { clientSecret: await readSecret(source.secretArn, source.endpoint, config.awsRegion, ca) };
    case 'certificate':
      return { clientCertificate: readCertificate(source.path, source.sendX5c) };
  }
}

async function readSecret(
  secretArn: string,
  endpoint: string | undefined,
  region: string | undefined,
  ca: readonly string[] | undefined,
): Promise<string> {
  const { GetSecretValueCommand, SecretsManagerClient } = sdk.secretsManager();
  const { NodeHttpHandler } = sdk.httpHandler();
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

function readCertificate(path: string, sendX5c: boolean): NonNullable<ClientCredential['clientCertificate']> {
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

function createStore(
  config: AppConfig,
  ca: readonly string[] | undefined,
  azure: TokenCredential | undefined,
): TokenStore {
  const store = config.store;
  switch (store.kind) {
    case 'memory':
      return new MemoryStore();
    case 'dynamodb':
      return new (sdk.dynamoStore().DynamoDbStore)({
        tableName: store.tableName,
        clientConfig: {
          ...(config.awsRegion ? { region: config.awsRegion } : {}),
          ...(store.endpoint ? { endpoint: store.endpoint } : {}),
          ...(ca ? { requestHandler: awsHandler(ca, 1500) } : {}),
        },
      });
    case 'cosmos': {
      const local = isLoopback(store.endpoint);
      const client = new (sdk.cosmos().CosmosClient)({
        endpoint: store.endpoint,
        ...(store.key
          ? { key: store.key.reveal() }
          : { aadCredentials: azure ?? new (sdk.identity().DefaultAzureCredential)() }),
        ...(ca && store.endpoint.startsWith('https:')
          ? { agent: new Agent({ keepAlive: true, ca: [...ca] }) }
          : {}),
        connectionPolicy: {
          // Bounded like the DynamoDB store (the SDK's own default is 60 s): a slow store must
          // cost the cache, not the request.
          requestTimeout: 1500,
          // An emulator has no regional endpoints to discover; the account endpoint is all there is.
          ...(local ? { enableEndpointDiscovery: false } : {}),
        },
      });
      return new (sdk.cosmosStore().CosmosStore)({
        container: client.database(store.databaseId).container(store.containerId),
      });
    }
  }
}

function createKeyRing(
  config: AppConfig,
  ca: readonly string[] | undefined,
  azure: TokenCredential | undefined,
): KeyRing {
  const ring = config.keyRing;
  switch (ring.kind) {
    case 'local':
      return new LocalKeyRing({ masterKey: ring.masterKey.reveal() });
    case 'aws-kms':
      return new (sdk.kmsRing().KmsKeyRing)({
        keyId: ring.keyId,
        clientId: config.msal.clientId,
        clientConfig: {
          ...(config.awsRegion ? { region: config.awsRegion } : {}),
          ...(ring.endpoint ? { endpoint: ring.endpoint } : {}),
          ...(ca ? { requestHandler: awsHandler(ca, 2000) } : {}),
        },
      });
    case 'azure-keyvault':
      return new (sdk.keyVaultRing().KeyVaultKeyRing)({
        keyId: ring.keyId,
        signingKeyId: ring.signingKeyId,
        credential: azure ?? new (sdk.identity().DefaultAzureCredential)(),
        cryptographyClientOptions: {
          ...(ca ? { tlsOptions: { ca: [...ca] } } : {}),
          // A local vault answers the challenge for https://vault.azure.net from localhost.
          ...(isLoopback(ring.keyId) ? { disableChallengeResourceVerification: true } : {}),
        },
      });
  }
}

/** This app's own identity for Azure services, at the configured (possibly local) authority. */
function appCredential(
  config: AppConfig,
  credential: ClientCredential,
  ca: readonly string[] | undefined,
): TokenCredential {
  if (!credential.clientSecret) {
    throw new ConfigurationError(
      'TOKEN_CACHE_AZURE_CREDENTIAL',
      '"app" needs a client secret (MSAL_CLIENT_SECRET or MSAL_CLIENT_SECRET_ARN)',
    );
  }
  const authority = new URL(config.msal.authority);
  return new (sdk.identity().ClientSecretCredential)(
    config.msal.tenant,
    config.msal.clientId,
    credential.clientSecret,
    {
      authorityHost: authority.origin,
      disableInstanceDiscovery: config.msal.knownAuthorities.includes(authority.host),
      ...(ca ? { tlsOptions: { ca: [...ca] } } : {}),
    },
  );
}

function awsHandler(ca: readonly string[], timeoutMs: number): NodeHttpHandler {
  return new (sdk.httpHandler().NodeHttpHandler)({
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    // Without it the handler only warns when requestTimeout passes, and the call hangs.
    throwOnRequestTimeout: true,
    httpsAgent: new Agent({ keepAlive: true, ca: [...ca] }),
  });
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

function isLoopback(url: string): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(new URL(url).hostname);
}
