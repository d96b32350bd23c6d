/**
 * The local Key Vault driven through the real @azure/keyvault-keys KeyClient and
 * CryptographyClient over HTTPS, plus raw requests for the wire details the SDK hides.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { CryptographyClient, KeyClient, type CryptographyClientOptions } from '@azure/keyvault-keys';
import {
  DEFAULT_LOCAL_TENANT_ID,
  KEY_VAULT_RESOURCE,
  startLocalKeyVault,
  type LocalKeyVault,
} from '../../local/keyvault';
import { createDevCertificate, type DevCertificate } from '../../local/tls';
import { httpsRequest } from '../support/https-request';

const BEARER = 'local-test-bearer';

/** A credential that always returns the same bearer and records the scopes and tenants it was asked for. */
class FixedTokenCredential implements TokenCredential {
  readonly requests: { scopes: string[]; tenantId: string | undefined }[] = [];
  constructor(private readonly token = BEARER) {}
  async getToken(scopes: string | string[], options?: { tenantId?: string }): Promise<AccessToken> {
    this.requests.push({ scopes: [scopes].flat(), tenantId: options?.tenantId });
    return { token: this.token, expiresOnTimestamp: Date.now() + 3600_000 };
  }
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code?: string; message?: string; innererror?: { code?: string } } } & Record<
    string,
    unknown
  >;
}

async function raw(
  vault: LocalKeyVault,
  method: string,
  path: string,
  body?: unknown,
  bearer?: string,
): Promise<RawResponse> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const reply = await httpsRequest(
    `${vault.vaultUrl}${path}`,
    {
      method,
      ca: vault.ca,
      agent: false,
      headers: {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}),
      },
    },
    text,
  );
  return {
    status: reply.status,
    headers: reply.headers,
    body: JSON.parse(reply.text || '{}') as RawResponse['body'],
  };
}

/** Runs `promise`, expecting it to reject with an SDK RestError; returns that error. */
async function restError(
  promise: Promise<unknown>,
): Promise<{ statusCode?: number; code?: string; details?: { error?: { innerError?: { code?: string } } } }> {
  const error: unknown = await promise.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ name: 'RestError' });
  return error as { statusCode?: number; code?: string };
}

