/**
 * Registered confidential clients and client authentication at the token endpoint:
 * `client_secret` in the body, or a `client_assertion` JWT signed with the key of a
 * registered certificate (what msal-node sends for `clientCertificate`).
 */
import { createHash, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import { ConfigurationError } from '../../shared/errors';
import { Entra } from './entra-errors';
import type { ClientAuthMethod } from './tokens';
import type { LocalClient, LocalFederatedCredential } from './types';

const CLOCK_SKEW_SECONDS = 300;
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface RegisteredCertificate {
  readonly publicKey: KeyObject;
  /** base64url SHA-1 and SHA-256 thumbprints: msal-node names the key by `x5t` or `x5t#S256`. */
  readonly x5t: string;
  readonly x5tS256: string;
}

/** A client as the token endpoint knows it. */
export interface RegisteredClient {
  readonly clientId: string;
  readonly roles: readonly string[];
  readonly secretDigest?: Buffer;
  readonly certificate?: RegisteredCertificate;
  readonly federated: readonly Required<LocalFederatedCredential>[];
}

/** The audience Entra requires of a federated credential's assertion (public cloud). */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** The keys of federated credentials' issuers, found through their discovery documents, cached per issuer. */
export class FederatedIssuers {
  private readonly keySets = new Map<string, Promise<ReturnType<typeof createRemoteJWKSet>>>();

  /** The issuer's key set; rejects (and forgets) when discovery fails. */
  keys(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
    let keys = this.keySets.get(issuer);
    if (!keys) {
      keys = discover(issuer);
      this.keySets.set(issuer, keys);
      keys.catch(() => this.keySets.delete(issuer));
    }
    return keys;
  }
}

async function discover(issuer: string): Promise<ReturnType<typeof createRemoteJWKSet>> {
  const response = await fetch(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, {
    signal: AbortSignal.timeout(5000),
  });
  if (!response.ok) throw new Error(`discovery answered HTTP ${response.status}`);
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (document.issuer !== issuer || typeof document.jwks_uri !== 'string') {
    throw new Error('discovery document names another issuer or no jwks_uri');
  }
  return createRemoteJWKSet(new URL(document.jwks_uri), { timeoutDuration: 5000 });
}

/** A client that proved who it is, and how. */
export interface AuthenticatedClient {
  readonly client: RegisteredClient;
  readonly method: ClientAuthMethod;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function thumbprint(fingerprint: string): string {
  return Buffer.from(fingerprint.replace(/:/g, ''), 'hex').toString('base64url');
}

/** Validates a registration and prepares it for authentication; throws ConfigurationError. */
export function registration(client: LocalClient): RegisteredClient {
  if (typeof client.clientId !== 'string' || client.clientId.trim() === '') {
    throw new ConfigurationError('LocalClient.clientId', 'must be a non-empty string');
  }
  const federated = (client.federatedCredentials ?? []).map((f, i) => {
    if (!f.issuer || !f.subject) {
      throw new ConfigurationError(
        `LocalClient(${client.clientId}).federatedCredentials[${i}]`,
        'needs issuer and subject',
      );
    }
    return {
      issuer: f.issuer,
      subject: f.subject,
      audiences: [...(f.audiences ?? [TOKEN_EXCHANGE_AUDIENCE])],
      name: f.name ?? `federated-${i + 1}`,
    };
  });
  if (client.clientSecret === undefined && client.certificatePem === undefined && federated.length === 0) {
    throw new ConfigurationError(
      `LocalClient(${client.clientId})`,
      'a confidential client needs clientSecret, certificatePem or federatedCredentials',
    );
  }
  if (client.clientSecret !== undefined && client.clientSecret.length === 0) {
    throw new ConfigurationError(`LocalClient(${client.clientId}).clientSecret`, 'must not be empty');
  }
  let certificate: RegisteredCertificate | undefined;
  if (client.certificatePem !== undefined) {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(client.certificatePem);
    } catch (cause) {
      throw new ConfigurationError(
        `LocalClient(${client.clientId}).certificatePem`,
        'is not a PEM X.509 certificate',
        { cause },
      );
    }
    certificate = {
      publicKey: x509.publicKey,
      x5t: thumbprint(x509.fingerprint),
      x5tS256: thumbprint(x509.fingerprint256),
    };
  }
  return {
    clientId: client.clientId,
    roles: [...(client.roles ?? [])],
    ...(client.clientSecret !== undefined ? { secretDigest: digest(client.clientSecret) } : {}),
    ...(certificate ? { certificate } : {}),
    federated,
  };
}

/**
 * Authenticates the client of a token request, as Entra does: an unknown client id is
 * `unauthorized_client` (400), a missing or wrong credential `invalid_client` (401).
 */
export async function authenticateClient(
  params: URLSearchParams,
  clients: ReadonlyMap<string, RegisteredClient>,
  context: { readonly tenantId: string; readonly tokenEndpoint: string; readonly issuers: FederatedIssuers },
): Promise<AuthenticatedClient> {
  const clientId = params.get('client_id');
  if (!clientId) throw Entra.missingParameter('client_id');
  const client = clients.get(clientId);
  if (!client) throw Entra.unknownClient(clientId, context.tenantId);

  const assertion = params.get('client_assertion');
  if (assertion !== null) {
    if (params.get('client_assertion_type') !== CLIENT_ASSERTION_TYPE) {
      throw Entra.invalidParameter('client_assertion_type', params.get('client_assertion_type') ?? '');
    }
    if (isFederated(assertion, client)) {
      await verifyFederatedAssertion(assertion, client, context.issuers);
    } else {
      await verifyClientAssertion(assertion, client, context.tokenEndpoint);
    }
    return { client, method: '2' };
  }
  const secret = params.get('client_secret');
  if (secret !== null) {
    // Compare digests so the comparison takes the same time whatever the secret's length.
    if (!client.secretDigest || !timingSafeEqual(digest(secret), client.secretDigest)) {
      throw Entra.invalidClientSecret(clientId);
    }
    return { client, method: '1' };
  }
  throw Entra.missingClientCredential();
}

/**
 * A certificate's assertion is the app's own (iss = sub = client id, a thumbprint in the
 * header); anything else is a federated credential's token, as Entra tells them apart.
 */
function isFederated(assertion: string, client: RegisteredClient): boolean {
  let claims: JWTPayload;
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    claims = decodeJwt(assertion);
    header = decodeProtectedHeader(assertion);
  } catch {
    return false;
  }
  if (header.x5t !== undefined || header['x5t#S256'] !== undefined) return false;
  return !(claims.iss === client.clientId && claims.sub === client.clientId);
}

