import { randomBytes } from 'node:crypto';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../../../shared/errors';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import { runKeyRingContract } from '../../contract/keyring-contract';
import { rejection } from '../../support/expect-errors';

const masterKey = randomBytes(32);

describe('LocalKeyRing', () => {
  describe('constructor', () => {
    it('accepts the master key as bytes or base64 and names itself local', async () => {
      const fromBytes = new LocalKeyRing({ masterKey });
      const fromBase64 = new LocalKeyRing({ masterKey: masterKey.toString('base64') });

      const key = await fromBytes.generateDataKey();

      expect(fromBytes.name).toBe('local');
      expect(await fromBase64.unwrapDataKey(key.wrapped, key.keyId)).toEqual(key.plaintext);
    });

    it.each([
      ['16 bytes', randomBytes(16), 16],
      ['33 bytes', randomBytes(33), 33],
      ['base64 of 24 bytes', randomBytes(24).toString('base64'), 24],
    ])('rejects a master key of %s, naming masterKey and the length', (_label, value, length) => {
      const create = () => new LocalKeyRing({ masterKey: value });

      expect(create).toThrow(ConfigurationError);
      expect(create).toThrow(new RegExp(`^masterKey: .*received ${length} bytes`));
    });

    it('rejects a string that is not base64 without echoing it', () => {
      const secretish = 'not base64 at all!!';

      const create = () => new LocalKeyRing({ masterKey: secretish });

      expect(create).toThrow(ConfigurationError);
      expect(create).not.toThrow(secretish);
    });

    it('never puts the key bytes into the message', () => {
      const wrongLength = randomBytes(31);

      const error = (() => {
        try {
          new LocalKeyRing({ masterKey: wrongLength.toString('base64') });
        } catch (e) {
          return e as Error;
        }
        throw new Error('expected a throw');
      })();

      expect(error.message).not.toContain(wrongLength.toString('base64'));
      expect(error.message).not.toContain(wrongLength.toString('hex'));
    });

    it('rejects a previous key reusing the current key id', () => {
      const create = () =>
        new LocalKeyRing({ masterKey, keyId: 'k1', previousKeys: { k1: randomBytes(32) } });

      expect(create).toThrow(/^previousKeys\.k1: /);
    });

    it('rejects a previous key of the wrong length, naming it', () => {
      const create = () => new LocalKeyRing({ masterKey, previousKeys: { old: randomBytes(8) } });

      expect(create).toThrow(/^previousKeys\.old: .*received 8 bytes/);
    });

    it('rejects an empty key id', () => {
      expect(() => new LocalKeyRing({ masterKey, keyId: '' })).toThrow(/^keyId: /);
    });
  });

  describe('generateDataKey', () => {
    it('returns a fresh 32-byte key wrapped under the current key id', async () => {
      const ring = new LocalKeyRing({ masterKey, keyId: 'dev-7' });

      const first = await ring.generateDataKey();
      const second = await ring.generateDataKey();

      expect(first.keyId).toBe('dev-7');
      expect(first.plaintext).toHaveLength(32);
      expect(first.wrapped).toHaveLength(12 + 32 + 16);
      expect(Buffer.from(first.plaintext).equals(Buffer.from(second.plaintext))).toBe(false);
      expect(Buffer.from(first.wrapped).includes(Buffer.from(first.plaintext))).toBe(false);
    });
  });

  describe('unwrapDataKey', () => {
    it('returns the plaintext of a key it wrapped', async () => {
      const ring = new LocalKeyRing({ masterKey });
      const key = await ring.generateDataKey();

      const unwrapped = await ring.unwrapDataKey(key.wrapped, key.keyId);

      expect(unwrapped).toEqual(key.plaintext);
    });

    it('fails with not-found for a key id it does not hold', async () => {
      const ring = new LocalKeyRing({ masterKey });
      const key = await ring.generateDataKey();

      const error = await rejection(ring.unwrapDataKey(key.wrapped, 'local-0'));

      expect(error).toBeInstanceOf(KeyServiceError);
      expect(error).toMatchObject({
        reason: KeyServiceFailure.NotFound,
        operation: 'unwrap',
        keyRing: 'local',
      });
    });

    it('fails with invalid-ciphertext for every altered byte of the wrapped key', async () => {
      const ring = new LocalKeyRing({ masterKey });
      const key = await ring.generateDataKey();

      for (let i = 0; i < key.wrapped.length; i++) {
        const altered = Uint8Array.from(key.wrapped);
        altered[i] ^= 0x01;

        const error = await rejection(ring.unwrapDataKey(altered, key.keyId));

        expect(error).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext });
      }
    });

    it('fails with invalid-ciphertext for a wrapped key of the wrong length', async () => {
      const ring = new LocalKeyRing({ masterKey });
      const key = await ring.generateDataKey();

      const error = await rejection(ring.unwrapDataKey(key.wrapped.subarray(1), key.keyId));

      expect(error).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext });
    });

    it('fails with invalid-ciphertext when another master key uses the same id', async () => {
      const key = await new LocalKeyRing({ masterKey }).generateDataKey();
      const other = new LocalKeyRing({ masterKey: randomBytes(32) });

      const error = await rejection(other.unwrapDataKey(key.wrapped, key.keyId));

      expect(error).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext });
      expect((error as Error).cause).toBeDefined();
    });

    it('binds the key id: a wrap presented under another held id does not open', async () => {
      const ring = new LocalKeyRing({ masterKey, keyId: 'a', previousKeys: { b: masterKey } });
      const key = await ring.generateDataKey();

      const error = await rejection(ring.unwrapDataKey(key.wrapped, 'b'));

      expect(error).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext });
    });

    it('opens keys wrapped before a rotation through previousKeys', async () => {
      const oldKey = randomBytes(32);
      const before = new LocalKeyRing({ masterKey: oldKey, keyId: 'local-1' });
      const sealedBefore = await before.generateDataKey();
      const after = new LocalKeyRing({
        masterKey,
        keyId: 'local-2',
        previousKeys: { 'local-1': oldKey.toString('base64') },
      });

      const unwrapped = await after.unwrapDataKey(sealedBefore.wrapped, sealedBefore.keyId);
      const fresh = await after.generateDataKey();

      expect(unwrapped).toEqual(sealedBefore.plaintext);
      expect(fresh.keyId).toBe('local-2');
    });
  });
});

runKeyRingContract('LocalKeyRing', { bindsPartitionKind: false, remote: false }, async () => ({
  ring: new LocalKeyRing({ masterKey: randomBytes(32) }),
  foreign: new LocalKeyRing({ masterKey: randomBytes(32), keyId: 'local-foreign' }),
  teardown: async () => {},
}));
