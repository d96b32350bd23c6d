/**
 * Envelope formats v1 and v2: the bytes stored for one cache partition. v2 adds a
 * data-key attestation (a signature by the ring's signing key) and is the only format
 * rings that attest their data keys (Key Vault) read or write; the others write v1. The
 * layout, key derivation, AAD, compression and test vectors are in docs/envelope.md;
 * keep the two in step (test/unit/crypto/envelope-vector.test.ts checks the vectors).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import {
  ConfigurationError,
  EnvelopeError,
  EnvelopeFailure,
  KeyServiceError,
  KeyServiceFailure,
} from '../errors';
import { DATA_KEY_BYTES as KEY_BYTES, ENVELOPE_DEFAULTS } from '../defaults';
import type { DataKeyCache, KeyCallTrace } from './data-key-cache';
import type { DataKeyAttestation, DataKeyContext } from './keyring';

/** ASCII `MCCE` (msal-cloud-cache envelope). */
const MAGIC = Uint8Array.of(0x4d, 0x43, 0x43, 0x45);
const VERSION = 1;
/** The attested format: v1's header plus the signing key id and signature after the wrapped key. */
const VERSION_ATTESTED = 2;
const FLAG_COMPRESSED = 0x01;
const KNOWN_FLAGS = FLAG_COMPRESSED;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** HKDF info = this label (its 0x00 included) || UTF-8(partition key). */
const ITEM_KEY_LABEL = Buffer.from('msal-cloud-cache/envelope/v1/item-key\0', 'utf8');
/** node:crypto caps HKDF info at 1024 bytes; 512 leaves room and fits every partition key the cache makes. */
const MAX_PARTITION_KEY_BYTES = 512;
/** Decompression stops here: an authenticated but hostile blob still cannot exhaust memory. */
const MAX_INFLATED_BYTES = 8 * 1024 * 1024;

/** The fields of an envelope header, as {@link parseEnvelopeHeader} reads them. */
export interface EnvelopeHeader {
  /** Format version; this build reads 1 and 2. */
  readonly version: number;
  /** The flags byte as stored. */
  readonly flags: number;
  /** Flag bit 0: the plaintext was deflate-raw compressed before encryption. */
  readonly compressed: boolean;
  /** Name of the key ring that wrapped the data key (e.g. `aws-kms`, `local`). */
  readonly keyRing: string;
  /** The master key that wrapped the data key (KMS key ARN, Key Vault key version, local id). */
  readonly keyId: string;
  /** The data key as the key ring wrapped it (a view into the blob). */
  readonly wrappedKey: Uint8Array;
  /** Format v2 only: who signed the data key and the signature (views into the blob). */
  readonly attestation?: DataKeyAttestation;
  /** HKDF salt of the item key (16 bytes, a view into the blob). */
  readonly salt: Uint8Array;
  /** AES-GCM nonce (12 bytes, a view into the blob). */
  readonly nonce: Uint8Array;
  /** Bytes from the start of the blob to the end of the nonce: the header part of the AAD. */
  readonly headerLength: number;
  /** Bytes after the header: ciphertext and the 16-byte tag. */
  readonly bodyLength: number;
}

/** Options of {@link Envelope}. */
export interface EnvelopeOptions {
  /** Where data keys come from; its key ring's name is written into every envelope. */
  readonly keys: DataKeyCache;
  /**
   * Compress the plaintext (deflate-raw) when it is larger than this many bytes and the
   * compressed form is smaller. `false` never compresses.
   * @defaultValue {@link ENVELOPE_DEFAULTS.compressAboveBytes}
   */
  readonly compressAboveBytes?: number | false;
  /**
   * @internal Tests and test vectors only: the source of each envelope's salt (first
   * call, 16 bytes) and nonce (second call, 12 bytes). Never set it in production.
   * @default crypto.randomBytes
   */
  readonly random?: (size: number) => Uint8Array;
}

/**
 * Seals and opens envelopes (format v1, or v2 under a ring that attests its data keys)
 * bound to a partition key.
 * @example
 * const envelope = new Envelope({ keys: new DataKeyCache(keyRing) });
 * const blob = await envelope.seal(Buffer.from(msalJson), storeKey);
 * const json = Buffer.from(await envelope.open(blob, storeKey)).toString('utf8');
 */
export class Envelope {
  private readonly keys: DataKeyCache;
  private readonly ringName: Uint8Array;
  private readonly compressAboveBytes: number | false;
  private readonly random: (size: number) => Uint8Array;

