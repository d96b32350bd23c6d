/**
 * Token endpoint errors in Entra ID's shape: an OAuth `error`, an `AADSTS<code>: ...`
 * description, `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
 * msal-node turns `error` into `errorCode`, `error_codes[0]` into `errorNo` and the
 * `suberror` `bad_token` into an InteractionRequiredAuthError, so the library under test
 * sees what it would see from Entra. Codes and texts follow Entra's published ones; the
 * texts are shortened.
 */
import { randomUUID } from 'node:crypto';

/** A token request Entra would refuse; thrown by the grant handlers, answered by the server. */
export class EntraError extends Error {
  override readonly name = 'EntraError';
  constructor(
    readonly status: number,
    readonly error: string,
    readonly code: number,
    readonly description: string,
    readonly suberror?: string,
    /** A Conditional Access claims challenge (JSON text, sent as given). */
    readonly claims?: string,
  ) {
    super(`AADSTS${code}: ${description}`);
  }

  /** The response body, with the request's correlation id. */
  body(correlationId: string | undefined): Record<string, unknown> {
    const traceId = randomUUID();
    const correlation = correlationId ?? randomUUID();
    // Entra's timestamp format: "2024-06-20 11:53:16Z".
    const timestamp = new Date()
      .toISOString()
      .replace('T', ' ')
      .replace(/\.\d+Z$/, 'Z');
    return {
      error: this.error,
      error_description: `${this.message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlation}\r\nTimestamp: ${timestamp}`,
      error_codes: [this.code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlation,
      error_uri: `https://login.microsoftonline.com/error?code=${this.code}`,
      ...(this.suberror ? { suberror: this.suberror } : {}),
      ...(this.claims !== undefined ? { claims: this.claims } : {}),
    };
  }
}

/** The refusals of one OAuth `error`, each always answered with the same HTTP status. */
const refusal =
  (status: number, error: string) =>
  (code: number, description: string, suberror?: string): EntraError =>
    new EntraError(status, error, code, description, suberror);
const invalidRequest = refusal(400, 'invalid_request');
const invalidClient = refusal(401, 'invalid_client');
const invalidScope = refusal(400, 'invalid_scope');
const invalidGrant = refusal(400, 'invalid_grant');

/** The errors the local authority answers with, by cause. */
export const Entra = {
  missingParameter: (name: string) =>
    invalidRequest(900144, `The request body must contain the following parameter: '${name}'.`),
  invalidParameter: (name: string, value: string) =>
    invalidRequest(900144, `The value '${value}' of parameter '${name}' is not valid.`),
  unsupportedGrantType: (grantType: string) =>
    new EntraError(
      400,
      'unsupported_grant_type',
      70003,
      `The app requested an unsupported grant type '${grantType}'.`,
    ),
  unknownClient: (clientId: string, tenantId: string) =>
    new EntraError(
      400,
      'unauthorized_client',
      700016,
      `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`,
    ),
  missingClientCredential: () =>
    invalidClient(
      7000218,
      "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ),
  invalidClientSecret: (clientId: string) =>
    invalidClient(
      7000215,
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
    ),
  malformedClientAssertion: () => invalidClient(50027, 'JWT token is invalid or malformed.'),
  clientAssertionSignature: (reason: string) =>
    invalidClient(700027, `Client assertion failed signature validation. [Reason - ${reason}]`),
  clientAssertionTime: () => invalidClient(700024, 'Client assertion is not within its valid time range.'),
  clientAssertionAudience: () =>
    invalidClient(700023, 'Client assertion audience claim does not match Realm issuer.'),
  /** Entra has no dedicated public code for iss/sub != client_id; it reports the assertion as malformed. */
  clientAssertionSubject: () =>
    invalidClient(50027, "JWT token is invalid or malformed: 'iss' and 'sub' must be the client_id."),
  /** The assertion's issuer is in no federated credential of the app. */
  federatedIssuerUnknown: (issuer: string) =>
    invalidRequest(
      700211,
      `No matching federated identity record found for presented assertion issuer '${issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
    ),
  /** The issuer is known but no federated credential has this subject. */
  federatedNoMatch: (issuer: string, subject: string, audience: string) =>
    invalidRequest(
      70021,
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${audience}'.`,
    ),
  /** Issuer and subject match a federated credential whose audiences do not include the assertion's. */
  federatedAudience: (audience: string) =>
    invalidRequest(
      700212,
      `No matching federated identity record found for presented assertion audience '${audience}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.`,
    ),
  /** The issuer's discovery document or keys could not be fetched. */
  federatedIssuerUnreachable: (issuer: string) =>
    invalidClient(50166, `Request to External OIDC endpoint failed. Issuer: '${issuer}'.`),
  clientCredentialsScope: (scope: string) =>
    invalidScope(
      1002012,
      `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    ),
  invalidScope: (scope: string) =>
    invalidScope(
      70011,
      `The provided value for the input parameter 'scope' is not valid. The scope '${scope}' is not valid.`,
    ),
  multipleResources: () =>
    invalidScope(
      28000,
      'Provided value for the input parameter scope is not valid because it contains more than one resource.',
    ),
  assertionSignature: (reason: string) =>
    invalidGrant(50013, `Assertion failed signature validation. [Reason - ${reason}]`),
  /** Anything else wrong with an OBO assertion: untrusted issuer, app-only token, missing claims. */
  assertionInvalid: (reason: string) => invalidGrant(50013, `Assertion is invalid. [Reason - ${reason}]`),
  assertionTime: (expiry: number) =>
    invalidGrant(
      500133,
      `Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: ${new Date().toISOString()}, expiry time of assertion ${new Date(expiry * 1000).toISOString()}.`,
    ),
  assertionAudience: (audience: string, clientId: string) =>
    invalidGrant(
      500131,
      `Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '${audience}' and the expected audience is '${clientId}' or one of the Application Uris of this application with App ID '${clientId}'.`,
    ),
  malformedGrant: () => invalidGrant(9002313, 'Invalid request. Request is malformed or invalid.'),
  grantOfOtherClient: (what: string) =>
    invalidGrant(70000, `Provided grant is invalid or malformed: the ${what} was issued to another client.`),
  codeRedeemed: () =>
    invalidGrant(
      54005,
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
    ),
  codeExpired: () =>
    invalidGrant(70008, 'The provided authorization code or refresh token has expired due to inactivity.'),
  redirectMismatch: (given: string, expected: string) =>
    invalidGrant(
      500112,
      `The reply address '${given}' does not match the reply address '${expected}' provided when requesting Authorization code.`,
    ),
  pkceMismatch: () =>
    invalidGrant(
      501481,
      'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
    ),
  refreshTokenRevoked: () =>
    invalidGrant(
      50173,
      'The provided grant has expired due to it being revoked, a fresh auth token is needed.',
      'bad_token',
    ),
  /** A Conditional Access policy requires more of the user (MFA, an authentication context). */
  stepUpRequired: (resource: string, claims: string) =>
    new EntraError(
      400,
      'interaction_required',
      50076,
      `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resource}'.`,
      undefined,
      claims,
    ),
  /** The `claims` parameter is not a JSON object (its value is not echoed). */
  invalidClaims: () =>
    invalidRequest(900144, "The value of parameter 'claims' is not valid: expected a JSON object."),
  /** The fault switch. 429 and 503 are transient ('temporarily_unavailable'), 500 is 'server_error'. */
  fault: (status: 429 | 500 | 503) =>
    status === 500
      ? new EntraError(
          500,
          'server_error',
          50000,
          'There was an error issuing a token or an issue with our sign-in service.',
        )
      : status === 429
        ? new EntraError(
            429,
            'temporarily_unavailable',
            90055,
            'There are too many incoming requests. Retry later.',
          )
        : new EntraError(
            503,
            'temporarily_unavailable',
            90033,
            'A transient error has occurred. Please try again.',
          ),
} as const;
