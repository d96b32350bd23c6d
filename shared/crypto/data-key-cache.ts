/**
 * Decides when the key ring is called. One data key serves many writes (bounded by age
 * and count, like the AWS Encryption SDK's caching materials manager) and unwrapped keys
 * are kept for reads, so a warm instance makes no key-service call per request.
 */
import { LRUCache } from 'lru-cache';
import type { DataKeyCacheOptions } from '../cache/types';
import { DATA_KEY_BYTES as KEY_BYTES, DATA_KEY_CACHE_DEFAULTS as DEFAULTS } from '../defaults';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../errors';
import { Metric, noMetrics, type Metrics } from '../observability';
import type { DataKey, DataKeyAttestation, DataKeyContext, KeyRing, PartitionKind } from './keyring';

/** Counts the key-service calls one request starts (for its cache metadata). */
export interface KeyCallTrace {
  keyServiceCalls: number;
}

/** The envelope stores the key id and the wrapped key behind 16-bit lengths. */
const MAX_FIELD_BYTES = 0xffff;

interface CurrentKey {
  readonly key: DataKey;
  readonly createdAt: number;
  uses: number;
}

/**
 * Data keys of one key ring, for sealing and opening envelopes. Process-wide: share one
 * instance between requests (it holds no caller data, only data keys).
 * @example
 * const keys = new DataKeyCache(new LocalKeyRing({ masterKey }), { maxAgeMs: 60_000, metrics });
 * const envelope = new Envelope({ keys });
 */
export class DataKeyCache {
  /** The name of the key ring, as written into every envelope. */
  readonly ringName: string;
  /** The ring attests its data keys: envelopes are format v2 and v1 is never trusted. */
  readonly attestsDataKeys: boolean;
  private readonly maxAgeMs: number;
  private readonly maxUses: number;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  private readonly unwrapped: LRUCache<string, Uint8Array>;
  private readonly unwrapping = new Map<string, Promise<Uint8Array>>();
  /** The sealing key per partition kind ('' when the caller names none). */
  private readonly current = new Map<PartitionKind | '', CurrentKey>();
  private readonly generating = new Map<PartitionKind | '', Promise<CurrentKey>>();

  constructor(
    private readonly ring: KeyRing,
    options: DataKeyCacheOptions & {
      /** @default no metrics */ metrics?: Metrics;
      /** Clock in epoch milliseconds, for tests. @default Date.now */ now?: () => number;
    } = {},
  ) {
    this.ringName = ring.name;
    this.attestsDataKeys = ring.attestsDataKeys === true;
    this.maxAgeMs = positive(options.maxAgeMs ?? DEFAULTS.maxAgeMs, 'dataKeys.maxAgeMs', false);
    this.maxUses = positive(options.maxUses ?? DEFAULTS.maxUses, 'dataKeys.maxUses', true);
    this.unwrapped = new LRUCache({
      max: positive(options.maxUnwrapped ?? DEFAULTS.maxUnwrapped, 'dataKeys.maxUnwrapped', true),
      ttl: positive(
        options.maxUnwrappedAgeMs ?? DEFAULTS.maxUnwrappedAgeMs,
        'dataKeys.maxUnwrappedAgeMs',
        false,
      ),
      // Age is measured on the cache's own clock, so tests can move it.
      perf: { now: () => this.now() },
      // Every check reads the clock (lru-cache otherwise reuses a reading until a timer fires).
      ttlResolution: 0,
      // A read does not renew the age: revocation is bounded by the first unwrap.
      updateAgeOnGet: false,
    });
    this.metrics = options.metrics ?? noMetrics;
    this.now = options.now ?? Date.now;
  }

  /**
   * The data key to seal a new envelope with: the current one while it is younger than
   * `maxAgeMs` and has sealed fewer than `maxUses` envelopes, else a fresh one from the
   * ring. Data keys are per partition kind (`context.partitionKind`): a key made for one
   * kind never seals another's envelope. Concurrent callers share one ring call; a
   * failed call is not remembered. The key is shared with other callers: never modify it.
   * @throws KeyServiceError when the ring fails; the caller must then not write.
   */
  async encryptionKey(context: DataKeyContext = {}, trace?: KeyCallTrace): Promise<DataKey> {
    for (;;) {
      const current = this.usable(context);
      if (current) {
        current.uses += 1;
        return current.key;
      }
      const fresh = await this.generation(context, trace);
      // A key made for waiting callers serves them even if the clock moved past
      // maxAgeMs meanwhile; only maxUses sends the surplus round again.
      if (fresh.uses < this.maxUses) {
        fresh.uses += 1;
        return fresh.key;
      }
    }
  }

