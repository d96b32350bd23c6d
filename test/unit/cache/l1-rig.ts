/** The L1 tests' rig: an L1Cache on a clock the test moves, with a random draw the test fixes. */
import { L1Cache, type L1Entry, type L1Settings } from '../../../shared/cache/l1';

/** Start of the test clock (lru-cache reads a start time of 0 as "no start"). */
export const T0 = 1_000_000;

export interface L1Rig {
  readonly l1: L1Cache;
  advance(ms: number): void;
}

/** A 1 MiB, 10 s cache with `settings` on top, on a clock starting at T0, drawing `draw`. */
export function rig(settings: Partial<L1Settings> = {}, draw = 0.5): L1Rig {
  let now = T0;
  const l1 = new L1Cache(
    { maxBytes: 1 << 20, ttlMs: 10_000, ...settings },
    () => now,
    () => draw,
  );
  return { l1, advance: (ms) => (now += ms) };
}

/** Sets `k` to `entry`: `servedAfter` ms later it is still served, `goneAfter` ms after that it is not. */
export function expectLifetime(cache: L1Rig, entry: L1Entry, servedAfter: number, goneAfter: number): void {
  const { l1, advance } = cache;
  l1.set('k', entry);

  advance(servedAfter);
  const served = l1.get('k');
  advance(goneAfter);
  const gone = l1.get('k');

  expect(served).toEqual(entry);
  expect(gone).toBeUndefined();
}