describe('local Key Vault', () => {
  let certificate: DevCertificate;
  let vault: LocalKeyVault;
  let credential: FixedTokenCredential;
  let options: CryptographyClientOptions;
  let keyClient: KeyClient;

  beforeAll(async () => {
    certificate = await createDevCertificate();
    vault = await startLocalKeyVault({ certificate });
    options = {
      tlsOptions: { ca: vault.ca },
      disableChallengeResourceVerification: true,
      retryOptions: { maxRetries: 0 },
    };
  });

  afterAll(async () => {
    await vault.stop();
  });

  beforeEach(() => {
    credential = new FixedTokenCredential();
    keyClient = new KeyClient(vault.vaultUrl, credential, options);
    vault.setFault(undefined);
    vault.counters.reset();
  });

  const crypto = (kid: string, clientOptions: CryptographyClientOptions = options): CryptographyClient =>
    new CryptographyClient(kid, credential, clientOptions);

  describe('vaultUrl', () => {
    it('is https on localhost with the port and no trailing slash', () => {
      expect(vault.vaultUrl).toMatch(/^https:\/\/localhost:\d+$/);
      expect(vault.ca).toBe(certificate.cert);
    });
  });

  describe('createKey (helper) and getKey', () => {
    it('returns the versioned kid the SDK reads back, with an RSA public key and attributes', async () => {
      const created = await vault.createKey('helper-key');

      const key = await keyClient.getKey('helper-key');

      expect(created.id).toBe(`${vault.vaultUrl}/keys/helper-key/${created.version}`);
      expect(created.version).toMatch(/^[0-9a-f]{32}$/);
      expect(key.id).toBe(created.id);
      expect(key.name).toBe('helper-key');
      expect(key.keyType).toBe('RSA');
      expect(key.key?.n).toHaveLength(256);
      expect(key.keyOperations).toEqual(expect.arrayContaining(['wrapKey', 'unwrapKey']));
      expect(key.properties.enabled).toBe(true);
      expect(key.properties.createdOn).toBeInstanceOf(Date);
      expect(key.properties.version).toBe(created.version);
    });

    it('reads one exact version', async () => {
      const first = await vault.createKey('two-versions');
      await vault.createKey('two-versions');

      const key = await keyClient.getKey('two-versions', { version: first.version });

      expect(key.id).toBe(first.id);
    });

    it('answers 404 KeyNotFound for an unknown key and an unknown version', async () => {
      await vault.createKey('known');

      const missingKey = await restError(keyClient.getKey('unknown'));
      const missingVersion = await restError(keyClient.getKey('known', { version: '0'.repeat(32) }));

      expect(missingKey).toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
      expect(missingVersion).toMatchObject({ statusCode: 404, code: 'KeyNotFound' });
    });
  });

  describe('KeyClient operations', () => {
    it('creates an RSA key through the SDK, with key_ops and enabled as asked', async () => {
      const key = await keyClient.createRsaKey('sdk-key', {
        keySize: 2048,
        keyOps: ['wrapKey', 'unwrapKey'],
      });

      expect(key.id).toMatch(new RegExp(`^${vault.vaultUrl}/keys/sdk-key/[0-9a-f]{32}$`));
      expect(key.keyOperations).toEqual(['wrapKey', 'unwrapKey']);
      expect(vault.counters.calls('createKey')).toBe(1);
    });

    it('lists every version and rotates to a new current version', async () => {
      const first = await vault.createKey('rotating');

      const rotated = await keyClient.rotateKey('rotating');
      const latest = await keyClient.getKey('rotating');
      const versions: string[] = [];
      for await (const properties of keyClient.listPropertiesOfKeyVersions('rotating')) {
        versions.push(properties.version ?? '');
      }

      expect(rotated.id).not.toBe(first.id);
      expect(latest.id).toBe(rotated.id);
      expect(versions.sort()).toEqual([first.version, rotated.properties.version].sort());
      expect(vault.counters.calls('rotateKey')).toBe(1);
      expect(vault.counters.calls('getKeyVersions')).toBe(1);
    });

    it('makes 3072-bit keys on request and rotates them at the same size', async () => {
      const created = await vault.createKey('big-key', { keySize: 3072 });

      const next = await vault.rotateKey('big-key');
      const first = await keyClient.getKey('big-key', { version: created.version });
      const latest = await keyClient.getKey('big-key');

      expect(first.key?.n).toHaveLength(384);
      expect(latest.id).toBe(next.id);
      expect(latest.key?.n).toHaveLength(384);
    });

    it('disables and enables a version with updateKeyProperties', async () => {
      const created = await vault.createKey('toggled');

      const disabled = await keyClient.updateKeyProperties('toggled', created.version, { enabled: false });
      const readBack = await keyClient.getKey('toggled');
      const enabled = await keyClient.updateKeyProperties('toggled', created.version, { enabled: true });

      expect(disabled.properties.enabled).toBe(false);
      expect(readBack.properties.enabled).toBe(false);
      expect(enabled.properties.enabled).toBe(true);
      expect(vault.counters.calls('updateKey')).toBe(2);
    });
  });

  describe('wrapKey / unwrapKey', () => {
    /** Creates key `name`, wraps a fresh data key with `algorithm` and unwraps it back to the same bytes. */
    async function expectRoundTrip(name: string, algorithm: 'RSA-OAEP-256' | 'RSA-OAEP') {
      const { id } = await vault.createKey(name);
      const client = crypto(id);
      const dataKey = randomBytes(32);

      const wrapped = await client.wrapKey(algorithm, dataKey);
      const unwrapped = await client.unwrapKey(algorithm, wrapped.result);

      expect(Buffer.from(unwrapped.result).equals(dataKey)).toBe(true);
      return { id, wrapped };
    }

    it('round-trips with RSA-OAEP-256, both operations on the server', async () => {
      const { id, wrapped } = await expectRoundTrip('wrap-256', 'RSA-OAEP-256');

      expect(wrapped.result).toHaveLength(256);
      expect(wrapped.keyID).toBe(id);
      expect(vault.counters.calls('wrapKey')).toBe(1);
      expect(vault.counters.calls('unwrapKey')).toBe(1);
    });

    it('round-trips with RSA-OAEP, wrapped locally by the SDK with the public key', async () => {
      await expectRoundTrip('wrap-sha1', 'RSA-OAEP');

      expect(vault.counters.calls('getKey')).toBe(1);
      expect(vault.counters.calls('wrapKey')).toBe(0);
      expect(vault.counters.calls('unwrapKey')).toBe(1);
    });

    it('unwraps what node:crypto wrapped with the published key and OAEP SHA-256', async () => {
      const { id, version } = await vault.createKey('interop');
      const jwk = (await keyClient.getKey('interop', { version })).key;
      const publicKey = createPublicKey({
        key: {
          kty: 'RSA',
          n: Buffer.from(jwk?.n ?? []).toString('base64url'),
          e: Buffer.from(jwk?.e ?? []).toString('base64url'),
        },
        format: 'jwk',
      });
      const dataKey = randomBytes(32);
      const wrapped = publicEncrypt(
        { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
        dataKey,
      );

      const unwrapped = await crypto(id).unwrapKey('RSA-OAEP-256', wrapped);

      expect(Buffer.from(unwrapped.result).equals(dataKey)).toBe(true);
    });

    it('keeps each version able to unwrap its own data keys after a rotation', async () => {
      const first = await vault.createKey('versioned-wrap');
      const dataKey = randomBytes(32);
      const wrapped = await crypto(first.id).wrapKey('RSA-OAEP-256', dataKey);
      const second = await vault.rotateKey('versioned-wrap');

      const unwrapped = await crypto(first.id).unwrapKey('RSA-OAEP-256', wrapped.result);
      const wrongVersion = await restError(crypto(second.id).unwrapKey('RSA-OAEP-256', wrapped.result));

      expect(Buffer.from(unwrapped.result).equals(dataKey)).toBe(true);
      expect(wrongVersion).toMatchObject({ statusCode: 400, code: 'BadParameter' });
    });

    it('answers 400 BadParameter to a ciphertext the key cannot decrypt', async () => {
      const { id } = await vault.createKey('tamper');
      const client = crypto(id);
      const wrapped = Buffer.from((await client.wrapKey('RSA-OAEP-256', randomBytes(32))).result);
      wrapped[10] = (wrapped[10] ?? 0) ^ 0xff;

      const error = await restError(client.unwrapKey('RSA-OAEP-256', wrapped));

      expect(error).toMatchObject({ statusCode: 400, code: 'BadParameter' });
    });

    it('refuses to unwrap with a disabled version: 403 Forbidden, innererror KeyDisabled', async () => {
      const { id, version } = await vault.createKey('disabled-key');
      const client = crypto(id);
      const wrapped = await client.wrapKey('RSA-OAEP-256', randomBytes(32));
      vault.disableKey('disabled-key', version);

      const error = await restError(crypto(id).unwrapKey('RSA-OAEP-256', wrapped.result));
      const key = await keyClient.getKey('disabled-key');

      expect(error).toMatchObject({
        statusCode: 403,
        code: 'Forbidden',
        details: { error: { innerError: { code: 'KeyDisabled' } } },
      });
      expect(key.properties.enabled).toBe(false);
    });

    it('unwraps again once the version is re-enabled', async () => {
      const { id } = await vault.createKey('reenabled');
      const dataKey = randomBytes(32);
      const wrapped = await crypto(id).wrapKey('RSA-OAEP-256', dataKey);
      vault.disableKey('reenabled');
      vault.enableKey('reenabled');

      const unwrapped = await crypto(id).unwrapKey('RSA-OAEP-256', wrapped.result);

      expect(Buffer.from(unwrapped.result).equals(dataKey)).toBe(true);
    });

    it('refuses an operation the key does not allow', async () => {
      const { id } = await vault.createKey('wrap-only', { keyOps: ['wrapKey'] });
      const wrapped = await raw(
        vault,
        'POST',
        `/keys/wrap-only/${id.split('/').at(-1)}/wrapkey?api-version=7.6`,
        {
          alg: 'RSA-OAEP-256',
          value: randomBytes(32).toString('base64url'),
        },
        BEARER,
      );

      const unwrapped = await raw(
        vault,
        'POST',
        `/keys/wrap-only/${id.split('/').at(-1)}/unwrapkey?api-version=7.6`,
        { alg: 'RSA-OAEP-256', value: String(wrapped.body.value) },
        BEARER,
      );

      expect(wrapped.status).toBe(200);
      expect(unwrapped.status).toBe(403);
      expect(unwrapped.body.error?.code).toBe('Forbidden');
    });
  });

  describe('challenge authentication', () => {
    it('answers a request without a bearer with 401 and the Key Vault challenge', async () => {
      await vault.createKey('challenged');

      const response = await raw(vault, 'GET', '/keys/challenged?api-version=7.6');

      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBe(
        `Bearer authorization="https://login.microsoftonline.com/${DEFAULT_LOCAL_TENANT_ID}", resource="${KEY_VAULT_RESOURCE}"`,
      );
      expect(response.body.error?.code).toBe('Unauthorized');
      expect(vault.counters.calls('challenge')).toBe(1);
      expect(vault.counters.calls('getKey')).toBe(0);
    });

    it('lets the SDK answer the challenge: token for the vault resource, in the challenged tenant', async () => {
      await vault.createKey('sdk-challenge');

      await keyClient.getKey('sdk-challenge');
      await keyClient.getKey('sdk-challenge');

      expect(vault.counters.calls('challenge')).toBe(1);
      expect(vault.counters.calls('getKey')).toBe(2);
      expect(credential.requests[0]).toEqual({
        scopes: [`${KEY_VAULT_RESOURCE}/.default`],
        tenantId: DEFAULT_LOCAL_TENANT_ID,
      });
    });

    it('names the configured authority and tenant, and refuses bearers verifyToken rejects', async () => {
      const seen: string[] = [];
      const strict = await startLocalKeyVault({
        certificate,
        authorityUrl: 'https://localhost:4443/',
        tenantId: 'contoso-tenant',
        verifyToken: async (bearer) => {
          seen.push(bearer);
          return bearer === 'good';
        },
      });
      try {
        await strict.createKey('strict-key');
        const challenge = await raw(strict, 'GET', '/keys/strict-key?api-version=7.6');
        const good = new KeyClient(strict.vaultUrl, new FixedTokenCredential('good'), options);
        const bad = new KeyClient(strict.vaultUrl, new FixedTokenCredential('bad'), options);

        const key = await good.getKey('strict-key');
        const refused = await restError(bad.getKey('strict-key'));

        expect(challenge.headers['www-authenticate']).toBe(
          `Bearer authorization="https://localhost:4443/contoso-tenant", resource="${KEY_VAULT_RESOURCE}"`,
        );
        expect(key.name).toBe('strict-key');
        expect(refused).toMatchObject({ statusCode: 401 });
        expect(seen).toEqual(expect.arrayContaining(['good', 'bad']));
        expect(strict.counters.calls('unauthorized')).toBeGreaterThan(0);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('request validation', () => {
    it('requires a recognised api-version', async () => {
      await vault.createKey('versioned-api');

      const missing = await raw(vault, 'GET', '/keys/versioned-api', undefined, BEARER);
      const unknown = await raw(vault, 'GET', '/keys/versioned-api?api-version=banana', undefined, BEARER);
      const known = await raw(vault, 'GET', '/keys/versioned-api?api-version=7.4', undefined, BEARER);

      expect(missing).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
      expect(unknown).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
      expect(known.status).toBe(200);
    });

    it('rejects a value that is not base64url and an unsupported algorithm', async () => {
      const { version } = await vault.createKey('validated');
      const path = `/keys/validated/${version}/wrapkey?api-version=7.6`;

      const badValue = await raw(vault, 'POST', path, { alg: 'RSA-OAEP-256', value: 'not base64!' }, BEARER);
      const badAlg = await raw(vault, 'POST', path, { alg: 'RSA1_5', value: 'AAAA' }, BEARER);

      expect(badValue).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
      expect(badAlg).toMatchObject({ status: 400, body: { error: { code: 'BadParameter' } } });
    });

    it('treats an empty version segment as the latest version', async () => {
      await vault.createKey('latest-by-empty');
      const latest = await vault.rotateKey('latest-by-empty');

      const response = await raw(
        vault,
        'POST',
        '/keys/latest-by-empty//wrapkey?api-version=7.6',
        { alg: 'RSA-OAEP-256', value: randomBytes(32).toString('base64url') },
        BEARER,
      );

      expect(response.status).toBe(200);
      expect(response.body.kid).toBe(latest.id);
    });
  });

  describe('faults and counters', () => {
    it.each([
      [429, 'Throttled'],
      [503, 'ServiceUnavailable'],
      [500, 'InternalServerError'],
    ] as const)('fails matching operations with %i %s for `count` requests', async (status, code) => {
      const { id } = await vault.createKey(`fault-${status}`);
      const client = crypto(id);
      const wrapped = await client.wrapKey('RSA-OAEP-256', randomBytes(32));
      vault.setFault({ status, count: 1, ops: ['unwrapKey'] });

      const failed = await restError(client.unwrapKey('RSA-OAEP-256', wrapped.result));
      const recovered = await client.unwrapKey('RSA-OAEP-256', wrapped.result);

      expect(failed).toMatchObject({ statusCode: status, code });
      expect(recovered.result).toHaveLength(32);
      expect(vault.counters.calls('unwrapKey')).toBe(2);
    });

    it('sends Retry-After with 429', async () => {
      await vault.createKey('retry-after');
      vault.setFault({ status: 429 });

      const response = await raw(vault, 'GET', '/keys/retry-after?api-version=7.6', undefined, BEARER);

      expect(response.status).toBe(429);
      expect(response.headers['retry-after']).toBe('1');
    });

    it('fails with 403 Forbidden / ForbiddenByPolicy until cleared, only for the listed operations', async () => {
      const { id } = await vault.createKey('fault-403');
      vault.setFault({ status: 403, ops: ['wrapKey'] });

      const first = await restError(crypto(id).wrapKey('RSA-OAEP-256', randomBytes(32)));
      const second = await restError(crypto(id).wrapKey('RSA-OAEP-256', randomBytes(32)));
      const read = await keyClient.getKey('fault-403');
      vault.setFault(undefined);
      const cleared = await crypto(id).wrapKey('RSA-OAEP-256', randomBytes(32));

      expect(first).toMatchObject({
        statusCode: 403,
        code: 'Forbidden',
        details: { error: { innerError: { code: 'ForbiddenByPolicy' } } },
      });
      expect(second).toMatchObject({ statusCode: 403 });
      expect(read.id).toBe(id);
      expect(cleared.result).toHaveLength(256);
    });

    it('lets the SDK retry through a transient 503', async () => {
      const { id } = await vault.createKey('retried');
      const client = crypto(id, {
        ...options,
        retryOptions: { maxRetries: 2, retryDelayInMs: 1, maxRetryDelayInMs: 5 },
      });
      const wrapped = await client.wrapKey('RSA-OAEP-256', randomBytes(32));
      vault.setFault({ status: 503, count: 1 });

      const unwrapped = await client.unwrapKey('RSA-OAEP-256', wrapped.result);

      expect(unwrapped.result).toHaveLength(32);
      expect(vault.counters.calls('unwrapKey')).toBe(2);
    });

    it('counts every request, and resets', async () => {
      await vault.createKey('counted');
      await keyClient.getKey('counted');

      const before = vault.counters.calls();
      vault.counters.reset();

      expect(before).toBe(2);
      expect(vault.counters.calls()).toBe(0);
      expect(vault.counters.calls('getKey')).toBe(0);
    });
  });

  describe('admin helpers', () => {
    it('throw for a key or version that does not exist', async () => {
      await vault.createKey('admin');

      expect(() => vault.disableKey('nope')).toThrow(/no key named nope/);
      expect(() => vault.enableKey('admin', 'f'.repeat(32))).toThrow(/no version/);
      await expect(vault.rotateKey('nope')).rejects.toThrow(/no key named nope/);
    });
  });

  describe('stop', () => {
    it('closes the port', async () => {
      const other = await startLocalKeyVault({ certificate });
      await other.createKey('gone');

      await other.stop();
      const error = await raw(other, 'GET', '/keys/gone?api-version=7.6', undefined, BEARER).then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    });
  });
});
