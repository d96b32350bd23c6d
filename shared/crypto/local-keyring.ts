/**
 * A key ring holding AES-256 master keys in process memory, for development, tests and
 * the local stack. Data keys are random 32 bytes wrapped with AES-256-GCM under the
 * master key; the wrapped form and its AAD are specified in docs/envelope.md.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { DATA_KEY_BYTES as KEY_BYTES } from '../defaults';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../errors';
import type { DataKey, KeyRing } from './keyring';

const RING_NAME = 'local';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** nonce || ciphertext of the 32-byte data key || tag. */
const WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES;
/** Bound into every wrap as AAD together with the key id; the 0x00 ends the label. */
const WRAP_AAD_LABEL = 'msal-cloud-cache/local-keyring/v1\0';
const MAX_KEY_ID_BYTES = 255;

/** Options of {@link LocalKeyRing}. */
export interface LocalKeyRingOptions {
  /** The AES-256 master key: 32 bytes, or those bytes as base64 (or base64url). */
  readonly masterKey: Uint8Array | string;
  /** Id of `masterKey`, written into every envelope it seals. @default 'local-1' */
  readonly keyId?: string;
  /**
   * Earlier master keys by their ids, so blobs sealed before a rotation still open. New
   * data keys are always wrapped with `masterKey`.
   * @default {}
   */
  readonly previousKeys?: Readonly<Record<string, Uint8Array | string>>;
  /**
   * @internal Tests and test vectors only: the source of data keys (first call, 32 bytes)
   * and wrap nonces (second call, 12 bytes). Never set it in production.
   * @default crypto.randomBytes
   */
  readonly random?: (size: number) => Uint8Array;
}

/**
 * Key ring with in-memory AES-256 master keys (ring name `local`).
 * @example
 * // rotate: new key under a new id, the old one kept for reading
 * const ring = new LocalKeyRing({
 *   masterKey: process.env.CACHE_MASTER_KEY_2!, keyId: 'local-2',
 *   previousKeys: { 'local-1': process.env.CACHE_MASTER_KEY_1! },
 * });
 */
export class LocalKeyRing implements KeyRing {
  readonly name = RING_NAME;
  private readonly keyId: string;
  private readonly current: KeyObject;
  private readonly keys = new Map<string, KeyObject>();
  private readonly random: (size: number) => Uint8Array;

  constructor(options: LocalKeyRingOptions) {
    this.keyId = options.keyId ?? 'local-1';
    checkKeyId(this.keyId, 'keyId');
    this.current = toMasterKey(options.masterKey, 'masterKey');
    this.keys.set(this.keyId, this.current);
    for (const [id, key] of Object.entries(options.previousKeys ?? {})) {
      const setting = `previousKeys.${id}`;
      checkKeyId(id, setting);
      if (id === this.keyId) {
        throw new ConfigurationError(
          setting,
          'has the same id as the current masterKey; give the new master key a new keyId so blobs name the key that sealed them',
        );
      }
      this.keys.set(id, toMasterKey(key, setting));
    }
    this.random = options.random ?? randomBytes;
  }

  /** A fresh random data key wrapped under the current master key. */
  async generateDataKey(): Promise<DataKey> {
    const plaintext = this.take(KEY_BYTES);
    const nonce = this.take(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current, nonce, {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(wrapAad(this.keyId));
    const wrapped = new Uint8Array(WRAPPED_BYTES);
    wrapped.set(nonce, 0);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    wrapped.set(ciphertext, NONCE_BYTES);
    wrapped.set(cipher.getAuthTag(), NONCE_BYTES + KEY_BYTES);
    ciphertext.fill(0);
    return { plaintext, wrapped, keyId: this.keyId };
  }

  /** Unwraps a data key wrapped under the current or a previous master key. */
  async unwrapDataKey(wrapped: Uint8Array, keyId: string): Promise<Uint8Array> {
    const masterKey = this.keys.get(keyId);
    if (!masterKey) {
      throw new KeyServiceError(
        RING_NAME,
        'unwrap',
        KeyServiceFailure.NotFound,
        `no master key with id ${describeId(keyId)}; configured ids: ${[...this.keys.keys()].join(', ')}. ` +
          'Add the key that sealed it to previousKeys.',
      );
    }
    if (wrapped.length !== WRAPPED_BYTES) {
      throw new KeyServiceError(
        RING_NAME,
        'unwrap',
        KeyServiceFailure.InvalidCiphertext,
        `wrapped data key is ${wrapped.length} bytes, a local wrap is ${WRAPPED_BYTES}; it was not made by this key ring`,
      );
    }
    const decipher = createDecipheriv('aes-256-gcm', masterKey, wrapped.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(wrapAad(keyId));
    decipher.setAuthTag(wrapped.subarray(NONCE_BYTES + KEY_BYTES));
    const plaintext = new Uint8Array(KEY_BYTES);
    try {
      const head = decipher.update(wrapped.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES));
      decipher.final();
      plaintext.set(head);
      head.fill(0);
    } catch (cause) {
      throw new KeyServiceError(
        RING_NAME,
        'unwrap',
        KeyServiceFailure.InvalidCiphertext,
        `master key ${describeId(keyId)} cannot authenticate the wrapped data key: it was altered or wrapped under another key with this id`,
        { cause },
      );
    }
    return plaintext;
  }

  private take(size: number): Uint8Array {
    const bytes = this.random(size);
    if (bytes.length !== size) {
      throw new KeyServiceError(
        RING_NAME,
        'generate',
        KeyServiceFailure.Unknown,
        `random source returned ${bytes.length} bytes, expected ${size}`,
      );
    }
    return new Uint8Array(bytes);
  }
}

function wrapAad(keyId: string): Buffer {
  return Buffer.from(WRAP_AAD_LABEL + keyId, 'utf8');
}

function toMasterKey(value: Uint8Array | string, setting: string): KeyObject {
  let bytes: Buffer;
  if (typeof value === 'string') {
    const text = value.trim();
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
      throw new ConfigurationError(
        setting,
        `expected ${KEY_BYTES} bytes as base64, received a ${value.length}-character string that is not base64`,
      );
    }
    bytes = Buffer.from(text, 'base64');
  } else if (value instanceof Uint8Array) {
    bytes = Buffer.from(value);
  } else {
    throw new ConfigurationError(
      setting,
      `expected a Uint8Array or a base64 string, received ${typeof value}`,
    );
  }
  if (bytes.length !== KEY_BYTES) {
    const length = bytes.length;
    bytes.fill(0);
    throw new ConfigurationError(
      setting,
      `an AES-256 master key must be ${KEY_BYTES} bytes, received ${length} bytes. ` +
        `Generate one with: node -e "console.log(require('crypto').randomBytes(${KEY_BYTES}).toString('base64'))"`,
    );
  }
  const key = createSecretKey(bytes);
  bytes.fill(0);
  return key;
}

function checkKeyId(id: string, setting: string): void {
  const size = typeof id === 'string' ? Buffer.byteLength(id, 'utf8') : 0;
  if (size === 0 || size > MAX_KEY_ID_BYTES) {
    throw new ConfigurationError(
      setting,
      `a key id must be 1 to ${MAX_KEY_ID_BYTES} bytes of UTF-8, received ${size} bytes`,
    );
  }
}

/** A key id from a blob is untrusted: quote it and keep the message short. */
function describeId(id: string): string {
  return JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id);
}