  /**
   * The master key id that new envelopes of `context`'s kind are sealed under: the current
   * data key's, made if none is usable, without taking one of its uses (the operator CLI's
   * rewrap skips items already under it, and still seals `maxUses` envelopes per data key).
   * @throws KeyServiceError when the ring fails
   */
  async currentKeyId(context: DataKeyContext = {}): Promise<string> {
    return (this.usable(context) ?? (await this.generation(context))).key.keyId;
  }

  /** The current data key of `context`'s kind while it may seal another envelope. */
  private usable(context: DataKeyContext): CurrentKey | undefined {
    const current = this.current.get(context.partitionKind ?? '');
    return current && current.uses < this.maxUses && this.now() - current.createdAt < this.maxAgeMs
      ? current
      : undefined;
  }

  /** A fresh data key of `context`'s kind: concurrent callers share one ring call. */
  private generation(context: DataKeyContext, trace?: KeyCallTrace): Promise<CurrentKey> {
    const kind = context.partitionKind ?? '';
    let generating = this.generating.get(kind);
    if (!generating) {
      if (trace) trace.keyServiceCalls += 1;
      // The finally callback runs after this assignment, so a ring that fails
      // synchronously still leaves nothing behind.
      generating = this.generate(context).finally(() => {
        this.generating.delete(kind);
      });
      this.generating.set(kind, generating);
    }
    return generating;
  }

  /**
   * The plaintext of a wrapped data key from an envelope header, from the cache or the
   * ring, for at most `maxUnwrappedAgeMs` after the ring unwrapped it. An attesting ring
   * verifies `attestation` before it unwraps; the attestation and the partition kind are
   * part of the cache key, so each is checked by the ring once. Concurrent callers for the
   * same key share one ring call. The returned bytes are the cached key itself: read
   * them, never modify them.
   * @throws KeyServiceError as the ring raised it (`invalid-ciphertext` / `not-found`
   * when the ring cannot open this key, `bad-attestation`); any other failure becomes reason `unknown`.
   */
  async decryptionKey(
    keyId: string,
    wrapped: Uint8Array,
    context: DataKeyContext & { readonly attestation?: DataKeyAttestation } = {},
    trace?: KeyCallTrace,
  ): Promise<Uint8Array> {
    const id = cacheKey(keyId, wrapped, context.partitionKind, context.attestation);
    const hit = this.unwrapped.get(id);
    if (hit) return hit;
    let pending = this.unwrapping.get(id);
    if (!pending) {
      if (trace) trace.keyServiceCalls += 1;
      const attestation = context.attestation && {
        signingKeyId: context.attestation.signingKeyId,
        signature: Uint8Array.from(context.attestation.signature),
      };
      pending = this.unwrap(keyId, Uint8Array.from(wrapped), {
        ...(context.partitionKind ? { partitionKind: context.partitionKind } : {}),
        ...(attestation ? { attestation } : {}),
      })
        .then((key) => {
          this.unwrapped.set(id, key);
          return key;
        })
        .finally(() => {
          this.unwrapping.delete(id);
        });
      this.unwrapping.set(id, pending);
    }
    return pending;
  }

  private async generate(context: DataKeyContext): Promise<CurrentKey> {
    this.metrics.increment(Metric.KeyGenerate);
    let key: DataKey;
    try {
      key = await this.ring.generateDataKey(context);
      checkDataKey(this.ring.name, key, this.attestsDataKeys);
    } catch (e) {
      throw this.failed('generate', e);
    }
    const entry: CurrentKey = { key, createdAt: this.now(), uses: 0 };
    this.current.set(context.partitionKind ?? '', entry);
    // Reading your own writes never goes back to the ring.
    this.unwrapped.set(
      cacheKey(key.keyId, key.wrapped, context.partitionKind, key.attestation),
      key.plaintext,
    );
    return entry;
  }

