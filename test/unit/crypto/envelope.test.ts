import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import * as fc from 'fast-check';
import { DataKeyCache } from '../../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../../shared/crypto/envelope';
import type { DataKey, KeyRing } from '../../../shared/crypto/keyring';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import {
  ConfigurationError,
  EnvelopeError,
  EnvelopeFailure,
  KeyServiceError,
  KeyServiceFailure,
} from '../../../shared/errors';
import { rejection } from '../../support/expect-errors';

/** A real key ring that counts its calls, may carry another name, and can be made to fail. */
class CountingRing implements KeyRing {
  generates = 0;
  unwraps = 0;
  /** While set, unwrap throws it (fault injection). */
  unwrapFailure: Error | undefined;
  /** While set, generate throws it (fault injection). */
  generateFailure: Error | undefined;
  constructor(
    readonly inner: LocalKeyRing,
    readonly name: string = inner.name,
  ) {}

  async generateDataKey(): Promise<DataKey> {
    this.generates += 1;
    if (this.generateFailure !== undefined) throw this.generateFailure;
    return this.inner.generateDataKey();
  }

  async unwrapDataKey(wrapped: Uint8Array, keyId: string): Promise<Uint8Array> {
    this.unwraps += 1;
    if (this.unwrapFailure !== undefined) throw this.unwrapFailure;
    return this.inner.unwrapDataKey(wrapped, keyId);
  }
}

const masterKey = randomBytes(32);
const partition = 'app:3f0d5d4a-6c53-4b8e-9d0e-0c3a4d1f2b7e:72f988bf-86f1-41af-91ab-2d7cd011db47';

function ringOf(options: Partial<ConstructorParameters<typeof LocalKeyRing>[0]> = {}): CountingRing {
  return new CountingRing(new LocalKeyRing({ masterKey, ...options }));
}

function envelopeOf(ring: KeyRing, compressAboveBytes?: number | false): Envelope {
  return new Envelope({ keys: new DataKeyCache(ring), compressAboveBytes });
}

/** A small client-credentials cache in MSAL's unified JSON shape. */
function msalCache(accessTokens = 1): Uint8Array {
  const AccessToken: Record<string, unknown> = {};
  for (let i = 0; i < accessTokens; i++) {
    const target = `api://downstream-${i}/.default`;
    AccessToken[`-login.microsoftonline.com-accesstoken-client-tenant-${target}`] = {
      home_account_id: '',
      environment: 'login.microsoftonline.com',
      credential_type: 'AccessToken',
      client_id: '3f0d5d4a-6c53-4b8e-9d0e-0c3a4d1f2b7e',
      secret: `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-access-token-${i}`,
      realm: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      target,
      cached_at: '1764000000',
      expires_on: '1764003600',
      extended_expires_on: '1764007200',
      token_type: 'Bearer',
    };
  }
  return Buffer.from(
    JSON.stringify({ Account: {}, IdToken: {}, AccessToken, RefreshToken: {}, AppMetadata: {} }),
    'utf8',
  );
}

/**
 * Seals the way docs/envelope.md says, with node:crypto only: an independent writer, so
 * the tests check the format and not just that Envelope agrees with itself.
 */
function referenceSeal(args: {
  dataKey: DataKey;
  ringName?: string;
  flags?: number;
  body: Uint8Array;
  partitionKey: string;
}): Uint8Array {
  const ring = Buffer.from(args.ringName ?? 'local', 'utf8');
  const keyId = Buffer.from(args.dataKey.keyId, 'utf8');
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const header = Buffer.concat([
    Buffer.from('MCCE', 'ascii'),
    Buffer.from([1, args.flags ?? 0, ring.length]),
    ring,
    u16(keyId.length),
    keyId,
    u16(args.dataKey.wrapped.length),
    args.dataKey.wrapped,
    salt,
    nonce,
  ]);
  const pk = Buffer.from(args.partitionKey, 'utf8');
  const info = Buffer.concat([Buffer.from('msal-cloud-cache/envelope/v1/item-key\0', 'utf8'), pk]);
  const itemKey = Buffer.from(hkdfSync('sha256', args.dataKey.plaintext, salt, info, 32));
  const cipher = createCipheriv('aes-256-gcm', itemKey, nonce);
  cipher.setAAD(Buffer.concat([header, pk]));
  return Buffer.concat([header, cipher.update(args.body), cipher.final(), cipher.getAuthTag()]);
}

