import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { inspect } from 'node:util';
import { cacheOptionsOf, loadCacheConfig, type Environment } from '../../shared/config';
import { TokenCacheDefaults } from '../../shared/cache/token-cache';
import {
  createTokenCacheFromConfig as awsCacheFromConfig,
  createTokenCacheFromEnv as awsCacheFromEnv,
} from '../../shared/aws/from-env';
import {
  createTokenCacheFromEnv as azureCacheFromEnv,
  resolveClientCredential as azureCredentialOf,
} from '../../shared/azure/from-env';
import { FunctionVariables, loadFunctionConfig, type FunctionVariable } from '../../functions/core/config';
import { ConfigurationError } from '../../shared/errors';
import { resolveClientCredential } from '../../shared/aws/from-env';
import { localKeyRing, trustedCas } from '../../shared/runtime';
import { createDevCertificate } from '../../local/tls';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets-manager';

const TENANT = '90bb045f-08cc-4e4a-8ed4-45f406fd29fe';
const CLIENT_ID = '5b1d3e0c-2d6b-4f7e-9a3c-0e1f2a3b4c5d';
const SECRET = 'Qx8~secret-value-that-must-never-be-echoed.1234567890';
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

/** A complete, valid environment for DynamoDB + KMS with a client secret. */
function baseEnv(overrides: Record<string, string | undefined> = {}): Environment {
  return {
    MSAL_CLIENT_ID: CLIENT_ID,
    MSAL_AUTHORITY: `https://login.microsoftonline.com/${TENANT}`,
    MSAL_CLIENT_SECRET: SECRET,
    TOKEN_CACHE_TABLE_NAME: 'token-cache',
    TOKEN_CACHE_KMS_KEY_ID: 'alias/token-cache',
    DOWNSTREAM_URL: 'https://graph.microsoft.com/v1.0/me',
    DOWNSTREAM_SCOPES: 'https://graph.microsoft.com/User.Read',
    API_REQUIRED_SCOPES: 'access_as_user',
    ...overrides,
  };
}

/**
 * Each `[overrides, expected]`: `loadFunctionConfig` reads `expected` as the credential from
 * `baseEnv` with no client secret and `overrides`.
 */
function expectCredentialsWithoutSecret(cases: ReadonlyArray<[Record<string, string>, unknown]>): void {
  for (const [overrides, expected] of cases) {
    const config = loadFunctionConfig(baseEnv({ MSAL_CLIENT_SECRET: undefined, ...overrides }));
    expect(config.msal.credential).toEqual(expected);
  }
}

function configError(env: Environment): ConfigurationError {
  try {
    loadFunctionConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return e as ConfigurationError;
  }
  throw new Error('expected loadFunctionConfig to throw');
}