  constructor(options: EnvelopeOptions) {
    this.keys = options.keys;
    this.ringName = Buffer.from(options.keys.ringName, 'utf8');
    if (this.ringName.length === 0 || this.ringName.length > 0xff) {
      throw new ConfigurationError(
        'keyRing.name',
        `must be 1 to 255 bytes of UTF-8 to fit the envelope header, received ${this.ringName.length} bytes`,
      );
    }
    const compress = options.compressAboveBytes ?? ENVELOPE_DEFAULTS.compressAboveBytes;
    if (compress !== false && !(Number.isInteger(compress) && compress >= 0)) {
      throw new ConfigurationError(
        'compressAboveBytes',
        `expected a non-negative integer or false, received ${String(compress)}`,
      );
    }
    this.compressAboveBytes = compress;
    this.random = options.random ?? randomBytes;
  }

  /**
   * Encrypts `plaintext` (MSAL cache JSON) into an envelope that opens only under
   * `partitionKey`.
   * @throws KeyServiceError when no data key can be had: write nothing.
   * `context.partitionKind` picks a data key made for that kind (rings may bind it).
   * @throws ConfigurationError when `partitionKey` is empty or longer than 512 bytes.
   */
  async seal(
    plaintext: Uint8Array,
    partitionKey: string,
    context: DataKeyContext = {},
    trace?: KeyCallTrace,
  ): Promise<Uint8Array> {
    const partition = partitionKeyBytes(partitionKey);
    const dataKey = await this.keys.encryptionKey(context, trace);
    const deflated = this.compress(plaintext);
    const keyId = Buffer.from(dataKey.keyId, 'utf8');
    const salt = this.take(SALT_BYTES);
    const nonce = this.take(NONCE_BYTES);
    const attestation = dataKey.attestation;
    const signer = attestation ? Buffer.from(attestation.signingKeyId, 'utf8') : undefined;
    const header = concat(
      MAGIC,
      [attestation ? VERSION_ATTESTED : VERSION, deflated ? FLAG_COMPRESSED : 0, this.ringName.length],
      this.ringName,
      uint16(keyId.length),
      keyId,
      uint16(dataKey.wrapped.length),
      dataKey.wrapped,
      ...(attestation && signer
        ? [uint16(signer.length), signer, uint16(attestation.signature.length), attestation.signature]
        : []),
      salt,
      nonce,
    );
    const itemKey = deriveItemKey(dataKey.plaintext, salt, partition);
    const cipher = createCipheriv('aes-256-gcm', itemKey, nonce, { authTagLength: TAG_BYTES });
    itemKey.fill(0);
    cipher.setAAD(concat(header, partition));
    const ciphertext = cipher.update(deflated ?? plaintext);
    return concat(header, ciphertext, cipher.final(), cipher.getAuthTag());
  }

