/**
 * `msal-cloud-cache/azure`: the Cosmos DB store, the Key Vault key ring and the
 * Functions-ready composition {@link createTokenCacheFromEnv}. Needs the optional peers
 * `@azure/cosmos`, `@azure/identity` and `@azure/keyvault-keys`. Loads no AWS package.
 */
import './peers';

export { COSMOS_STORE_DEFAULTS, KEY_VAULT_KEY_RING_DEFAULTS } from '../defaults';
export {
  CosmosStore,
  type CosmosStoreOptions,
  type CosmosStoreContainerOptions,
  type CosmosStoreEndpointOptions,
} from './cosmos-store';
export {
  KeyVaultKeyRing,
  type KeyVaultKeyRingBaseOptions,
  type KeyVaultKeyRingClientOptions,
  type KeyVaultKeyRingConfigOptions,
  type KeyVaultKeyRingOptions,
} from './keyvault-keyring';
export { createTokenCacheFromConfig, createTokenCacheFromEnv, resolveClientCredential } from './from-env';
export type { FromEnvOptions } from './from-env';
export {
  ENTRA_TOKEN_EXCHANGE_SCOPE,
  managedIdentityAssertion,
  managedIdentityAssertionSource,
  type ManagedIdentityAssertionOptions,
} from './managed-identity-assertion';
