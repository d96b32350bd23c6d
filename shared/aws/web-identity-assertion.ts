/**
 * The client assertion from AWS IAM outbound identity federation: STS `GetWebIdentityToken`
 * signs a JWT whose `sub` is the caller's role ARN, for the audience Entra expects of a
 * federated credential (`api://AzureADTokenExchange`). Registered on the Entra app as a
 * federated credential (issuer = the account's STS issuer URL, subject = the role ARN), it
 * replaces the client secret: nothing secret is stored anywhere.
 *
 * `@aws-sdk/client-sts` is loaded only when this source is used.
 */
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { STSClient, STSClientConfig } from '@aws-sdk/client-sts';
import { AssertionCache, type AssertionCacheOptions, type AssertionSource } from '../cache/assertion-cache';
import { ClientAssertionError, ClientAssertionFailure, ConfigurationError } from '../errors';
import { peerError } from '../peers';

/** The audience Entra requires of a federated credential's assertion (public cloud). */
export const ENTRA_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** Defaults of {@link WebIdentityAssertionOptions}. */
export const WebIdentityAssertionDefaults = {
  durationSeconds: 900,
  timeoutMs: 3_000,
  maxAttempts: 2,
} as const;

/** Options of {@link webIdentityAssertionSource}. */
export interface WebIdentityAssertionOptions {
  /** The region of the STS endpoint (a regional endpoint, never the global one). @default the SDK's (AWS_REGION) */
  readonly region?: string;
  /** STS endpoint override, e.g. a local emulator. @default the regional endpoint */
  readonly endpoint?: string;
  /** Token lifetime, 60 to 3600 seconds. @default 900 */
  readonly durationSeconds?: number;
  /** @default ['api://AzureADTokenExchange'] */
  readonly audience?: readonly string[];
  /** Per attempt. @default 3_000 */
  readonly timeoutMs?: number;
  /** SDK attempts per fetch (throttling, 5xx, network). @default 2 */
  readonly maxAttempts?: number;
  /** CAs to trust for an https endpoint. @default the system store */
  readonly ca?: readonly string[];
  /** A ready client instead of one built from the options above. */
  readonly client?: STSClient;
}

const NAME = 'aws-web-identity';
const ENTRY = 'msal-cloud-cache/aws';

/**
 * The STS `GetWebIdentityToken` assertion source (RS256, the Entra audience).
 * @throws ConfigurationError when `@aws-sdk/client-sts` is not installed or the duration is out of range
 */
export function webIdentityAssertionSource(options: WebIdentityAssertionOptions = {}): AssertionSource {
  const durationSeconds = options.durationSeconds ?? WebIdentityAssertionDefaults.durationSeconds;
  if (!Number.isInteger(durationSeconds) || durationSeconds < 60 || durationSeconds > 3600) {
    throw new ConfigurationError(
      'durationSeconds',
      `expected a whole number of seconds from 60 to 3600, got ${durationSeconds}`,
    );
  }
  let sts: typeof import('@aws-sdk/client-sts');
  try {
    // Only federated deployments need the STS client (the require stays here, inside its
    // own try, so a bundle without it still builds).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sts = require('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts');
  } catch (e) {
    throw peerError(ENTRY, 'MSAL_CLIENT_ASSERTION_SOURCE=aws-web-identity', '@aws-sdk/client-sts', e);
  }
  const timeoutMs = options.timeoutMs ?? WebIdentityAssertionDefaults.timeoutMs;
  const config: STSClientConfig = {
    ...(options.region ? { region: options.region } : {}),
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    maxAttempts: options.maxAttempts ?? WebIdentityAssertionDefaults.maxAttempts,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: timeoutMs,
      requestTimeout: timeoutMs,
      throwOnRequestTimeout: true,
      ...(options.ca ? { httpsAgent: new Agent({ keepAlive: true, ca: [...options.ca] }) } : {}),
    }),
  };
  const client = options.client ?? new sts.STSClient(config);
  const audience = [...(options.audience ?? [ENTRA_TOKEN_EXCHANGE_AUDIENCE])];
  return {
    name: NAME,
    async fetch(signal) {
      try {
        const result = await client.send(
          new sts.GetWebIdentityTokenCommand({
            Audience: audience,
            SigningAlgorithm: 'RS256',
            DurationSeconds: durationSeconds,
          }),
          { abortSignal: signal },
        );
        if (!result.WebIdentityToken) {
          throw new ClientAssertionError('GetWebIdentityToken answered without a WebIdentityToken', {
            source: NAME,
            reason: ClientAssertionFailure.Invalid,
            retryable: true,
          });
        }
        return {
          assertion: result.WebIdentityToken,
          ...(result.Expiration ? { expiresAt: result.Expiration.getTime() } : {}),
        };
      } catch (e) {
        throw classify(e);
      }
    },
  };
}