  /**
   * Decrypts an envelope sealed for `partitionKey`.
   * @throws EnvelopeError when the blob itself cannot be opened (reason says why); never
   * serve it, and replace it only by a conditional write.
   * @throws KeyServiceError when the key service is throttled, unavailable, denies
   * access or is disabled: the blob may be fine, so do not overwrite it.
   * `context.partitionKind` is the kind of the partition being read (from the caller,
   * never from the blob). Under a ring that attests its data keys, only v2 envelopes
   * whose attestation verifies are opened (`unattested` / `bad-attestation` otherwise).
   * @throws ConfigurationError when `partitionKey` is empty or longer than 512 bytes.
   */
  async open(
    blob: Uint8Array,
    partitionKey: string,
    context: DataKeyContext = {},
    trace?: KeyCallTrace,
  ): Promise<Uint8Array> {
    const partition = partitionKeyBytes(partitionKey);
    const header = parseEnvelopeHeader(blob);
    if (header.keyRing !== this.keys.ringName) {
      throw new EnvelopeError(
        EnvelopeFailure.ForeignKeyRing,
        `sealed by key ring ${quote(header.keyRing)}, this deployment uses ${quote(this.keys.ringName)}; ` +
          'configure that key ring to read it, or let the cache replace it',
      );
    }
    if (this.keys.attestsDataKeys && !header.attestation) {
      throw new EnvelopeError(
        EnvelopeFailure.Unattested,
        `format v${header.version} carries no data-key attestation, and under key ring ${quote(header.keyRing)} ` +
          'anyone who can read the public key can make such an envelope; it is never trusted, and the next write replaces it',
      );
    }
    if (!this.keys.attestsDataKeys && header.attestation) {
      throw new EnvelopeError(
        EnvelopeFailure.UnsupportedVersion,
        `format v${header.version} (attested) is written only by key rings that sign their data keys; ` +
          `key ring ${quote(header.keyRing)} here does not`,
      );
    }
    let dataKey: Uint8Array;
    try {
      dataKey = await this.keys.decryptionKey(
        header.keyId,
        header.wrappedKey,
        {
          ...(context.partitionKind ? { partitionKind: context.partitionKind } : {}),
          ...(header.attestation ? { attestation: header.attestation } : {}),
        },
        trace,
      );
    } catch (e) {
      if (e instanceof KeyServiceError && e.reason === KeyServiceFailure.BadAttestation) {
        throw new EnvelopeError(
          EnvelopeFailure.BadAttestation,
          `the data key of master key ${quote(header.keyId)} is not attested by the configured signing key; ` +
            'the header was forged or altered, and the next write replaces it',
          { cause: e },
        );
      }
      if (
        e instanceof KeyServiceError &&
        (e.reason === KeyServiceFailure.InvalidCiphertext || e.reason === KeyServiceFailure.NotFound)
      ) {
        throw new EnvelopeError(
          EnvelopeFailure.UnknownKey,
          `key ring ${quote(header.keyRing)} cannot unwrap the data key of master key ${quote(header.keyId)} (${e.reason}); ` +
            'restore that master key (e.g. previousKeys) to read it, or let the cache replace it',
          { cause: e },
        );
      }
      // Throttled, unavailable, access denied, disabled: the blob is not at fault.
      throw e;
    }
    const itemKey = deriveItemKey(dataKey, header.salt, partition);
    const decipher = createDecipheriv('aes-256-gcm', itemKey, header.nonce, { authTagLength: TAG_BYTES });
    itemKey.fill(0);
    decipher.setAAD(concat(blob.subarray(0, header.headerLength), partition));
    decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
    let body: Uint8Array;
    try {
      // GCM releases bytes before final() verifies the tag; nothing is used until it has.
      body = concat(
        decipher.update(blob.subarray(header.headerLength, blob.length - TAG_BYTES)),
        decipher.final(),
      );
    } catch (cause) {
      throw new EnvelopeError(
        EnvelopeFailure.AuthenticationFailed,
        `AES-GCM rejected the ${blob.length}-byte blob: it was altered, truncated, or sealed for another partition`,
        { cause },
      );
    }
    if (!header.compressed) return body;
    try {
      return concat(inflateRawSync(body, { maxOutputLength: MAX_INFLATED_BYTES }));
    } catch (cause) {
      throw new EnvelopeError(
        EnvelopeFailure.Malformed,
        `the compressed body does not inflate to at most ${MAX_INFLATED_BYTES} bytes of deflate-raw data`,
        { cause },
      );
    }
  }

  private compress(plaintext: Uint8Array): Buffer | undefined {
    if (this.compressAboveBytes === false || plaintext.length <= this.compressAboveBytes) return undefined;
    // Never write what open() would refuse to inflate.
    if (plaintext.length > MAX_INFLATED_BYTES) return undefined;
    const deflated = deflateRawSync(plaintext);
    return deflated.length < plaintext.length ? deflated : undefined;
  }

  private take(size: number): Uint8Array {
    const bytes = this.random(size);
    if (bytes.length !== size) {
      throw new ConfigurationError('random', `returned ${bytes.length} bytes, expected ${size}`);
    }
    return bytes;
  }
}

/**
 * Reads and checks an envelope header without decrypting (operator tools, tests).
 * @throws EnvelopeError reason `malformed` or `unsupported-version`
 * @example
 * const { keyRing, keyId, compressed } = parseEnvelopeHeader(blob);
 */
