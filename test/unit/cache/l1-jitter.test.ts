/**
 * L1's jittered expiry (issue 19): an entry lives a random fraction of `ttlMs` between
 * `1 - jitter` and 1, so instances that loaded a hot partition at the same moment read it
 * again at different moments.
 */
import { L1Cache, MAX_L1_JITTER } from '../../../shared/cache/l1';
import { ConfigurationError } from '../../../shared/errors';
import { expectLifetime, rig } from './l1-rig';

const entry = { json: '{}', version: '1', expiresAt: 4_000_000_000 };

/** The rig's cache with `jitter` (none when undefined) and a fixed "random" draw. */
const cacheWith = (jitter: number | undefined, draw: number) =>
  rig(jitter === undefined ? {} : { jitter }, draw);

describe('L1Cache jitter', () => {
  it('without jitter, serves an entry for exactly ttlMs', () => {
    expectLifetime(cacheWith(undefined, 0.99), entry, 10_000, 1);
  });

  it('shortens the life by jitter x the random draw', () => {
    // jitter 0.2, draw 0.5: 10 s x (1 - 0.1) = 9 s.
    expectLifetime(cacheWith(0.2, 0.5), entry, 9_000, 1);
  });

  it('never serves past ttlMs nor expires before ttlMs x (1 - jitter)', () => {
    const low = cacheWith(0.2, 0);
    low.l1.set('k', entry);
    low.advance(10_000);
    expect(low.l1.get('k')).toEqual(entry);

    const high = cacheWith(0.2, 0.999_999);
    high.l1.set('k', entry);
    high.advance(7_999);
    expect(high.l1.get('k')).toEqual(entry);
    high.advance(1);
    high.advance(1);
    expect(high.l1.get('k')).toBeUndefined();
  });

  it('spreads the expiries of entries set at the same moment', () => {
    const t0 = 1_000_000; // lru-cache reads a start time of 0 as "no start"
    let now = t0;
    let seed = 1;
    // A small deterministic generator: the spread must come from the draws, not the clock.
    const random = () => ((seed = (seed * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
    const instances = Array.from(
      { length: 100 },
      () => new L1Cache({ maxBytes: 1 << 20, ttlMs: 10_000, jitter: 0.2 }, () => now, random),
    );
    for (const l1 of instances) l1.set('hot', entry);

    const expiredBy = (ms: number): number => {
      now = t0 + ms;
      return instances.filter((l1) => l1.get('hot') === undefined).length;
    };
    // Read in increasing time order: an expired entry stays expired. An entry is live up to
    // and including its ttl (lru-cache's bound), so the boundaries are one ms past it.
    expect(expiredBy(7_999)).toBe(0);
    const atNine = expiredBy(9_000);
    expect(atNine).toBeGreaterThan(25);
    expect(atNine).toBeLessThan(75);
    expect(expiredBy(10_001)).toBe(100);
  });

  it.each([-0.1, MAX_L1_JITTER + 0.01, Number.NaN])(
    'rejects jitter %p with a ConfigurationError',
    (jitter) => {
      expect(() => new L1Cache({ maxBytes: 1024, ttlMs: 1000, jitter })).toThrow(ConfigurationError);
      expect(() => new L1Cache({ maxBytes: 1024, ttlMs: 1000, jitter })).toThrow(/l1\.jitter/);
    },
  );
});
