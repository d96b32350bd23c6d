/**
 * No client secret anywhere: the token cache's MSAL client presents the platform identity's
 * token as a federated credential. The real AWS SDK STS client against the local STS, the
 * real @azure/identity ManagedIdentityCredential against the local managed-identity
 * endpoint, real msal-node against the local authority, which accepts only the federated
 * credentials registered on the app.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { startLocalKms, type LocalKms } from '../../local/kms';
import {
  LOCAL_SYSTEM_IDENTITY,
  LOCAL_USER_ASSIGNED_IDENTITY,
  startLocalManagedIdentity,
  type LocalManagedIdentity,
} from '../../local/managed-identity';
import { startLocalSts, type LocalSts } from '../../local/sts';
import { createDevCertificate } from '../../local/tls';
import { createTokenCacheFromEnv as createAwsCache } from '../../shared/aws/from-env';
import { createTokenCacheFromEnv as createAzureCache } from '../../shared/azure/from-env';
import { createTokenCache } from '../../shared/cache/token-cache';
import type { TokenCache } from '../../shared/cache/types';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { HttpsNetworkClient } from '../../shared/cache/http';
import { ClientAssertionError, ConfigurationError, TokenAcquisitionError } from '../../shared/errors';
import { CounterMetrics, Metric } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import { CapturingLogger } from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';

const APP = '4b7e2c1a-9d3f-4e6a-8b5c-1f2e3d4c5b6a';
const OTHER_SUBJECT_APP = 'd2c1b0a9-8f7e-4d6c-9b5a-4f3e2d1c0b9a';
const OTHER_AUDIENCE_APP = 'a9b8c7d6-e5f4-4a3b-8c2d-1e0f9a8b7c6d';
/** A second user-assigned identity: @azure/identity caches tokens per identity process-wide, so faults need one of their own. */
const FAULTY_IDENTITY = {
  clientId: '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d',
  principalId: 'e9d8c7b6-a5f4-4e3d-9c2b-1a0f9e8d7c6b',
};
const SCOPE = (i: number) => `api://downstream-${i}/.default`;

let authority: LocalAuthority;
let sts: LocalSts;
let mi: LocalManagedIdentity;
let kms: LocalKms;
let vault: LocalKeyVault;
let caFile: string;
let kmsKey: string;
let vaultKeyId: string;
let vaultSigningKeyId: string;

beforeAll(async () => {
  const certificate = await createDevCertificate();
  authority = await startLocalAuthority({ certificate });
  sts = await startLocalSts();
  mi = await startLocalManagedIdentity({
    tenantId: authority.tenantId,
    userAssigned: [LOCAL_USER_ASSIGNED_IDENTITY, FAULTY_IDENTITY],
  });
  authority.registerClient({
    clientId: APP,
    federatedCredentials: [
      { name: 'lambda-role', issuer: sts.issuer, subject: sts.subject },
      { name: 'function-app-uami', issuer: mi.issuer, subject: LOCAL_USER_ASSIGNED_IDENTITY.principalId },
      { name: 'function-app-system', issuer: mi.issuer, subject: LOCAL_SYSTEM_IDENTITY.principalId },
      { name: 'function-app-faulty', issuer: mi.issuer, subject: FAULTY_IDENTITY.principalId },
    ],
  });
  authority.registerClient({
    clientId: OTHER_SUBJECT_APP,
    federatedCredentials: [{ issuer: sts.issuer, subject: 'arn:aws:iam::000000000000:role/someone-else' }],
  });
  authority.registerClient({
    clientId: OTHER_AUDIENCE_APP,
    federatedCredentials: [
      { issuer: sts.issuer, subject: sts.subject, audiences: ['api://AzureADTokenExchangeUSGov'] },
    ],
  });
  kms = await startLocalKms();
  kmsKey = (await kms.createKey({ alias: 'alias/federated' })).arn;
  vault = await startLocalKeyVault({
    certificate,
    tenantId: authority.tenantId,
    authorityUrl: authority.url,
  });
  vaultKeyId = `${vault.vaultUrl}/keys/${(await vault.createKey('federated')).name}`;
  vaultSigningKeyId = `${vault.vaultUrl}/keys/${(await vault.createKey('federated-sign', { kty: 'EC' })).name}`;
  caFile = join(mkdtempSync(join(tmpdir(), 'federated-')), 'ca.pem');
  writeFileSync(caFile, authority.ca);
  // The SDK signs its calls; on Lambda these come from the function's role, not from configuration.
  process.env.AWS_ACCESS_KEY_ID ??= 'local';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
  Object.assign(process.env, mi.env);
  registerSecret('client-secret', mi.header);
});

