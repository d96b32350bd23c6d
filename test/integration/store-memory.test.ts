import { ConfigurationError, SizeLimitError } from '../../shared/errors';
import { MemoryStore } from '../../shared/store/memory';
import { runStoreContract } from '../contract/store-contract';

runStoreContract('memory', async () => {
  let nowMs = 0;
  return {
    store: new MemoryStore({ now: () => nowMs }),
    clock: { set: (ms: number) => (nowMs = ms) },
    teardown: async () => undefined,
  };
});

describe('MemoryStore', () => {
  describe('constructor', () => {
    it('defaults maxItemBytes to 400 KiB, like DynamoDB', () => {
      expect(new MemoryStore().maxItemBytes).toBe(400 * 1024);
    });

    it.each([0, -1, 1.5, Number.NaN])(
      'rejects maxItemBytes %p with a ConfigurationError naming it',
      (bad) => {
        expect(() => new MemoryStore({ maxItemBytes: bad })).toThrow(ConfigurationError);
        expect(() => new MemoryStore({ maxItemBytes: bad })).toThrow(/^maxItemBytes: /);
      },
    );
  });

  describe('write', () => {
    it('counts the key towards maxItemBytes', async () => {
      const store = new MemoryStore({ maxItemBytes: 10 });

      await expect(
        store.write('four', new Uint8Array(6), { condition: { mustNotExist: true }, expiresAt: 2e9 }),
      ).resolves.toBe('1');
      await expect(
        store.write('five!', new Uint8Array(6), { condition: { mustNotExist: true }, expiresAt: 2e9 }),
      ).rejects.toBeInstanceOf(SizeLimitError);
    });
  });
});