/**
 * Matches the assertion's issuer, subject and audience against the app's federated
 * credentials (each mismatch with Entra's own error naming the values), then verifies its
 * signature with the issuer's keys and its time claims.
 */
async function verifyFederatedAssertion(
  assertion: string,
  client: RegisteredClient,
  issuers: FederatedIssuers,
): Promise<void> {
  const claims = decodeJwt(assertion);
  const issuer = typeof claims.iss === 'string' ? claims.iss : '';
  const subject = typeof claims.sub === 'string' ? claims.sub : '';
  const audiences = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).filter(
    (a): a is string => typeof a === 'string',
  );
  const byIssuer = client.federated.filter((f) => f.issuer === issuer);
  if (byIssuer.length === 0) throw Entra.federatedIssuerUnknown(issuer);
  const bySubject = byIssuer.filter((f) => f.subject === subject);
  if (bySubject.length === 0) throw Entra.federatedNoMatch(issuer, subject, audiences.join(' '));
  if (!bySubject.some((f) => f.audiences.some((a) => audiences.includes(a)))) {
    throw Entra.federatedAudience(audiences.join(' '));
  }
  let keys: Awaited<ReturnType<FederatedIssuers['keys']>>;
  try {
    keys = await issuers.keys(issuer);
  } catch {
    throw Entra.federatedIssuerUnreachable(issuer);
  }
  try {
    await jwtVerify(assertion, keys, {
      issuer,
      algorithms: ['RS256'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp', 'sub', 'aud'],
    });
  } catch (e) {
    if (e instanceof errors.JWTExpired) throw Entra.clientAssertionTime();
    if (e instanceof errors.JWTClaimValidationFailed && (e.claim === 'nbf' || e.claim === 'iat')) {
      throw Entra.clientAssertionTime();
    }
    if (e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWSSignatureVerificationFailed) {
      throw Entra.clientAssertionSignature(
        `The key used to sign the assertion is not one of issuer '${issuer}' keys.`,
      );
    }
    if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid) {
      throw Entra.federatedIssuerUnreachable(issuer);
    }
    if (e instanceof errors.JOSEError) throw Entra.malformedClientAssertion();
    throw e;
  }
}

async function verifyClientAssertion(
  assertion: string,
  client: RegisteredClient,
  tokenEndpoint: string,
): Promise<void> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    throw Entra.malformedClientAssertion();
  }
  const certificate = client.certificate;
  // Entra picks the registered certificate by the thumbprint in the header (SHA-256 if given).
  const bySha256 = typeof header['x5t#S256'] === 'string';
  const presented = bySha256 ? header['x5t#S256'] : header.x5t;
  const registered = bySha256 ? certificate?.x5tS256 : certificate?.x5t;
  if (!certificate || (presented !== undefined && presented !== registered)) {
    throw Entra.clientAssertionSignature(
      `The certificate with identifier '${typeof presented === 'string' ? presented : 'none'}' used to sign the client assertion is not registered on application '${client.clientId}'.`,
    );
  }
  try {
    const { payload } = await jwtVerify(assertion, certificate.publicKey, {
      algorithms: ['RS256', 'PS256'],
      // Entra tolerates five minutes of clock skew; msal-node rounds iat/nbf to the nearest second.
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp', 'aud', 'iss', 'sub'],
    });
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audiences.includes(tokenEndpoint)) throw Entra.clientAssertionAudience();
    if (payload.iss !== client.clientId || payload.sub !== client.clientId)
      throw Entra.clientAssertionSubject();
  } catch (e) {
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      throw Entra.clientAssertionSignature(
        'The provided signature value did not match the expected signature value.',
      );
    }
    if (e instanceof errors.JWTExpired) throw Entra.clientAssertionTime();
    if (e instanceof errors.JWTClaimValidationFailed && (e.claim === 'nbf' || e.claim === 'iat')) {
      throw Entra.clientAssertionTime();
    }
    if (e instanceof errors.JOSEError) throw Entra.malformedClientAssertion();
    throw e;
  }
}
