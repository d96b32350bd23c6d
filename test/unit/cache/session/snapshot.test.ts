/**
 * The snapshot union's public names: `loadSource` (the result's `loadedFrom`) and
 * `isUnavailable`, the one rule the lease gate and eviction use for "what is stored is not
 * known now" (they used to compare `loadedFrom` with `'unavailable'`).
 */
import {
  absent,
  isUnavailable,
  loadSource,
  loaded,
  type Snapshot,
} from '../../../../shared/cache/session/snapshot';
import { EnvelopeFailure, KeyServiceFailure } from '../../../../shared/errors';

const every: ReadonlyArray<readonly [string, Snapshot]> = [
  ['absent, no item', absent('no-item')],
  ['absent, store unavailable', absent('store-unavailable')],
  ['loaded from L1', loaded('l1', '{}', 'v1')],
  ['loaded from the store', loaded('store', '{}', 'v1')],
  ...Object.values(EnvelopeFailure).map(
    (reason) => [`rejected, ${reason}`, { state: 'rejected', reason, json: '', version: 'v1' }] as const,
  ),
  ...Object.values(KeyServiceFailure).map(
    (reason) => [`locked, ${reason}`, { state: 'locked', reason, json: '', version: 'v1' }] as const,
  ),
];

describe('isUnavailable', () => {
  it('is true for a failed store read and for a locked item only', () => {
    const unavailable = every.filter(([, s]) => isUnavailable(s)).map(([name]) => name);

    expect(unavailable).toEqual([
      'absent, store unavailable',
      ...Object.values(KeyServiceFailure).map((reason) => `locked, ${reason}`),
    ]);
  });

  it.each(every)('%s: agrees with loadedFrom "unavailable"', (_name, snapshot) => {
    expect(isUnavailable(snapshot)).toBe(loadSource(snapshot) === 'unavailable');
  });

  it('is false before any load', () => {
    expect(isUnavailable(undefined)).toBe(false);
  });
});

describe('loadSource', () => {
  it('names each state as loadedFrom does', () => {
    expect(every.map(([, s]) => loadSource(s))).toEqual([
      'absent',
      'unavailable',
      'l1',
      'store',
      ...Object.values(EnvelopeFailure).map(() => 'unreadable'),
      ...Object.values(KeyServiceFailure).map(() => 'unavailable'),
    ]);
  });
});
