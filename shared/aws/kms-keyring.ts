/**
 * The AWS KMS key ring: data keys from `GenerateDataKey` (AES_256) under one KMS key,
 * unwrapped with `Decrypt`. Both calls carry the encryption context
 * `{ purpose: 'msal-token-cache', app: <clientId>, kind: <app|obo|user> }` (kind when the
 * caller names the partition kind, as the cache always does), so a data key made for one
 * app or partition kind cannot be unwrapped for another, and key policies and grants can
 * limit a role with `kms:EncryptionContext:app` and `kms:EncryptionContext:kind`.
 */
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  KMSServiceException,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import {
  DATA_KEY_BYTES,
  ENCRYPTION_CONTEXT_KIND_KEY,
  ENCRYPTION_CONTEXT_PURPOSE,
  KMS_KEY_RING_DEFAULTS,
} from '../defaults';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../errors';
import { budgetOption, hasReadyClient } from '../options';
import type { DataKey, DataKeyContext, KeyRing, PartitionKind } from '../crypto/keyring';

/** Settings every {@link KmsKeyRing} needs. */
interface KmsKeyRingBaseOptions {
  /**
   * The KMS key that makes data keys: key id, key ARN, alias name (`alias/x`) or alias ARN.
   * Unwrapping always uses the key ARN recorded with each data key, so retargeting an alias
   * leaves old envelopes readable.
   */
  readonly keyId: string;
  /** The application (client) id; it goes into the encryption context of every call. */
  readonly clientId: string;
  /** Whole-call budget of one key-service call, SDK retries included. @defaultValue {@link KMS_KEY_RING_DEFAULTS.budgetMs} */
  readonly budgetMs?: number;
  /**
   * @deprecated The old name of `budgetMs` (the whole call, not one attempt); still works.
   * Per-attempt timeouts go on the client (`clientConfig.requestHandler`).
   */
  readonly timeoutMs?: number;
}

/** Options of {@link KmsKeyRing}: a ready `client` or a `clientConfig` to build one from, not both. */
export type KmsKeyRingOptions = KmsKeyRingBaseOptions &
  (
    | {
        /** A ready client, shared with the rest of the process. */
        readonly client: KMSClient;
        readonly clientConfig?: never;
      }
    | {
        /** Config of a client the ring creates and owns. */
        readonly clientConfig: KMSClientConfig;
        readonly client?: never;
      }
  );

/** The `purpose` value in the encryption context of every call. */
export const kmsEncryptionContextPurpose = ENCRYPTION_CONTEXT_PURPOSE;

/** The encryption context key that names the partition kind. */
export const kmsEncryptionContextKindKey = ENCRYPTION_CONTEXT_KIND_KEY;

/** The encryption context the ring sends for `clientId` and a partition kind (for key policies and grants). */
export function kmsEncryptionContext(clientId: string, kind?: PartitionKind): Record<string, string> {
  return {
    purpose: kmsEncryptionContextPurpose,
    app: clientId,
    ...(kind ? { [kmsEncryptionContextKindKey]: kind } : {}),
  };
}

/**
 * A {@link KeyRing} backed by AWS KMS.
 * @example
 * const keyRing = new KmsKeyRing({
 *   keyId: 'alias/token-cache',
 *   clientId: process.env.CLIENT_ID!,
 *   client: new KMSClient({}),
 * });
 */
export class KmsKeyRing implements KeyRing {
  /** Ring type recorded in every envelope. */
  readonly name = 'aws-kms';
  private readonly client: KMSClient;
  private readonly ownsClient: boolean;
  private readonly keyId: string;
  private readonly clientId: string;
  private readonly budgetMs: number;

  constructor(options: KmsKeyRingOptions) {
    if (typeof options.keyId !== 'string' || options.keyId.trim() === '') {
      throw new ConfigurationError(
        'keyId',
        `expected a KMS key id, key ARN, alias name or alias ARN, got ${JSON.stringify(options.keyId)}`,
      );
    }
    if (typeof options.clientId !== 'string' || options.clientId.trim() === '') {
      throw new ConfigurationError(
        'clientId',
        `expected the application (client) id, got ${JSON.stringify(options.clientId)}`,
      );
    }
    const budget = budgetOption(
      options,
      { name: 'timeoutMs', value: options.timeoutMs },
      KMS_KEY_RING_DEFAULTS.budgetMs,
      { wholeMs: true },
    );
    const ready = hasReadyClient(options, {
      ready: 'client',
      build: ['clientConfig'],
      pass: 'a ready KMSClient as client, or its config as clientConfig',
    });
    this.client = ready ? options.client : new KMSClient(options.clientConfig);
    this.ownsClient = !ready;
    this.keyId = options.keyId;
    this.clientId = options.clientId;
    this.budgetMs = budget.ms;
  }

  /** Asks KMS for a fresh AES-256 data key; `keyId` of the result is the key ARN KMS used. */
  async generateDataKey(context: DataKeyContext = {}): Promise<DataKey> {
    let output;
    try {
      output = await this.client.send(
        new GenerateDataKeyCommand({
          KeyId: this.keyId,
          KeySpec: 'AES_256',
          EncryptionContext: kmsEncryptionContext(this.clientId, context.partitionKind),
        }),
        { abortSignal: AbortSignal.timeout(this.budgetMs) },
      );
    } catch (e) {
      throw this.failure('generate', this.keyId, e);
    }
    const { Plaintext, CiphertextBlob, KeyId } = output;
    if (!Plaintext || Plaintext.length !== DATA_KEY_BYTES || !CiphertextBlob || !KeyId) {
      throw new KeyServiceError(
        this.name,
        'generate',
        KeyServiceFailure.Unknown,
        `GenerateDataKey on ${this.keyId} returned an incomplete answer (Plaintext of ${Plaintext?.length ?? 0} bytes, ` +
          `CiphertextBlob ${CiphertextBlob ? 'present' : 'missing'}, KeyId ${KeyId ? 'present' : 'missing'})`,
      );
    }
    return { plaintext: Plaintext, wrapped: CiphertextBlob, keyId: KeyId };
  }

