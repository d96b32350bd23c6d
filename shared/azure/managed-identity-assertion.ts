/**
 * The client assertion from the Function App's managed identity: a token for
 * `api://AzureADTokenExchange`, presented to Entra as a federated credential of the app
 * registration (issuer `https://login.microsoftonline.com/<tenant>/v2.0`, subject the
 * identity's principal id). What Microsoft.Identity.Web calls
 * `SignedAssertionFromManagedIdentity`. A user-assigned identity (by client id) is
 * recommended: it outlives the Function App and can be shared by its slots.
 *
 * @azure/identity's ManagedIdentityCredential finds the endpoint itself (`IDENTITY_ENDPOINT`
 * and `IDENTITY_HEADER` on App Service and Functions, IMDS elsewhere).
 */
import {
  AuthenticationError,
  CredentialUnavailableError,
  ManagedIdentityCredential,
  type TokenCredential,
} from '@azure/identity';
import { AssertionCache, type AssertionCacheOptions, type AssertionSource } from '../cache/assertion-cache';
import { ClientAssertionError, ClientAssertionFailure } from '../errors';

/** The audience Entra requires of a federated credential's assertion (public cloud). */
export const ENTRA_TOKEN_EXCHANGE_SCOPE = 'api://AzureADTokenExchange/.default';

/** Options of {@link managedIdentityAssertionSource}. */
export interface ManagedIdentityAssertionOptions {
  /** Client id of a user-assigned identity. @default the system-assigned identity */
  readonly clientId?: string;
  /** @default 'api://AzureADTokenExchange/.default' (other clouds use their own, e.g. api://AzureADTokenExchangeUSGov) */
  readonly scope?: string;
  /** A ready credential instead of a ManagedIdentityCredential (tests, other hosts). */
  readonly credential?: TokenCredential;
}

const NAME = 'azure-managed-identity';

/** The managed-identity assertion source. */
export function managedIdentityAssertionSource(
  options: ManagedIdentityAssertionOptions = {},
): AssertionSource {
  const credential =
    options.credential ??
    (options.clientId
      ? new ManagedIdentityCredential({ clientId: options.clientId })
      : new ManagedIdentityCredential());
  const scope = options.scope ?? ENTRA_TOKEN_EXCHANGE_SCOPE;
  const which = options.clientId
    ? `the user-assigned identity ${options.clientId}`
    : 'the system-assigned identity';
  return {
    name: NAME,
    async fetch(signal) {
      try {
        const token = await credential.getToken(scope, { abortSignal: signal });
        if (!token?.token) {
          throw new ClientAssertionError('the credential returned no token', {
            source: NAME,
            reason: ClientAssertionFailure.Invalid,
            retryable: true,
          });
        }
        return { assertion: token.token, expiresAt: token.expiresOnTimestamp };
      } catch (e) {
        if (e instanceof ClientAssertionError) throw e;
        if (e instanceof CredentialUnavailableError) {
          // No endpoint at all (not on App Service / Functions / a VM), or no such identity.
          const unavailable = /not (?:be )?available|unavailable|IDENTITY_ENDPOINT|not defined/i.test(
            e.message,
          );
          return Promise.reject(
            new ClientAssertionError(
              `no token from ${which} (${e.name}); check that the Function App has this identity assigned`,
              {
                source: NAME,
                reason: unavailable
                  ? ClientAssertionFailure.NotPermitted
                  : ClientAssertionFailure.Unavailable,
                retryable: !unavailable,
                cause: e,
              },
            ),
          );
        }
        const status = e instanceof AuthenticationError ? e.statusCode : undefined;
        const retryable = status === undefined || status >= 500 || status === 429;
        throw new ClientAssertionError(
          `no token from ${which} (${(e as { name?: string }).name ?? 'Error'}${status ? `, HTTP ${status}` : ''})${
            retryable ? '' : '; check that the Function App has this identity assigned'
          }`,
          {
            source: NAME,
            reason: retryable ? ClientAssertionFailure.Unavailable : ClientAssertionFailure.NotPermitted,
            retryable,
            cause: e,
          },
        );
      }
    },
  };
}

/**
 * The managed-identity source behind an {@link AssertionCache}: `.callback` is MSAL's `clientAssertion`.
 * @example createTokenCache({ msal: { clientId, authority, clientAssertion: managedIdentityAssertion({ clientId: miClientId }).callback }, ... })
 */
export function managedIdentityAssertion(
  options: ManagedIdentityAssertionOptions & Omit<AssertionCacheOptions, 'source'> = {},
): AssertionCache {
  return new AssertionCache({ ...options, source: managedIdentityAssertionSource(options) });
}
