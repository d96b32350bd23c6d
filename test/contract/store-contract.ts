/**
 * The store contract suite: every invariant listed in shared/store/store.ts, checked
 * against a real store. Each store's integration test calls {@link runStoreContract}
 * with a fixture backed by its real server (dynalite, cosmosdb-server) or none (memory).
 */
import { randomBytes } from 'node:crypto';
import { ConfigurationError, SizeLimitError, VersionConflictError } from '../../shared/errors';
import {
  hasLeases,
  leaseItemKey,
  type LeaseStore,
  type StoredItem,
  type TokenStore,
  type WriteOptions,
} from '../../shared/store/store';

/** What a store's test hands to {@link runStoreContract}. */
export interface StoreFixture {
  /** The store under test; it is shared by all tests of the suite, which use fresh keys. */
  readonly store: TokenStore;
  /** Sets the store's injected clock (epoch ms). Without it, expiry is checked with already-expired items. */
  readonly clock?: { set(ms: number): void };
  /**
   * Leases expire by the server's own clock (e.g. Redis `SET NX PX`), not the injected one:
   * the lease expiry test then waits real time instead of moving `clock`.
   */
  readonly serverClockLeases?: boolean;
  /** Releases whatever setup started. */
  teardown(): Promise<void>;
}

/**
 * The usual fixture: a store built over a clock the suite sets, torn down by destroying
 * the store (when it has `destroy`) and then stopping its server.
 * @example runStoreContract('redis', async () => { const redis = await startLocalRedis(); return clockedFixture((now) => new RedisStore({ clientOptions: { url: redis.url }, now }), redis); });
 */
export function clockedFixture(
  build: (now: () => number) => TokenStore & { destroy?(): void },
  server?: { stop(): Promise<void> },
): StoreFixture {
  let nowMs = 0;
  const store = build(() => nowMs);
  return {
    store,
    clock: { set: (ms: number) => (nowMs = ms) },
    teardown: async () => {
      store.destroy?.();
      await server?.stop();
    },
  };
}

/**
 * A fixed instant far from the wall clock: a store that reads `Date.now()` instead of its
 * injected clock gets expiry wrong and fails the expiry tests.
 */
const T0 = Date.UTC(2031, 0, 15, 12, 0, 0);
const ROUNDS = 5;
const WRITERS = 8;

/**
 * Runs the store contract as one `describe` block.
 * @example runStoreContract('memory', async () => { const clock = fakeClock(); return { store: new MemoryStore({ now: clock.now }), clock, teardown: async () => {} }; });
 */