  private async unwrap(
    keyId: string,
    wrapped: Uint8Array,
    context: Parameters<KeyRing['unwrapDataKey']>[2],
  ): Promise<Uint8Array> {
    this.metrics.increment(Metric.KeyUnwrap);
    try {
      const key = await this.ring.unwrapDataKey(wrapped, keyId, context);
      if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
        throw new KeyServiceError(
          this.ring.name,
          'unwrap',
          KeyServiceFailure.Unknown,
          `the key ring returned ${describeLength(key)} instead of a ${KEY_BYTES}-byte data key; fix the key ring`,
        );
      }
      return key;
    } catch (e) {
      throw this.failed('unwrap', e);
    }
  }

  /** Counts a ring failure and makes sure it is a KeyServiceError (cause kept). */
  private failed(operation: 'generate' | 'unwrap', e: unknown): KeyServiceError {
    const error =
      e instanceof KeyServiceError
        ? e
        : new KeyServiceError(
            this.ring.name,
            operation,
            KeyServiceFailure.Unknown,
            'the key ring threw something other than a KeyServiceError; see the cause',
            { cause: e },
          );
    this.metrics.increment(Metric.KeyError, 1, { reason: error.reason });
    return error;
  }
}

/**
 * Key id and wrapped bytes name one data key; the partition kind and the attestation are
 * what the ring checked it against. JSON keeps the tuple unambiguous.
 */
function cacheKey(
  keyId: string,
  wrapped: Uint8Array,
  kind: PartitionKind | undefined,
  attestation: DataKeyAttestation | undefined,
): string {
  return JSON.stringify([
    keyId,
    base64(wrapped),
    kind ?? '',
    attestation ? [attestation.signingKeyId, base64(attestation.signature)] : null,
  ]);
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

function checkDataKey(ring: string, key: DataKey, attests: boolean): void {
  const problems: string[] = [];
  const attestation = key?.attestation;
  if (attests) {
    const sid =
      typeof attestation?.signingKeyId === 'string' ? Buffer.byteLength(attestation.signingKeyId) : 0;
    const sig = attestation?.signature;
    if (
      sid === 0 ||
      sid > MAX_FIELD_BYTES ||
      !(sig instanceof Uint8Array) ||
      sig.length === 0 ||
      sig.length > MAX_FIELD_BYTES
    ) {
      problems.push(
        'an attesting ring returned no usable attestation (signing key id and signature, 1 to 65535 bytes each)',
      );
    }
  } else if (attestation !== undefined) {
    problems.push('a ring that does not declare attestsDataKeys returned an attestation');
  }
  if (!(key?.plaintext instanceof Uint8Array) || key.plaintext.length !== KEY_BYTES) {
    problems.push(`plaintext is ${describeLength(key?.plaintext)}, expected ${KEY_BYTES} bytes`);
  }
  const idBytes = typeof key?.keyId === 'string' ? Buffer.byteLength(key.keyId, 'utf8') : 0;
  if (idBytes === 0 || idBytes > MAX_FIELD_BYTES) {
    problems.push(`keyId is ${idBytes} bytes of UTF-8, expected 1 to ${MAX_FIELD_BYTES}`);
  }
  if (
    !(key?.wrapped instanceof Uint8Array) ||
    key.wrapped.length === 0 ||
    key.wrapped.length > MAX_FIELD_BYTES
  ) {
    problems.push(`wrapped is ${describeLength(key?.wrapped)}, expected 1 to ${MAX_FIELD_BYTES} bytes`);
  }
  if (problems.length > 0) {
    throw new KeyServiceError(
      ring,
      'generate',
      KeyServiceFailure.Unknown,
      `the key ring returned an unusable data key (${problems.join('; ')}); fix the key ring`,
    );
  }
}

function describeLength(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
}

function positive(value: number, setting: string, integer: boolean): number {
  if (typeof value !== 'number' || !(value > 0) || (integer && !Number.isInteger(value))) {
    throw new ConfigurationError(
      setting,
      `expected a positive ${integer ? 'integer' : 'number'}, received ${String(value)}`,
    );
  }
  return value;
}
