import { randomBytes } from 'node:crypto';
import { DataKeyCache } from '../../../shared/crypto/data-key-cache';
import type { DataKey, DataKeyContext, KeyRing } from '../../../shared/crypto/keyring';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../../../shared/errors';
import { CounterMetrics, Metric } from '../../../shared/observability';
import { rejection } from '../../support/expect-errors';

/** A real LocalKeyRing that counts its calls and can be held at a gate or made to fail. */
class CountingRing implements KeyRing {
  readonly name = 'local';
  generates = 0;
  unwraps = 0;
  /** While set, ring calls wait for it. */
  gate: Promise<void> | undefined;
  /** While set, ring calls throw it (fault injection). */
  failure: Error | undefined;
  constructor(readonly inner = new LocalKeyRing({ masterKey: randomBytes(32) })) {}

  readonly contexts: Array<DataKeyContext | undefined> = [];

  async generateDataKey(context?: DataKeyContext): Promise<DataKey> {
    this.contexts.push(context);
    this.generates += 1;
    await this.gate;
    if (this.failure !== undefined) throw this.failure;
    return this.inner.generateDataKey();
  }

  async unwrapDataKey(wrapped: Uint8Array, keyId: string): Promise<Uint8Array> {
    this.unwraps += 1;
    await this.gate;
    if (this.failure !== undefined) throw this.failure;
    return this.inner.unwrapDataKey(wrapped, keyId);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function throttled(): KeyServiceError {
  return new KeyServiceError('local', 'generate', KeyServiceFailure.Throttled, 'slow down');
}

describe('DataKeyCache', () => {
  it('exposes the ring name', () => {
    expect(new DataKeyCache(new CountingRing()).ringName).toBe('local');
  });

  describe('partition kinds and unwrapped-key age (issue 11)', () => {
    it('keeps one sealing key per partition kind, and tells the ring the kind', async () => {
      const ring = new CountingRing();
      const keys = new DataKeyCache(ring);

      const app = await keys.encryptionKey({ partitionKind: 'app' });
      const obo = await keys.encryptionKey({ partitionKind: 'obo' });
      const appAgain = await keys.encryptionKey({ partitionKind: 'app' });

      expect(ring.generates).toBe(2);
      expect(ring.contexts).toEqual([{ partitionKind: 'app' }, { partitionKind: 'obo' }]);
      expect(appAgain).toBe(app);
      expect(obo.wrapped).not.toEqual(app.wrapped);
    });

    it('asks the ring again once an unwrapped key is maxUnwrappedAgeMs old, however often it was read', async () => {
      let clock = 1_000_000;
      const ring = new CountingRing();
      const made = await ring.inner.generateDataKey();
      const keys = new DataKeyCache(ring, { maxUnwrappedAgeMs: 60_000, now: () => clock });

      await keys.decryptionKey(made.keyId, made.wrapped);
      clock += 59_000;
      await keys.decryptionKey(made.keyId, made.wrapped);
      expect(ring.unwraps).toBe(1);
      clock += 2_000;
      await keys.decryptionKey(made.keyId, made.wrapped);

      expect(ring.unwraps).toBe(2);
    });

    it('defaults maxUnwrappedAgeMs to 15 minutes', async () => {
      let clock = 1_000_000;
      const ring = new CountingRing();
      const made = await ring.inner.generateDataKey();
      const keys = new DataKeyCache(ring, { now: () => clock });
      await keys.decryptionKey(made.keyId, made.wrapped);

      clock += 15 * 60_000 - 1;
      await keys.decryptionKey(made.keyId, made.wrapped);
      expect(ring.unwraps).toBe(1);
      clock += 2;
      await keys.decryptionKey(made.keyId, made.wrapped);
      expect(ring.unwraps).toBe(2);
    });

    it('rejects a maxUnwrappedAgeMs that is not positive', () => {
      expect(() => new DataKeyCache(new CountingRing(), { maxUnwrappedAgeMs: 0 })).toThrow(
        /^dataKeys\.maxUnwrappedAgeMs: /,
      );
    });
  });

  describe('constructor', () => {
    it.each([
      ['maxAgeMs', { maxAgeMs: 0 }],
      ['maxUses', { maxUses: 1.5 }],
      ['maxUnwrapped', { maxUnwrapped: -1 }],
    ])('rejects an invalid %s, naming it', (name, options) => {
      const create = () => new DataKeyCache(new CountingRing(), options);

      expect(create).toThrow(ConfigurationError);
      expect(create).toThrow(new RegExp(`^dataKeys\\.${name}: `));
    });
  });

  describe('encryptionKey', () => {
    it('reuses one data key up to maxUses, then generates another', async () => {
      const ring = new CountingRing();
      const metrics = new CounterMetrics();
      const keys = new DataKeyCache(ring, { maxUses: 3, metrics });

      const first = [await keys.encryptionKey(), await keys.encryptionKey(), await keys.encryptionKey()];
      const fourth = await keys.encryptionKey();

      expect(first[1]).toBe(first[0]);
      expect(first[2]).toBe(first[0]);
      expect(fourth).not.toBe(first[0]);
      expect(ring.generates).toBe(2);
      expect(metrics.get(Metric.KeyGenerate)).toBe(2);
    });

    it('reuses one data key until maxAgeMs, then generates another', async () => {
      const ring = new CountingRing();
      let now = 1_000_000;
      const keys = new DataKeyCache(ring, { maxAgeMs: 60_000, now: () => now });

      const first = await keys.encryptionKey();
      now += 59_999;
      const young = await keys.encryptionKey();
      now += 1;
      const aged = await keys.encryptionKey();

      expect(young).toBe(first);
      expect(aged).not.toBe(first);
      expect(ring.generates).toBe(2);
    });

    it('defaults to 10000 uses per data key', async () => {
      const ring = new CountingRing();
      const keys = new DataKeyCache(ring, { now: () => 0 });

      for (let i = 0; i < 10_000; i++) await keys.encryptionKey();
      expect(ring.generates).toBe(1);
      await keys.encryptionKey();

      expect(ring.generates).toBe(2);
    });

    it('defaults to five minutes per data key', async () => {
      const ring = new CountingRing();
      let now = 0;
      const keys = new DataKeyCache(ring, { now: () => now });

      await keys.encryptionKey();
      now = 299_999;
      await keys.encryptionKey();
      expect(ring.generates).toBe(1);
      now = 300_000;
      await keys.encryptionKey();

      expect(ring.generates).toBe(2);
    });

    it('shares one in-flight generate between concurrent callers', async () => {
      const ring = new CountingRing();
      const held = gate();
      ring.gate = held.promise;
      const keys = new DataKeyCache(ring);

      const pending = Array.from({ length: 20 }, () => keys.encryptionKey());
      held.open();
      const results = await Promise.all(pending);

      expect(ring.generates).toBe(1);
      expect(new Set(results).size).toBe(1);
    });

    it('still honours maxUses when more callers wait than one key may serve', async () => {
      const ring = new CountingRing();
      const held = gate();
      ring.gate = held.promise;
      const keys = new DataKeyCache(ring, { maxUses: 4 });

      const pending = Array.from({ length: 10 }, () => keys.encryptionKey());
      held.open();
      const results = await Promise.all(pending);

      const perKey = new Map<DataKey, number>();
      for (const key of results) perKey.set(key, (perKey.get(key) ?? 0) + 1);
      expect([...perKey.values()].sort()).toEqual([2, 4, 4]);
      expect(ring.generates).toBe(3);
    });

    it('shares a failure between concurrent callers and does not cache it', async () => {
      const ring = new CountingRing();
      const metrics = new CounterMetrics();
      const held = gate();
      ring.gate = held.promise;
      const failure = throttled();
      ring.failure = failure;
      const keys = new DataKeyCache(ring, { metrics });

      const pending = [keys.encryptionKey(), keys.encryptionKey()].map(rejection);
      held.open();
      const errors = await Promise.all(pending);
      ring.failure = undefined;
      const recovered = await keys.encryptionKey();

      expect(errors[0]).toBe(failure);
      expect(errors[1]).toBe(failure);
      expect(recovered.plaintext).toHaveLength(32);
      expect(ring.generates).toBe(2);
      expect(metrics.get(Metric.KeyGenerate)).toBe(2);
      expect(metrics.get(Metric.KeyError, { reason: KeyServiceFailure.Throttled })).toBe(1);
    });

    it('does not cache a ring that fails synchronously', async () => {
      const inner = new LocalKeyRing({ masterKey: randomBytes(32) });
      let calls = 0;
      const ring: KeyRing = {
        name: 'local',
        generateDataKey: () => {
          calls += 1;
          if (calls === 1) throw throttled();
          return inner.generateDataKey();
        },
        unwrapDataKey: (wrapped, keyId) => inner.unwrapDataKey(wrapped, keyId),
      };
      const keys = new DataKeyCache(ring);

      const error = await rejection(keys.encryptionKey());
      const key = await keys.encryptionKey();

      expect(error).toBeInstanceOf(KeyServiceError);
      expect(key.plaintext).toHaveLength(32);
    });

    it('turns a ring error that is not a KeyServiceError into reason unknown, keeping the cause', async () => {
      const ring = new CountingRing();
      const cause = new TypeError('socket hang up');
      ring.failure = cause;
      const metrics = new CounterMetrics();
      const keys = new DataKeyCache(ring, { metrics });

      const error = await rejection(keys.encryptionKey());

      expect(error).toBeInstanceOf(KeyServiceError);
      expect(error).toMatchObject({ reason: KeyServiceFailure.Unknown, operation: 'generate', cause });
      expect(metrics.get(Metric.KeyError, { reason: KeyServiceFailure.Unknown })).toBe(1);
    });

    it('rejects a data key the ring got wrong instead of sealing with it', async () => {
      const inner = new LocalKeyRing({ masterKey: randomBytes(32) });
      const ring: KeyRing = {
        name: 'local',
        generateDataKey: async () => ({ ...(await inner.generateDataKey()), plaintext: new Uint8Array(16) }),
        unwrapDataKey: (wrapped, keyId) => inner.unwrapDataKey(wrapped, keyId),
      };

      const error = await rejection(new DataKeyCache(ring).encryptionKey());

      expect(error).toBeInstanceOf(KeyServiceError);
      expect((error as Error).message).toMatch(/plaintext is 16 bytes/);
    });
  });

  describe('currentKeyId', () => {
    it('names the master key of the current data key without taking one of its uses', async () => {
      const ring = new CountingRing();
      const keys = new DataKeyCache(ring, { maxUses: 2 });

      const keyId = await keys.currentKeyId({ partitionKind: 'obo' });
      const sealing = [
        await keys.encryptionKey({ partitionKind: 'obo' }),
        await keys.encryptionKey({ partitionKind: 'obo' }),
      ];

      expect(keyId).toBe(sealing[0].keyId);
      expect(sealing[1]).toBe(sealing[0]);
      expect(ring.generates).toBe(1);
      expect(ring.contexts).toEqual([{ partitionKind: 'obo' }]);
    });

    it('makes a data key when none is usable, per kind', async () => {
      const ring = new CountingRing();
      const keys = new DataKeyCache(ring, { maxUses: 1 });
      await keys.encryptionKey({ partitionKind: 'app' });

      await keys.currentKeyId({ partitionKind: 'app' });
      await keys.currentKeyId({ partitionKind: 'user' });
      await keys.currentKeyId({ partitionKind: 'user' });

      expect(ring.generates).toBe(3);
      expect(ring.contexts.map((c) => c?.partitionKind)).toEqual(['app', 'app', 'user']);
    });
  });

  describe('decryptionKey', () => {
    it('unwraps through the ring once and serves repeats from the cache', async () => {
      const ring = new CountingRing();
      const metrics = new CounterMetrics();
      const sealed = await ring.inner.generateDataKey();
      const keys = new DataKeyCache(ring, { metrics });

      const first = await keys.decryptionKey(sealed.keyId, sealed.wrapped);
      const second = await keys.decryptionKey(sealed.keyId, Uint8Array.from(sealed.wrapped));

      expect(first).toEqual(sealed.plaintext);
      expect(second).toBe(first);
      expect(ring.unwraps).toBe(1);
      expect(metrics.get(Metric.KeyUnwrap)).toBe(1);
    });

    it('never calls the ring to read a key it generated itself', async () => {
      const ring = new CountingRing();
      const keys = new DataKeyCache(ring);

      const written = await keys.encryptionKey();
      const read = await keys.decryptionKey(written.keyId, written.wrapped);

      expect(read).toEqual(written.plaintext);
      expect(ring.unwraps).toBe(0);
    });

    it('shares one in-flight unwrap per key between concurrent callers', async () => {
      const ring = new CountingRing();
      const a = await ring.inner.generateDataKey();
      const b = await ring.inner.generateDataKey();
      const held = gate();
      ring.gate = held.promise;
      const keys = new DataKeyCache(ring);

      const pending = [a, b, a, b, a].map((k) => keys.decryptionKey(k.keyId, k.wrapped));
      held.open();
      const results = await Promise.all(pending);

      expect(ring.unwraps).toBe(2);
      expect(results.map((r) => Buffer.from(r).toString('hex'))).toEqual(
        [a, b, a, b, a].map((k) => Buffer.from(k.plaintext).toString('hex')),
      );
    });

    it('keys the cache by key id as well as wrapped bytes', async () => {
      const ring = new CountingRing();
      const sealed = await ring.inner.generateDataKey();
      const keys = new DataKeyCache(ring);
      await keys.decryptionKey(sealed.keyId, sealed.wrapped);

      const error = await rejection(keys.decryptionKey('local-0', sealed.wrapped));

      expect(error).toMatchObject({ reason: KeyServiceFailure.NotFound });
      expect(ring.unwraps).toBe(2);
    });

    it('evicts the least recently used key beyond maxUnwrapped', async () => {
      const ring = new CountingRing();
      const [a, b, c] = await Promise.all([1, 2, 3].map(() => ring.inner.generateDataKey()));
      const keys = new DataKeyCache(ring, { maxUnwrapped: 2 });

      for (const k of [a, b, a, c]) await keys.decryptionKey(k.keyId, k.wrapped);
      expect(ring.unwraps).toBe(3);
      await keys.decryptionKey(a.keyId, a.wrapped);
      expect(ring.unwraps).toBe(3);
      await keys.decryptionKey(b.keyId, b.wrapped);

      expect(ring.unwraps).toBe(4);
    });

    it('passes ring failures through, counts them by reason, and does not cache them', async () => {
      const ring = new CountingRing();
      const sealed = await ring.inner.generateDataKey();
      const metrics = new CounterMetrics();
      const keys = new DataKeyCache(ring, { metrics });
      const failure = new KeyServiceError('local', 'unwrap', KeyServiceFailure.Unavailable, 'down');
      ring.failure = failure;

      const error = await rejection(keys.decryptionKey(sealed.keyId, sealed.wrapped));
      ring.failure = undefined;
      const key = await keys.decryptionKey(sealed.keyId, sealed.wrapped);

      expect(error).toBe(failure);
      expect(key).toEqual(sealed.plaintext);
      expect(metrics.get(Metric.KeyUnwrap)).toBe(2);
      expect(metrics.get(Metric.KeyError, { reason: KeyServiceFailure.Unavailable })).toBe(1);
    });

    it('rejects an unwrapped key of the wrong length as reason unknown', async () => {
      const inner = new LocalKeyRing({ masterKey: randomBytes(32) });
      const sealed = await inner.generateDataKey();
      const ring: KeyRing = {
        name: 'local',
        generateDataKey: () => inner.generateDataKey(),
        unwrapDataKey: async () => new Uint8Array(31),
      };

      const error = await rejection(new DataKeyCache(ring).decryptionKey(sealed.keyId, sealed.wrapped));

      expect(error).toMatchObject({ reason: KeyServiceFailure.Unknown, operation: 'unwrap' });
    });
  });
});