describe('Envelope', () => {
  describe('constructor', () => {
    it.each([[-1], [1.5], [Number.NaN]])('rejects compressAboveBytes %p', (value) => {
      expect(() => envelopeOf(ringOf(), value)).toThrow(/^compressAboveBytes: /);
    });

    it('rejects a key ring name that does not fit the header', () => {
      const ring = new CountingRing(new LocalKeyRing({ masterKey }), 'x'.repeat(256));

      expect(() => envelopeOf(ring)).toThrow(ConfigurationError);
    });
  });

  describe('seal and open', () => {
    it('round-trips a small cache uncompressed', async () => {
      const envelope = envelopeOf(ringOf());
      const plaintext = msalCache(1);

      const blob = await envelope.seal(plaintext, partition);
      const opened = await envelope.open(blob, partition);

      expect(plaintext.length).toBeLessThan(1024);
      expect(parseEnvelopeHeader(blob).compressed).toBe(false);
      expect(opened).toEqual(plaintext);
      expect(Buffer.from(blob).includes(Buffer.from('fake-access-token'))).toBe(false);
    });

    it('round-trips a large cache compressed, and the blob is smaller than the plaintext', async () => {
      const envelope = envelopeOf(ringOf());
      const plaintext = msalCache(20);

      const blob = await envelope.seal(plaintext, partition);
      const opened = await envelope.open(blob, partition);

      expect(parseEnvelopeHeader(blob).compressed).toBe(true);
      expect(blob.length).toBeLessThan(plaintext.length);
      expect(opened).toEqual(plaintext);
    });

    it('compresses only above compressAboveBytes', async () => {
      const envelope = envelopeOf(ringOf(), 100);
      const plaintext = new Uint8Array(101).fill(0x41);

      const atLimit = await envelope.seal(plaintext.subarray(0, 100), partition);
      const above = await envelope.seal(plaintext, partition);

      expect(parseEnvelopeHeader(atLimit).compressed).toBe(false);
      expect(parseEnvelopeHeader(above).compressed).toBe(true);
      expect(await envelope.open(above, partition)).toEqual(plaintext);
    });

    it('never compresses with compressAboveBytes false', async () => {
      const envelope = envelopeOf(ringOf(), false);

      const blob = await envelope.seal(msalCache(20), partition);

      expect(parseEnvelopeHeader(blob).compressed).toBe(false);
    });

    it('stores incompressible plaintext as is', async () => {
      const envelope = envelopeOf(ringOf(), 0);
      const plaintext = randomBytes(4096);

      const blob = await envelope.seal(plaintext, partition);

      expect(parseEnvelopeHeader(blob).compressed).toBe(false);
      expect(await envelope.open(blob, partition)).toEqual(new Uint8Array(plaintext));
    });

    it('round-trips an empty plaintext', async () => {
      const envelope = envelopeOf(ringOf());

      const blob = await envelope.seal(new Uint8Array(0), partition);

      expect(await envelope.open(blob, partition)).toEqual(new Uint8Array(0));
    });

    it('uses a fresh salt and nonce for every seal', async () => {
      const envelope = envelopeOf(ringOf());
      const plaintext = msalCache(1);

      const [a, b] = [await envelope.seal(plaintext, partition), await envelope.seal(plaintext, partition)];

      expect(Buffer.from(parseEnvelopeHeader(a).salt)).not.toEqual(Buffer.from(parseEnvelopeHeader(b).salt));
      expect(Buffer.from(parseEnvelopeHeader(a).nonce)).not.toEqual(
        Buffer.from(parseEnvelopeHeader(b).nonce),
      );
    });

    it('round-trips any plaintext under any partition key, and no other key opens it', async () => {
      const envelope = envelopeOf(ringOf(), 64);
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 2048 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
          fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
          async (plaintext, mine, other) => {
            fc.pre(mine !== other);
            const blob = await envelope.seal(plaintext, mine);

            expect(await envelope.open(blob, mine)).toEqual(plaintext);
            expect(await rejection(envelope.open(blob, other))).toMatchObject({
              reason: EnvelopeFailure.AuthenticationFailed,
            });
          },
        ),
        { numRuns: 100 },
      );
    });

    it('reads a blob another instance sealed, calling the ring once', async () => {
      const ring = ringOf();
      const blob = await envelopeOf(ring).seal(msalCache(1), partition);
      const reader = envelopeOf(ring);

      await reader.open(blob, partition);
      await reader.open(blob, partition);

      expect(ring.unwraps).toBe(1);
    });

    it('opens a blob written by an independent implementation of docs/envelope.md', async () => {
      const ring = ringOf();
      const dataKey = await ring.inner.generateDataKey();
      const plaintext = msalCache(20);

      const plain = referenceSeal({ dataKey, body: plaintext, partitionKey: partition });
      const deflated = referenceSeal({
        dataKey,
        flags: 1,
        body: deflateRawSync(plaintext),
        partitionKey: partition,
      });

      expect(await envelopeOf(ring).open(plain, partition)).toEqual(plaintext);
      expect(await envelopeOf(ring).open(deflated, partition)).toEqual(plaintext);
    });

    it.each([
      ['empty', ''],
      ['longer than 512 bytes', 'é'.repeat(257)],
    ])('rejects a partition key that is %s', async (_label, partitionKey) => {
      const envelope = envelopeOf(ringOf());
      const blob = await envelope.seal(msalCache(1), partition);

      expect(await rejection(envelope.seal(msalCache(1), partitionKey))).toBeInstanceOf(ConfigurationError);
      expect(await rejection(envelope.open(blob, partitionKey))).toBeInstanceOf(ConfigurationError);
    });
  });

  describe('seal', () => {
    it('fails with the KeyServiceError when no data key can be had', async () => {
      const ring = ringOf();
      const failure = new KeyServiceError('local', 'generate', KeyServiceFailure.AccessDenied, 'denied');
      ring.generateFailure = failure;

      const error = await rejection(envelopeOf(ring).seal(msalCache(1), partition));

      expect(error).toBe(failure);
    });
  });

  describe('open', () => {
    it('does not call the key ring to read its own write', async () => {
      const ring = ringOf();
      const envelope = envelopeOf(ring);

      const blob = await envelope.seal(msalCache(1), partition);
      await envelope.open(blob, partition);

      expect(ring.generates).toBe(1);
      expect(ring.unwraps).toBe(0);
    });

    it('fails with authentication-failed for a blob copied to another partition', async () => {
      const envelope = envelopeOf(ringOf());
      const blob = await envelope.seal(msalCache(1), partition);

      const error = await rejection(envelope.open(blob, partition.replace('app:3', 'app:4')));

      expect(error).toBeInstanceOf(EnvelopeError);
      expect(error).toMatchObject({ reason: EnvelopeFailure.AuthenticationFailed });
    });

    it('fails for every single-bit flip of every byte, with the reason of the field hit', async () => {
      const keys = new DataKeyCache(ringOf());
      const envelope = new Envelope({ keys });
      const blob = await envelope.seal(Buffer.from('{"AccessToken":{}}'), partition);
      const h = parseEnvelopeHeader(blob);
      const dataKey = await keys.decryptionKey(h.keyId, h.wrappedKey);
      const ringAt = 7;
      const keyIdAt = ringAt + h.keyRing.length + 2;
      const wrappedAt = keyIdAt + h.keyId.length + 2;
      const expected = (offset: number, bit: number): EnvelopeFailure[] | 'any' => {
        if (offset < 4) return [EnvelopeFailure.Malformed];
        if (offset === 4) return [EnvelopeFailure.UnsupportedVersion];
        if (offset === 5)
          return bit === 0 ? [EnvelopeFailure.AuthenticationFailed] : [EnvelopeFailure.UnsupportedVersion];
        if (offset < ringAt) return 'any'; // ring name length
        if (offset < keyIdAt - 2) return [EnvelopeFailure.ForeignKeyRing, EnvelopeFailure.Malformed];
        if (offset < keyIdAt) return 'any'; // key id length
        if (offset < wrappedAt - 2) return [EnvelopeFailure.UnknownKey, EnvelopeFailure.Malformed];
        if (offset < wrappedAt) return 'any'; // wrapped key length
        if (offset < wrappedAt + h.wrappedKey.length) return [EnvelopeFailure.UnknownKey];
        return [EnvelopeFailure.AuthenticationFailed]; // salt, nonce, ciphertext, tag
      };
      const wrong: unknown[] = [];
      const messages: string[] = [];

      for (let offset = 0; offset < blob.length; offset++) {
        for (let bit = 0; bit < 8; bit++) {
          const altered = Uint8Array.from(blob);
          altered[offset] ^= 1 << bit;

          const error = await rejection(envelope.open(altered, partition));

          const reasons = expected(offset, bit);
          if (!(error instanceof EnvelopeError) || (reasons !== 'any' && !reasons.includes(error.reason))) {
            wrong.push({ offset, bit, expected: reasons, got: String(error) });
          }
          const cause = (error as Error).cause;
          messages.push((error as Error).message, cause instanceof Error ? cause.message : '');
        }
      }

      expect(wrong).toEqual([]);
      expect(messages).toHaveLength(blob.length * 8 * 2);
      const secrets = [dataKey, masterKey].flatMap((k) => [
        Buffer.from(k).toString('hex'),
        Buffer.from(k).toString('base64'),
      ]);
      for (const message of messages) for (const secret of secrets) expect(message).not.toContain(secret);
    });

    it('authenticates a compressed body before inflating it', async () => {
      const envelope = envelopeOf(ringOf(), 0);
      const blob = await envelope.seal(msalCache(3), partition);
      const { headerLength, compressed } = parseEnvelopeHeader(blob);
      const reasons = new Set<string>();

      for (let offset = headerLength; offset < blob.length; offset++) {
        const altered = Uint8Array.from(blob);
        altered[offset] ^= 0x01;
        reasons.add(((await rejection(envelope.open(altered, partition))) as EnvelopeError).reason);
      }

      expect(compressed).toBe(true);
      expect([...reasons]).toEqual([EnvelopeFailure.AuthenticationFailed]);
    });

    it('fails for the blob truncated at every length, and with a byte appended', async () => {
      const envelope = envelopeOf(ringOf());
      const blob = await envelope.seal(msalCache(1), partition);
      const { headerLength } = parseEnvelopeHeader(blob);

      for (let length = 0; length < blob.length; length++) {
        const error = await rejection(envelope.open(blob.subarray(0, length), partition));

        expect(error).toBeInstanceOf(EnvelopeError);
        expect({ length, reason: (error as EnvelopeError).reason }).toEqual({
          length,
          reason:
            length < headerLength + 16 ? EnvelopeFailure.Malformed : EnvelopeFailure.AuthenticationFailed,
        });
      }
      const extended = await rejection(envelope.open(Buffer.concat([blob, Buffer.from([0])]), partition));
      expect(extended).toMatchObject({ reason: EnvelopeFailure.AuthenticationFailed });
    });

    it.each([
      ['an MSAL JSON document', Buffer.from('{"AccessToken":{}}')],
      ['empty bytes', new Uint8Array(0)],
    ])('fails with malformed for %s', async (_label, blob) => {
      const error = await rejection(envelopeOf(ringOf()).open(blob, partition));

      expect(error).toMatchObject({ reason: EnvelopeFailure.Malformed });
    });

    it('fails with unsupported-version for a newer format, before calling the ring', async () => {
      const ring = ringOf();
      const blob = await envelopeOf(ring).seal(msalCache(1), partition);
      // 2 is now the attested format; 3 is the next unknown one.
      blob[4] = 3;

      const error = await rejection(envelopeOf(ring).open(blob, partition));

      expect(error).toMatchObject({ reason: EnvelopeFailure.UnsupportedVersion });
      expect(ring.unwraps).toBe(0);
    });

    it('fails with foreign-key-ring for a blob another key ring sealed, before calling the ring', async () => {
      const inner = new LocalKeyRing({ masterKey });
      const writer = new CountingRing(inner, 'aws-kms');
      const reader = new CountingRing(inner);
      const blob = await envelopeOf(writer).seal(msalCache(1), partition);

      const error = await rejection(envelopeOf(reader).open(blob, partition));

      expect(error).toBeInstanceOf(EnvelopeError);
      expect(error).toMatchObject({ reason: EnvelopeFailure.ForeignKeyRing });
      expect((error as Error).message).toContain('"aws-kms"');
      expect(reader.unwraps).toBe(0);
    });

    it('fails with unknown-key, keeping the KeyServiceError, for a key id the ring lacks', async () => {
      const blob = await envelopeOf(ringOf({ keyId: 'local-1' })).seal(msalCache(1), partition);

      const error = await rejection(envelopeOf(ringOf({ keyId: 'local-2' })).open(blob, partition));

      expect(error).toBeInstanceOf(EnvelopeError);
      expect(error).toMatchObject({ reason: EnvelopeFailure.UnknownKey });
      expect((error as Error).cause).toBeInstanceOf(KeyServiceError);
      expect((error as Error).cause).toMatchObject({ reason: KeyServiceFailure.NotFound });
    });

    it('fails with unknown-key for a blob sealed under another master key with the same id', async () => {
      const blob = await envelopeOf(ringOf()).seal(msalCache(1), partition);

      const error = await rejection(
        envelopeOf(new LocalKeyRing({ masterKey: randomBytes(32) })).open(blob, partition),
      );

      expect(error).toMatchObject({ reason: EnvelopeFailure.UnknownKey });
      expect((error as Error).cause).toMatchObject({ reason: KeyServiceFailure.InvalidCiphertext });
    });

    it('opens blobs sealed before a master key rotation through previousKeys', async () => {
      const oldKey = randomBytes(32);
      const before = await envelopeOf(new LocalKeyRing({ masterKey: oldKey, keyId: 'local-1' })).seal(
        msalCache(1),
        partition,
      );
      const rotated = envelopeOf(
        new LocalKeyRing({ masterKey, keyId: 'local-2', previousKeys: { 'local-1': oldKey } }),
      );

      const opened = await rotated.open(before, partition);
      const after = await rotated.seal(opened, partition);

      expect(opened).toEqual(msalCache(1));
      expect(parseEnvelopeHeader(after).keyId).toBe('local-2');
    });

    it.each([
      KeyServiceFailure.Throttled,
      KeyServiceFailure.Unavailable,
      KeyServiceFailure.AccessDenied,
      KeyServiceFailure.Disabled,
      KeyServiceFailure.Unknown,
    ])('rethrows a %s KeyServiceError as itself, not as an EnvelopeError', async (reason) => {
      const ring = ringOf();
      const blob = await envelopeOf(ring).seal(msalCache(1), partition);
      const failure = new KeyServiceError('local', 'unwrap', reason, 'fault injected by the test');
      ring.unwrapFailure = failure;

      const error = await rejection(envelopeOf(ring).open(blob, partition));

      expect(error).toBe(failure);
      expect(error).not.toBeInstanceOf(EnvelopeError);
    });

    it('reports a ring that throws a plain error as a KeyServiceError, not as a bad blob', async () => {
      const ring = ringOf();
      const blob = await envelopeOf(ring).seal(msalCache(1), partition);
      ring.unwrapFailure = new Error('ECONNRESET');

      const error = await rejection(envelopeOf(ring).open(blob, partition));

      expect(error).toBeInstanceOf(KeyServiceError);
      expect(error).toMatchObject({ reason: KeyServiceFailure.Unknown });
    });

    it('fails with malformed for a compressed body that inflates past 8 MiB', async () => {
      const ring = ringOf();
      const dataKey = await ring.inner.generateDataKey();
      const bomb = deflateRawSync(new Uint8Array(8 * 1024 * 1024 + 1));
      const blob = referenceSeal({ dataKey, flags: 1, body: bomb, partitionKey: partition });

      const error = await rejection(envelopeOf(ring).open(blob, partition));

      expect(bomb.length).toBeLessThan(16 * 1024);
      expect(error).toMatchObject({ reason: EnvelopeFailure.Malformed });
    });

    it('inflates a compressed body of exactly 8 MiB', async () => {
      const ring = ringOf();
      const dataKey = await ring.inner.generateDataKey();
      const plaintext = new Uint8Array(8 * 1024 * 1024);
      const blob = referenceSeal({
        dataKey,
        flags: 1,
        body: deflateRawSync(plaintext),
        partitionKey: partition,
      });

      const opened = await envelopeOf(ring).open(blob, partition);

      expect(opened.length).toBe(plaintext.length);
    });

    it('fails with malformed for an authenticated compressed body that is not deflate-raw', async () => {
      const ring = ringOf();
      const dataKey = await ring.inner.generateDataKey();
      const blob = referenceSeal({
        dataKey,
        flags: 1,
        body: Buffer.from('{"not":"deflated"}'),
        partitionKey: partition,
      });

      const error = await rejection(envelopeOf(ring).open(blob, partition));

      expect(error).toMatchObject({ reason: EnvelopeFailure.Malformed });
    });
  });
});

