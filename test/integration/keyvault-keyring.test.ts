/**
 * KeyVaultKeyRing against the local Key Vault over HTTPS, through the real
 * @azure/keyvault-keys clients: round trips, rotation, and every error mapping driven by
 * the server's states and fault switches.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { CryptographyClient, KeyClient, type CryptographyClientOptions } from '@azure/keyvault-keys';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { createDevCertificate, type DevCertificate } from '../../local/tls';
import {
  KeyVaultKeyRing,
  type KeyVaultKeyRingConfigOptions,
  type KeyVaultKeyRingOptions,
} from '../../shared/azure/keyvault-keyring';
import { attestationDigest, type DataKeyAttestation } from '../../shared/crypto/keyring';
import { ConfigurationError, KeyServiceFailure } from '../../shared/errors';
import { runKeyRingContract } from '../contract/keyring-contract';
import { keyServiceError } from '../support/expect-errors';
import { localVaultClientOptions, localVaultKeyRing } from '../support/local-vault';

const BEARER = 'keyring-test-bearer';

/** Returns a fixed bearer; the local vault's default verifyToken accepts any non-empty one. */
const fixedCredential: TokenCredential = {
  async getToken(): Promise<AccessToken> {
    return { token: BEARER, expiresOnTimestamp: Date.now() + 3600_000 };
  },
};

