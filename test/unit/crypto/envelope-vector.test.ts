/**
 * Reads the test vectors out of docs/envelope.md itself, so the specification and the
 * code cannot drift apart.
 */
import { createHash, createPublicKey, hkdfSync, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataKeyCache } from '../../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../../shared/crypto/envelope';
import { attestationMessage, type KeyRing } from '../../../shared/crypto/keyring';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';

interface Vector {
  masterKey: Buffer;
  keyId: string;
  dataKey: Buffer;
  wrapNonce: Buffer;
  wrappedKey: Buffer;
  partitionKey: string;
  salt: Buffer;
  nonce: Buffer;
  itemKey: Buffer;
  compressAbove: number;
  plaintext: Buffer;
  blob: Buffer;
}

/** Reads a vector's fields by name: as text, or as lowercase hex; a missing or malformed field throws. */
function readerOf(fields: ReadonlyMap<string, string>): {
  text(name: string): string;
  hex(name: string): Buffer;
} {
  const text = (name: string): string => {
    const value = fields.get(name);
    if (value === undefined) throw new Error(`the vector has no ${name}`);
    return value;
  };
  const hex = (name: string): Buffer => {
    const value = text(name);
    if (!/^([0-9a-f]{2})+$/.test(value)) throw new Error(`${name} is not lowercase hex`);
    return Buffer.from(value, 'hex');
  };
  return { text, hex };
}

/** `name = value` lines; indented lines continue the previous value (wrapped hex). */
function parseVector(block: string): Vector {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of block.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    if (/^\s/.test(line)) {
      if (last === undefined) throw new Error(`continuation line before any field: ${line}`);
      fields.set(last, fields.get(last)! + line.trim());
      continue;
    }
    const at = line.indexOf(' = ');
    if (at < 0) throw new Error(`not a "name = value" line: ${line}`);
    last = line.slice(0, at).trim();
    fields.set(last, line.slice(at + 3));
  }
  const { text, hex } = readerOf(fields);
  return {
    masterKey: hex('master-key'),
    keyId: text('key-id'),
    dataKey: hex('data-key'),
    wrapNonce: hex('wrap-nonce'),
    wrappedKey: hex('wrapped-key'),
    partitionKey: text('partition-key'),
    salt: hex('salt'),
    nonce: hex('nonce'),
    itemKey: hex('item-key'),
    compressAbove: Number(text('compress-above')),
    plaintext: Buffer.from(text('plaintext'), 'utf8'),
    blob: hex('blob'),
  };
}

function vectorsOf(markdown: string): Map<string, Vector> {
  const vectors = new Map<string, Vector>();
  for (const match of markdown.matchAll(/```text\n# (test-vector-\d+)\n([\s\S]*?)```/g)) {
    vectors.set(match[1], parseVector(match[2]));
  }
  return vectors;
}

/** Hands out the given chunks in order, checking each requested size: the vector's randomness. */
function replay(...chunks: Uint8Array[]): (size: number) => Uint8Array {
  return (size) => {
    const next = chunks.shift();
    if (!next || next.length !== size) {
      throw new Error(`unexpected random request of ${size} bytes (next chunk: ${next?.length ?? 'none'})`);
    }
    return next;
  };
}

/** Seals the vector's plaintext with all randomness taken from the vector. */
async function sealVector(v: Vector): Promise<Uint8Array> {
  const ring = new LocalKeyRing({
    masterKey: v.masterKey,
    keyId: v.keyId,
    random: replay(v.dataKey, v.wrapNonce),
  });
  const envelope = new Envelope({
    keys: new DataKeyCache(ring),
    compressAboveBytes: v.compressAbove,
    random: replay(v.salt, v.nonce),
  });
  return envelope.seal(v.plaintext, v.partitionKey);
}

/** Opens with a ring that only knows the master key: no shortcut through a cached data key. */
function openVector(v: Vector, blob: Uint8Array): Promise<Uint8Array> {
  const ring = new LocalKeyRing({ masterKey: v.masterKey, keyId: v.keyId });
  return new Envelope({ keys: new DataKeyCache(ring) }).open(blob, v.partitionKey);
}

const vectors = vectorsOf(readFileSync(join(__dirname, '../../../docs/envelope.md'), 'utf8'));

describe('docs/envelope.md test vectors', () => {
  it('contains vector 1 (uncompressed) and vector 2 (compressed)', () => {
    expect([...vectors.keys()]).toEqual(['test-vector-1', 'test-vector-2']);
  });

  describe('test-vector-1', () => {
    const v = vectors.get('test-vector-1')!;

    it('seals its inputs to exactly its blob', async () => {
      const blob = await sealVector(v);

      expect(Buffer.from(blob).toString('hex')).toBe(v.blob.toString('hex'));
    });

    it('opens its blob to its plaintext', async () => {
      const plaintext = await openVector(v, v.blob);

      expect(Buffer.from(plaintext).toString('utf8')).toBe(v.plaintext.toString('utf8'));
    });

    it('states the intermediate values the blob was made with', async () => {
      const header = parseEnvelopeHeader(v.blob);
      const unwrapped = await new LocalKeyRing({ masterKey: v.masterKey, keyId: v.keyId }).unwrapDataKey(
        v.wrappedKey,
        v.keyId,
      );
      const info = Buffer.concat([
        Buffer.from('msal-cloud-cache/envelope/v1/item-key\0', 'utf8'),
        Buffer.from(v.partitionKey, 'utf8'),
      ]);

      expect(header).toMatchObject({ compressed: false, keyRing: 'local', keyId: v.keyId });
      expect(Buffer.from(header.wrappedKey)).toEqual(v.wrappedKey);
      expect(Buffer.from(header.salt)).toEqual(v.salt);
      expect(Buffer.from(header.nonce)).toEqual(v.nonce);
      expect(Buffer.from(unwrapped)).toEqual(v.dataKey);
      expect(Buffer.from(hkdfSync('sha256', v.dataKey, v.salt, info, 32))).toEqual(v.itemKey);
      expect(v.plaintext.length).toBeLessThanOrEqual(v.compressAbove);
    });
  });

  describe('test-vector-2', () => {
    const v = vectors.get('test-vector-2')!;

    it('opens its compressed blob to its plaintext', async () => {
      const plaintext = await openVector(v, v.blob);

      expect(parseEnvelopeHeader(v.blob).compressed).toBe(true);
      expect(Buffer.from(plaintext).toString('utf8')).toBe(v.plaintext.toString('utf8'));
    });

    it('seals its inputs to its header and to a blob that opens to its plaintext', async () => {
      const blob = await sealVector(v);
      const { headerLength } = parseEnvelopeHeader(v.blob);

      // The deflate bytes may differ between zlib builds; the header may not.
      expect(Buffer.from(blob.subarray(0, headerLength))).toEqual(v.blob.subarray(0, headerLength));
      expect(Buffer.from(await openVector(v, blob))).toEqual(v.plaintext);
    });
  });
});

