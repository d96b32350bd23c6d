/**
 * Each cloud's local services as the handler and package tests start them, and the
 * environment variables that point a cache (or a handler built on one) at them, as the
 * deployed functions get them from their stacks.
 */
import { startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startDownstreamApi, type DownstreamApi } from '../../local/downstream';
import type { LocalDynamo } from '../../local/dynamodb';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import type { LocalKms } from '../../local/kms';
import type { LocalSecretsManager } from '../../local/secrets-manager';
import { createDevCertificate, type DevCertificate } from '../../local/tls';
import { registerSecret } from './secret-registry';

/** The local authority, Cosmos DB, Key Vault and downstream API an Azure Function App talks to. */
export interface AzureServices {
  /** The one certificate every local HTTPS server presents (write it as the app's EXTRA_CA_FILE). */
  readonly certificate: DevCertificate;
  readonly authority: LocalAuthority;
  readonly cosmos: LocalCosmos;
  readonly vault: LocalKeyVault;
  readonly downstream: DownstreamApi;
  /** Stops every server that started. */
  stop(): Promise<void>;
}

/** Starts the Azure services for one app registration (its client secret is registered with the secret scanner). */
export async function startAzureServices(options: {
  clientId: string;
  clientSecret: string;
  downstreamAudience: string;
}): Promise<AzureServices> {
  // One certificate for every local HTTPS server, as the local stack does: OpenSSL looks a
  // self-signed certificate up by subject, so two CN=localhost CAs in one trust list collide.
  const certificate = await createDevCertificate();
  const authority = await startLocalAuthority({
    certificate,
    clients: [{ clientId: options.clientId, clientSecret: options.clientSecret }],
  });
  registerSecret('client-secret', options.clientSecret);
  const [cosmos, vault, downstream] = await Promise.all([
    startLocalCosmos(),
    startLocalKeyVault({ certificate, authorityUrl: authority.url, tenantId: authority.tenantId }),
    startDownstreamApi({ authority, audience: options.downstreamAudience }),
  ]);
  return {
    certificate,
    authority,
    cosmos,
    vault,
    downstream,
    stop: async () => {
      await Promise.all([downstream.stop(), vault.stop(), cosmos.stop(), authority.stop()]);
    },
  };
}

/** What a child process on AWS needs to reach local DynamoDB and KMS (and Secrets Manager) with the SDK. */
export function awsChildEnv(services: {
  dynamo: LocalDynamo;
  kms: LocalKms;
  secrets?: LocalSecretsManager;
}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_ENDPOINT_URL_DYNAMODB: services.dynamo.endpoint,
    AWS_ENDPOINT_URL_KMS: services.kms.endpoint,
    ...(services.secrets ? { AWS_ENDPOINT_URL_SECRETS_MANAGER: services.secrets.endpoint } : {}),
  };
}

/**
 * The cache's settings for local Cosmos DB and Key Vault, after creating the vault's
 * wrapping key `keyName` and its EC signing key `${keyName}-sign`; the cache reaches Key
 * Vault with the app's own credential.
 */
export async function azureCacheEnv(
  cosmos: LocalCosmos,
  vault: LocalKeyVault,
  keyName: string,
): Promise<Record<string, string>> {
  const key = await vault.createKey(keyName);
  const signingKey = await vault.createKey(`${keyName}-sign`, { kty: 'EC' });
  return {
    TOKEN_CACHE_COSMOS_ENDPOINT: cosmos.endpoint,
    TOKEN_CACHE_COSMOS_DATABASE: cosmos.databaseId,
    TOKEN_CACHE_COSMOS_CONTAINER: cosmos.containerId,
    TOKEN_CACHE_COSMOS_KEY: cosmos.key,
    TOKEN_CACHE_KEYVAULT_KEY_ID: `${vault.vaultUrl}/keys/${key.name}`,
    TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: `${vault.vaultUrl}/keys/${signingKey.name}`,
    TOKEN_CACHE_AZURE_CREDENTIAL: 'app',
  };
}