describe('KeyVaultKeyRing', () => {
  let certificate: DevCertificate;
  let vault: LocalKeyVault;
  let clientOptions: CryptographyClientOptions;
  let keyCount = 0;
  /** The EC P-256 key that attests data keys (format v2); one for the whole file. */
  let signingKeyId: string;
  /** Its (only) version's kid. */
  let signingVersionId: string;

  beforeAll(async () => {
    certificate = await createDevCertificate();
    vault = await startLocalKeyVault({ certificate });
    const signing = await vault.createKey('ring-signing', { kty: 'EC' });
    signingKeyId = `${vault.vaultUrl}/keys/${signing.name}`;
    signingVersionId = signing.id;
    clientOptions = localVaultClientOptions(vault);
  });

  afterAll(async () => {
    await vault.stop();
  });

  beforeEach(() => {
    vault.setFault(undefined);
    vault.counters.reset();
  });

  /** An attestation by the configured signing key, as only a holder of keys/sign can make it. */
  const attest = async (wrapped: Uint8Array, kid: string) => {
    const digest = attestationDigest('azure-keyvault', kid, signingVersionId, wrapped);
    const { result } = await new CryptographyClient(signingVersionId, fixedCredential, clientOptions).sign(
      'ES256',
      digest,
    );
    return { attestation: { signingKeyId: signingVersionId, signature: result } };
  };
  const newKey = () => vault.createKey(`ring-key-${++keyCount}`);
  const unversioned = (name: string, on: LocalKeyVault = vault) => `${on.vaultUrl}/keys/${name}`;
  const ring = (keyId: string, options: Partial<KeyVaultKeyRingConfigOptions> = {}) =>
    new KeyVaultKeyRing({
      keyId,
      signingKeyId,
      credential: fixedCredential,
      cryptographyClientOptions: clientOptions,
      ...options,
    });
  /** Rotates `key`, then expects `keyRing`'s next data key still wrapped by `key`'s version before the rotation. */
  const expectWrapsWithAfterRotation = async (
    keyRing: KeyVaultKeyRing,
    key: { name: string; id: string },
  ) => {
    await vault.rotateKey(key.name);
    const dataKey = await keyRing.generateDataKey();
    expect(dataKey.keyId).toBe(key.id);
  };

  describe('constructor', () => {
    it('is named azure-keyvault and makes no request', () => {
      const keyRing = ring(unversioned('anything'));

      expect(keyRing.name).toBe('azure-keyvault');
      expect(vault.counters.calls()).toBe(0);
    });

    it.each([
      'not a url',
      'http://vault.example/keys/k',
      'https://vault.example/secrets/k',
      'https://vault.example/keys/',
      'https://vault.example/keys/k/v/extra',
      'https://vault.example/keys/k?x=1',
      'https://vault.example/keys/bad_name',
    ])('rejects the keyId %j with a ConfigurationError naming keyId', (keyId) => {
      const build = () => ring(keyId);

      expect(build).toThrow(ConfigurationError);
      expect(build).toThrow(/^keyId: /);
    });

    it('rejects a negative currentVersionTtlMs', () => {
      expect(() => ring(unversioned('k'), { currentVersionTtlMs: -1 })).toThrow(/^currentVersionTtlMs: /);
    });

    it('rejects a missing credential', () => {
      const options = { keyId: unversioned('k'), signingKeyId } as unknown as KeyVaultKeyRingOptions;

      expect(() => new KeyVaultKeyRing(options)).toThrow(/^credential: /);
    });
  });

  describe('generateDataKey', () => {
    it('returns 32 fresh bytes wrapped by the current version, named by its versioned kid', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));

      const first = await keyRing.generateDataKey();
      const second = await keyRing.generateDataKey();

      expect(first.plaintext).toHaveLength(32);
      expect(first.wrapped).toHaveLength(256);
      expect(first.keyId).toBe(key.id);
      expect(Buffer.from(first.plaintext).equals(Buffer.from(second.plaintext))).toBe(false);
      expect(Buffer.from(first.wrapped).equals(Buffer.from(first.plaintext))).toBe(false);
    });

    it('wraps with RSA-OAEP-256, so the plain SDK opens the data key', async () => {
      const key = await newKey();
      const dataKey = await ring(unversioned(key.name)).generateDataKey();

      const opened = await new CryptographyClient(key.id, fixedCredential, clientOptions).unwrapKey(
        'RSA-OAEP-256',
        dataKey.wrapped,
      );

      expect(Buffer.from(opened.result).equals(Buffer.from(dataKey.plaintext))).toBe(true);
    });

    it('looks the current version up once while it is cached', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));

      await keyRing.generateDataKey();
      await keyRing.generateDataKey();
      await Promise.all([keyRing.generateDataKey(), keyRing.generateDataKey()]);

      // One lookup per key (format v2): the wrapping key and the signing key.
      expect(vault.counters.calls('getKey')).toBe(2);
      expect(vault.counters.calls('wrapKey')).toBe(4);
      expect(vault.counters.calls('sign')).toBe(4);
    });

    it('shares one lookup between concurrent first calls', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));

      await Promise.all([keyRing.generateDataKey(), keyRing.generateDataKey(), keyRing.generateDataKey()]);

      // One lookup per key (format v2): the wrapping key and the signing key.
      expect(vault.counters.calls('getKey')).toBe(2);
    });

    it('keeps wrapping with a pinned version after a rotation', async () => {
      const key = await newKey();
      const keyRing = ring(key.id, { currentVersionTtlMs: 0 });

      await expectWrapsWithAfterRotation(keyRing, key);
    });
  });

  describe('unwrapDataKey', () => {
    it('opens what generateDataKey wrapped', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const dataKey = await keyRing.generateDataKey();

      const plaintext = await keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, {
        attestation: dataKey.attestation,
      });

      expect(Buffer.from(plaintext).equals(Buffer.from(dataKey.plaintext))).toBe(true);
    });

    it('opens in another instance (a cold process) with one unwrap call per data key and one lookup of the signing key', async () => {
      const key = await newKey();
      const dataKey = await ring(unversioned(key.name)).generateDataKey();
      const coldRing = ring(unversioned(key.name));
      vault.counters.reset();

      await coldRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation });
      await coldRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation });

      expect(vault.counters.calls('unwrapKey')).toBe(2);
      // Format v2: the signing key's public half, fetched once and cached, verifies the attestation.
      expect(vault.counters.calls('getKey')).toBe(1);
      // One challenge per SDK client: the CryptographyClient (unwrap) and the KeyClient (public key).
      expect(vault.counters.calls('challenge')).toBe(2);
    });

    it.each([
      ['another key', (vaultUrl: string) => `${vaultUrl}/keys/some-other-key/${'a'.repeat(32)}`],
      ['another vault', () => `https://elsewhere.vault.azure.net/keys/ring-key-x/${'a'.repeat(32)}`],
      ['no version', (vaultUrl: string) => `${vaultUrl}/keys/ring-key-x`],
      ['not a key id', () => 'garbage'],
    ])('refuses a key id naming %s, without calling Key Vault', async (_what, kidFor) => {
      const keyRing = ring(unversioned('ring-key-x'));

      const error = await keyServiceError(keyRing.unwrapDataKey(randomBytes(256), kidFor(vault.vaultUrl)));

      expect(error.reason).toBe(KeyServiceFailure.NotFound);
      expect(error.operation).toBe('unwrap');
      expect(vault.counters.calls()).toBe(0);
    });

    it('rejects an unwrapped value that is not a 32-byte data key', async () => {
      const key = await newKey();
      const wrapped = await new CryptographyClient(key.id, fixedCredential, clientOptions).wrapKey(
        'RSA-OAEP-256',
        randomBytes(16),
      );

      const error = await keyServiceError(
        ring(unversioned(key.name)).unwrapDataKey(
          wrapped.result,
          key.id,
          await attest(wrapped.result, key.id),
        ),
      );

      expect(error.reason).toBe(KeyServiceFailure.InvalidCiphertext);
    });
  });

  describe('attestation (format v2)', () => {
    it('signs every data key with ES256 by the current signing key version', async () => {
      const key = await newKey();

      const dataKey = await ring(unversioned(key.name)).generateDataKey();

      expect(dataKey.attestation?.signingKeyId).toBe(signingVersionId);
      expect(dataKey.attestation?.signature).toHaveLength(64);
    });

    it('refuses the same key id as wrapping and signing key', () => {
      expect(() => ring(unversioned('same'), { signingKeyId: unversioned('same') })).toThrow(
        /^signingKeyId: /,
      );
    });

    it.each([
      ['no attestation', () => undefined],
      ['a signature by another key in the same vault', 'other'],
      ['a signature over another wrapped key', 'copied'],
      ['a signature with one bit flipped', 'flipped'],
    ] as const)('refuses %s as bad-attestation, without calling unwrapKey', async (_what, how) => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const genuine = await keyRing.generateDataKey();
      const other = await keyRing.generateDataKey();
      let attestation: DataKeyAttestation | undefined;
      if (how === 'other') {
        const rogue = await vault.createKey(`rogue-${keyCount}`, { kty: 'EC' });
        const digest = attestationDigest('azure-keyvault', genuine.keyId, rogue.id, genuine.wrapped);
        const { result } = await new CryptographyClient(rogue.id, fixedCredential, clientOptions).sign(
          'ES256',
          digest,
        );
        attestation = { signingKeyId: rogue.id, signature: result };
      } else if (how === 'copied') {
        attestation = other.attestation;
      } else if (how === 'flipped') {
        const signature = Buffer.from(genuine.attestation!.signature);
        signature[10] ^= 0x01;
        attestation = { signingKeyId: signingVersionId, signature };
      } else {
        attestation = how();
      }
      vault.counters.reset();

      const error = await keyServiceError(
        keyRing.unwrapDataKey(genuine.wrapped, genuine.keyId, attestation ? { attestation } : {}),
      );

      expect(error).toMatchObject({ reason: KeyServiceFailure.BadAttestation, operation: 'unwrap' });
      expect(vault.counters.calls('unwrapKey')).toBe(0);
    });

    it('stops trusting a disabled signing key version once its cached public half expires', async () => {
      const key = await newKey();
      const signer = await vault.createKey(`signer-${keyCount}`, { kty: 'EC' });
      const keyRing = ring(unversioned(key.name), {
        signingKeyId: `${vault.vaultUrl}/keys/${signer.name}`,
        currentVersionTtlMs: 0,
      });
      const dataKey = await keyRing.generateDataKey();
      vault.disableKey(signer.name, signer.version);

      const error = await keyServiceError(
        keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation }),
      );

      expect(error).toMatchObject({ reason: KeyServiceFailure.Disabled, operation: 'unwrap' });
    });
  });

  describe('rotation', () => {
    it('opens data keys wrapped before a rotation, and wraps new ones with the new version', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name), { currentVersionTtlMs: 0 });
      const before = await keyRing.generateDataKey();

      const rotated = await vault.rotateKey(key.name);
      const after = await keyRing.generateDataKey();
      const oldOpened = await keyRing.unwrapDataKey(before.wrapped, before.keyId, {
        attestation: before.attestation,
      });
      const newOpened = await keyRing.unwrapDataKey(after.wrapped, after.keyId, {
        attestation: after.attestation,
      });

      expect(before.keyId).toBe(key.id);
      expect(after.keyId).toBe(rotated.id);
      expect(Buffer.from(oldOpened).equals(Buffer.from(before.plaintext))).toBe(true);
      expect(Buffer.from(newOpened).equals(Buffer.from(after.plaintext))).toBe(true);
    });

    it('keeps using the cached version until the cache expires', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name), { currentVersionTtlMs: 3_600_000 });
      await keyRing.generateDataKey();

      await expectWrapsWithAfterRotation(keyRing, key);
    });
  });

  describe('clock (now)', () => {
    it('ages the cached current version on the clock it is given', async () => {
      const key = await newKey();
      let now = 1_000_000;
      const keyRing = ring(unversioned(key.name), { currentVersionTtlMs: 60_000, now: () => now });
      const first = await keyRing.generateDataKey();
      const rotated = await vault.rotateKey(key.name);

      now += 59_999;
      const cached = await keyRing.generateDataKey();
      now += 2;
      const fresh = await keyRing.generateDataKey();

      expect([first.keyId, cached.keyId, fresh.keyId]).toEqual([key.id, key.id, rotated.id]);
    });
  });

  describe('a ready KeyClient (client)', () => {
    const keyClient = () => new KeyClient(vault.vaultUrl, fixedCredential, { ...clientOptions });
    const withClient = (keyId: string, client: KeyClient = keyClient()) =>
      new KeyVaultKeyRing({ keyId, signingKeyId, client });

    it('wraps, attests and opens through the client', async () => {
      const key = await newKey();
      const keyRing = withClient(unversioned(key.name));

      const dataKey = await keyRing.generateDataKey();
      const opened = await withClient(unversioned(key.name)).unwrapDataKey(dataKey.wrapped, dataKey.keyId, {
        attestation: dataKey.attestation,
      });

      expect(dataKey.keyId).toBe(key.id);
      expect(dataKey.attestation?.signingKeyId).toBe(signingVersionId);
      expect(Buffer.from(opened).equals(Buffer.from(dataKey.plaintext))).toBe(true);
      expect(vault.counters.calls('wrapKey')).toBe(1);
      expect(vault.counters.calls('unwrapKey')).toBe(1);
    });

    it('refuses client together with credential or cryptographyClientOptions', () => {
      const both = {
        keyId: unversioned('k'),
        signingKeyId,
        client: keyClient(),
        credential: fixedCredential,
      };
      // @ts-expect-error -- the options type allows a client or a credential, not both
      const build = () => new KeyVaultKeyRing(both);

      expect(build).toThrow(ConfigurationError);
      expect(build).toThrow(/^client: received both client and credential; pass exactly one/);
      const tuned = {
        keyId: unversioned('k'),
        signingKeyId,
        client: keyClient(),
        cryptographyClientOptions: {},
      };
      // @ts-expect-error -- cryptographyClientOptions shape only the clients the ring builds
      expect(() => new KeyVaultKeyRing(tuned)).toThrow(
        /^cryptographyClientOptions: applies only to a client built from credential/,
      );
    });

    it('refuses a client of another vault than keyId names', () => {
      const build = () => withClient('https://other-vault.vault.azure.net/keys/k');

      expect(build).toThrow(
        /^keyId: names the vault https:\/\/other-vault.vault.azure.net, but client is for/,
      );
    });
  });

  describe('trusting the local CA', () => {
    it('works through an https.Agent with the CA instead of tlsOptions', async () => {
      const key = await newKey();
      const agent = new Agent({ ca: vault.ca, keepAlive: true });
      try {
        const keyRing = ring(unversioned(key.name), {
          cryptographyClientOptions: {
            agent,
            disableChallengeResourceVerification: true,
            retryOptions: { maxRetries: 0 },
          },
        });

        const dataKey = await keyRing.generateDataKey();
        const plaintext = await keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, {
          attestation: dataKey.attestation,
        });

        expect(Buffer.from(plaintext).equals(Buffer.from(dataKey.plaintext))).toBe(true);
      } finally {
        agent.destroy();
      }
    });

    it('fails as unavailable, naming the TLS error, when the CA is not trusted', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name), {
        cryptographyClientOptions: {
          disableChallengeResourceVerification: true,
          retryOptions: { maxRetries: 0 },
        },
      });

      const error = await keyServiceError(keyRing.generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unavailable);
      expect(error.message).toMatch(/SELF_SIGNED|CERT/);
    });

    it('fails when the challenge resource is verified against a localhost vault', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name), {
        cryptographyClientOptions: { tlsOptions: { ca: vault.ca }, retryOptions: { maxRetries: 0 } },
      });

      const error = await keyServiceError(keyRing.generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unknown);
      expect((error.cause as Error).message).toMatch(/disableChallengeResourceVerification/);
    });
  });

  describe('error mapping', () => {
    it('not-found: the key does not exist (generate) or the version does not (unwrap)', async () => {
      const key = await newKey();
      const missingKey = ring(unversioned('no-such-key'));
      const keyRing = ring(unversioned(key.name));

      const generate = await keyServiceError(missingKey.generateDataKey());
      const missingVersion = `${unversioned(key.name)}/${'0'.repeat(32)}`;
      const wrapped = randomBytes(256);
      const unwrap = await keyServiceError(
        keyRing.unwrapDataKey(wrapped, missingVersion, await attest(wrapped, missingVersion)),
      );

      expect(generate).toMatchObject({ reason: KeyServiceFailure.NotFound, operation: 'generate' });
      expect(unwrap).toMatchObject({ reason: KeyServiceFailure.NotFound, operation: 'unwrap' });
      expect(generate.message).toMatch(/404 KeyNotFound/);
    });

    it('disabled: unwrapping with a disabled version', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const dataKey = await keyRing.generateDataKey();
      vault.disableKey(key.name, key.version);

      const error = await keyServiceError(
        keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation }),
      );

      expect(error).toMatchObject({ reason: KeyServiceFailure.Disabled, operation: 'unwrap' });
      expect(error.message).toMatch(/403 Forbidden\/KeyDisabled/);
    });

    it('disabled: the current version is disabled, so nothing is wrapped that could not be opened', async () => {
      const key = await newKey();
      vault.disableKey(key.name);

      const error = await keyServiceError(ring(unversioned(key.name)).generateDataKey());

      expect(error).toMatchObject({ reason: KeyServiceFailure.Disabled, operation: 'generate' });
      expect(vault.counters.calls('wrapKey')).toBe(0);
    });

    it('access-denied: 403 without the permission, on generate and unwrap', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const dataKey = await keyRing.generateDataKey();
      vault.setFault({ status: 403, ops: ['wrapKey', 'unwrapKey'] });

      const generate = await keyServiceError(keyRing.generateDataKey());
      const unwrap = await keyServiceError(
        keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation }),
      );

      expect(generate).toMatchObject({ reason: KeyServiceFailure.AccessDenied, operation: 'generate' });
      expect(unwrap).toMatchObject({ reason: KeyServiceFailure.AccessDenied, operation: 'unwrap' });
      expect(unwrap.message).toMatch(/ForbiddenByPolicy/);
    });

    it('access-denied: the vault refuses the bearer (401)', async () => {
      const strict = await startLocalKeyVault({ certificate, verifyToken: async () => false });
      try {
        const key = await strict.createKey('refused');
        const keyRing = ring(unversioned(key.name, strict), {
          cryptographyClientOptions: { ...clientOptions, tlsOptions: { ca: strict.ca } },
        });

        const error = await keyServiceError(keyRing.generateDataKey());

        expect(error.reason).toBe(KeyServiceFailure.AccessDenied);
        expect(error.message).toMatch(/401/);
        expect(error.message).not.toContain(BEARER);
      } finally {
        await strict.stop();
      }
    });

    it('access-denied: the credential cannot get a token', async () => {
      const key = await newKey();
      const failing: TokenCredential = {
        async getToken() {
          throw Object.assign(new Error('no managed identity endpoint'), {
            name: 'CredentialUnavailableError',
          });
        },
      };

      const error = await keyServiceError(
        ring(unversioned(key.name), { credential: failing }).generateDataKey(),
      );

      expect(error.reason).toBe(KeyServiceFailure.AccessDenied);
      expect(error.cause).toMatchObject({ name: 'CredentialUnavailableError' });
    });

    it('throttled: 429', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const dataKey = await keyRing.generateDataKey();
      vault.setFault({ status: 429, ops: ['unwrapKey'] });

      const error = await keyServiceError(
        keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId, { attestation: dataKey.attestation }),
      );

      expect(error.reason).toBe(KeyServiceFailure.Throttled);
    });

    it.each([503, 500] as const)('unavailable: %i', async (status) => {
      const key = await newKey();
      vault.setFault({ status, ops: ['getKey'] });

      const error = await keyServiceError(ring(unversioned(key.name)).generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unavailable);
      expect(error.message).toMatch(String(status));
    });

    it('unavailable: nothing listens on the vault address', async () => {
      const gone = await startLocalKeyVault({ certificate });
      const keyId = unversioned('any-key', gone);
      await gone.stop();

      const error = await keyServiceError(ring(keyId).generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unavailable);
    });

    it('invalid-ciphertext: a wrapped key the version cannot decrypt', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name));
      const dataKey = await keyRing.generateDataKey();
      const tampered = Buffer.from(dataKey.wrapped);
      tampered[0] = (tampered[0] ?? 0) ^ 0x01;

      const error = await keyServiceError(
        keyRing.unwrapDataKey(tampered, dataKey.keyId, await attest(tampered, dataKey.keyId)),
      );

      expect(error).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext, operation: 'unwrap' });
      expect(error.message).not.toContain(tampered.toString('base64url').slice(0, 16));
    });

    it('unknown: any other refusal (here an api-version the service does not know)', async () => {
      const key = await newKey();
      const keyRing = ring(unversioned(key.name), {
        cryptographyClientOptions: { ...clientOptions, serviceVersion: '1999-01-01-banana' },
      });

      const error = await keyServiceError(keyRing.generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unknown);
      expect(error.message).toMatch(/400 BadParameter/);
    });

    it('keeps the SDK error as cause', async () => {
      const key = await newKey();
      vault.setFault({ status: 503 });

      const error = await keyServiceError(ring(unversioned(key.name)).generateDataKey());

      expect(error.cause).toMatchObject({ name: 'RestError', statusCode: 503 });
      expect(error.code).toBe('KEY_SERVICE');
      expect(error.keyRing).toBe('azure-keyvault');
    });
  });
});

runKeyRingContract(
  'KeyVaultKeyRing (local Key Vault)',
  { bindsPartitionKind: false, remote: true },
  async () => {
    const certificate = await createDevCertificate();
    const vaults = [
      await startLocalKeyVault({ certificate }),
      await startLocalKeyVault({ certificate }),
    ] as const;
    const gone = await startLocalKeyVault({ certificate });
    const ringOn = async (vault: LocalKeyVault, wrapping = 'contract-wrap'): Promise<KeyVaultKeyRing> => {
      const key = await vault.createKey(wrapping);
      const signing = await vault.createKey(`${wrapping}-signing`, { kty: 'EC' });
      return localVaultKeyRing(vault, { wrap: key, sign: signing }, fixedCredential);
    };
    const ring = await ringOn(vaults[0]);
    const foreign = await ringOn(vaults[1]);
    const unreachable = await ringOn(gone);
    const dataKey = await unreachable.generateDataKey();
    await gone.stop();
    return {
      ring,
      foreign,
      unreachable: { ring: unreachable, dataKey },
      async teardown() {
        for (const vault of vaults) await vault.stop();
      },
    };
  },
);
