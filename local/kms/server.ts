/**
 * A KMS-compatible server for the local stack and the integration tests: the subset of the
 * KMS JSON 1.1 API the key ring and an operator use, with real AES-256-GCM, the encryption
 * context bound as AAD, key rotation, key states, per-operation counters and fault switches.
 * Keys live in memory and die with the server.
 */
import { randomBytes } from 'node:crypto';
import type { KMSClientConfig } from '@aws-sdk/client-kms';
import {
  AwsJsonError,
  blobMember,
  integerMember,
  noAnswer,
  startAwsJsonServer,
  stringMapMember,
  stringMember,
  validationError,
  type CallCounters,
  type JsonObject,
} from './aws-json-server';
import { KeyStore, type AliasRecord, type KeyRecord, type KeyStoreState } from './key-store';

/** Options of {@link startLocalKms}. */
export interface LocalKmsOptions {
  /** TCP port on 127.0.0.1. @default 0 (any free port) */
  readonly port?: number;
  /** Region written into ARNs and the client config. @default 'us-east-1' */
  readonly region?: string;
  /** Account id written into ARNs. @default '000000000000' */
  readonly accountId?: string;
  /** Keys of a previous run ({@link LocalKms.exportState}), so its ciphertexts still decrypt. @default none */
  readonly state?: KeyStoreState;
  /**
   * Per-caller policies, by SigV4 access key id (the `Credential=<id>/...` of the
   * Authorization header), like a key policy's `kms:EncryptionContext:<key>` conditions:
   * GenerateDataKey, Encrypt and Decrypt are allowed only when the request's encryption
   * context has, for every key listed, one of the listed values; otherwise
   * AccessDeniedException. When set, a caller with no entry is denied (fail closed).
   * @default none (every caller may do everything)
   */
  readonly policies?: Readonly<Record<string, LocalKmsPolicy>>;
}

/** What one caller may do ({@link LocalKmsOptions.policies}). */
export interface LocalKmsPolicy {
  /** Required encryption context values: key → allowed values (StringEquals with a list). */
  readonly encryptionContext: Readonly<Record<string, readonly string[]>>;
}

/** The operations {@link LocalKmsOptions.policies} conditions. */
const CONTEXT_OPERATIONS = new Set(['GenerateDataKey', 'Encrypt', 'Decrypt']);

/** Which requests a fault hits. */
interface FaultScope {
  /** How many matching requests fail before the fault clears itself. @default every one until `setFault(undefined)` */
  readonly count?: number;
  /** Operations it applies to, e.g. `['Decrypt']`. @default all */
  readonly ops?: readonly string[];
}

/**
 * A failure the server injects before handling a request:
 * `throttle` → 400 ThrottlingException; `unavailable` → 503; `access-denied` → 400
 * AccessDeniedException; `hang` → no answer at all (for client timeouts); `error` → any
 * `__type` with any status (e.g. LimitExceededException, KMSInternalException 500).
 */
export type LocalKmsFault =
  | (FaultScope & { readonly kind: 'throttle' | 'unavailable' | 'access-denied' | 'hang' })
  | (FaultScope & {
      readonly kind: 'error';
      readonly type: string;
      /** @default 400 */
      readonly status?: number;
      /** @default a generic message naming the type */
      readonly message?: string;
    });

/** Options of {@link LocalKms.createKey}. */
export interface LocalKmsCreateKeyOptions {
  /** @default '' */
  readonly description?: string;
  /** An alias to point at the new key, e.g. `alias/token-cache`. @default none */
  readonly alias?: string;
}

/** A running local KMS. */
export interface LocalKms {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly region: string;
  readonly accountId: string;
  /** A ready `KMSClientConfig`: endpoint, region and fake static credentials. */
  readonly clientConfig: KMSClientConfig;
  /** Creates an enabled symmetric key directly (not counted as a request). */
  createKey(options?: LocalKmsCreateKeyOptions): Promise<{ keyId: string; arn: string }>;
  /** Requests received per operation (e.g. `calls('Decrypt')`), faulted ones included. */
  readonly counters: CallCounters;
  /** Injects a failure, replacing any previous one; `undefined` clears it. */
  setFault(fault: LocalKmsFault | undefined): void;
  /** Keys and aliases with their material, for {@link LocalKmsOptions.state} of a later run. Secret: keep it local. */
  exportState(): KeyStoreState;
  /** Stops the server and drops every open connection. */
  stop(): Promise<void>;
}