  /** Decrypts a data key with the KMS key that made it (`keyId` as recorded in the envelope). */
  async unwrapDataKey(wrapped: Uint8Array, keyId: string, context: DataKeyContext = {}): Promise<Uint8Array> {
    if (keyId === '' || wrapped.length === 0) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.InvalidCiphertext,
        `the envelope records ${keyId === '' ? 'no key id' : 'an empty wrapped key'}; it was not sealed by this key ring`,
      );
    }
    let output;
    try {
      output = await this.client.send(
        new DecryptCommand({
          CiphertextBlob: wrapped,
          KeyId: keyId,
          EncryptionContext: kmsEncryptionContext(this.clientId, context.partitionKind),
        }),
        { abortSignal: AbortSignal.timeout(this.budgetMs) },
      );
    } catch (e) {
      throw this.failure('unwrap', keyId, e);
    }
    if (!output.Plaintext || output.Plaintext.length !== DATA_KEY_BYTES) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.InvalidCiphertext,
        `Decrypt with ${keyId} returned ${output.Plaintext?.length ?? 0} bytes, not a ${DATA_KEY_BYTES}-byte data key`,
      );
    }
    return output.Plaintext;
  }

  /** Releases the SDK client if the ring created it from `clientConfig`; a passed-in client is left alone. */
  destroy(): void {
    if (this.ownsClient) this.client.destroy();
  }

  private failure(operation: 'generate' | 'unwrap', keyId: string, cause: unknown): KeyServiceError {
    const reason = classify(cause);
    const what = operation === 'generate' ? `GenerateDataKey on ${keyId}` : `Decrypt with ${keyId}`;
    return new KeyServiceError(
      this.name,
      operation,
      reason,
      `${what}: ${describe(cause, this.budgetMs)}. ${advice[reason]}`,
      {
        cause,
      },
    );
  }
}

const reasonByErrorName: Readonly<Record<string, KeyServiceFailure>> = {
  NotFoundException: KeyServiceFailure.NotFound,
  DisabledException: KeyServiceFailure.Disabled,
  KMSInvalidStateException: KeyServiceFailure.Disabled,
  AccessDeniedException: KeyServiceFailure.AccessDenied,
  InvalidCiphertextException: KeyServiceFailure.InvalidCiphertext,
  IncorrectKeyException: KeyServiceFailure.InvalidCiphertext,
  ThrottlingException: KeyServiceFailure.Throttled,
  LimitExceededException: KeyServiceFailure.Throttled,
  // The SDK's own per-attempt timeout (requestTimeout) and our abort signal.
  TimeoutError: KeyServiceFailure.Unavailable,
  AbortError: KeyServiceFailure.Unavailable,
};

const networkErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
// When a socket error comes from another realm (e.g. under jest), the SDK's retry layer
// replaces it with `new Error("AWS SDK error wrapper for Error: connect ECONNREFUSED ...")`,
// so the code survives only in the message.
const networkErrorInMessage = new RegExp(`\\b(${[...networkErrorCodes].join('|')})\\b|socket hang up`);

const advice: Readonly<Record<KeyServiceFailure, string>> = {
  'not-found': 'Check the key id, alias and region the ring is configured with.',
  disabled: 'Enable the KMS key (or cancel its scheduled deletion).',
  'access-denied':
    "Grant kms:GenerateDataKey and kms:Decrypt on the key to the function's role for this encryption context.",
  'invalid-ciphertext':
    'The data key was made by another key, for another app, or was altered; the envelope cannot be opened.',
  'bad-attestation': 'KMS data keys carry no attestation; see the cause.',
  throttled: 'KMS asked to slow down; the data-key cache should absorb most calls.',
  unavailable: 'KMS could not be reached or failed; retry later.',
  unknown: 'See the cause.',
};

interface ErrorLike {
  readonly name: string;
  readonly message: string;
  readonly code?: unknown;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

// Duck-typed rather than `instanceof Error`: socket errors can come from another realm.
function asErrorLike(e: unknown): ErrorLike | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const { name, message } = e as { name?: unknown; message?: unknown };
  return typeof name === 'string' && typeof message === 'string' ? (e as ErrorLike) : undefined;
}

function classify(cause: unknown): KeyServiceFailure {
  const e = asErrorLike(cause);
  if (!e) return KeyServiceFailure.Unknown;
  const byName = reasonByErrorName[e.name];
  if (byName) return byName;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && status >= 500) return KeyServiceFailure.Unavailable;
  // KMS answered, with something this ring has no specific reason for.
  if (cause instanceof KMSServiceException || status !== undefined) return KeyServiceFailure.Unknown;
  if (typeof e.code === 'string' && networkErrorCodes.has(e.code)) return KeyServiceFailure.Unavailable;
  if (networkErrorInMessage.test(e.message)) return KeyServiceFailure.Unavailable;
  return KeyServiceFailure.Unknown;
}

function describe(cause: unknown, budgetMs: number): string {
  const e = asErrorLike(cause);
  if (!e) return `failed with ${String(cause)}`;
  if (e.name === 'AbortError') return `no answer within ${budgetMs} ms`;
  const status = e.$metadata?.httpStatusCode;
  return `${e.name}${status === undefined ? '' : ` (HTTP ${status})`}: ${e.message}`;
}
