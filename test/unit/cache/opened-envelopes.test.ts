import { OpenedEnvelopes } from '../../../shared/cache/l1';

describe('OpenedEnvelopes', () => {
  it('returns the plaintext only for the byte-identical blob under the same key', () => {
    const memo = new OpenedEnvelopes(1024 * 1024);
    const blob = Uint8Array.from([1, 2, 3, 4]);
    memo.set('k1', blob, '{"AccessToken":{}}');

    expect(memo.get('k1', Uint8Array.from([1, 2, 3, 4]))).toBe('{"AccessToken":{}}');
    expect(memo.get('k1', Uint8Array.from([1, 2, 3, 5]))).toBeUndefined();
    expect(memo.get('k1', Uint8Array.from([1, 2, 3]))).toBeUndefined();
    expect(memo.get('k2', blob)).toBeUndefined();
  });

  it('keeps its own copy, so a caller changing its buffer cannot change what matches', () => {
    const memo = new OpenedEnvelopes(1024 * 1024);
    const blob = Uint8Array.from([9, 9, 9]);
    memo.set('k', blob, 'json');
    blob[0] = 0;
    expect(memo.get('k', Uint8Array.from([9, 9, 9]))).toBe('json');
    expect(memo.get('k', blob)).toBeUndefined();
  });

  it('forgets on delete and stays within its byte bound', () => {
    const memo = new OpenedEnvelopes(2048);
    memo.set('a', new Uint8Array(600), 'x');
    memo.set('b', new Uint8Array(600), 'y');
    memo.set('c', new Uint8Array(600), 'z');
    expect(memo.get('a', new Uint8Array(600))).toBeUndefined();
    memo.delete('c');
    expect(memo.get('c', new Uint8Array(600))).toBeUndefined();
    expect(memo.get('b', new Uint8Array(600))).toBe('y');
  });

  it('forgets an entry ttlMs after it was set, however often it is read (revocation window)', () => {
    let clock = 1_000_000;
    const memo = new OpenedEnvelopes(1024 * 1024, { ttlMs: 60_000, now: () => clock });
    const blob = Uint8Array.from([1, 2, 3]);
    memo.set('k', blob, 'json');

    clock += 59_000;
    expect(memo.get('k', blob)).toBe('json');
    clock += 2_000;
    expect(memo.get('k', blob)).toBeUndefined();
  });
});
