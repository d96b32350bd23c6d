import { DataKeyCache } from '../../../../shared/crypto/data-key-cache';
import { Envelope } from '../../../../shared/crypto/envelope';
import { LocalKeyRing } from '../../../../shared/crypto/local-keyring';
import { EnvelopeFailure, KeyServiceFailure, StoreUnavailableError } from '../../../../shared/errors';
import { documentOf } from '../../../../shared/cache/session/snapshot';
import { FaultyRing, LATER, documentWith, masterKey, rig, tokenKeys, type Rig } from './harness';

const KEY = 'reader-partition-key';

describe('readPartition', () => {
  describe('absent', () => {
    it('is absent (no item) when the store has none, after one store read and an L1 miss', async () => {
      const r = rig({ l1: true });

      const read = await r.read(KEY);

      expect(read.snapshot).toEqual({ state: 'absent', reason: 'no-item', json: '', version: undefined });
      expect(read).toMatchObject({ l1: 'miss', storeCalled: true, opened: false });
      expect(r.store.reads).toBe(1);
    });

    it('is absent (store-unavailable) when the read fails, keeping the error', async () => {
      const r = rig();
      await r.seed(KEY, documentWith(['a']));
      r.store.failReads = true;

      const read = await r.read(KEY);

      expect(read.snapshot).toMatchObject({
        state: 'absent',
        reason: 'store-unavailable',
        version: undefined,
      });
      expect(read.error).toBeInstanceOf(StoreUnavailableError);
      expect(read.storeCalled).toBe(true);
    });
  });

  describe('loaded', () => {
    it('opens the stored blob at its version and fills L1 and the memo', async () => {
      const r = rig({ l1: true });
      const version = await r.seed(KEY, documentWith(['a', 'b']));

      const read = await r.read(KEY);

      expect(read.snapshot).toMatchObject({ state: 'loaded', from: 'store', version });
      expect(tokenKeys(documentOf(read.snapshot))).toEqual(['a', 'b']);
      // Opened, with the data key this instance sealed it with: no key-service call.
      expect(read).toMatchObject({ opened: true, keyServiceCalls: 0 });
      expect(r.ring.unwrapCalls).toBe(0);
      expect(r.ctx.l1?.get(KEY)).toMatchObject({ version, json: read.snapshot.json });
    });

    it('L1 hit: a first load answers from L1 with no store read; a fresh read bypasses it', async () => {
      const r = rig({ l1: true });
      const version = await r.seed(KEY, documentWith(['a']));
      const first = await r.read(KEY);

      const hit = await r.read(KEY);
      const fresh = await r.read(KEY, 'fresh');

      expect(hit.snapshot).toEqual({ ...first.snapshot, from: 'l1' });
      expect(hit).toMatchObject({ l1: 'hit', storeCalled: false, opened: false, storeReadMs: 0 });
      expect(fresh.snapshot).toMatchObject({ state: 'loaded', from: 'store', version });
      expect(fresh.l1).toBeUndefined();
      expect(r.store.reads).toBe(2);
    });

    it('reuses an opened envelope only for the byte-identical blob', async () => {
      const r = rig();
      const doc = documentWith(['a']);
      const v1 = await r.seed(KEY, doc);
      expect((await r.read(KEY)).opened).toBe(true);

      const again = await r.read(KEY, 'fresh');
      // The same document sealed again: new salt and nonce, so other bytes, opened anew.
      await r.seed(KEY, doc, v1);
      const resealed = await r.read(KEY, 'fresh');

      expect(again).toMatchObject({ opened: false, keyServiceCalls: 0 });
      expect(again.snapshot).toMatchObject({ state: 'loaded', version: v1 });
      expect(resealed.opened).toBe(true);
      expect(resealed.snapshot.state).toBe('loaded');
    });

    it('never serves a memo entry for a blob that differs by one byte', async () => {
      const r = rig();
      const v1 = await r.seed(KEY, documentWith(['a']));
      await r.read(KEY);
      const item = (await r.store.inner.read(KEY))!;
      const flipped = Uint8Array.from(item.blob);
      flipped[flipped.length - 1] ^= 0x01;
      await r.store.inner.write(KEY, flipped, { condition: { expectedVersion: v1 }, expiresAt: LATER() });

      const read = await r.read(KEY, 'fresh');

      expect(read.snapshot).toMatchObject({
        state: 'rejected',
        reason: EnvelopeFailure.AuthenticationFailed,
        json: '',
      });
    });
  });

  describe('rejected', () => {
    /** Blobs that must never open, by the reason the envelope gives. */
    const tampered: Array<[EnvelopeFailure, (r: Rig, good: Uint8Array) => Promise<Uint8Array>]> = [
      [EnvelopeFailure.Malformed, async (_r, good) => good.subarray(0, 3)],
      [
        EnvelopeFailure.UnsupportedVersion,
        async (_r, good) => {
          const b = Uint8Array.from(good);
          b[4] = 9; // the format version byte, right after the magic
          return b;
        },
      ],
      [
        EnvelopeFailure.AuthenticationFailed,
        async (_r, good) => {
          const b = Uint8Array.from(good);
          b[b.length - 20] ^= 0x80;
          return b;
        },
      ],
      [
        EnvelopeFailure.ForeignKeyRing,
        async () => {
          const other = new FaultyRing(new LocalKeyRing({ masterKey: masterKey() }), 'another-ring');
          const env = new Envelope({ keys: new DataKeyCache(other) });
          return env.seal(Buffer.from(JSON.stringify(documentWith(['a']))), KEY, { partitionKind: 'obo' });
        },
      ],
      [
        EnvelopeFailure.UnknownKey,
        async () => {
          // Same ring name and key id, another master key: the data key does not unwrap.
          const env = new Envelope({ keys: new DataKeyCache(new LocalKeyRing({ masterKey: masterKey() })) });
          return env.seal(Buffer.from(JSON.stringify(documentWith(['a']))), KEY, { partitionKind: 'obo' });
        },
      ],
      [
        EnvelopeFailure.BadPlaintext,
        async (r) => r.envelope.seal(Buffer.from('not json at all'), KEY, { partitionKind: 'obo' }),
      ],
      [
        EnvelopeFailure.AuthenticationFailed,
        // Another partition's good blob, copied here.
        async (r) =>
          r.envelope.seal(Buffer.from(JSON.stringify(documentWith(['a']))), 'other-partition', {
            partitionKind: 'obo',
          }),
      ],
    ];

    it.each(tampered)('is rejected (%s) at the item version, and serves nothing', async (reason, make) => {
      const r = rig({ l1: true });
      const good = await r.seed(KEY, documentWith(['a']));
      const blob = await make(r, (await r.store.inner.read(KEY))!.blob);
      const version = await r.store.inner.write(KEY, blob, {
        condition: { expectedVersion: good },
        expiresAt: LATER(),
      });

      const read = await r.read(KEY, 'fresh');

      expect(read.snapshot).toEqual({ state: 'rejected', reason, json: '', version });
      expect(read.opened).toBe(true);
    });
  });

  describe('locked', () => {
    it('is locked (with the key service reason) when the data key cannot be unwrapped now', async () => {
      const master = masterKey();
      const r = rig({ l1: true, master });
      const version = await r.seed(KEY, documentWith(['a']));
      // A cold instance: its own data-key cache, so the unwrap goes to the (failing) ring.
      const cold = rig({ store: r.store.inner, l1: true, master });
      cold.ring.unwrapFault = KeyServiceFailure.Unavailable;

      const read = await cold.read(KEY);

      expect(read.snapshot).toEqual({
        state: 'locked',
        reason: KeyServiceFailure.Unavailable,
        json: '',
        version,
      });
      expect(read.keyServiceCalls).toBe(1);
      expect(cold.ctx.l1?.get(KEY)).toBeUndefined();
    });
  });
});