afterAll(async () => {
  await Promise.all([authority.stop(), sts.stop(), mi.stop(), kms.stop(), vault.stop()]);
});

beforeEach(() => {
  sts.setFault(undefined);
  sts.setFederationEnabled(true);
  mi.setFault(undefined);
  authority.counters.reset();
});

/** The cache's settings with no secret of any kind: only where the identity comes from. */
function baseEnv(clientId = APP): Record<string, string> {
  return {
    MSAL_CLIENT_ID: clientId,
    MSAL_AUTHORITY: authority.authority(),
    MSAL_KNOWN_AUTHORITIES: authority.host,
    EXTRA_CA_FILE: caFile,
    LOG_LEVEL: 'silent',
  };
}

function awsEnv(clientId = APP): Record<string, string> {
  return {
    ...baseEnv(clientId),
    MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
    AWS_REGION: sts.region,
    AWS_ENDPOINT_URL_STS: sts.endpoint,
    TOKEN_CACHE_STORE: 'memory',
    TOKEN_CACHE_KMS_KEY_ID: kmsKey,
    AWS_ENDPOINT_URL_KMS: kms.endpoint,
  };
}

function azureEnv(managedIdentityClientId?: string): Record<string, string> {
  return {
    ...baseEnv(),
    MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity',
    ...(managedIdentityClientId ? { MSAL_MANAGED_IDENTITY_CLIENT_ID: managedIdentityClientId } : {}),
    TOKEN_CACHE_STORE: 'memory',
    TOKEN_CACHE_KEYVAULT_KEY_ID: vaultKeyId,
    TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: vaultSigningKeyId,
    // Key Vault with this app's own (federated) credential at the local authority.
    TOKEN_CACHE_AZURE_CREDENTIAL: 'app',
  };
}

function track(cache: Promise<TokenCache>): Promise<TokenCache> {
  return cache;
}

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}

