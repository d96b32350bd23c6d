/**
 * The local KMS driven by the real @aws-sdk/client-kms: each operation, the encryption
 * context as AAD, rotation, key states, alias resolution, counters and fault switches.
 */
import {
  AlreadyExistsException,
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GetKeyRotationStatusCommand,
  IncorrectKeyException,
  InvalidAliasNameException,
  InvalidCiphertextException,
  KMSClient,
  KMSInvalidStateException,
  LimitExceededException,
  ListAliasesCommand,
  NotFoundException,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { useAwsEmulator } from './aws-emulator';

const context = { purpose: 'test', app: 'app-1' };

describe('startLocalKms', () => {
  let kms: LocalKms;
  let client: KMSClient;

  useAwsEmulator(startLocalKms, 'eu-west-1', KMSClient, (started) => ([kms, client] = started));

  afterEach(() => kms.setFault(undefined));

  describe('CreateKey and DescribeKey', () => {
    it('creates an enabled symmetric key with an ARN in the configured region', async () => {
      const created = await client.send(new CreateKeyCommand({ Description: 'token cache' }));

      const meta = created.KeyMetadata!;
      expect(meta.Arn).toBe(`arn:aws:kms:eu-west-1:000000000000:key/${meta.KeyId}`);
      expect(meta).toMatchObject({
        Description: 'token cache',
        Enabled: true,
        KeyState: 'Enabled',
        KeyUsage: 'ENCRYPT_DECRYPT',
        KeySpec: 'SYMMETRIC_DEFAULT',
      });
      expect(meta.CreationDate).toBeInstanceOf(Date);
      const described = await client.send(new DescribeKeyCommand({ KeyId: meta.KeyId }));
      expect(described.KeyMetadata).toEqual(meta);
    });

    it('refuses key types it cannot emulate', async () => {
      await expect(
        client.send(new CreateKeyCommand({ KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' })),
      ).rejects.toMatchObject({ name: 'UnsupportedOperationException' });
    });

    it('answers NotFoundException for an unknown key', async () => {
      await expect(
        client.send(new DescribeKeyCommand({ KeyId: '00000000-0000-0000-0000-000000000000' })),
      ).rejects.toBeInstanceOf(NotFoundException);
    });

    it('resolves a key by key id, key ARN, alias name and alias ARN', async () => {
      const { keyId, arn } = await kms.createKey({ alias: 'alias/resolve-me' });

      for (const id of [
        keyId,
        arn,
        'alias/resolve-me',
        `arn:aws:kms:eu-west-1:000000000000:alias/resolve-me`,
      ]) {
        const { KeyMetadata } = await client.send(new DescribeKeyCommand({ KeyId: id }));
        expect(KeyMetadata?.Arn).toBe(arn);
      }
    });

    it('does not resolve an ARN of another region or account', async () => {
      const { keyId } = await kms.createKey({ alias: 'alias/elsewhere' });

      for (const id of [
        `arn:aws:kms:us-east-1:000000000000:key/${keyId}`,
        `arn:aws:kms:eu-west-1:111122223333:key/${keyId}`,
        'arn:aws:kms:us-east-1:000000000000:alias/elsewhere',
      ]) {
        await expect(client.send(new DescribeKeyCommand({ KeyId: id }))).rejects.toBeInstanceOf(
          NotFoundException,
        );
      }
    });
  });

  describe('CreateAlias, UpdateAlias and ListAliases', () => {
    it('creates, lists and retargets an alias', async () => {
      const first = await kms.createKey();
      const second = await kms.createKey();

      await client.send(new CreateAliasCommand({ AliasName: 'alias/moving', TargetKeyId: first.keyId }));
      const listed = await client.send(new ListAliasesCommand({ KeyId: first.keyId }));
      await client.send(new UpdateAliasCommand({ AliasName: 'alias/moving', TargetKeyId: second.arn }));
      const resolved = await client.send(new DescribeKeyCommand({ KeyId: 'alias/moving' }));

      expect(listed.Aliases).toEqual([
        expect.objectContaining({
          AliasName: 'alias/moving',
          AliasArn: 'arn:aws:kms:eu-west-1:000000000000:alias/moving',
          TargetKeyId: first.keyId,
        }),
      ]);
      expect(resolved.KeyMetadata?.KeyId).toBe(second.keyId);
    });

    it('pages through aliases with Limit and NextMarker', async () => {
      const { keyId } = await kms.createKey();
      for (const n of [1, 2, 3]) {
        await client.send(new CreateAliasCommand({ AliasName: `alias/page-${n}`, TargetKeyId: keyId }));
      }

      const page1 = await client.send(new ListAliasesCommand({ KeyId: keyId, Limit: 2 }));
      const page2 = await client.send(
        new ListAliasesCommand({ KeyId: keyId, Limit: 2, Marker: page1.NextMarker }),
      );

      expect(page1.Truncated).toBe(true);
      expect(page2.Truncated).toBe(false);
      expect([...page1.Aliases!, ...page2.Aliases!].map((a) => a.AliasName)).toEqual([
        'alias/page-1',
        'alias/page-2',
        'alias/page-3',
      ]);
    });

    it('refuses a duplicate alias, a bad alias name and a missing target', async () => {
      const { keyId } = await kms.createKey({ alias: 'alias/taken' });

      await expect(
        client.send(new CreateAliasCommand({ AliasName: 'alias/taken', TargetKeyId: keyId })),
      ).rejects.toBeInstanceOf(AlreadyExistsException);
      await expect(
        client.send(new CreateAliasCommand({ AliasName: 'alias/aws/reserved', TargetKeyId: keyId })),
      ).rejects.toBeInstanceOf(InvalidAliasNameException);
      await expect(
        client.send(
          new CreateAliasCommand({
            AliasName: 'alias/orphan',
            TargetKeyId: '00000000-0000-0000-0000-000000000000',
          }),
        ),
      ).rejects.toBeInstanceOf(NotFoundException);
      await expect(client.send(new DescribeKeyCommand({ KeyId: 'alias/never-made' }))).rejects.toBeInstanceOf(
        NotFoundException,
      );
    });
  });

  describe('GenerateDataKey', () => {
    it('returns a 32-byte AES_256 key, its ciphertext, and the key ARN', async () => {
      const { arn } = await kms.createKey({ alias: 'alias/gdk' });

      const out = await client.send(
        new GenerateDataKeyCommand({ KeyId: 'alias/gdk', KeySpec: 'AES_256', EncryptionContext: context }),
      );
      const back = await client.send(
        new DecryptCommand({ CiphertextBlob: out.CiphertextBlob, EncryptionContext: context }),
      );

      expect(out.Plaintext).toHaveLength(32);
      expect(out.KeyId).toBe(arn);
      expect(out.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/);
      expect(Buffer.from(back.Plaintext!).equals(Buffer.from(out.Plaintext!))).toBe(true);
      expect(back.KeyId).toBe(arn);
    });

    it('honours NumberOfBytes and AES_128', async () => {
      const { keyId } = await kms.createKey();

      const bytes = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 64 }));
      const aes128 = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_128' }));

      expect(bytes.Plaintext).toHaveLength(64);
      expect(aes128.Plaintext).toHaveLength(16);
    });

    it('requires exactly one of KeySpec and NumberOfBytes', async () => {
      const { keyId } = await kms.createKey();

      await expect(client.send(new GenerateDataKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({
        name: 'ValidationException',
      });
      await expect(
        client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', NumberOfBytes: 32 })),
      ).rejects.toMatchObject({ name: 'ValidationException' });
    });

    it('makes a different key every time', async () => {
      const { keyId } = await kms.createKey();

      const a = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
      const b = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));

      expect(Buffer.from(a.Plaintext!).equals(Buffer.from(b.Plaintext!))).toBe(false);
    });
  });

  describe('Encrypt and Decrypt', () => {
    const plaintext = new TextEncoder().encode('hello, token cache');

    it('round-trips with the same encryption context, with or without KeyId', async () => {
      const { keyId, arn } = await kms.createKey({ alias: 'alias/round-trip' });

      const enc = await client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
      );
      const withoutKeyId = await client.send(
        new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context }),
      );
      const viaAlias = await client.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: context,
          KeyId: 'alias/round-trip',
        }),
      );

      expect(enc.KeyId).toBe(arn);
      expect(enc.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
      expect(new TextDecoder().decode(withoutKeyId.Plaintext)).toBe('hello, token cache');
      expect(new TextDecoder().decode(viaAlias.Plaintext)).toBe('hello, token cache');
    });

    it('binds the encryption context: a different, extra or missing context fails', async () => {
      const { keyId } = await kms.createKey();
      const enc = await client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
      );

      for (const other of [{ ...context, app: 'app-2' }, { ...context, extra: 'x' }, undefined]) {
        await expect(
          client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: other })),
        ).rejects.toBeInstanceOf(InvalidCiphertextException);
      }
    });

    it('does not depend on the order of the encryption context', async () => {
      const { keyId } = await kms.createKey();
      const enc = await client.send(
        new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: { a: '1', b: '2' } }),
      );

      const dec = await client.send(
        new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { b: '2', a: '1' } }),
      );

      expect(new TextDecoder().decode(dec.Plaintext)).toBe('hello, token cache');
    });

    it('rejects a tampered or truncated ciphertext', async () => {
      const { keyId } = await kms.createKey();
      const enc = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext }));
      const blob = Buffer.from(enc.CiphertextBlob!);

      const flipped = Buffer.from(blob);
      flipped[flipped.length - 1] ^= 0x01;
      const otherVersion = Buffer.from(blob);
      otherVersion.writeUInt32BE(7, 17);

      for (const bad of [flipped, blob.subarray(0, 30), otherVersion]) {
        await expect(client.send(new DecryptCommand({ CiphertextBlob: bad }))).rejects.toBeInstanceOf(
          InvalidCiphertextException,
        );
      }
    });

    it('answers IncorrectKeyException when KeyId names another key', async () => {
      const made = await kms.createKey();
      const other = await kms.createKey();
      const enc = await client.send(new EncryptCommand({ KeyId: made.keyId, Plaintext: plaintext }));

      await expect(
        client.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: other.arn })),
      ).rejects.toBeInstanceOf(IncorrectKeyException);
    });
  });

  describe('key rotation', () => {
    it('EnableKeyRotation turns automatic rotation on', async () => {
      const { keyId, arn } = await kms.createKey();

      const before = await client.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));
      await client.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 180 }));
      const after = await client.send(new GetKeyRotationStatusCommand({ KeyId: keyId }));

      expect(before.KeyRotationEnabled).toBe(false);
      expect(after).toMatchObject({ KeyId: arn, KeyRotationEnabled: true, RotationPeriodInDays: 180 });
    });

    it('RotateKeyOnDemand: new data keys use new material, old ciphertexts still decrypt', async () => {
      const { keyId, arn } = await kms.createKey();
      const old = await client.send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      );

      const rotated = await client.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      const fresh = await client.send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      );
      const described = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
      const oldBack = await client.send(
        new DecryptCommand({ CiphertextBlob: old.CiphertextBlob, EncryptionContext: context, KeyId: arn }),
      );
      const freshBack = await client.send(
        new DecryptCommand({ CiphertextBlob: fresh.CiphertextBlob, EncryptionContext: context, KeyId: arn }),
      );

      expect(rotated.KeyId).toBe(arn);
      expect(fresh.KeyId).toBe(arn);
      expect(fresh.KeyMaterialId).not.toBe(old.KeyMaterialId);
      expect(described.KeyMetadata?.CurrentKeyMaterialId).toBe(fresh.KeyMaterialId);
      expect(oldBack.KeyMaterialId).toBe(old.KeyMaterialId);
      expect(Buffer.from(oldBack.Plaintext!).equals(Buffer.from(old.Plaintext!))).toBe(true);
      expect(freshBack.KeyMaterialId).toBe(fresh.KeyMaterialId);
      expect(Buffer.from(freshBack.Plaintext!).equals(Buffer.from(fresh.Plaintext!))).toBe(true);
    });

    it('allows ten on-demand rotations per key, like KMS', async () => {
      const { keyId } = await kms.createKey();
      for (let i = 0; i < 10; i++) await client.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));

      await expect(client.send(new RotateKeyOnDemandCommand({ KeyId: keyId }))).rejects.toBeInstanceOf(
        LimitExceededException,
      );
    });
  });

  describe('key states', () => {
    it('a disabled key refuses every cryptographic operation until enabled again', async () => {
      const { keyId } = await kms.createKey();
      const before = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array([1]) }));

      await client.send(new DisableKeyCommand({ KeyId: keyId }));
      const described = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
      const attempts = [
        client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })),
        client.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array([1]) })),
        client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob })),
      ];

      expect(described.KeyMetadata).toMatchObject({ Enabled: false, KeyState: 'Disabled' });
      for (const attempt of attempts) await expect(attempt).rejects.toBeInstanceOf(DisabledException);

      await client.send(new EnableKeyCommand({ KeyId: keyId }));
      const after = await client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }));
      expect(Array.from(after.Plaintext!)).toEqual([1]);
    });

    it('a key pending deletion answers KMSInvalidStateException; cancelling leaves it disabled', async () => {
      const { keyId, arn } = await kms.createKey();
      const before = await client.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array([2]) }));

      const scheduled = await client.send(
        new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }),
      );

      expect(scheduled).toMatchObject({ KeyId: arn, KeyState: 'PendingDeletion', PendingWindowInDays: 7 });
      expect(scheduled.DeletionDate).toBeInstanceOf(Date);
      await expect(
        client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })),
      ).rejects.toBeInstanceOf(KMSInvalidStateException);
      await expect(
        client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob })),
      ).rejects.toBeInstanceOf(KMSInvalidStateException);
      await expect(client.send(new EnableKeyCommand({ KeyId: keyId }))).rejects.toBeInstanceOf(
        KMSInvalidStateException,
      );

      await client.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
      const described = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(described.KeyMetadata?.KeyState).toBe('Disabled');
      await client.send(new EnableKeyCommand({ KeyId: keyId }));
      const after = await client.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }));
      expect(Array.from(after.Plaintext!)).toEqual([2]);
    });
  });

  describe('counters', () => {
    it('counts requests per operation and resets', async () => {
      const { keyId } = await kms.createKey();
      kms.counters.reset();

      await client.send(new DescribeKeyCommand({ KeyId: keyId }));
      await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
      await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
      const counted = { total: kms.counters.calls(), gdk: kms.counters.calls('GenerateDataKey') };
      kms.counters.reset();

      expect(counted).toEqual({ total: 3, gdk: 2 });
      expect(kms.counters.calls('Decrypt')).toBe(0);
      expect(kms.counters.calls()).toBe(0);
    });

    it('createKey is not a request', async () => {
      kms.counters.reset();

      await kms.createKey();

      expect(kms.counters.calls()).toBe(0);
    });
  });

  describe('setFault', () => {
    it('throttle answers ThrottlingException (HTTP 400) until cleared', async () => {
      const { keyId } = await kms.createKey();
      kms.setFault({ kind: 'throttle' });

      for (let i = 0; i < 3; i++) {
        await expect(client.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({
          name: 'ThrottlingException',
          $metadata: { httpStatusCode: 400 },
        });
      }
      kms.setFault(undefined);
      await expect(client.send(new DescribeKeyCommand({ KeyId: keyId }))).resolves.toBeDefined();
    });

    it('count limits how many requests fail; ops limits which', async () => {
      const { keyId } = await kms.createKey();
      kms.setFault({ kind: 'unavailable', count: 2, ops: ['GenerateDataKey'] });

      const describe1 = client.send(new DescribeKeyCommand({ KeyId: keyId }));
      await expect(describe1).resolves.toBeDefined();
      for (let i = 0; i < 2; i++) {
        await expect(
          client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })),
        ).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
      }
      await expect(
        client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' })),
      ).resolves.toBeDefined();
    });

    it('access-denied answers AccessDeniedException naming the action and key', async () => {
      const { keyId, arn } = await kms.createKey();
      kms.setFault({ kind: 'access-denied' });

      const error: unknown = await client
        .send(new DecryptCommand({ CiphertextBlob: new Uint8Array(60), KeyId: keyId }))
        .catch((e: unknown) => e);

      expect(error).toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
      expect((error as Error).message).toContain(`kms:Decrypt on resource: ${arn}`);
    });

    it('error answers any exception type with any status', async () => {
      const { keyId } = await kms.createKey();
      kms.setFault({ kind: 'error', type: 'KMSInternalException', status: 500, count: 1 });

      await expect(client.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({
        name: 'KMSInternalException',
        $metadata: { httpStatusCode: 500 },
      });
    });

    it('hang leaves the request unanswered until the client gives up', async () => {
      const { keyId } = await kms.createKey();
      kms.setFault({ kind: 'hang', count: 1 });

      await expect(
        client.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal: AbortSignal.timeout(100) }),
      ).rejects.toMatchObject({ name: 'AbortError' });
      await expect(client.send(new DescribeKeyCommand({ KeyId: keyId }))).resolves.toBeDefined();
    });

    it('a default client retries a transient fault by itself', async () => {
      const { keyId } = await kms.createKey();
      const retrying = new KMSClient(kms.clientConfig);
      kms.counters.reset();
      kms.setFault({ kind: 'unavailable', count: 1 });

      const out = await retrying.send(new DescribeKeyCommand({ KeyId: keyId }));
      retrying.destroy();

      expect(out.$metadata.attempts).toBe(2);
      expect(kms.counters.calls('DescribeKey')).toBe(2);
    });

    it('rejects a count that is not a positive integer', () => {
      expect(() => kms.setFault({ kind: 'throttle', count: 0 })).toThrow(RangeError);
    });
  });

  describe('wire protocol', () => {
    const post = (target: string, body: string) =>
      fetch(`${kms.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
        body,
      });

    it('shapes errors as {"__type", "message"} with HTTP 400 and the JSON 1.1 content type', async () => {
      const res = await post('TrentService.DescribeKey', JSON.stringify({ KeyId: 'alias/none' }));

      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1');
      expect(await res.json()).toEqual({
        __type: 'NotFoundException',
        message: 'Alias arn:aws:kms:eu-west-1:000000000000:alias/none is not found.',
      });
    });

    it('answers UnknownOperationException for an operation it does not implement', async () => {
      const res = await post('TrentService.Sign', '{}');

      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ __type: 'UnknownOperationException' });
    });

    it('answers SerializationException for a body that is not JSON', async () => {
      const res = await post('TrentService.DescribeKey', 'not json');

      expect(await res.json()).toMatchObject({ __type: 'SerializationException' });
    });

    it('answers ValidationException for a missing required member', async () => {
      const res = await post('TrentService.DescribeKey', '{}');

      expect(await res.json()).toMatchObject({ __type: 'ValidationException' });
    });
  });
});

describe('LocalKms.stop', () => {
  it('closes the port and the connections clients kept alive; a second stop is harmless', async () => {
    const kms = await startLocalKms();
    const { keyId } = await kms.createKey();
    const client = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
    await client.send(new DescribeKeyCommand({ KeyId: keyId }));

    await kms.stop();
    await kms.stop();

    // The kept-alive connection is gone (stop() would never have returned otherwise) and a
    // new one is refused.
    const fresh = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
    await expect(fresh.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toThrow(/ECONNREFUSED/);
    fresh.destroy();
    client.destroy();
  });

  it('ends a request left hanging by a fault', async () => {
    const kms = await startLocalKms();
    const { keyId } = await kms.createKey();
    const client = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
    kms.setFault({ kind: 'hang' });
    const pending = client.send(new DescribeKeyCommand({ KeyId: keyId }));
    // Wait until the server has the request, so stop() has a hanging connection to end.
    while (kms.counters.calls('DescribeKey') === 0) await new Promise((r) => setImmediate(r));

    await kms.stop();

    await expect(pending).rejects.toBeDefined();
    client.destroy();
  });
});

describe('local KMS state across a restart', () => {
  it('decrypts a previous run’s ciphertext when started with its exported state', async () => {
    const first = await startLocalKms();
    const { arn } = await first.createKey({ alias: 'alias/restart' });
    const firstClient = new KMSClient(first.clientConfig);
    const dataKey = await firstClient.send(
      new GenerateDataKeyCommand({ KeyId: 'alias/restart', KeySpec: 'AES_256' }),
    );
    const state = first.exportState();
    firstClient.destroy();
    await first.stop();

    const second = await startLocalKms({ state });
    const client = new KMSClient(second.clientConfig);
    try {
      const out = await client.send(
        new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob, KeyId: arn }),
      );
      expect(Buffer.from(out.Plaintext!)).toEqual(Buffer.from(dataKey.Plaintext!));
      const described = await client.send(new DescribeKeyCommand({ KeyId: 'alias/restart' }));
      expect(described.KeyMetadata!.Arn).toBe(arn);
    } finally {
      client.destroy();
      await second.stop();
    }
  });

  it('cannot decrypt it without that state', async () => {
    const first = await startLocalKms();
    await first.createKey({ alias: 'alias/restart' });
    const firstClient = new KMSClient(first.clientConfig);
    const dataKey = await firstClient.send(
      new GenerateDataKeyCommand({ KeyId: 'alias/restart', KeySpec: 'AES_256' }),
    );
    firstClient.destroy();
    await first.stop();

    const second = await startLocalKms();
    const client = new KMSClient(second.clientConfig);
    try {
      await expect(
        client.send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob })),
      ).rejects.toThrow();
    } finally {
      client.destroy();
      await second.stop();
    }
  });
});