/** The operations this server speaks (`x-amz-target: TrentService.<Op>`). */
export const localKmsOperations = [
  'CreateKey',
  'DescribeKey',
  'CreateAlias',
  'UpdateAlias',
  'ListAliases',
  'GenerateDataKey',
  'Encrypt',
  'Decrypt',
  'DisableKey',
  'EnableKey',
  'EnableKeyRotation',
  'DisableKeyRotation',
  'GetKeyRotationStatus',
  'RotateKeyOnDemand',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
] as const;

type Operation = (typeof localKmsOperations)[number];

/**
 * Starts a KMS-compatible server on 127.0.0.1.
 * @example
 * const kms = await startLocalKms();
 * const { arn } = await kms.createKey({ alias: 'alias/token-cache' });
 * const client = new KMSClient(kms.clientConfig);
 * // ...
 * await kms.stop();
 */
export async function startLocalKms(options: LocalKmsOptions = {}): Promise<LocalKms> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const store = new KeyStore(region, accountId);
  if (options.state) store.importState(options.state);
  const operations = kmsOperations(store);
  let fault: { spec: LocalKmsFault; remaining: number } | undefined;

  const injectedFailure = (
    operation: string,
    input: JsonObject,
  ): AwsJsonError | typeof noAnswer | undefined => {
    if (!fault || (fault.spec.ops && !fault.spec.ops.includes(operation))) return undefined;
    const { spec } = fault;
    fault.remaining -= 1;
    if (fault.remaining <= 0) fault = undefined;
    switch (spec.kind) {
      case 'hang':
        return noAnswer;
      case 'throttle':
        return new AwsJsonError('ThrottlingException', 'Rate exceeded');
      case 'unavailable':
        return new AwsJsonError('ServiceUnavailableException', 'Service Unavailable', 503);
      case 'access-denied': {
        const keyId = typeof input.KeyId === 'string' ? input.KeyId : undefined;
        let resource = '*';
        try {
          if (keyId !== undefined) resource = store.resolve(keyId).arn;
        } catch {
          resource = keyId ?? '*';
        }
        return new AwsJsonError(
          'AccessDeniedException',
          `User: arn:aws:sts::${accountId}:assumed-role/local/local is not authorized to perform: ` +
            `kms:${operation} on resource: ${resource} because no identity-based policy allows the kms:${operation} action`,
        );
      }
      case 'error':
        return new AwsJsonError(spec.type, spec.message ?? `injected ${spec.type}`, spec.status ?? 400);
    }
  };

  const denied = (
    operation: string,
    input: JsonObject,
    authorization: string | undefined,
  ): AwsJsonError | undefined => {
    const policies = options.policies;
    if (!policies || !CONTEXT_OPERATIONS.has(operation)) return undefined;
    const caller = /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1] ?? '';
    const policy = Object.hasOwn(policies, caller) ? policies[caller] : undefined;
    const context = stringMapMember(input, 'EncryptionContext') ?? {};
    const unmet = policy
      ? Object.entries(policy.encryptionContext).find(
          ([key, allowed]) => !Object.hasOwn(context, key) || !allowed.includes(context[key]),
        )
      : undefined;
    if (policy && !unmet) return undefined;
    const why = policy
      ? `the condition kms:EncryptionContext:${unmet![0]} is not met`
      : 'no identity-based policy allows the action';
    return new AwsJsonError(
      'AccessDeniedException',
      `User: arn:aws:sts::${accountId}:assumed-role/${caller || 'anonymous'}/local is not authorized to perform: ` +
        `kms:${operation} because ${why}`,
    );
  };

  const server = await startAwsJsonServer({
    targetPrefix: 'TrentService',
    port: options.port ?? 0,
    handle: async (operation, input, request) => {
      if (!Object.hasOwn(operations, operation)) {
        throw new AwsJsonError('UnknownOperationException', `the local KMS does not implement ${operation}`);
      }
      const failure = injectedFailure(operation, input);
      if (failure === noAnswer) return noAnswer;
      if (failure) throw failure;
      const refusal = denied(operation, input, request.authorization);
      if (refusal) throw refusal;
      return operations[operation as Operation](input);
    },
  });

  return {
    endpoint: server.endpoint,
    region,
    accountId,
    clientConfig: {
      endpoint: server.endpoint,
      region,
      credentials: { accessKeyId: 'AKIDLOCALKMS', secretAccessKey: 'local-kms-secret' },
    },
    createKey: async (createOptions = {}) => {
      const key = store.createKey(createOptions.description);
      if (createOptions.alias !== undefined) store.createAlias(createOptions.alias, key.id);
      return { keyId: key.id, arn: key.arn };
    },
    counters: server.counters,
    setFault: (spec) => {
      if (spec && spec.count !== undefined && !(Number.isInteger(spec.count) && spec.count > 0)) {
        throw new RangeError(`fault count must be a positive integer, got ${spec.count}`);
      }
      fault = spec ? { spec, remaining: spec.count ?? Number.POSITIVE_INFINITY } : undefined;
    },
    exportState: () => store.exportState(),
    stop: () => server.stop(),
  };
}