describe('aws-web-identity (STS GetWebIdentityToken)', () => {
  it('acquires app tokens with no secret, one STS call for many token requests', async () => {
    const metrics = new CounterMetrics();
    const cache = await track(createAwsCache({ env: awsEnv(), metrics }));
    const before = sts.calls();

    const results = [];
    for (let i = 0; i < 5; i++) results.push(await cache.acquireTokenForApp({ scopes: [SCOPE(i)] }));
    await Promise.all([5, 6, 7].map((i) => cache.acquireTokenForApp({ scopes: [SCOPE(i)] })));

    expect(results.every((r) => r.accessToken.length > 0)).toBe(true);
    expect(claims(results[0].accessToken)).toMatchObject({ azp: APP, azpacr: '2' });
    expect(authority.counters.token('client_credentials')).toBe(8);
    expect(sts.calls() - before).toBe(1);
    expect(metrics.get(Metric.AssertionFetch, { source: 'aws-web-identity' })).toBe(1);
  });

  it('asks STS for RS256, the Entra audience and the configured lifetime', async () => {
    const logger = new CapturingLogger();
    const cache = await track(
      createAwsCache({ env: { ...awsEnv(), MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS: '120' }, logger }),
    );
    await cache.acquireTokenForApp({ scopes: [SCOPE(20)] });

    const fetched = logger.lines.find((l) => l.message === 'client assertion fetched');
    expect(fetched?.fields).toMatchObject({
      source: 'aws-web-identity',
      issuer: sts.issuer,
      subject: sts.subject,
      audience: 'api://AzureADTokenExchange',
    });
    const lifetime = Date.parse(String(fetched?.fields?.expiresAt)) - Date.now();
    expect(lifetime).toBeGreaterThan(100_000);
    expect(lifetime).toBeLessThanOrEqual(120_000);
  });

  it('names the issuer and subject to register when the subject is not registered', async () => {
    const cache = await track(createAwsCache({ env: awsEnv(OTHER_SUBJECT_APP) }));

    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(1)] }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TokenAcquisitionError);
    expect(error).toMatchObject({ retryable: false, providerCode: 'invalid_request' });
    expect((error as Error).message).toContain('AADSTS70021');
    expect((error as Error).message).toContain(`Assertion Issuer: '${sts.issuer}'`);
    expect((error as Error).message).toContain(`Assertion Subject: '${sts.subject}'`);
  });

  it('answers AADSTS700211 for an issuer the app does not trust, naming it', async () => {
    const foreign = await startLocalSts({ principalArn: sts.subject });
    try {
      const cache = await track(
        createAwsCache({ env: { ...awsEnv(), AWS_ENDPOINT_URL_STS: foreign.endpoint } }),
      );
      const error = await cache.acquireTokenForApp({ scopes: [SCOPE(1)] }).catch((e: unknown) => e);
      expect((error as Error).message).toContain(`AADSTS700211`);
      expect((error as Error).message).toContain(foreign.issuer);
    } finally {
      await foreign.stop();
    }
  });

  it('answers AADSTS700212 for an audience the credential does not list', async () => {
    const cache = await track(createAwsCache({ env: awsEnv(OTHER_AUDIENCE_APP) }));
    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(1)] }).catch((e: unknown) => e);
    expect((error as Error).message).toContain('AADSTS700212');
    expect((error as Error).message).toContain('api://AzureADTokenExchange');
  });

  it('refuses an expired assertion and one signed by a key not in the issuer JWKS', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await sts.mintToken({
      sub: sts.subject,
      aud: 'api://AzureADTokenExchange',
      iat: now - 4000,
      exp: now - 3600,
    });
    const msal = (clientAssertion: string) =>
      createTokenCache({
        msal: {
          clientId: APP,
          authority: authority.authority(),
          knownAuthorities: [authority.host],
          networkClient: new HttpsNetworkClient({ ca: authority.ca }),
          clientAssertion,
        },
        store: new MemoryStore(),
        keyRing: new LocalKeyRing({ masterKey: Buffer.alloc(32, 7).toString('base64'), keyId: 'k' }),
      });
    const forged = `${expired.split('.')[0]}.${Buffer.from(
      JSON.stringify({
        iss: sts.issuer,
        sub: sts.subject,
        aud: 'api://AzureADTokenExchange',
        exp: now + 600,
      }),
    ).toString('base64url')}.${expired.split('.')[2]}`;
    registerSecret('assertion', forged);

    const late = await msal(expired)
      .acquireTokenForApp({ scopes: [SCOPE(1)] })
      .catch((e: unknown) => e);
    const fake = await msal(forged)
      .acquireTokenForApp({ scopes: [SCOPE(1)] })
      .catch((e: unknown) => e);

    expect((late as Error).message).toMatch(/invalid_client/);
    const description = (e: unknown) =>
      String((e as { cause?: { errorMessage?: unknown } }).cause?.errorMessage);
    expect(description(late)).toContain('AADSTS700024');
    expect(description(fake)).toContain('AADSTS700027');
  });

  it('gives a retryable, counted error when STS is unavailable, caches nothing, and recovers', async () => {
    const metrics = new CounterMetrics();
    const logger = new CapturingLogger();
    const cache = await track(createAwsCache({ env: awsEnv(), metrics, logger }));
    sts.setFault({ kind: 'unavailable' });

    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(30)] }).catch((e: unknown) => e);
    sts.setFault(undefined);
    const token = await cache.acquireTokenForApp({ scopes: [SCOPE(30)] });

    expect(error).toBeInstanceOf(ClientAssertionError);
    expect(error).toMatchObject({ code: 'CLIENT_ASSERTION', retryable: true, reason: 'unavailable' });
    expect(metrics.get(Metric.AssertionError, { reason: 'unavailable', source: 'aws-web-identity' })).toBe(1);
    expect(
      logger.lines.some((l) => l.level === 'warn' && l.message === 'client assertion fetch failed'),
    ).toBe(true);
    expect(token.accessToken.length).toBeGreaterThan(0);
    expect(authority.counters.token()).toBe(1);
  });

  it('treats STS throttling as retryable, after the SDK retried once', async () => {
    const cache = await track(createAwsCache({ env: awsEnv() }));
    sts.setFault({ kind: 'throttled' });
    const before = sts.calls();

    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(33)] }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'ClientAssertionError', retryable: true, reason: 'unavailable' });
    expect((error as Error).message).toContain('Throttling');
    expect(sts.calls() - before).toBe(2);
  });

  it('gives a retryable timeout within a bounded time when STS is slow', async () => {
    const cache = await track(createAwsCache({ env: awsEnv() }));
    sts.setFault({ kind: 'slow', delayMs: 20_000 });

    const started = Date.now();
    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(31)] }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'ClientAssertionError', retryable: true });
    expect(Date.now() - started).toBeLessThan(7_000);
  });

  it('says how to enable outbound identity federation when the account has not', async () => {
    const cache = await track(createAwsCache({ env: awsEnv() }));
    sts.setFederationEnabled(false);

    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(32)] }).catch((e: unknown) => e);

    expect(error).toMatchObject({ name: 'ClientAssertionError', retryable: false, reason: 'not-permitted' });
    expect((error as Error).message).toContain('iam:EnableOutboundWebIdentityFederation');
  });

  it('refuses the managed-identity source, naming the entry point that builds it', async () => {
    const env = { ...awsEnv(), MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity' };
    const error = await createAwsCache({ env }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).problems.map((p) => p.setting)).toContain(
      'MSAL_CLIENT_ASSERTION_SOURCE',
    );
    expect((error as Error).message).toContain('msal-cloud-cache/azure');
  });
});