describe('parseEnvelopeHeader', () => {
  it('returns the header fields of a sealed blob', async () => {
    const ring = ringOf({ keyId: 'dev-key-9' });
    const keys = new DataKeyCache(ring);
    const blob = await new Envelope({ keys }).seal(msalCache(1), partition);
    const dataKey = await keys.encryptionKey();

    const header = parseEnvelopeHeader(blob);

    expect(header).toMatchObject({
      version: 1,
      flags: 0,
      compressed: false,
      keyRing: 'local',
      keyId: 'dev-key-9',
      headerLength: 4 + 3 + 5 + 2 + 9 + 2 + 60 + 16 + 12,
      bodyLength: msalCache(1).length + 16,
    });
    expect(header.wrappedKey).toEqual(dataKey.wrapped);
    expect(header.salt).toHaveLength(16);
    expect(header.nonce).toHaveLength(12);
  });

  it.each([
    ['a reserved flag bit', 5, 0x02, EnvelopeFailure.UnsupportedVersion],
    ['version 0', 4, 0x00, EnvelopeFailure.UnsupportedVersion],
    ['an empty key ring name', 6, 0x00, EnvelopeFailure.Malformed],
    ['a bad magic byte', 0, 0x6d, EnvelopeFailure.Malformed],
  ])('rejects %s', async (_label, offset, value, reason) => {
    const blob = await envelopeOf(ringOf()).seal(msalCache(1), partition);
    blob[offset] = value;

    const error = (() => {
      try {
        parseEnvelopeHeader(blob);
      } catch (e) {
        return e;
      }
      throw new Error('expected a throw');
    })();

    expect(error).toBeInstanceOf(EnvelopeError);
    expect(error).toMatchObject({ reason });
  });
});
