/**
 * The key-ring contract. A key ring only makes and unwraps data keys; the envelope does
 * the encryption and the data-key cache decides when to call the ring.
 */

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
}

export interface KeyRing {
  /** Stable ring type written into every envelope, e.g. `aws-kms`, `azure-keyvault`, `local`. At most 255 bytes. */
  readonly name: string;
  /** @throws KeyServiceError */
  generateDataKey(): Promise<DataKey>;
  /** @throws KeyServiceError (reason `invalid-ciphertext` or `not-found` when the key cannot open it) */
  unwrapDataKey(wrapped: Uint8Array, keyId: string): Promise<Uint8Array>;
}