describe('azure-managed-identity (ManagedIdentityCredential)', () => {
  it('acquires app tokens with a user-assigned identity, one identity call for many token requests', async () => {
    const metrics = new CounterMetrics();
    const cache = await track(
      createAzureCache({ env: azureEnv(LOCAL_USER_ASSIGNED_IDENTITY.clientId), metrics }),
    );
    const before = mi.calls();

    for (let i = 0; i < 5; i++) await cache.acquireTokenForApp({ scopes: [SCOPE(40 + i)] });

    // Key Vault is reached with the same federated credential (ClientAssertionCredential).
    expect(vault.counters.calls('wrapKey') + vault.counters.calls('unwrapKey')).toBeGreaterThan(0);
    expect(mi.calls() - before).toBe(1);
    expect(metrics.get(Metric.AssertionFetch, { source: 'azure-managed-identity' })).toBe(1);
    expect(metrics.get(Metric.AssertionCached, { source: 'azure-managed-identity' })).toBeGreaterThanOrEqual(
      5,
    );
  });

  it('acquires app tokens with the system-assigned identity', async () => {
    const logger = new CapturingLogger();
    const cache = await track(createAzureCache({ env: azureEnv(), logger }));
    const result = await cache.acquireTokenForApp({ scopes: [SCOPE(50)] });

    expect(result.accessToken.length).toBeGreaterThan(0);
    const fetched = logger.lines.find((l) => l.message === 'client assertion fetched');
    expect(fetched?.fields).toMatchObject({ subject: LOCAL_SYSTEM_IDENTITY.principalId, issuer: mi.issuer });
  });

  it('is not retryable for an identity the app does not have', async () => {
    const cache = await track(createAzureCache({ env: azureEnv('11111111-2222-4333-8444-555555555555') }));
    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(51)] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ClientAssertionError', source: 'azure-managed-identity' });
    expect((error as Error).message).toContain('11111111-2222-4333-8444-555555555555');
  });

  it('gives a retryable timeout within a bounded time when the identity endpoint is slow, then recovers', async () => {
    const metrics = new CounterMetrics();
    const cache = await track(createAzureCache({ env: azureEnv(FAULTY_IDENTITY.clientId), metrics }));
    // Just past the bound, so the abandoned request ends before the file does.
    mi.setFault({ kind: 'slow', delayMs: 6_000, count: 1 });

    const started = Date.now();
    const error = await cache.acquireTokenForApp({ scopes: [SCOPE(52)] }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    const token = await cache.acquireTokenForApp({ scopes: [SCOPE(52)] });

    expect(error).toMatchObject({ name: 'ClientAssertionError', retryable: true, reason: 'timeout' });
    expect(elapsed).toBeLessThan(7_000);
    expect(metrics.get(Metric.AssertionError, { reason: 'timeout', source: 'azure-managed-identity' })).toBe(
      1,
    );
    expect(token.accessToken.length).toBeGreaterThan(0);
    // msal-node's managed-identity call takes no abort signal: let the abandoned one finish.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 6_500 - Date.now())));
  });

  it('refuses the STS source, naming the entry point that builds it', async () => {
    const error = await createAzureCache({ env: awsEnv() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('"aws-web-identity" is built by msal-cloud-cache/aws');
  });
});
