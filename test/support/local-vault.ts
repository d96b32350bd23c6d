/**
 * How every test's Azure SDK client reaches the local Key Vault (local/keyvault.ts):
 * trust its dev certificate, accept a challenge that names vault.azure.net while the host
 * is localhost, and no SDK retries, so a fault a test injects is seen at once.
 */
import type { TokenCredential } from '@azure/core-auth';
import type { LocalKeyVault } from '../../local/keyvault';
import { KeyVaultKeyRing } from '../../shared/azure/keyvault-keyring';

/** Client options (KeyClient, CryptographyClient, KeyVaultKeyRing) for the local Key Vault `vault`. */
export function localVaultClientOptions(vault: Pick<LocalKeyVault, 'ca'>) {
  return {
    tlsOptions: { ca: vault.ca },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  };
}

/**
 * A {@link KeyVaultKeyRing} over two keys of the local Key Vault `vault`, by their unversioned
 * ids: `wrap` wraps the data keys, `sign` (an EC key) signs the envelopes.
 */
export function localVaultKeyRing(
  vault: Pick<LocalKeyVault, 'ca' | 'vaultUrl'>,
  keys: { readonly wrap: { readonly name: string }; readonly sign: { readonly name: string } },
  credential: TokenCredential,
): KeyVaultKeyRing {
  return new KeyVaultKeyRing({
    keyId: `${vault.vaultUrl}/keys/${keys.wrap.name}`,
    signingKeyId: `${vault.vaultUrl}/keys/${keys.sign.name}`,
    credential,
    cryptographyClientOptions: localVaultClientOptions(vault),
  });
}