export function parseEnvelopeHeader(blob: Uint8Array): EnvelopeHeader {
  if (!(blob instanceof Uint8Array)) {
    throw malformed(`expected the blob as a Uint8Array, received ${typeof blob}`);
  }
  if (blob.length < MAGIC.length || MAGIC.some((byte, i) => blob[i] !== byte)) {
    throw malformed(
      `the ${blob.length}-byte blob does not start with the envelope magic "MCCE"; it was not written by this library`,
    );
  }
  const reader = new Reader(blob, MAGIC.length);
  const version = reader.byte('version');
  if (version !== VERSION && version !== VERSION_ATTESTED) {
    throw new EnvelopeError(
      EnvelopeFailure.UnsupportedVersion,
      `format version ${version}; this build reads versions ${VERSION} and ${VERSION_ATTESTED}. Upgrade every reader before a newer writer shares the store`,
    );
  }
  const flags = reader.byte('flags');
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new EnvelopeError(
      EnvelopeFailure.UnsupportedVersion,
      `flags 0x${flags.toString(16).padStart(2, '0')} use bits this build does not know (only bit 0, compressed)`,
    );
  }
  const keyRing = reader.text(reader.byte('key ring name length'), 'key ring name');
  const keyId = reader.text(reader.uint16('key id length'), 'key id');
  const wrappedKey = reader.bytes(reader.uint16('wrapped key length'), 'wrapped key');
  if (wrappedKey.length === 0) throw malformed('the wrapped key is empty');
  let attestation: DataKeyAttestation | undefined;
  if (version === VERSION_ATTESTED) {
    const signingKeyId = reader.text(reader.uint16('signing key id length'), 'signing key id');
    const signature = reader.bytes(reader.uint16('signature length'), 'signature');
    if (signature.length === 0) throw malformed('the signature is empty');
    attestation = { signingKeyId, signature };
  }
  const salt = reader.bytes(SALT_BYTES, 'salt');
  const nonce = reader.bytes(NONCE_BYTES, 'nonce');
  const headerLength = reader.offset;
  const bodyLength = blob.length - headerLength;
  if (bodyLength < TAG_BYTES) {
    throw malformed(`the body is ${bodyLength} bytes, shorter than the ${TAG_BYTES}-byte AES-GCM tag`);
  }
  return {
    version,
    flags,
    compressed: (flags & FLAG_COMPRESSED) !== 0,
    keyRing,
    keyId,
    wrappedKey,
    ...(attestation ? { attestation } : {}),
    salt,
    nonce,
    headerLength,
    bodyLength,
  };
}

/** Sequential reader whose every overrun is a `malformed` envelope naming the field. */
class Reader {
  private static readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly blob: Uint8Array,
    public offset: number,
  ) {}

  byte(field: string): number {
    return this.bytes(1, field)[0];
  }

  uint16(field: string): number {
    const [high, low] = this.bytes(2, field);
    return (high << 8) | low;
  }

  bytes(size: number, field: string): Uint8Array {
    if (this.offset + size > this.blob.length) {
      throw malformed(
        `the ${field} (${size} bytes at offset ${this.offset}) runs past the end of the ${this.blob.length}-byte blob`,
      );
    }
    const view = this.blob.subarray(this.offset, this.offset + size);
    this.offset += size;
    return view;
  }

  text(size: number, field: string): string {
    if (size === 0) throw malformed(`the ${field} is empty`);
    const bytes = this.bytes(size, field);
    try {
      return Reader.utf8.decode(bytes);
    } catch (cause) {
      throw malformed(`the ${field} is not valid UTF-8`, cause);
    }
  }
}

function malformed(message: string, cause?: unknown): EnvelopeError {
  return new EnvelopeError(EnvelopeFailure.Malformed, message, cause === undefined ? undefined : { cause });
}

/** HKDF-SHA256(ikm = data key, salt, info = label || partition key) → 32-byte AES key. */
function deriveItemKey(dataKey: Uint8Array, salt: Uint8Array, partition: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, concat(ITEM_KEY_LABEL, partition), KEY_BYTES));
}

function partitionKeyBytes(partitionKey: string): Uint8Array {
  const bytes = typeof partitionKey === 'string' ? Buffer.from(partitionKey, 'utf8') : undefined;
  if (!bytes || bytes.length === 0 || bytes.length > MAX_PARTITION_KEY_BYTES) {
    throw new ConfigurationError(
      'partitionKey',
      `must be 1 to ${MAX_PARTITION_KEY_BYTES} bytes of UTF-8, received ${bytes ? `${bytes.length} bytes` : typeof partitionKey}; ` +
        'pass the partition store key',
    );
  }
  return bytes;
}

function uint16(value: number): Uint8Array {
  return Uint8Array.of(value >>> 8, value & 0xff);
}

/** Concatenates into a fresh, unpooled Uint8Array (nothing else shares its buffer). */
function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Strings from a blob are untrusted: quote them and keep messages short. */
function quote(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