export function runStoreContract(name: string, setup: () => Promise<StoreFixture>): void {
  describe(`${name} store contract`, () => {
    let fixture: StoreFixture | undefined;
    let nowMs = T0;

    beforeAll(async () => {
      fixture = await setup();
    });

    afterAll(async () => {
      await fixture?.teardown();
    });

    beforeEach(() => {
      setNow(fixture?.clock ? T0 : Date.now());
    });

    function store(): TokenStore {
      if (!fixture) throw new Error('store fixture setup failed; see the beforeAll error');
      return fixture.store;
    }

    function setNow(ms: number): void {
      nowMs = ms;
      fixture?.clock?.set(ms);
    }

    function nowSeconds(): number {
      return Math.floor(nowMs / 1000);
    }

    /** Options for an item that lives an hour. */
    function create(): WriteOptions {
      return { condition: { mustNotExist: true }, expiresAt: nowSeconds() + 3600 };
    }

    function replace(expectedVersion: string): WriteOptions {
      return { condition: { expectedVersion }, expiresAt: nowSeconds() + 3600 };
    }

    /**
     * An expiry for an item that `expire()` then makes expired: with a clock, an hour
     * ahead and the clock moved to exactly that second (`expiresAt <= now` is expired);
     * without one, a second in the past already.
     */
    function expiring(): { expiresAt: number; expire(): void } {
      if (fixture?.clock) {
        const expiresAt = nowSeconds() + 3600;
        return { expiresAt, expire: () => setNow(expiresAt * 1000) };
      }
      return { expiresAt: nowSeconds() - 1, expire: () => undefined };
    }

    async function readLive(key: string): Promise<StoredItem> {
      const item = await store().read(key);
      if (!item) throw new Error(`expected a live item under ${key}, read returned undefined`);
      return item;
    }

    async function expectConflict(action: Promise<unknown>): Promise<void> {
      const error = await action.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(VersionConflictError);
      expect((error as VersionConflictError).store).toBe(store().name);
    }

    async function settleAll(actions: Promise<string>[]): Promise<{ won: string[]; lost: unknown[] }> {
      const results = await Promise.allSettled(actions);
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      return { won, lost };
    }

    /** Races {@link WRITERS} creators of `key`: exactly one wins, the others conflict, and the winner's version is live. */
    async function expectOneOfConcurrentCreatorsWins(key: string): Promise<void> {
      const { won, lost } = await settleAll(
        Array.from({ length: WRITERS }, (_, i) => store().write(key, bytes(`creator ${i}`), create())),
      );

      expect(won).toHaveLength(1);
      for (const error of lost) expect(error).toBeInstanceOf(VersionConflictError);
      expect((await readLive(key)).version).toBe(won[0]);
    }

    describe('read', () => {
      it('returns undefined for an absent key', async () => {
        await expect(store().read(freshKey())).resolves.toBeUndefined();
      });

      it('keeps the stored item independent of the buffers passed in and handed out', async () => {
        const key = freshKey();
        const written = bytes('original');
        await store().write(key, written, create());

        written.fill(0);
        const first = await readLive(key);
        first.blob.fill(0);

        expectSameBytes((await readLive(key)).blob, bytes('original'));
      });
    });

    describe('write with mustNotExist', () => {
      it('creates the item; read returns its blob, version and expiresAt', async () => {
        const key = freshKey();
        const options = create();

        const version = await store().write(key, bytes('first'), options);

        expect(typeof version).toBe('string');
        expect(version).not.toBe('');
        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('first'));
        expect(item.version).toBe(version);
        expect(item.expiresAt).toBe(options.expiresAt);
      });

      it('throws VersionConflictError when a live item exists, and leaves it unchanged', async () => {
        const key = freshKey();
        const version = await store().write(key, bytes('first'), create());

        await expectConflict(store().write(key, bytes('second'), create()));

        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('first'));
        expect(item.version).toBe(version);
      });

      it('lets exactly one of many concurrent creators win', async () => {
        const key = freshKey();

        await expectOneOfConcurrentCreatorsWins(key);
      });
    });

    describe('write with expectedVersion', () => {
      it('replaces the item at the current version and returns a new version', async () => {
        const key = freshKey();
        const first = await store().write(key, bytes('first'), create());
        const options = replace(first);

        const second = await store().write(key, bytes('second'), {
          ...options,
          expiresAt: options.expiresAt + 60,
        });

        expect(second).not.toBe(first);
        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('second'));
        expect(item.version).toBe(second);
        expect(item.expiresAt).toBe(options.expiresAt + 60);
      });

      it('throws VersionConflictError for a stale version, and leaves the item unchanged', async () => {
        const key = freshKey();
        const first = await store().write(key, bytes('first'), create());
        const second = await store().write(key, bytes('second'), replace(first));

        await expectConflict(store().write(key, bytes('third'), replace(first)));

        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('second'));
        expect(item.version).toBe(second);
      });

      it('throws VersionConflictError when the item is absent', async () => {
        const key = freshKey();
        const version = await store().write(freshKey(), bytes('elsewhere'), create());

        await expectConflict(store().write(key, bytes('first'), replace(version)));

        await expect(store().read(key)).resolves.toBeUndefined();
      });

      it(`lets exactly one of ${WRITERS} concurrent writers from the same version win, ${ROUNDS} rounds in a row`, async () => {
        const key = freshKey();
        let version = await store().write(key, bytes('round 0'), create());

        for (let round = 1; round <= ROUNDS; round++) {
          const base = version;
          const { won, lost } = await settleAll(
            Array.from({ length: WRITERS }, (_, i) =>
              store().write(key, bytes(`round ${round} writer ${i}`), replace(base)),
            ),
          );

          expect({ round, winners: won.length }).toEqual({ round, winners: 1 });
          for (const error of lost) expect(error).toBeInstanceOf(VersionConflictError);
          const item = await readLive(key);
          expect(item.version).toBe(won[0]);
          expect(Buffer.from(item.blob).toString()).toMatch(new RegExp(`^round ${round} writer \\d+$`));
          version = item.version;
        }
      });
    });

    describe('expiry', () => {
      it('reads an item as absent once now reaches its expiresAt', async () => {
        const key = freshKey();
        const { expiresAt, expire } = expiring();
        await store().write(key, bytes('short-lived'), { condition: { mustNotExist: true }, expiresAt });

        expire();

        await expect(store().read(key)).resolves.toBeUndefined();
      });

      it('lets mustNotExist replace an expired item, under a version never handed out before', async () => {
        const key = freshKey();
        const { expiresAt, expire } = expiring();
        const old = await store().write(key, bytes('expired'), {
          condition: { mustNotExist: true },
          expiresAt,
        });
        expire();

        const version = await store().write(key, bytes('fresh'), create());

        expect(version).not.toBe(old);
        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('fresh'));
        expect(item.version).toBe(version);
        // A writer that read the old item before it expired must not overwrite the new one.
        await expectConflict(store().write(key, bytes('stale writer'), replace(old)));
      });

      it('lets exactly one of many concurrent creators replace an expired item', async () => {
        const key = freshKey();
        const { expiresAt, expire } = expiring();
        await store().write(key, bytes('expired'), { condition: { mustNotExist: true }, expiresAt });
        expire();

        await expectOneOfConcurrentCreatorsWins(key);
      });
    });

    describe('delete', () => {
      it('removes the item', async () => {
        const key = freshKey();
        await store().write(key, bytes('doomed'), create());

        await store().delete(key);

        await expect(store().read(key)).resolves.toBeUndefined();
      });

      it('removes the item when expectedVersion is current', async () => {
        const key = freshKey();
        const version = await store().write(key, bytes('doomed'), create());

        await store().delete(key, { expectedVersion: version });

        await expect(store().read(key)).resolves.toBeUndefined();
      });

      it('throws VersionConflictError for a stale expectedVersion, and keeps the item', async () => {
        const key = freshKey();
        const first = await store().write(key, bytes('first'), create());
        const second = await store().write(key, bytes('second'), replace(first));

        await expectConflict(store().delete(key, { expectedVersion: first }));

        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('second'));
        expect(item.version).toBe(second);
      });

      it('is a no-op for an absent item without expectedVersion', async () => {
        const key = freshKey();

        await expect(store().delete(key)).resolves.toBeUndefined();

        await expect(store().read(key)).resolves.toBeUndefined();
      });

      it('throws VersionConflictError for an absent item with expectedVersion', async () => {
        const version = await store().write(freshKey(), bytes('elsewhere'), create());

        await expectConflict(store().delete(freshKey(), { expectedVersion: version }));
      });

      it('lets the key be created again, and the deleted version stays stale', async () => {
        const key = freshKey();
        const old = await store().write(key, bytes('before'), create());
        await store().delete(key);

        const version = await store().write(key, bytes('after'), create());

        expect(version).not.toBe(old);
        await expectConflict(store().write(key, bytes('stale writer'), replace(old)));
        expectSameBytes((await readLive(key)).blob, bytes('after'));
      });
    });

    describe('blob bytes', () => {
      it('round-trip exactly, every byte value included', async () => {
        const key = freshKey();
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        const reversed = Uint8Array.from(all).reverse();
        const blob = Buffer.concat([all, reversed, randomBytes(4096), Buffer.from([0, 0, 255, 0])]);

        await store().write(key, blob, create());

        expectSameBytes((await readLive(key)).blob, blob);
      });
    });

    describe('leases', () => {
      function leases(): TokenStore & LeaseStore {
        const s = store();
        if (!hasLeases(s)) throw new Error(`${s.name} does not implement acquireLease/releaseLease`);
        return s;
      }
      const TTL = 2000;

      /** Moves the clock past the lease, or waits it out on a store without a clock. */
      const fakeLeaseClock = (): boolean => fixture?.clock !== undefined && !fixture.serverClockLeases;

      async function outlive(ttlMs: number): Promise<void> {
        if (fakeLeaseClock()) setNow(nowMs + ttlMs);
        else await new Promise((done) => setTimeout(done, ttlMs + 50));
      }

      it('is implemented', () => {
        expect(hasLeases(store())).toBe(true);
      });

      it('is granted on a free key and refused while live, to other owners and the same one', async () => {
        const key = freshKey();

        await expect(leases().acquireLease(key, { owner: 'a', ttlMs: TTL })).resolves.toBe(true);

        await expect(leases().acquireLease(key, { owner: 'b', ttlMs: TTL })).resolves.toBe(false);
        await expect(leases().acquireLease(key, { owner: 'a', ttlMs: TTL })).resolves.toBe(false);
      });

      it(`is granted to exactly one of ${WRITERS} concurrent owners`, async () => {
        const key = freshKey();

        const granted = await Promise.all(
          Array.from({ length: WRITERS }, (_, i) =>
            leases().acquireLease(key, { owner: `o${i}`, ttlMs: TTL }),
          ),
        );

        expect(granted.filter(Boolean)).toHaveLength(1);
      });

      it('is released by its owner only; a release by another owner or of no lease is a no-op', async () => {
        const key = freshKey();
        await leases().acquireLease(key, { owner: 'a', ttlMs: TTL });

        await leases().releaseLease(key, 'b');
        await expect(leases().acquireLease(key, { owner: 'c', ttlMs: TTL })).resolves.toBe(false);
        await leases().releaseLease(key, 'a');
        await expect(leases().releaseLease(freshKey(), 'a')).resolves.toBeUndefined();

        await expect(leases().acquireLease(key, { owner: 'c', ttlMs: TTL })).resolves.toBe(true);
      });

      it('expires on its own: once now reaches until, exactly one new owner takes it over', async () => {
        const key = freshKey();
        const ttlMs = fakeLeaseClock() ? TTL : 300;
        await leases().acquireLease(key, { owner: 'dead', ttlMs });

        await outlive(ttlMs);
        const granted = await Promise.all(
          Array.from({ length: WRITERS }, (_, i) =>
            leases().acquireLease(key, { owner: `o${i}`, ttlMs: TTL }),
          ),
        );

        expect(granted.filter(Boolean)).toHaveLength(1);
        // The dead owner's late release does not free the new owner's lease.
        await leases().releaseLease(key, 'dead');
        await expect(leases().acquireLease(key, { owner: 'late', ttlMs: TTL })).resolves.toBe(false);
      });

      it("never reads as a cache item, and leaves the key's own item alone", async () => {
        const key = freshKey();
        await leases().acquireLease(key, { owner: 'a', ttlMs: TTL });

        await expect(store().read(key)).resolves.toBeUndefined();
        await expect(store().read(leaseItemKey(key))).resolves.toBeUndefined();
        const version = await store().write(key, bytes('tokens'), create());
        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('tokens'));
        expect(item.version).toBe(version);
        await store().delete(key);
        await expect(store().read(key)).resolves.toBeUndefined();

        await expect(leases().acquireLease(key, { owner: 'b', ttlMs: TTL })).resolves.toBe(false);
      });

      it('is not blocked by an item under the key', async () => {
        const key = freshKey();
        await store().write(key, bytes('tokens'), create());

        await expect(leases().acquireLease(key, { owner: 'a', ttlMs: TTL })).resolves.toBe(true);
        expectSameBytes((await readLive(key)).blob, bytes('tokens'));
      });

      it.each([0, -1, 1.5, 60_001, Number.NaN])(
        'rejects ttlMs %p with a ConfigurationError',
        async (ttlMs) => {
          await expect(leases().acquireLease(freshKey(), { owner: 'a', ttlMs })).rejects.toBeInstanceOf(
            ConfigurationError,
          );
        },
      );
    });

    describe('size limit', () => {
      it('is a positive whole number of bytes', () => {
        expect(Number.isSafeInteger(store().maxItemBytes)).toBe(true);
        expect(store().maxItemBytes).toBeGreaterThan(0);
      });

      it('accepts a blob of half maxItemBytes', async () => {
        const key = freshKey();
        const blob = randomBytes(Math.floor(store().maxItemBytes / 2));

        await store().write(key, blob, create());

        expectSameBytes((await readLive(key)).blob, blob);
      });

      it('rejects a blob over maxItemBytes with SizeLimitError, and keeps the previous item', async () => {
        const key = freshKey();
        const version = await store().write(key, bytes('previous'), create());

        const error = await store()
          .write(key, randomBytes(store().maxItemBytes + 1), replace(version))
          .then(
            () => undefined,
            (e: unknown) => e,
          );

        expect(error).toBeInstanceOf(SizeLimitError);
        expect(error).toMatchObject({ store: store().name, limit: store().maxItemBytes });
        expect((error as SizeLimitError).size).toBeGreaterThan(store().maxItemBytes);
        const item = await readLive(key);
        expectSameBytes(item.blob, bytes('previous'));
        expect(item.version).toBe(version);
      });

      it('rejects an oversized create with SizeLimitError, and the key stays absent', async () => {
        const key = freshKey();

        await expect(
          store().write(key, randomBytes(store().maxItemBytes + 1), create()),
        ).rejects.toBeInstanceOf(SizeLimitError);

        await expect(store().read(key)).resolves.toBeUndefined();
      });
    });
  });
}

/** A key shaped like the cache's (a hash), unique per call so tests never share items. */
function freshKey(): string {
  return `contract.${randomBytes(16).toString('base64url')}`;
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Byte-for-byte comparison with a readable failure (length and first differing offset). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  // Cross-realm safe (jest's globals differ from Node's): check the tag, not instanceof.
  expect(Object.prototype.toString.call(actual)).toBe('[object Uint8Array]');
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  let firstDifference = -1;
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) {
      firstDifference = i;
      break;
    }
  }
  expect({ length: a.length, firstDifference }).toEqual({ length: e.length, firstDifference: -1 });
}