describe('loadFunctionConfig', () => {
  describe('defaults', () => {
    it('derives everything optional from the required variables', () => {
      const config = loadFunctionConfig(baseEnv());

      expect(config.msal).toMatchObject({
        clientId: CLIENT_ID,
        authority: `https://login.microsoftonline.com/${TENANT}`,
        tenant: TENANT,
        knownAuthorities: [],
        credential: { kind: 'secret' },
      });
      expect(config.store).toEqual({ kind: 'dynamodb', tableName: 'token-cache' });
      expect(config.keyRing).toEqual({ kind: 'aws-kms', keyId: 'alias/token-cache' });
      expect(config.azureCredential).toBe('default');
      expect(config.l1).toEqual({ maxBytes: 16 * 1024 * 1024, ttlMs: 300_000, jitter: 0.2 });
      expect(config.sharedReads).toBe(true);
      expect(config.coalescing).toBe('on');
      expect(config.downstream).toEqual({
        url: 'https://graph.microsoft.com/v1.0/me',
        scopes: ['https://graph.microsoft.com/User.Read'],
        appScope: 'https://graph.microsoft.com/.default',
        timeoutMs: 10_000,
      });
      expect(config.api).toEqual({
        audiences: [`api://${CLIENT_ID}`, CLIENT_ID],
        issuers: [`https://login.microsoftonline.com/${TENANT}/v2.0`, `https://sts.windows.net/${TENANT}/`],
        jwksUri: `https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`,
        requiredScopes: ['access_as_user'],
      });
      expect(config.logLevel).toBe('info');
      expect(config.extraCaFile).toBeUndefined();
    });

    it('derives the v2 issuer only for an authority other than login.microsoftonline.com', () => {
      const config = loadFunctionConfig(baseEnv({ MSAL_AUTHORITY: `https://localhost:8443/${TENANT}/` }));

      expect(config.msal.authority).toBe(`https://localhost:8443/${TENANT}`);
      expect(config.api.issuers).toEqual([`https://localhost:8443/${TENANT}/v2.0`]);
      expect(config.api.jwksUri).toBe(`https://localhost:8443/${TENANT}/discovery/v2.0/keys`);
    });

    it('reads every optional variable when set', () => {
      const config = loadFunctionConfig(
        baseEnv({
          MSAL_KNOWN_AUTHORITIES: 'localhost:8443, login.example.test',
          EXTRA_CA_FILE: '/etc/dev-ca.pem',
          AWS_REGION: 'eu-west-1',
          AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:8000',
          AWS_ENDPOINT_URL_KMS: 'http://localhost:4000',
          TOKEN_CACHE_L1_MAX_BYTES: '1048576',
          TOKEN_CACHE_L1_TTL_SECONDS: '30',
          TOKEN_CACHE_COALESCING: 'local',
          DOWNSTREAM_SCOPES: 'api://downstream/Data.Read, api://downstream/Data.Write',
          DAEMON_SCOPE: 'api://other/.default',
          DOWNSTREAM_TIMEOUT_MS: '2500',
          API_AUDIENCE: 'api://web-api',
          API_ISSUER: 'https://issuer.example.test/v2.0,https://sts.example.test/',
          API_JWKS_URI: 'https://issuer.example.test/keys',
          API_REQUIRED_SCOPES: 'access_as_user,Data.Read',
          LOG_LEVEL: 'debug',
        }),
      );

      expect(config.msal.knownAuthorities).toEqual(['localhost:8443', 'login.example.test']);
      expect(config.extraCaFile).toBe('/etc/dev-ca.pem');
      expect(config.awsRegion).toBe('eu-west-1');
      expect(config.store).toEqual({
        kind: 'dynamodb',
        tableName: 'token-cache',
        endpoint: 'http://127.0.0.1:8000',
      });
      expect(config.keyRing).toEqual({
        kind: 'aws-kms',
        keyId: 'alias/token-cache',
        endpoint: 'http://localhost:4000',
      });
      expect(config.l1).toEqual({ maxBytes: 1048576, ttlMs: 30_000, jitter: 0.2 });
      expect(config.coalescing).toBe('local');
      expect(config.downstream.scopes).toEqual(['api://downstream/Data.Read', 'api://downstream/Data.Write']);
      expect(config.downstream.appScope).toBe('api://other/.default');
      expect(config.downstream.timeoutMs).toBe(2500);
      expect(config.api).toEqual({
        audiences: ['api://web-api'],
        issuers: ['https://issuer.example.test/v2.0', 'https://sts.example.test/'],
        jwksUri: 'https://issuer.example.test/keys',
        requiredScopes: ['access_as_user', 'Data.Read'],
      });
      expect(config.logLevel).toBe('debug');
    });

    it('reads API_REQUIRED_SCOPES="*" as the explicit opt-out of naming a scope', () => {
      expect(loadFunctionConfig(baseEnv({ API_REQUIRED_SCOPES: ' * ' })).api.requiredScopes).toBe('*');
    });

    it('turns the in-process cache off with TOKEN_CACHE_L1_MAX_BYTES=0', () => {
      expect(loadFunctionConfig(baseEnv({ TOKEN_CACHE_L1_MAX_BYTES: '0' })).l1).toBe(false);
    });

    it('implies the store and key ring from their one setting, and takes an explicit kind', () => {
      const cosmos = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_TABLE_NAME: undefined,
          TOKEN_CACHE_KMS_KEY_ID: undefined,
          TOKEN_CACHE_COSMOS_ENDPOINT: 'https://acct.documents.azure.com:443/',
          TOKEN_CACHE_COSMOS_DATABASE: 'db',
          TOKEN_CACHE_COSMOS_CONTAINER: 'partitions',
          TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://vault.vault.azure.net/keys/token-cache',
          TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: 'https://vault.vault.azure.net/keys/token-cache-sign',
        }),
      );
      const redis = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_TABLE_NAME: undefined,
          TOKEN_CACHE_REDIS_URL: 'rediss://cache.example.test:6380',
        }),
      );
      const redisCluster = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_TABLE_NAME: undefined,
          TOKEN_CACHE_STORE: 'redis',
          TOKEN_CACHE_REDIS_URL: 'redis://localhost:6379',
          TOKEN_CACHE_REDIS_CLUSTER: 'true',
          TOKEN_CACHE_REDIS_USERNAME: 'token-cache',
          TOKEN_CACHE_REDIS_PASSWORD: 'redis-password-must-not-leak',
          TOKEN_CACHE_REDIS_KEY_PREFIX: 'tc:',
        }),
      );
      const memory = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_STORE: 'memory',
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
        }),
      );

      expect(cosmos.store).toEqual({
        kind: 'cosmos',
        endpoint: 'https://acct.documents.azure.com:443/',
        databaseId: 'db',
        containerId: 'partitions',
      });
      expect(cosmos.keyRing).toEqual({
        kind: 'azure-keyvault',
        keyId: 'https://vault.vault.azure.net/keys/token-cache',
        signingKeyId: 'https://vault.vault.azure.net/keys/token-cache-sign',
      });
      expect(memory.store).toEqual({ kind: 'memory' });
      expect(redis.store).toEqual({ kind: 'redis', url: 'rediss://cache.example.test:6380', cluster: false });
      expect(redisCluster.store).toEqual({
        kind: 'redis',
        url: 'redis://localhost:6379',
        cluster: true,
        username: 'token-cache',
        keyPrefix: 'tc:',
        password: expect.any(Object) as unknown,
      });
      expect(memory.keyRing.kind).toBe('local');
    });

    it('reads a Secrets Manager ARN and a certificate path as credential sources', () => {
      const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:web-api/client-secret-AbCdEf';
      expectCredentialsWithoutSecret([
        [
          { MSAL_CLIENT_SECRET_ARN: arn, AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://127.0.0.1:4566' },
          { kind: 'secrets-manager', secretArn: arn, endpoint: 'http://127.0.0.1:4566' },
        ],
        [
          { MSAL_CLIENT_CERTIFICATE_PATH: '/var/task/cert.pem', MSAL_CLIENT_CERTIFICATE_SEND_X5C: 'true' },
          { kind: 'certificate', path: '/var/task/cert.pem', sendX5c: true },
        ],
      ]);
    });
  });

  describe('the result', () => {
    it('is deeply frozen', () => {
      const config = loadFunctionConfig(baseEnv());

      expect(Object.isFrozen(config)).toBe(true);
      expect(Object.isFrozen(config.api.audiences)).toBe(true);
      expect(Object.isFrozen(config.msal.credential)).toBe(true);
      expect(() => {
        (config.downstream.scopes as string[]).push('x');
      }).toThrow(TypeError);
    });

    it('never prints or serialises the Redis password, and refuses one inside the URL without echoing it', () => {
      const config = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_TABLE_NAME: undefined,
          TOKEN_CACHE_REDIS_URL: 'rediss://cache.example.test:6380',
          TOKEN_CACHE_REDIS_PASSWORD: 'redis-password-must-not-leak',
        }),
      );
      const error = (() => {
        try {
          loadFunctionConfig(
            baseEnv({
              TOKEN_CACHE_TABLE_NAME: undefined,
              TOKEN_CACHE_REDIS_URL: 'rediss://user:redis-password-must-not-leak@cache.example.test:6380',
            }),
          );
        } catch (e) {
          return e as Error;
        }
        throw new Error('expected a ConfigurationError');
      })();

      for (const text of [JSON.stringify(config), inspect(config, { depth: 10 }), error.message]) {
        expect(text).not.toContain('redis-password-must-not-leak');
      }
      expect(config.store.kind === 'redis' && config.store.password?.reveal()).toBe(
        'redis-password-must-not-leak',
      );
      expect(error).toMatchObject({ setting: 'TOKEN_CACHE_REDIS_URL' });
      expect(error.message).toMatch(/TOKEN_CACHE_REDIS_PASSWORD/);
    });

    it('never prints or serialises a secret', () => {
      const config = loadFunctionConfig(
        baseEnv({
          TOKEN_CACHE_STORE: 'cosmos',
          TOKEN_CACHE_COSMOS_ENDPOINT: 'https://acct.documents.azure.com:443/',
          TOKEN_CACHE_COSMOS_DATABASE: 'db',
          TOKEN_CACHE_COSMOS_CONTAINER: 'c',
          TOKEN_CACHE_COSMOS_KEY: 'cosmos-key-must-not-leak==',
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
        }),
      );

      for (const text of [
        JSON.stringify(config),
        inspect(config, { depth: 10 }),
        `${String(config.msal.credential.kind)}`,
      ]) {
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain('cosmos-key-must-not-leak');
        expect(text).not.toContain(MASTER_KEY);
      }
      expect(JSON.stringify(config)).toContain('[redacted]');
      const credential = config.msal.credential;
      expect(credential.kind === 'secret' && credential.secret.reveal()).toBe(SECRET);
    });
  });

  describe('errors', () => {
    // Each row: the variable the error must name, the environment change, what the message must say.
    const cases: [FunctionVariable, Record<string, string | undefined>, RegExp][] = [
      ['MSAL_CLIENT_ID', { MSAL_CLIENT_ID: undefined }, /expected a GUID or app id, but it is not set/],
      ['MSAL_CLIENT_ID', { MSAL_CLIENT_ID: '' }, /expected a GUID or app id, got ""/],
      [
        'MSAL_CLIENT_ID',
        { MSAL_CLIENT_ID: 'not a client id!' },
        /expected a GUID or app id, got "not a client id!"/,
      ],
      ['MSAL_AUTHORITY', { MSAL_AUTHORITY: undefined }, /expected an https URL with a tenant/],
      [
        'MSAL_AUTHORITY',
        { MSAL_AUTHORITY: `http://login.microsoftonline.com/${TENANT}` },
        /expected an https URL/,
      ],
      ['MSAL_AUTHORITY', { MSAL_AUTHORITY: 'https://login.microsoftonline.com/' }, /with a tenant/],
      [
        'MSAL_AUTHORITY',
        { MSAL_AUTHORITY: 'login.microsoftonline.com/tenant' },
        /got "login.microsoftonline.com\/tenant"/,
      ],
      ['MSAL_KNOWN_AUTHORITIES', { MSAL_KNOWN_AUTHORITIES: 'https://localhost:8443' }, /host\[:port\] names/],
      [
        'MSAL_CLIENT_CAPABILITIES',
        { MSAL_CLIENT_CAPABILITIES: 'cp1,not valid' },
        /expected comma-separated client capabilities such as "cp1"/,
      ],
      ['MSAL_CLIENT_SECRET', { MSAL_CLIENT_SECRET: undefined }, /exactly one of .* got none/],
      [
        'MSAL_CLIENT_SECRET',
        { MSAL_CLIENT_CERTIFICATE_PATH: '/cert.pem' },
        /got MSAL_CLIENT_SECRET and MSAL_CLIENT_CERTIFICATE_PATH/,
      ],
      [
        'MSAL_CLIENT_SECRET_ARN',
        { MSAL_CLIENT_SECRET: undefined, MSAL_CLIENT_SECRET_ARN: 'my-secret' },
        /expected a Secrets Manager secret ARN/,
      ],
      [
        'AWS_ENDPOINT_URL_SECRETS_MANAGER',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:s',
          AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://sm.example.test',
        },
        /http only for localhost/,
      ],
      [
        'MSAL_CLIENT_ASSERTION_SOURCE',
        { MSAL_CLIENT_SECRET: undefined, MSAL_CLIENT_ASSERTION_SOURCE: 'github-actions' },
        /expected one of aws-web-identity, azure-managed-identity, got "github-actions"/,
      ],
      [
        'MSAL_CLIENT_SECRET',
        { MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity', AWS_REGION: 'eu-west-1' },
        /exactly one of MSAL_CLIENT_ASSERTION_SOURCE .* got MSAL_CLIENT_SECRET and MSAL_CLIENT_ASSERTION_SOURCE/,
      ],
      [
        'MSAL_MANAGED_IDENTITY_CLIENT_ID',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity',
          MSAL_MANAGED_IDENTITY_CLIENT_ID: 'my-identity',
        },
        /expected the user-assigned identity's client id \(a GUID\), got "my-identity"/,
      ],
      [
        'AWS_REGION',
        { MSAL_CLIENT_SECRET: undefined, MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity' },
        /required with MSAL_CLIENT_ASSERTION_SOURCE=aws-web-identity \(the regional STS endpoint\)/,
      ],
      [
        'MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
          AWS_REGION: 'eu-west-1',
          MSAL_WEB_IDENTITY_TOKEN_DURATION_SECONDS: '7200',
        },
        /expected a whole number from 60 to 3600, got "7200"/,
      ],
      [
        'AWS_ENDPOINT_URL_STS',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
          AWS_REGION: 'eu-west-1',
          AWS_ENDPOINT_URL_STS: 'http://sts.example.com',
        },
        /an https URL \(http only for localhost\)/,
      ],
      [
        'MSAL_CLIENT_CERTIFICATE_SEND_X5C',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_CERTIFICATE_PATH: '/c.pem',
          MSAL_CLIENT_CERTIFICATE_SEND_X5C: 'yes',
        },
        /expected "true" or "false", got "yes"/,
      ],
      [
        'TOKEN_CACHE_STORE',
        { TOKEN_CACHE_TABLE_NAME: undefined },
        /expected one of dynamodb, cosmos, redis, memory, but it is not set/,
      ],
      ['TOKEN_CACHE_STORE', { TOKEN_CACHE_STORE: 'valkey' }, /got "valkey"/],
      [
        'TOKEN_CACHE_REDIS_URL',
        { TOKEN_CACHE_TABLE_NAME: undefined, TOKEN_CACHE_STORE: 'redis' },
        /expected the Redis endpoint/,
      ],
      [
        'TOKEN_CACHE_REDIS_URL',
        { TOKEN_CACHE_TABLE_NAME: undefined, TOKEN_CACHE_REDIS_URL: 'redis://cache.example.test:6379' },
        /expected a rediss:\/\/ URL \(TLS; redis:\/\/ only for localhost\)/,
      ],
      [
        'TOKEN_CACHE_REDIS_URL',
        { TOKEN_CACHE_TABLE_NAME: undefined, TOKEN_CACHE_REDIS_URL: 'https://cache.example.test' },
        /expected a rediss:\/\/ URL/,
      ],
      [
        'TOKEN_CACHE_REDIS_CLUSTER',
        {
          TOKEN_CACHE_TABLE_NAME: undefined,
          TOKEN_CACHE_REDIS_URL: 'rediss://c.example.test',
          TOKEN_CACHE_REDIS_CLUSTER: 'on',
        },
        /expected "true" or "false", got "on"/,
      ],
      [
        'TOKEN_CACHE_STORE',
        { TOKEN_CACHE_COSMOS_ENDPOINT: 'https://acct.documents.azure.com' },
        /several of TOKEN_CACHE_TABLE_NAME, TOKEN_CACHE_COSMOS_ENDPOINT/,
      ],
      [
        'TOKEN_CACHE_TABLE_NAME',
        { TOKEN_CACHE_STORE: 'dynamodb', TOKEN_CACHE_TABLE_NAME: undefined },
        /expected the DynamoDB table name/,
      ],
      [
        'TOKEN_CACHE_TABLE_NAME',
        { TOKEN_CACHE_TABLE_NAME: 'a' },
        /expected a DynamoDB table name .* got "a"/,
      ],
      ['AWS_ENDPOINT_URL_DYNAMODB', { AWS_ENDPOINT_URL_DYNAMODB: 'not a url' }, /expected an absolute URL/],
      [
        'TOKEN_CACHE_COSMOS_ENDPOINT',
        { TOKEN_CACHE_TABLE_NAME: undefined, TOKEN_CACHE_STORE: 'cosmos' },
        /expected the Cosmos DB account endpoint/,
      ],
      [
        'TOKEN_CACHE_COSMOS_ENDPOINT',
        { TOKEN_CACHE_STORE: 'cosmos', TOKEN_CACHE_COSMOS_ENDPOINT: 'http://acct.documents.azure.com' },
        /expected an https URL/,
      ],
      [
        'TOKEN_CACHE_COSMOS_DATABASE',
        { TOKEN_CACHE_STORE: 'cosmos', TOKEN_CACHE_COSMOS_ENDPOINT: 'https://a.documents.azure.com' },
        /expected the Cosmos DB database id/,
      ],
      [
        'TOKEN_CACHE_COSMOS_CONTAINER',
        {
          TOKEN_CACHE_STORE: 'cosmos',
          TOKEN_CACHE_COSMOS_ENDPOINT: 'https://a.documents.azure.com',
          TOKEN_CACHE_COSMOS_DATABASE: 'db',
        },
        /expected the Cosmos DB container id/,
      ],
      [
        'TOKEN_CACHE_KEY_RING',
        { TOKEN_CACHE_KMS_KEY_ID: undefined },
        /expected one of aws-kms, azure-keyvault, local, but it is not set/,
      ],
      ['TOKEN_CACHE_KEY_RING', { TOKEN_CACHE_KEY_RING: 'vault' }, /got "vault"/],
      [
        'TOKEN_CACHE_KMS_KEY_ID',
        { TOKEN_CACHE_KEY_RING: 'aws-kms', TOKEN_CACHE_KMS_KEY_ID: '' },
        /expected a KMS key id, key ARN, alias name or alias ARN, got ""/,
      ],
      ['AWS_ENDPOINT_URL_KMS', { AWS_ENDPOINT_URL_KMS: 'kms' }, /expected an absolute URL, got "kms"/],
      [
        'TOKEN_CACHE_KEYVAULT_KEY_ID',
        { TOKEN_CACHE_KMS_KEY_ID: undefined, TOKEN_CACHE_KEY_RING: 'azure-keyvault' },
        /expected a Key Vault key id/,
      ],
      [
        'TOKEN_CACHE_KEYVAULT_KEY_ID',
        {
          TOKEN_CACHE_KMS_KEY_ID: undefined,
          TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://v.vault.azure.net/secrets/x',
        },
        /expected https:\/\/<vault>\/keys\/<name>\[\/<version>\]/,
      ],
      [
        'TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID',
        {
          TOKEN_CACHE_KMS_KEY_ID: undefined,
          TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://v.vault.azure.net/keys/wrap',
        },
        /expected the Key Vault EC P-256 key that signs data keys/,
      ],
      [
        'TOKEN_CACHE_LOCAL_MASTER_KEY',
        { TOKEN_CACHE_KEY_RING: 'local', TOKEN_CACHE_KMS_KEY_ID: undefined },
        /expected 32 random bytes, base64, but it is not set/,
      ],
      [
        'TOKEN_CACHE_LOCAL_MASTER_KEY',
        { TOKEN_CACHE_KEY_RING: 'local', TOKEN_CACHE_LOCAL_MASTER_KEY: Buffer.alloc(16).toString('base64') },
        /expected 32 bytes, base64 .* got 16 bytes/,
      ],
      [
        'TOKEN_CACHE_LOCAL_MASTER_KEY',
        { TOKEN_CACHE_KEY_RING: 'local', TOKEN_CACHE_LOCAL_MASTER_KEY: 'not base64 at all!' },
        /got a value that is not base64/,
      ],
      [
        'TOKEN_CACHE_AZURE_CREDENTIAL',
        { TOKEN_CACHE_AZURE_CREDENTIAL: 'managed' },
        /expected one of default, app/,
      ],
      [
        'TOKEN_CACHE_AZURE_CREDENTIAL',
        {
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_CERTIFICATE_PATH: '/c.pem',
          TOKEN_CACHE_AZURE_CREDENTIAL: 'app',
        },
        /"app" needs a client secret/,
      ],
      [
        'TOKEN_CACHE_L1_MAX_BYTES',
        { TOKEN_CACHE_L1_MAX_BYTES: '-1' },
        /expected a whole number >= 0, got "-1"/,
      ],
      ['TOKEN_CACHE_L1_MAX_BYTES', { TOKEN_CACHE_L1_MAX_BYTES: '16MB' }, /got "16MB"/],
      [
        'TOKEN_CACHE_L1_TTL_SECONDS',
        { TOKEN_CACHE_L1_TTL_SECONDS: '0' },
        /expected a whole number >= 1, got "0"/,
      ],
      [
        'TOKEN_CACHE_L1_JITTER',
        { TOKEN_CACHE_L1_JITTER: '0.6' },
        /expected a number from 0 to 0.5, got "0.6"/,
      ],
      ['TOKEN_CACHE_L1_JITTER', { TOKEN_CACHE_L1_JITTER: '-0.1' }, /got "-0.1"/],
      ['TOKEN_CACHE_L1_JITTER', { TOKEN_CACHE_L1_JITTER: '20%' }, /got "20%"/],
      [
        'TOKEN_CACHE_SHARED_READS',
        { TOKEN_CACHE_SHARED_READS: 'yes' },
        /expected "true" or "false", got "yes"/,
      ],
      ['TOKEN_CACHE_COALESCING', { TOKEN_CACHE_COALESCING: 'yes' }, /got "yes"/],
      [
        'DOWNSTREAM_URL',
        { DOWNSTREAM_URL: undefined },
        /expected the URL of the downstream API, but it is not set/,
      ],
      ['DOWNSTREAM_URL', { DOWNSTREAM_URL: 'http://downstream.example.test/api' }, /http only for localhost/],
      ['DOWNSTREAM_SCOPES', { DOWNSTREAM_SCOPES: undefined }, /expected space- or comma-separated scopes/],
      ['DOWNSTREAM_SCOPES', { DOWNSTREAM_SCOPES: ' , ' }, /got ","/],
      ['DAEMON_SCOPE', { DAEMON_SCOPE: 'api://downstream/Data.Read' }, /ending in "\/.default"/],
      [
        'DAEMON_SCOPE',
        { DOWNSTREAM_SCOPES: 'User.Read' },
        /cannot be derived from DOWNSTREAM_SCOPES "User.Read"/,
      ],
      ['DOWNSTREAM_TIMEOUT_MS', { DOWNSTREAM_TIMEOUT_MS: '0' }, /expected a whole number >= 1/],
      ['API_ISSUER', { API_ISSUER: 'not an issuer' }, /expected an absolute URL, got "not an issuer"/],
      [
        'API_ISSUER',
        { MSAL_AUTHORITY: 'https://login.microsoftonline.com/contoso.onmicrosoft.com' },
        /required when MSAL_AUTHORITY's tenant is a domain/,
      ],
      [
        'API_ALLOWED_TENANTS',
        {
          MSAL_AUTHORITY: 'https://login.microsoftonline.com/organizations',
          API_ALLOWED_TENANTS: 'contoso.com',
        },
        /expected comma-separated tenant ids \(GUIDs\)/,
      ],
      ['API_ALLOWED_TENANTS', { API_ALLOWED_TENANTS: TENANT }, /applies to a multi-tenant API only/],
      ['DAEMON_TENANTS', { DAEMON_TENANTS: `${TENANT},contoso.com` }, /expected comma-separated tenant ids/],
      ['API_JWKS_URI', { API_JWKS_URI: 'http://keys.example.test/keys' }, /expected an https URL/],
      [
        'TOKEN_CACHE_LOCAL_KEY_ID',
        {
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
          TOKEN_CACHE_LOCAL_KEY_ID: 'key one',
        },
        /expected a key id of letters, digits/,
      ],
      [
        'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
        {
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
          TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: MASTER_KEY,
        },
        /expected comma-separated id:base64 pairs/,
      ],
      [
        'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
        {
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
          TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: 'local-0:c2hvcnQ=',
        },
        /expected 32 bytes, base64 .* for key "local-0", got 5 bytes/,
      ],
      [
        'TOKEN_CACHE_LOCAL_PREVIOUS_KEYS',
        {
          TOKEN_CACHE_KEY_RING: 'local',
          TOKEN_CACHE_LOCAL_MASTER_KEY: MASTER_KEY,
          TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: `local-1:${MASTER_KEY}`,
        },
        /names key id "local-1" twice/,
      ],
      [
        'TOKEN_CACHE_DATA_KEY_MAX_AGE_SECONDS',
        { TOKEN_CACHE_DATA_KEY_MAX_AGE_SECONDS: '0' },
        /whole number >= 1/,
      ],
      ['TOKEN_CACHE_DATA_KEY_MAX_USES', { TOKEN_CACHE_DATA_KEY_MAX_USES: 'many' }, /got "many"/],
      ['TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED', { TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED: '-1' }, /got "-1"/],
      [
        'TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED_AGE_SECONDS',
        { TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED_AGE_SECONDS: '0' },
        /whole number >= 1/,
      ],
      [
        'TOKEN_CACHE_USER_SLIDING_WINDOW_SECONDS',
        { TOKEN_CACHE_USER_SLIDING_WINDOW_SECONDS: '14d' },
        /expected a whole number >= 1, got "14d"/,
      ],
      [
        'TOKEN_CACHE_COMPRESS_ABOVE_BYTES',
        { TOKEN_CACHE_COMPRESS_ABOVE_BYTES: 'never' },
        /expected a whole number >= 0, or "false", got "never"/,
      ],
      ['TOKEN_CACHE_CONFLICT_MAX_ATTEMPTS', { TOKEN_CACHE_CONFLICT_MAX_ATTEMPTS: '0' }, /whole number >= 1/],
      ['TOKEN_CACHE_CONFLICT_BASE_DELAY_MS', { TOKEN_CACHE_CONFLICT_BASE_DELAY_MS: '1.5' }, /got "1.5"/],
      ['TOKEN_CACHE_CONFLICT_MAX_DELAY_MS', { TOKEN_CACHE_CONFLICT_MAX_DELAY_MS: 'x' }, /got "x"/],
      [
        'API_REQUIRED_SCOPES',
        { API_REQUIRED_SCOPES: undefined },
        /expected the delegated scopes a caller's token must carry in scp, .*but it is not set/,
      ],
      ['API_REQUIRED_SCOPES', { API_REQUIRED_SCOPES: ' , ' }, /but it is not set/],
      ['API_REQUIRED_SCOPES', { API_REQUIRED_SCOPES: 'access_as_user,*' }, /got "access_as_user,\*"/],
      [
        'LOG_LEVEL',
        { LOG_LEVEL: 'verbose' },
        /expected one of debug, info, warn, error, silent, got "verbose"/,
      ],
    ];

    it('reads the secretless sources', () => {
      expectCredentialsWithoutSecret([
        [
          {
            MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
            AWS_REGION: 'eu-west-1',
            AWS_ENDPOINT_URL_STS: 'http://localhost:4010',
          },
          { kind: 'aws-web-identity', durationSeconds: 900, endpoint: 'http://localhost:4010' },
        ],
        [
          {
            MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity',
            MSAL_MANAGED_IDENTITY_CLIENT_ID: '0e2a4c6d-8f10-4a32-b456-7890abcdef02',
          },
          { kind: 'azure-managed-identity', clientId: '0e2a4c6d-8f10-4a32-b456-7890abcdef02' },
        ],
      ]);
    });

    it.each(cases)('names %s: %j', (variable, change, message) => {
      const error = configError(baseEnv(change));

      expect(error.setting).toBe(variable);
      expect(error.message.startsWith(`${variable}: `)).toBe(true);
      expect(error.message).toMatch(message);
      expect(error.code).toBe('CONFIGURATION');
    });

    it('has a case for every variable that can be invalid', () => {
      const named = new Set(cases.map(([variable]) => variable));
      // These accept any value: a list of audiences, a region, a path checked when read, and
      // store credentials and a key prefix (the server decides).
      const free = new Set<FunctionVariable>([
        'API_AUDIENCE',
        'AWS_REGION',
        'EXTRA_CA_FILE',
        'MSAL_CLIENT_CERTIFICATE_PATH',
        'TOKEN_CACHE_COSMOS_KEY',
        'TOKEN_CACHE_REDIS_USERNAME',
        'TOKEN_CACHE_REDIS_PASSWORD',
        'TOKEN_CACHE_REDIS_KEY_PREFIX',
      ]);

      expect(FunctionVariables.filter((v) => !named.has(v) && !free.has(v))).toEqual([]);
    });

    it('never echoes a secret in an error', () => {
      const errors = [
        configError(baseEnv({ MSAL_CLIENT_CERTIFICATE_PATH: '/c.pem' })),
        configError(baseEnv({ TOKEN_CACHE_KEY_RING: 'local', TOKEN_CACHE_LOCAL_MASTER_KEY: `${SECRET}==` })),
      ];

      for (const error of errors) expect(error.message).not.toContain(SECRET);
    });
  });
});