/** `# attested-vector-N` blocks: format v2 (issue 11), parsed with the same line rules. */
function attestedVectorsOf(markdown: string): Map<string, Map<string, string>> {
  const vectors = new Map<string, Map<string, string>>();
  for (const match of markdown.matchAll(/```text\n# (attested-vector-\d+)\n([\s\S]*?)```/g)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of match[2].split('\n')) {
      if (line.trim() === '') continue;
      if (/^\s/.test(line)) {
        fields.set(last!, fields.get(last!)! + line.trim());
        continue;
      }
      const at = line.indexOf(' = ');
      last = line.slice(0, at).trim();
      fields.set(last, line.slice(at + 3));
    }
    vectors.set(match[1], fields);
  }
  return vectors;
}

describe('docs/envelope.md attested (v2) test vector', () => {
  const attested = attestedVectorsOf(readFileSync(join(__dirname, '../../../docs/envelope.md'), 'utf8'));
  const f = attested.get('attested-vector-1')!;
  const { text, hex } = readerOf(f);
  const publicKey = () =>
    createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: hex('signing-key-x').toString('base64url'),
        y: hex('signing-key-y').toString('base64url'),
      },
      format: 'jwk',
    });
  /** A ring that attests like the Key Vault ring: the vector's data key, verified with the vector's public key. */
  const vectorRing = (): KeyRing => ({
    name: text('ring'),
    attestsDataKeys: true,
    async generateDataKey() {
      return {
        plaintext: Uint8Array.from(hex('data-key')),
        wrapped: hex('wrapped-key'),
        keyId: text('key-id'),
        attestation: { signingKeyId: text('signing-key-id'), signature: hex('signature') },
      };
    },
    async unwrapDataKey(wrapped, keyId, context) {
      const a = context?.attestation;
      const message = attestationMessage(text('ring'), keyId, a?.signingKeyId ?? '', wrapped);
      if (!a || !verify('sha256', message, { key: publicKey(), dsaEncoding: 'ieee-p1363' }, a.signature)) {
        throw new Error('the attestation does not verify');
      }
      return Uint8Array.from(hex('data-key'));
    },
  });

  it('is in the document', () => {
    expect([...attested.keys()]).toEqual(['attested-vector-1']);
  });

  it('states the digest of its attestation message, and its signature verifies over it', () => {
    const message = attestationMessage(
      text('ring'),
      text('key-id'),
      text('signing-key-id'),
      hex('wrapped-key'),
    );

    expect(createHash('sha256').update(message).digest('hex')).toBe(text('digest'));
    expect(verify('sha256', message, { key: publicKey(), dsaEncoding: 'ieee-p1363' }, hex('signature'))).toBe(
      true,
    );
  });

  it('seals its inputs to exactly its blob, with version 2 and the attestation in the header', async () => {
    const envelope = new Envelope({
      keys: new DataKeyCache(vectorRing()),
      compressAboveBytes: Number(text('compress-above')),
      random: replay(hex('salt'), hex('nonce')),
    });

    const blob = await envelope.seal(Buffer.from(text('plaintext'), 'utf8'), text('partition-key'));

    expect(Buffer.from(blob).toString('hex')).toBe(hex('blob').toString('hex'));
    const header = parseEnvelopeHeader(blob);
    expect(header.version).toBe(2);
    expect(header.attestation?.signingKeyId).toBe(text('signing-key-id'));
    expect(Buffer.from(header.attestation!.signature)).toEqual(hex('signature'));
  });

  it('opens its blob to its plaintext through a ring that verifies the attestation', async () => {
    const plaintext = await new Envelope({ keys: new DataKeyCache(vectorRing()) }).open(
      hex('blob'),
      text('partition-key'),
    );

    expect(Buffer.from(plaintext).toString('utf8')).toBe(text('plaintext'));
  });

  it('does not open with one signature bit flipped (bad-attestation path)', async () => {
    const blob = hex('blob');
    const { headerLength } = parseEnvelopeHeader(blob);
    // The signature's last byte sits just before the 28 bytes of salt and nonce.
    blob[headerLength - 29] ^= 0x01;

    await expect(
      new Envelope({ keys: new DataKeyCache(vectorRing()) }).open(blob, text('partition-key')),
    ).rejects.toThrow();
  });
});