function kmsOperations(store: KeyStore): Record<Operation, (input: JsonObject) => JsonObject> {
  const epochSeconds = (date: Date): number => date.getTime() / 1000;
  const keyMetadata = (key: KeyRecord): JsonObject => ({
    AWSAccountId: store.accountId,
    KeyId: key.id,
    Arn: key.arn,
    CreationDate: epochSeconds(key.created),
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.state,
    ...(key.deletionDate ? { DeletionDate: epochSeconds(key.deletionDate) } : {}),
    ...(key.pendingWindowInDays ? { PendingDeletionWindowInDays: key.pendingWindowInDays } : {}),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
    KeySpec: 'SYMMETRIC_DEFAULT',
    EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
    MultiRegion: false,
    CurrentKeyMaterialId: store.currentMaterial(key).id,
  });
  const aliasEntry = (alias: AliasRecord): JsonObject => ({
    AliasName: alias.name,
    AliasArn: alias.arn,
    TargetKeyId: alias.targetKeyId,
    CreationDate: epochSeconds(alias.created),
    LastUpdatedDate: epochSeconds(alias.updated),
  });
  const checkAlgorithm = (input: JsonObject): void => {
    const algorithm = stringMember(input, 'EncryptionAlgorithm');
    if (algorithm !== undefined && algorithm !== 'SYMMETRIC_DEFAULT') {
      throw new AwsJsonError(
        'InvalidKeyUsageException',
        `${algorithm} is not supported by a SYMMETRIC_DEFAULT key; use SYMMETRIC_DEFAULT.`,
      );
    }
  };
  const keyOnly = (input: JsonObject): KeyRecord => store.resolveKeyOnly(stringMember(input, 'KeyId', true));
  const inRange = (member: string, value: number | undefined, min: number, max: number): void => {
    if (value !== undefined && (value < min || value > max)) {
      throw validationError(member, `Member must have value between ${min} and ${max}`, String(value));
    }
  };

  return {
    CreateKey: (input) => {
      const usage = stringMember(input, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
      const spec =
        stringMember(input, 'KeySpec') ?? stringMember(input, 'CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT';
      const origin = stringMember(input, 'Origin') ?? 'AWS_KMS';
      if (
        usage !== 'ENCRYPT_DECRYPT' ||
        spec !== 'SYMMETRIC_DEFAULT' ||
        origin !== 'AWS_KMS' ||
        input.MultiRegion
      ) {
        throw new AwsJsonError(
          'UnsupportedOperationException',
          'the local KMS makes only single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys with AWS_KMS origin',
        );
      }
      return { KeyMetadata: keyMetadata(store.createKey(stringMember(input, 'Description'))) };
    },

    DescribeKey: (input) => ({ KeyMetadata: keyMetadata(store.resolve(stringMember(input, 'KeyId', true))) }),

    CreateAlias: (input) => {
      store.createAlias(stringMember(input, 'AliasName', true), stringMember(input, 'TargetKeyId', true));
      return {};
    },

    UpdateAlias: (input) => {
      store.updateAlias(stringMember(input, 'AliasName', true), stringMember(input, 'TargetKeyId', true));
      return {};
    },

    ListAliases: (input) => {
      const limit = integerMember(input, 'Limit') ?? 50;
      inRange('Limit', limit, 1, 100);
      const marker = stringMember(input, 'Marker');
      const start = marker === undefined ? 0 : Number.parseInt(marker, 10);
      const all = store.listAliases(stringMember(input, 'KeyId'));
      if (!Number.isInteger(start) || start < 0 || start > all.length) {
        throw new AwsJsonError('InvalidMarkerException', `Marker ${marker} is not valid.`);
      }
      const page = all.slice(start, start + limit);
      const truncated = start + limit < all.length;
      return {
        Aliases: page.map(aliasEntry),
        Truncated: truncated,
        ...(truncated ? { NextMarker: String(start + limit) } : {}),
      };
    },

    GenerateDataKey: (input) => {
      const key = store.resolve(stringMember(input, 'KeyId', true));
      const keySpec = stringMember(input, 'KeySpec');
      const numberOfBytes = integerMember(input, 'NumberOfBytes');
      if ((keySpec === undefined) === (numberOfBytes === undefined)) {
        throw new AwsJsonError('ValidationException', 'Please specify either number of bytes or key spec.');
      }
      let length: number;
      if (keySpec !== undefined) {
        if (keySpec !== 'AES_256' && keySpec !== 'AES_128') {
          throw validationError('KeySpec', 'Member must satisfy enum value set: [AES_256, AES_128]', keySpec);
        }
        length = keySpec === 'AES_256' ? 32 : 16;
      } else {
        inRange('NumberOfBytes', numberOfBytes, 1, 1024);
        length = numberOfBytes!;
      }
      const plaintext = randomBytes(length);
      const { blob, material } = store.encrypt(
        key,
        plaintext,
        stringMapMember(input, 'EncryptionContext') ?? {},
      );
      return {
        CiphertextBlob: blob.toString('base64'),
        Plaintext: plaintext.toString('base64'),
        KeyId: key.arn,
        KeyMaterialId: material.id,
      };
    },

    Encrypt: (input) => {
      const key = store.resolve(stringMember(input, 'KeyId', true));
      const plaintext = blobMember(input, 'Plaintext', true);
      if (plaintext.length < 1 || plaintext.length > 4096) {
        throw validationError('Plaintext', 'Member must have length between 1 and 4096');
      }
      checkAlgorithm(input);
      const { blob } = store.encrypt(key, plaintext, stringMapMember(input, 'EncryptionContext') ?? {});
      return {
        CiphertextBlob: blob.toString('base64'),
        KeyId: key.arn,
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },

    Decrypt: (input) => {
      const blob = blobMember(input, 'CiphertextBlob', true);
      if (blob.length < 1 || blob.length > 6144) {
        throw validationError('CiphertextBlob', 'Member must have length between 1 and 6144');
      }
      checkAlgorithm(input);
      const { key, material, plaintext } = store.decrypt(
        blob,
        stringMapMember(input, 'EncryptionContext') ?? {},
        stringMember(input, 'KeyId'),
      );
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        KeyMaterialId: material.id,
      };
    },

    DisableKey: (input) => {
      store.setEnabled(keyOnly(input), false);
      return {};
    },

    EnableKey: (input) => {
      store.setEnabled(keyOnly(input), true);
      return {};
    },

    EnableKeyRotation: (input) => {
      const key = keyOnly(input);
      const period = integerMember(input, 'RotationPeriodInDays');
      inRange('RotationPeriodInDays', period, 90, 2560);
      store.assertUsable(key);
      key.rotationEnabled = true;
      key.rotationPeriodInDays = period ?? 365;
      return {};
    },

    DisableKeyRotation: (input) => {
      const key = keyOnly(input);
      store.assertUsable(key);
      key.rotationEnabled = false;
      delete key.rotationPeriodInDays;
      return {};
    },

    GetKeyRotationStatus: (input) => {
      const key = keyOnly(input);
      return {
        KeyId: key.arn,
        KeyRotationEnabled: key.rotationEnabled,
        ...(key.rotationPeriodInDays ? { RotationPeriodInDays: key.rotationPeriodInDays } : {}),
      };
    },

    RotateKeyOnDemand: (input) => {
      const key = keyOnly(input);
      store.rotate(key);
      return { KeyId: key.arn };
    },

    ScheduleKeyDeletion: (input) => {
      const key = keyOnly(input);
      const days = integerMember(input, 'PendingWindowInDays') ?? 30;
      inRange('PendingWindowInDays', days, 7, 30);
      store.scheduleDeletion(key, days);
      return {
        KeyId: key.arn,
        DeletionDate: epochSeconds(key.deletionDate!),
        KeyState: key.state,
        PendingWindowInDays: days,
      };
    },

    CancelKeyDeletion: (input) => {
      const key = keyOnly(input);
      store.cancelDeletion(key);
      return { KeyId: key.arn };
    },
  };
}
