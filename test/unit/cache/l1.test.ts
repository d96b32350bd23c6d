/**
 * L1Cache: the in-process LRU of opened partitions, bounded by age (`ttlMs`, shortened by
 * jitter: see l1-jitter.test.ts), by the store item's own expiry, and by bytes.
 */
import type { L1Entry } from '../../../shared/cache/l1';
import { expectLifetime, rig, T0 } from './l1-rig';

/** Far past any clock here: only `ttlMs` bounds the entry. */
const FAR = 4_000_000_000;

function entry(version: string, jsonChars = 100, expiresAt = FAR): L1Entry {
  return { json: 'x'.repeat(jsonChars), version, expiresAt };
}

/** The bytes L1 charges an entry: UTF-16 characters of json, key and version, plus 128 of overhead. */
function bytesOf(key: string, e: L1Entry): number {
  return (e.json.length + key.length + e.version.length) * 2 + 128;
}

describe('L1Cache', () => {
  describe('get', () => {
    it('serves what was set, until ttlMs has passed since the set', () => {
      expectLifetime(rig(), entry('1'), 10_000, 1);
    });

    it('a hit does not renew the age: the entry still expires ttlMs after its set', () => {
      // The read at 6 s is a hit; the entry is gone 10 s after its set all the same.
      expectLifetime(rig(), entry('1'), 6_000, 4_001);
    });

    it('never serves an entry at or past the store item expiry, even within ttlMs', () => {
      const { l1, advance } = rig();
      // Epoch seconds: the item expires 5 s after T0, half-way through the 10 s ttl.
      const expiresAt = (T0 + 5_000) / 1000;
      l1.set('k', entry('1', 100, expiresAt));

      advance(4_999);
      const before = l1.get('k');
      advance(1);
      const atExpiry = l1.get('k');
      advance(-1);
      const afterwards = l1.get('k');

      expect(before).toEqual(entry('1', 100, expiresAt));
      expect(atExpiry).toBeUndefined();
      // Removed when found expired: not served again even if the clock went back.
      expect(afterwards).toBeUndefined();
    });

    it('misses a key never set', () => {
      const { l1 } = rig();

      expect(l1.get('never')).toBeUndefined();
    });
  });

  describe('set', () => {
    it('replaces the entry of a key and restarts its age', () => {
      const { l1, advance } = rig();
      l1.set('k', entry('1'));
      advance(8_000);

      l1.set('k', entry('2'));
      advance(8_000);

      expect(l1.get('k')).toEqual(entry('2'));
    });

    it('with jitter, an entry lives between ttlMs x (1 - jitter) and ttlMs', () => {
      // The draw at its top: the shortest life, 10 s x (1 - 0.5 x 0.999999) ~ 5 s.
      expectLifetime(rig({ jitter: 0.5 }, 0.999_999), entry('1'), 5_000, 2);
    });
  });

  describe('maxBytes', () => {
    const one = entry('1');
    const size = bytesOf('a', one);

    it('evicts the least recently used entry when a new one does not fit', () => {
      // Room for two entries, not three.
      const { l1 } = rig({ maxBytes: size * 2 + size / 2 });
      l1.set('a', one);
      l1.set('b', one);
      expect(l1.get('a')).toEqual(one); // a is now more recent than b

      l1.set('c', one);

      expect([l1.get('a'), l1.get('b'), l1.get('c')]).toEqual([one, undefined, one]);
    });

    it('holds every entry while their bytes fit', () => {
      const { l1 } = rig({ maxBytes: size * 3 });
      for (const k of ['a', 'b', 'c']) l1.set(k, one);

      expect([l1.get('a'), l1.get('b'), l1.get('c')]).toEqual([one, one, one]);
    });

    it('does not keep an entry larger than maxBytes, and drops the older one of its key', () => {
      const { l1 } = rig({ maxBytes: size * 2 });
      l1.set('a', one);
      l1.set('b', one);

      // A newer version too large for L1: the stale one must not be served instead.
      l1.set('a', entry('2', size * 2));

      expect([l1.get('a'), l1.get('b')]).toEqual([undefined, one]);
    });
  });

  describe('delete', () => {
    it('removes the entry of one key and leaves the others', () => {
      const { l1 } = rig();
      l1.set('a', entry('1'));
      l1.set('b', entry('1'));

      l1.delete('a');

      expect([l1.get('a'), l1.get('b')]).toEqual([undefined, entry('1')]);
    });

    it('of a key never set is a no-op', () => {
      const { l1 } = rig();
      l1.set('b', entry('1'));

      expect(() => l1.delete('a')).not.toThrow();
      expect(l1.get('b')).toEqual(entry('1'));
    });

    it('frees its bytes for other entries', () => {
      const one = entry('1');
      const { l1 } = rig({ maxBytes: bytesOf('a', one) * 2 });
      l1.set('a', one);
      l1.set('b', one);
      l1.get('a'); // b is now the least recently used: without a's bytes freed, c would evict it

      l1.delete('a');
      l1.set('c', one);

      expect([l1.get('a'), l1.get('b'), l1.get('c')]).toEqual([undefined, one, one]);
    });
  });
});