describe('runtime configuration files', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'config-test-'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('trustedCas', () => {
    it('is undefined (the system store) without EXTRA_CA_FILE', () => {
      expect(trustedCas({})).toBeUndefined();
    });

    it('adds the file to the system roots', async () => {
      const { cert } = await createDevCertificate();
      const path = join(dir, 'ca.pem');
      writeFileSync(path, cert);

      const cas = trustedCas({ extraCaFile: path });

      expect(cas).toHaveLength(rootCertificates.length + 1);
      expect(cas?.at(-1)?.trim()).toBe(cert.trim());
    });

    it('names EXTRA_CA_FILE when the file is missing or holds no certificate', () => {
      const empty = join(dir, 'empty.pem');
      writeFileSync(empty, 'nothing here');

      expect(() => trustedCas({ extraCaFile: join(dir, 'missing.pem') })).toThrow(
        /^EXTRA_CA_FILE: expected a PEM file of CA certificates, got ".*missing.pem" that cannot be read \(ENOENT\)/,
      );
      expect(() => trustedCas({ extraCaFile: empty })).toThrow(
        /^EXTRA_CA_FILE: .*no "BEGIN CERTIFICATE" block/,
      );
    });
  });

  describe('resolveClientCredential', () => {
    const certificateEnv = (path: string, x5c = 'false') =>
      loadFunctionConfig(
        baseEnv({
          MSAL_CLIENT_SECRET: undefined,
          MSAL_CLIENT_CERTIFICATE_PATH: path,
          MSAL_CLIENT_CERTIFICATE_SEND_X5C: x5c,
        }),
      );

    it('returns the secret as is', async () => {
      await expect(resolveClientCredential(loadFunctionConfig(baseEnv()))).resolves.toEqual({
        clientSecret: SECRET,
      });
    });

    it('reads a certificate file: PKCS#8 key, SHA-256 thumbprint, and x5c when asked', async () => {
      const { cert, key } = await createDevCertificate();
      const path = join(dir, 'client.pem');
      writeFileSync(path, `${key}\n${cert}`);

      const plain = await resolveClientCredential(certificateEnv(path));
      const withChain = await resolveClientCredential(certificateEnv(path, 'true'));

      const expected = new X509Certificate(cert).fingerprint256.replace(/:/g, '').toLowerCase();
      expect(plain.clientCertificate?.thumbprintSha256).toBe(expected);
      expect(plain.clientCertificate?.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(plain.clientCertificate?.x5c).toBeUndefined();
      expect(withChain.clientCertificate?.x5c?.trim()).toBe(cert.trim());
    });

    it('names MSAL_CLIENT_CERTIFICATE_PATH for a missing file, a missing key, and a key of another certificate', async () => {
      const first = await createDevCertificate();
      const second = await createDevCertificate();
      const noKey = join(dir, 'no-key.pem');
      const mismatched = join(dir, 'mismatched.pem');
      writeFileSync(noKey, first.cert);
      writeFileSync(mismatched, `${second.key}\n${first.cert}`);

      await expect(resolveClientCredential(certificateEnv(join(dir, 'absent.pem')))).rejects.toThrow(
        /^MSAL_CLIENT_CERTIFICATE_PATH: .*cannot be read \(ENOENT\)/,
      );
      await expect(resolveClientCredential(certificateEnv(noKey))).rejects.toThrow(
        /^MSAL_CLIENT_CERTIFICATE_PATH: .*no unencrypted private key/,
      );
      await expect(resolveClientCredential(certificateEnv(mismatched))).rejects.toThrow(
        /^MSAL_CLIENT_CERTIFICATE_PATH: the private key .* does not match its first certificate/,
      );
    });

    describe('from Secrets Manager', () => {
      let secrets: LocalSecretsManager;
      const saved: Record<string, string | undefined> = {};

      beforeAll(async () => {
        secrets = await startLocalSecretsManager();
        // The function's role provides credentials in Lambda; here the SDK's default chain reads these.
        for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) saved[name] = process.env[name];
        process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCAL';
        process.env.AWS_SECRET_ACCESS_KEY = 'local';
      });

      afterAll(async () => {
        for (const [name, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
        await secrets.stop();
      });

      const arnEnv = (arn: string) =>
        loadFunctionConfig(
          baseEnv({
            MSAL_CLIENT_SECRET: undefined,
            MSAL_CLIENT_SECRET_ARN: arn,
            AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
            AWS_REGION: secrets.region,
          }),
        );

      it('reads the SecretString once', async () => {
        const arn = await secrets.createSecret('web-api/client-secret', SECRET);
        secrets.counters.reset();

        const credential = await resolveClientCredential(arnEnv(arn));

        expect(credential).toEqual({ clientSecret: SECRET });
        expect(secrets.counters.calls('GetSecretValue')).toBe(1);
      });

      it('names MSAL_CLIENT_SECRET_ARN when the secret does not exist', async () => {
        const arn = `arn:aws:secretsmanager:${secrets.region}:000000000000:secret:does-not-exist-AbCdEf`;

        const error = await resolveClientCredential(arnEnv(arn)).then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(error).toBeInstanceOf(ConfigurationError);
        expect((error as ConfigurationError).message).toMatch(
          /^MSAL_CLIENT_SECRET_ARN: cannot read .*does-not-exist.* \(ResourceNotFoundException\)/,
        );
      });
    });
  });
});

describe('configuration layers', () => {
  it('reports every problem at once, each naming its variable', () => {
    const error = configError(
      baseEnv({
        MSAL_CLIENT_ID: 'not a client id!',
        TOKEN_CACHE_L1_TTL_SECONDS: '0',
        DOWNSTREAM_URL: undefined,
        LOG_LEVEL: 'verbose',
      }),
    );

    expect(error.problems.map((p) => p.setting)).toEqual([
      'MSAL_CLIENT_ID',
      'TOKEN_CACHE_L1_TTL_SECONDS',
      'LOG_LEVEL',
      'DOWNSTREAM_URL',
    ]);
    expect(error.setting).toBe('MSAL_CLIENT_ID');
    expect(error.message).toMatch(/^MSAL_CLIENT_ID: expected a GUID or app id/);
    expect(error.message).toMatch(/and 3 more configuration problems:\n- TOKEN_CACHE_L1_TTL_SECONDS: /);
    expect(error.message).toMatch(
      /\n- DOWNSTREAM_URL: expected the URL of the downstream API, but it is not set/,
    );
  });

  it("needs none of the handlers' variables for the cache alone", () => {
    const cacheOnly = baseEnv({ DOWNSTREAM_URL: undefined, DOWNSTREAM_SCOPES: undefined });

    const config = loadCacheConfig(cacheOnly);

    expect(config.store).toEqual({ kind: 'dynamodb', tableName: 'token-cache' });
    expect(() => loadFunctionConfig(cacheOnly)).toThrow(/DOWNSTREAM_SCOPES/);
  });

  it('maps every cache variable to one TokenCacheOptions setting, with the library defaults', () => {
    const defaults = cacheOptionsOf(loadCacheConfig(baseEnv()));
    const set = cacheOptionsOf(
      loadCacheConfig(
        baseEnv({
          TOKEN_CACHE_L1_MAX_BYTES: '1024',
          TOKEN_CACHE_L1_TTL_SECONDS: '7',
          TOKEN_CACHE_L1_JITTER: '0.05',
          TOKEN_CACHE_SHARED_READS: 'false',
          TOKEN_CACHE_DATA_KEY_MAX_AGE_SECONDS: '60',
          TOKEN_CACHE_DATA_KEY_MAX_USES: '5',
          TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED: '9',
          TOKEN_CACHE_DATA_KEY_MAX_UNWRAPPED_AGE_SECONDS: '120',
          TOKEN_CACHE_USER_SLIDING_WINDOW_SECONDS: '3600',
          TOKEN_CACHE_COMPRESS_ABOVE_BYTES: 'false',
          TOKEN_CACHE_CONFLICT_MAX_ATTEMPTS: '3',
          TOKEN_CACHE_CONFLICT_BASE_DELAY_MS: '0',
          TOKEN_CACHE_CONFLICT_MAX_DELAY_MS: '40',
          TOKEN_CACHE_COALESCING: 'local',
        }),
      ),
    );

    expect(defaults).toEqual({
      l1: { maxBytes: TokenCacheDefaults.l1MaxBytes, ttlMs: TokenCacheDefaults.l1TtlMs, jitter: 0.2 },
      sharedReads: true,
      dataKeys: { maxAgeMs: 300_000, maxUses: 10_000, maxUnwrapped: 1_000, maxUnwrappedAgeMs: 900_000 },
      userSlidingWindowSeconds: TokenCacheDefaults.userSlidingWindowSeconds,
      compressAboveBytes: TokenCacheDefaults.compressAboveBytes,
      conflictRetries: {
        maxAttempts: TokenCacheDefaults.conflictMaxAttempts,
        baseDelayMs: TokenCacheDefaults.conflictBaseDelayMs,
        maxDelayMs: TokenCacheDefaults.conflictMaxDelayMs,
      },
      coalescing: { lease: true },
    });
    expect(set).toEqual({
      l1: { maxBytes: 1024, ttlMs: 7000, jitter: 0.05 },
      sharedReads: false,
      dataKeys: { maxAgeMs: 60_000, maxUses: 5, maxUnwrapped: 9, maxUnwrappedAgeMs: 120_000 },
      userSlidingWindowSeconds: 3600,
      compressAboveBytes: false,
      conflictRetries: { maxAttempts: 3, baseDelayMs: 0, maxDelayMs: 40 },
      coalescing: { lease: false },
    });
    expect(cacheOptionsOf(loadCacheConfig(baseEnv({ TOKEN_CACHE_COALESCING: 'off' }))).coalescing).toBe(
      false,
    );
  });

  it('rotates the local key ring from the environment: the old key still opens what it sealed', async () => {
    const oldKey = Buffer.alloc(32, 1).toString('base64');
    const newKey = Buffer.alloc(32, 2).toString('base64');
    const before = localKeyRing(
      loadCacheConfig(baseEnv({ TOKEN_CACHE_KMS_KEY_ID: undefined, TOKEN_CACHE_LOCAL_MASTER_KEY: oldKey })),
    )!;
    const sealed = await before.generateDataKey();

    const after = localKeyRing(
      loadCacheConfig(
        baseEnv({
          TOKEN_CACHE_KMS_KEY_ID: undefined,
          TOKEN_CACHE_LOCAL_MASTER_KEY: newKey,
          TOKEN_CACHE_LOCAL_KEY_ID: 'local-2',
          TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: `local-1:${oldKey}`,
        }),
      ),
    )!;

    expect(sealed.keyId).toBe('local-1');
    expect(Buffer.from(await after.unwrapDataKey(sealed.wrapped, sealed.keyId))).toEqual(
      Buffer.from(sealed.plaintext),
    );
    expect((await after.generateDataKey()).keyId).toBe('local-2');
  });

  /** A Cosmos DB store and a Key Vault ring in place of the AWS ones: parts only msal-cloud-cache/azure builds. */
  const AZURE_PARTS = {
    TOKEN_CACHE_TABLE_NAME: undefined,
    TOKEN_CACHE_KMS_KEY_ID: undefined,
    TOKEN_CACHE_COSMOS_ENDPOINT: 'https://a.documents.azure.com',
    TOKEN_CACHE_COSMOS_DATABASE: 'db',
    TOKEN_CACHE_COSMOS_CONTAINER: 'c',
    TOKEN_CACHE_KEYVAULT_KEY_ID: 'https://v.vault.azure.net/keys/k',
    TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: 'https://v.vault.azure.net/keys/s',
  };

  it('tells an AWS composition that a Cosmos store or Key Vault ring needs msal-cloud-cache/azure', async () => {
    const error = await awsCacheFromConfig(loadCacheConfig(baseEnv(AZURE_PARTS))).then(
      () => undefined,
      (e: unknown) => e as ConfigurationError,
    );

    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error?.problems.map((p) => p.setting)).toEqual(['TOKEN_CACHE_STORE', 'TOKEN_CACHE_KEY_RING']);
    expect(error?.message).toMatch(
      /"cosmos" is built by msal-cloud-cache\/azure; msal-cloud-cache\/aws builds dynamodb or memory/,
    );
    expect(error?.message).toMatch(/"azure-keyvault" is built by msal-cloud-cache\/azure/);
  });

  it('reports a credential source at fault with the store and key ring problems, all in one error', async () => {
    const config = loadCacheConfig(
      baseEnv({
        ...AZURE_PARTS,
        MSAL_CLIENT_SECRET: undefined,
        MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity',
      }),
    );

    const error = await awsCacheFromConfig(config).then(
      () => undefined,
      (e: unknown) => e as ConfigurationError,
    );

    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error?.problems.map((p) => p.setting)).toEqual([
      'TOKEN_CACHE_STORE',
      'TOKEN_CACHE_KEY_RING',
      'MSAL_CLIENT_ASSERTION_SOURCE',
    ]);
    expect(error?.message).toMatch(/and 2 more configuration problems:\n/);
  });

  it.each([
    ['msal-cloud-cache/aws', awsCacheFromEnv],
    ['msal-cloud-cache/azure', azureCacheFromEnv],
  ])(
    '%s createTokenCacheFromEnv rejects its promise on a bad environment, never throws',
    async (_, fromEnv) => {
      let returned: Promise<unknown> | undefined;
      expect(() => {
        returned = fromEnv({ env: baseEnv({ MSAL_CLIENT_ID: undefined }) });
      }).not.toThrow();

      await expect(returned).rejects.toThrow(ConfigurationError);
      await expect(returned).rejects.toThrow(/MSAL_CLIENT_ID/);
    },
  );

  it('tells a composition that TOKEN_CACHE_STORE=redis needs msal-cloud-cache/redis imported', async () => {
    const config = loadCacheConfig(
      baseEnv({
        TOKEN_CACHE_TABLE_NAME: undefined,
        TOKEN_CACHE_REDIS_URL: 'rediss://cache.example.test:6380',
      }),
    );

    await expect(awsCacheFromConfig(config)).rejects.toThrow(
      /TOKEN_CACHE_STORE: "redis" is built by msal-cloud-cache\/redis: import it once in your function/,
    );
  });

  it('tells an Azure composition that a Secrets Manager secret needs msal-cloud-cache/aws', () => {
    const config = loadCacheConfig(
      baseEnv({
        MSAL_CLIENT_SECRET: undefined,
        MSAL_CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:s',
      }),
    );

    expect(() => azureCredentialOf(config)).toThrow(
      /MSAL_CLIENT_SECRET_ARN: "secrets-manager" is built by msal-cloud-cache\/aws/,
    );
  });
});