/**
 * The STS assertion source behind an {@link AssertionCache}: `.callback` is MSAL's `clientAssertion`.
 * @example createTokenCache({ msal: { clientId, authority, clientAssertion: webIdentityAssertion({ region }).callback }, ... })
 */
export function webIdentityAssertion(
  options: WebIdentityAssertionOptions & Omit<AssertionCacheOptions, 'source'> = {},
): AssertionCache {
  return new AssertionCache({ ...options, source: webIdentityAssertionSource(options) });
}

/** STS's answer as a ClientAssertionError: setup problems are not retryable and say what to fix. */
function classify(e: unknown): ClientAssertionError {
  if (e instanceof ClientAssertionError) return e;
  const error = e as { name?: unknown; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const name = typeof error?.name === 'string' ? error.name : 'Error';
  const status = error?.$metadata?.httpStatusCode;
  if (name === 'OutboundWebIdentityFederationDisabledException') {
    return new ClientAssertionError(
      'outbound identity federation is not enabled for this AWS account: an administrator enables it once with `aws iam enable-outbound-web-identity-federation` (iam:EnableOutboundWebIdentityFederation)',
      { source: NAME, reason: ClientAssertionFailure.NotPermitted, retryable: false, cause: e },
    );
  }
  if (name === 'CredentialsProviderError') {
    return new ClientAssertionError(
      'no AWS credentials to call STS with (on Lambda they come from the function role)',
      { source: NAME, reason: ClientAssertionFailure.NotPermitted, retryable: false, cause: e },
    );
  }
  if (name === 'AccessDenied' || name === 'AccessDeniedException' || status === 403) {
    return new ClientAssertionError(
      `STS refused GetWebIdentityToken (${name}): the function's role needs sts:GetWebIdentityToken with sts:IdentityTokenAudience = ${ENTRA_TOKEN_EXCHANGE_AUDIENCE}`,
      { source: NAME, reason: ClientAssertionFailure.NotPermitted, retryable: false, cause: e },
    );
  }
  if (
    name === 'ValidationError' ||
    (status !== undefined && status >= 400 && status < 500 && !isThrottle(name))
  ) {
    return new ClientAssertionError(`STS refused the request (${name})`, {
      source: NAME,
      reason: ClientAssertionFailure.NotPermitted,
      retryable: false,
      cause: e,
    });
  }
  const aborted = name === 'AbortError' || name === 'TimeoutError' || name === 'RequestTimeout';
  return new ClientAssertionError(
    `STS GetWebIdentityToken failed (${name}${status ? `, HTTP ${status}` : ''})`,
    {
      source: NAME,
      reason: aborted ? ClientAssertionFailure.Timeout : ClientAssertionFailure.Unavailable,
      retryable: true,
      cause: e,
    },
  );
}

function isThrottle(name: string): boolean {
  return name === 'Throttling' || name === 'ThrottlingException' || name === 'TooManyRequestsException';
}
