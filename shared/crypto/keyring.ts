/**
 * The key-ring contract. A key ring only makes and unwraps data keys; the envelope does
 * the encryption and the data-key cache decides when to call the ring.
 */

import { createHash } from 'node:crypto';

/** The partition kinds (app / obo / user); rings may bind data keys to one kind. */
export type PartitionKind = 'app' | 'obo' | 'user';

/** What the data key is for, as the caller (not the blob) knows it. */
export interface DataKeyContext {
  /**
   * The kind of the partition being sealed or opened. The KMS ring puts it into the
   * encryption context, so data keys are per kind and grants can be limited to kinds.
   * @default undefined (no kind: rings that bind kinds refuse)
   */
  readonly partitionKind?: PartitionKind;
}

/**
 * Proof that a data key was made by a holder of a signing key (envelope format v2): a
 * signature by `signingKeyId` over {@link attestationMessage}.
 */
export interface DataKeyAttestation {
  /** The exact signing key version (e.g. a versioned Key Vault key id). */
  readonly signingKeyId: string;
  /** The signature (ES256: 64 bytes, r || s). */
  readonly signature: Uint8Array;
}

/** Domain separation of the attestation message (its 0x00 included). */
const ATTESTATION_LABEL = Buffer.from('msal-cloud-cache/envelope/v2/data-key-attestation\0', 'utf8');
/** The envelope format version that carries attestations. */
export const ATTESTED_FORMAT_VERSION = 2;

/**
 * The bytes a data-key attestation signs (docs/envelope.md, "Attestation"):
 * label || 0x02 || u8 len || ring name || u16 len || key id || u16 len || signing key id ||
 * u16 len || wrapped key. ES256 signs SHA-256 of it ({@link attestationDigest}).
 */
export function attestationMessage(
  ringName: string,
  keyId: string,
  signingKeyId: string,
  wrapped: Uint8Array,
): Buffer {
  const ring = Buffer.from(ringName, 'utf8');
  const kid = Buffer.from(keyId, 'utf8');
  const sid = Buffer.from(signingKeyId, 'utf8');
  const u16 = (n: number): Buffer => Buffer.from([n >>> 8, n & 0xff]);
  return Buffer.concat([
    ATTESTATION_LABEL,
    Buffer.from([ATTESTED_FORMAT_VERSION, ring.length]),
    ring,
    u16(kid.length),
    kid,
    u16(sid.length),
    sid,
    u16(wrapped.length),
    wrapped,
  ]);
}

/** SHA-256 of {@link attestationMessage}: what Key Vault's `sign` (ES256) is given. */
export function attestationDigest(
  ringName: string,
  keyId: string,
  signingKeyId: string,
  wrapped: Uint8Array,
): Buffer {
  return createHash('sha256')
    .update(attestationMessage(ringName, keyId, signingKeyId, wrapped))
    .digest();
}

/** A fresh 256-bit data key, in the clear and wrapped by the ring's master key. */
export interface DataKey {
  /** 32 bytes. Never logged, never stored. */
  readonly plaintext: Uint8Array;
  /** The wrapped key, stored in the envelope header. */
  readonly wrapped: Uint8Array;
  /**
   * The exact master key that wrapped it (KMS key ARN, Key Vault versioned key id,
   * local key id). Stored in the envelope header so a blob sealed before a rotation
   * still names the key version that opens it.
   */
  readonly keyId: string;
  /** Present exactly when the ring attests its data keys ({@link KeyRing.attestsDataKeys}). */
  readonly attestation?: DataKeyAttestation;
}

/** What {@link KeyRing.unwrapDataKey} is told besides the wrapped key. */
export interface UnwrapContext extends DataKeyContext {
  /** The attestation from the envelope header (format v2); absent for v1. */
  readonly attestation?: DataKeyAttestation;
}

export interface KeyRing {
  /** Stable ring type written into every envelope, e.g. `aws-kms`, `azure-keyvault`, `local`. At most 255 bytes. */
  readonly name: string;
  /**
   * True when wrapping is a public operation (anyone can make a wrapped key that
   * unwraps): every data key then carries an attestation, envelopes are written in format
   * v2, and unwrap verifies the attestation before trusting the key; v1 envelopes are
   * never opened.
   * @default false
   */
  readonly attestsDataKeys?: boolean;
  /** @throws KeyServiceError */
  generateDataKey(context?: DataKeyContext): Promise<DataKey>;
  /**
   * @throws KeyServiceError (reason `invalid-ciphertext` or `not-found` when the key cannot
   * open it, `bad-attestation` when an attesting ring's attestation does not verify)
   */
  unwrapDataKey(wrapped: Uint8Array, keyId: string, context?: UnwrapContext): Promise<Uint8Array>;
}
