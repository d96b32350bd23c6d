/**
 * How every test's Azure SDK client reaches the local Key Vault (local/keyvault.ts):
 * trust its dev certificate, accept a challenge that names vault.azure.net while the host
 * is localhost, and no SDK retries, so a fault a test injects is seen at once.
 */
import type { LocalKeyVault } from '../../local/keyvault';

/** Client options (KeyClient, CryptographyClient, KeyVaultKeyRing) for the local Key Vault `vault`. */
export function localVaultClientOptions(vault: Pick<LocalKeyVault, 'ca'>) {
  return {
    tlsOptions: { ca: vault.ca },
    disableChallengeResourceVerification: true,
    retryOptions: { maxRetries: 0 },
  };
}
