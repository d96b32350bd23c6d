/**
 * KmsKeyRing against the local KMS through the real @aws-sdk/client-kms: round trips, the
 * encryption context binding the app, rotation and alias moves, and every error mapping,
 * driven by the server's key states and fault switches.
 */
import {
  DecryptCommand,
  DisableKeyCommand,
  KMSClient,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startLocalKms, type LocalKmsFault } from '../../local/kms';
import { KmsKeyRing, kmsEncryptionContext } from '../../shared/aws/kms-keyring';
import { ConfigurationError, KeyServiceFailure } from '../../shared/errors';
import { runKeyRingContract } from '../contract/keyring-contract';
import { keyServiceError } from '../support/expect-errors';
import { useDestroyables, useWorld } from '../support/use-world';

describe('KmsKeyRing', () => {
  const destroyAfterAll = useDestroyables();
  const kms = useWorld(startLocalKms);
  let admin: KMSClient;
  /** One attempt per call: each fault is seen by exactly one request. */
  let noRetries: KMSClientConfig;

  beforeAll(() => {
    admin = destroyAfterAll(new KMSClient({ ...kms.clientConfig, maxAttempts: 1 }));
    noRetries = { ...kms.clientConfig, maxAttempts: 1 };
  });

  beforeEach(() => {
    kms.setFault(undefined);
    kms.counters.reset();
  });

  const ring = (
    keyId: string,
    options: {
      clientId?: string;
      timeoutMs?: number;
      budgetMs?: number;
      clientConfig?: KMSClientConfig;
    } = {},
  ): KmsKeyRing => {
    const created = new KmsKeyRing({
      keyId,
      clientId: options.clientId ?? 'app-1',
      clientConfig: options.clientConfig ?? noRetries,
      timeoutMs: options.timeoutMs,
      budgetMs: options.budgetMs,
    });
    return destroyAfterAll(created);
  };

  describe('constructor', () => {
    it('is named aws-kms and makes no request', async () => {
      const { keyId } = await kms.createKey();

      const keyRing = ring(keyId);

      expect(keyRing.name).toBe('aws-kms');
      expect(kms.counters.calls()).toBe(0);
    });

    it.each([
      ['keyId', { keyId: '', clientId: 'app-1' }],
      ['keyId', { keyId: '   ', clientId: 'app-1' }],
      ['clientId', { keyId: 'alias/k', clientId: '' }],
      ['timeoutMs', { keyId: 'alias/k', clientId: 'app-1', timeoutMs: 0 }],
      ['timeoutMs', { keyId: 'alias/k', clientId: 'app-1', timeoutMs: 1.5 }],
      ['budgetMs', { keyId: 'alias/k', clientId: 'app-1', budgetMs: 0 }],
      ['budgetMs', { keyId: 'alias/k', clientId: 'app-1', budgetMs: 1.5 }],
      ['budgetMs', { keyId: 'alias/k', clientId: 'app-1', budgetMs: 100, timeoutMs: 100 }],
    ])('rejects a bad %s (%j) with a ConfigurationError naming it', (setting, partial) => {
      const construct = () => new KmsKeyRing({ ...partial, clientConfig: noRetries });

      expect(construct).toThrow(ConfigurationError);
      expect(construct).toThrow(expect.objectContaining({ setting }) as Error);
    });

    it('rejects both client and clientConfig', () => {
      const both = { keyId: 'alias/k', clientId: 'app-1', client: admin, clientConfig: noRetries };
      // @ts-expect-error -- the options type allows only one of client and clientConfig
      const construct = () => new KmsKeyRing(both);

      expect(construct).toThrow(ConfigurationError);
      expect(construct).toThrow(
        /^client: received both client and clientConfig; pass exactly one: a ready KMSClient/,
      );
    });

    it('rejects neither client nor clientConfig', () => {
      // @ts-expect-error -- the options type requires one of client and clientConfig
      const construct = () => new KmsKeyRing({ keyId: 'alias/k', clientId: 'app-1' });

      expect(construct).toThrow(expect.objectContaining({ setting: 'clientConfig' }) as Error);
      expect(construct).toThrow(/^clientConfig: received neither client nor clientConfig; pass exactly one/);
    });
  });

  describe('generateDataKey and unwrapDataKey', () => {
    it('round-trips a 32-byte data key and records the key ARN', async () => {
      const { arn } = await kms.createKey();
      const keyRing = ring(arn);

      const dataKey = await keyRing.generateDataKey();
      const unwrapped = await keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId);

      expect(dataKey.plaintext).toHaveLength(32);
      expect(dataKey.keyId).toBe(arn);
      expect(Buffer.from(unwrapped).equals(Buffer.from(dataKey.plaintext))).toBe(true);
      expect(kms.counters.calls('GenerateDataKey')).toBe(1);
      expect(kms.counters.calls('Decrypt')).toBe(1);
    });

    it.each<[string, (key: { keyId: string; alias: string }) => string]>([
      ['key id', ({ keyId }) => keyId],
      ['alias name', ({ alias }) => alias],
      ['alias ARN', ({ alias }) => `arn:aws:kms:${kms.region}:${kms.accountId}:${alias}`],
    ])('records the key ARN when configured by %s', async (form, configured) => {
      const alias = `alias/form-${form.replaceAll(' ', '-')}`;
      const { keyId, arn } = await kms.createKey({ alias });
      const keyRing = ring(configured({ keyId, alias }));

      const dataKey = await keyRing.generateDataKey();

      expect(dataKey.keyId).toBe(arn);
      expect(await keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId)).toEqual(dataKey.plaintext);
    });

    it("binds the data key to the encryption context { purpose: 'msal-token-cache', app: clientId }", async () => {
      const { arn } = await kms.createKey();
      const dataKey = await ring(arn, { clientId: 'app-ctx' }).generateDataKey();

      const out = await admin.send(
        new DecryptCommand({
          CiphertextBlob: dataKey.wrapped,
          EncryptionContext: { purpose: 'msal-token-cache', app: 'app-ctx' },
        }),
      );

      expect(kmsEncryptionContext('app-ctx')).toEqual({ purpose: 'msal-token-cache', app: 'app-ctx' });
      expect(Buffer.from(out.Plaintext!).equals(Buffer.from(dataKey.plaintext))).toBe(true);
    });

    it('accepts a ready client and leaves it open on destroy', async () => {
      const { arn } = await kms.createKey();
      const client = new KMSClient(noRetries);
      const keyRing = new KmsKeyRing({ keyId: arn, clientId: 'app-1', client });

      const dataKey = await keyRing.generateDataKey();
      keyRing.destroy();
      const unwrapped = await new KmsKeyRing({ keyId: arn, clientId: 'app-1', client }).unwrapDataKey(
        dataKey.wrapped,
        dataKey.keyId,
      );
      client.destroy();

      expect(unwrapped).toEqual(dataKey.plaintext);
    });
  });

  describe('isolation between apps', () => {
    it("a ring for another clientId cannot unwrap this app's data key (invalid-ciphertext)", async () => {
      const { arn } = await kms.createKey();
      const dataKey = await ring(arn, { clientId: 'app-a' }).generateDataKey();

      const error = await keyServiceError(
        ring(arn, { clientId: 'app-b' }).unwrapDataKey(dataKey.wrapped, dataKey.keyId),
      );

      expect(error.reason).toBe(KeyServiceFailure.InvalidCiphertext);
      expect(error.operation).toBe('unwrap');
      expect(error.cause).toMatchObject({ name: 'InvalidCiphertextException' });
    });
  });

  describe('rotation', () => {
    it('data keys wrapped before RotateKeyOnDemand still unwrap; new ones use the new material', async () => {
      const { keyId, arn } = await kms.createKey();
      const keyRing = ring(keyId);
      const before = await keyRing.generateDataKey();

      await admin.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      const after = await keyRing.generateDataKey();
      const direct = (wrapped: Uint8Array) =>
        admin.send(
          new DecryptCommand({ CiphertextBlob: wrapped, EncryptionContext: kmsEncryptionContext('app-1') }),
        );

      expect(after.keyId).toBe(arn);
      expect(await keyRing.unwrapDataKey(before.wrapped, before.keyId)).toEqual(before.plaintext);
      expect(await keyRing.unwrapDataKey(after.wrapped, after.keyId)).toEqual(after.plaintext);
      expect((await direct(after.wrapped)).KeyMaterialId).not.toBe(
        (await direct(before.wrapped)).KeyMaterialId,
      );
    });

    it('after an alias moves to a new key, old data keys unwrap with the key ARN they recorded', async () => {
      const first = await kms.createKey({ alias: 'alias/moving-ring' });
      const second = await kms.createKey();
      const keyRing = ring('alias/moving-ring');
      const before = await keyRing.generateDataKey();

      await admin.send(new UpdateAliasCommand({ AliasName: 'alias/moving-ring', TargetKeyId: second.keyId }));
      const after = await keyRing.generateDataKey();

      expect(before.keyId).toBe(first.arn);
      expect(after.keyId).toBe(second.arn);
      expect(await keyRing.unwrapDataKey(before.wrapped, before.keyId)).toEqual(before.plaintext);
      expect(await keyRing.unwrapDataKey(after.wrapped, after.keyId)).toEqual(after.plaintext);
    });
  });

  describe('error mapping', () => {
    /** A key and a data key made under it, for the unwrap cases. */
    const prepared = async () => {
      const key = await kms.createKey();
      const keyRing = ring(key.arn);
      const dataKey = await keyRing.generateDataKey();
      kms.counters.reset();
      return { ...key, keyRing, dataKey };
    };

    it('an unknown key is not-found (generate and unwrap)', async () => {
      const missing = `arn:aws:kms:${kms.region}:${kms.accountId}:key/00000000-0000-0000-0000-000000000000`;
      const { dataKey } = await prepared();

      const generate = await keyServiceError(ring(missing).generateDataKey());
      const unwrap = await keyServiceError(ring(missing).unwrapDataKey(dataKey.wrapped, missing));

      expect([generate.reason, unwrap.reason]).toEqual([
        KeyServiceFailure.NotFound,
        KeyServiceFailure.NotFound,
      ]);
      expect(generate.operation).toBe('generate');
      expect(generate.cause).toMatchObject({ name: 'NotFoundException' });
      expect(generate.message).toContain(missing);
    });

    it.each([
      {
        name: 'a disabled key is disabled (DisabledException)',
        revoke: (KeyId: string) => admin.send(new DisableKeyCommand({ KeyId })),
        failing: 'unwrap',
        cause: 'DisabledException',
      },
      {
        name: 'a key pending deletion is disabled (KMSInvalidStateException)',
        revoke: (KeyId: string) =>
          admin.send(new ScheduleKeyDeletionCommand({ KeyId, PendingWindowInDays: 7 })),
        failing: 'generate',
        cause: 'KMSInvalidStateException',
      },
    ] as const)('$name', async ({ revoke, failing, cause }) => {
      const { keyId, keyRing, dataKey } = await prepared();
      await revoke(keyId);

      const generate = await keyServiceError(keyRing.generateDataKey());
      const unwrap = await keyServiceError(keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId));

      expect([generate.reason, unwrap.reason]).toEqual([
        KeyServiceFailure.Disabled,
        KeyServiceFailure.Disabled,
      ]);
      expect({ generate, unwrap }[failing].cause).toMatchObject({ name: cause });
    });

    it('a data key recorded under another key is invalid-ciphertext (IncorrectKeyException)', async () => {
      const { keyRing, dataKey } = await prepared();
      const other = await kms.createKey();

      const error = await keyServiceError(keyRing.unwrapDataKey(dataKey.wrapped, other.arn));

      expect(error.reason).toBe(KeyServiceFailure.InvalidCiphertext);
      expect(error.cause).toMatchObject({ name: 'IncorrectKeyException' });
    });

    it('an altered wrapped key is invalid-ciphertext (InvalidCiphertextException)', async () => {
      const { keyRing, dataKey } = await prepared();
      const altered = Uint8Array.from(dataKey.wrapped);
      altered[altered.length - 1] ^= 0xff;

      const error = await keyServiceError(keyRing.unwrapDataKey(altered, dataKey.keyId));

      expect(error.reason).toBe(KeyServiceFailure.InvalidCiphertext);
      expect(error.cause).toMatchObject({ name: 'InvalidCiphertextException' });
    });

    it('an envelope without a key id or wrapped key is invalid-ciphertext without a KMS call', async () => {
      const { keyRing, dataKey } = await prepared();

      const noKeyId = await keyServiceError(keyRing.unwrapDataKey(dataKey.wrapped, ''));
      const noWrapped = await keyServiceError(keyRing.unwrapDataKey(new Uint8Array(0), dataKey.keyId));

      expect([noKeyId.reason, noWrapped.reason]).toEqual([
        KeyServiceFailure.InvalidCiphertext,
        KeyServiceFailure.InvalidCiphertext,
      ]);
      expect(kms.counters.calls()).toBe(0);
    });

    it.each<[string, LocalKmsFault, KeyServiceFailure, Record<string, unknown>]>([
      [
        'access-denied',
        { kind: 'access-denied' },
        KeyServiceFailure.AccessDenied,
        { name: 'AccessDeniedException' },
      ],
      ['throttle', { kind: 'throttle' }, KeyServiceFailure.Throttled, { name: 'ThrottlingException' }],
      [
        'LimitExceededException',
        { kind: 'error', type: 'LimitExceededException' },
        KeyServiceFailure.Throttled,
        { name: 'LimitExceededException' },
      ],
      [
        'unavailable (503)',
        { kind: 'unavailable' },
        KeyServiceFailure.Unavailable,
        { $metadata: { httpStatusCode: 503 } },
      ],
      [
        'KMSInternalException (500)',
        { kind: 'error', type: 'KMSInternalException', status: 500 },
        KeyServiceFailure.Unavailable,
        { name: 'KMSInternalException' },
      ],
      [
        'an unexpected 400',
        { kind: 'error', type: 'ValidationException' },
        KeyServiceFailure.Unknown,
        { name: 'ValidationException' },
      ],
    ])(
      'fault %s maps to its reason for generate and unwrap, keeping the cause',
      async (_label, fault, reason, cause) => {
        const { keyRing, dataKey } = await prepared();
        kms.setFault(fault);

        const generate = await keyServiceError(keyRing.generateDataKey());
        const unwrap = await keyServiceError(keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId));

        expect([generate.reason, unwrap.reason]).toEqual([reason, reason]);
        expect(generate.cause).toMatchObject(cause);
        expect(unwrap.cause).toMatchObject(cause);
        expect(generate.message).toContain(`(${reason})`);
      },
    );

    it.each([
      ['budgetMs', { budgetMs: 150 }, 150],
      ['timeoutMs, its deprecated name,', { timeoutMs: 100 }, 100],
    ] as const)('no answer within %s is unavailable', async (_name, budget, ms) => {
      const { arn, dataKey } = await prepared();
      const keyRing = ring(arn, budget);
      kms.setFault({ kind: 'hang' });

      const generate = await keyServiceError(keyRing.generateDataKey());
      const unwrap = await keyServiceError(keyRing.unwrapDataKey(dataKey.wrapped, dataKey.keyId));

      expect([generate.reason, unwrap.reason]).toEqual([
        KeyServiceFailure.Unavailable,
        KeyServiceFailure.Unavailable,
      ]);
      expect(generate.message).toContain(`no answer within ${ms} ms`);
      expect(generate.cause).toMatchObject({ name: 'AbortError' });
    });

    it("the SDK's own request timeout is unavailable too", async () => {
      const { arn } = await kms.createKey();
      const keyRing = ring(arn, {
        clientConfig: {
          ...noRetries,
          requestHandler: new NodeHttpHandler({ requestTimeout: 100, throwOnRequestTimeout: true }),
        },
      });
      kms.setFault({ kind: 'hang' });

      const error = await keyServiceError(keyRing.generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unavailable);
      expect(error.cause).toMatchObject({ name: 'TimeoutError' });
    });

    it('a key service that cannot be reached is unavailable', async () => {
      const gone = await startLocalKms();
      const { arn } = await gone.createKey();
      const keyRing = ring(arn, { clientConfig: { ...gone.clientConfig, maxAttempts: 1 } });
      await gone.stop();

      const error = await keyServiceError(keyRing.generateDataKey());

      expect(error.reason).toBe(KeyServiceFailure.Unavailable);
      expect(error.cause).toBeDefined();
    });

    it('a transient fault the SDK retries away is not an error', async () => {
      const { arn } = await kms.createKey();
      const keyRing = ring(arn, { clientConfig: kms.clientConfig });
      kms.setFault({ kind: 'unavailable', count: 1 });

      const dataKey = await keyRing.generateDataKey();

      expect(dataKey.plaintext).toHaveLength(32);
      expect(kms.counters.calls('GenerateDataKey')).toBe(2);
    });
  });
});

runKeyRingContract('KmsKeyRing (local KMS)', { bindsPartitionKind: true, remote: true }, async () => {
  const kms = await startLocalKms();
  const gone = await startLocalKms();
  const config: KMSClientConfig = { ...kms.clientConfig, maxAttempts: 1 };
  const ours = await kms.createKey();
  const theirs = await kms.createKey();
  const unreachableKey = await gone.createKey();
  const rings = [
    new KmsKeyRing({ keyId: ours.arn, clientId: 'app-1', clientConfig: config }),
    new KmsKeyRing({ keyId: theirs.arn, clientId: 'app-2', clientConfig: config }),
    new KmsKeyRing({
      keyId: unreachableKey.arn,
      clientId: 'app-1',
      clientConfig: { ...gone.clientConfig, maxAttempts: 1 },
    }),
  ] as const;
  const dataKey = await rings[2].generateDataKey({ partitionKind: 'app' });
  await gone.stop();
  return {
    ring: rings[0],
    foreign: rings[1],
    unreachable: { ring: rings[2], dataKey },
    async teardown() {
      for (const r of rings) r.destroy();
      await kms.stop();
    },
  };
});
