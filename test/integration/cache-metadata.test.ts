/**
 * Per-result cache metadata (issue 15, item 1) with the real msal-node, the local
 * authority, a MemoryStore and the local key ring: each path says where its token came
 * from, why the store did not serve it, and what each step cost, counted per request
 * (right under concurrency), and none of it holds a secret.
 */
import { parseDocument, type CacheDocument } from '../../shared/cache/cache-document';
import { cacheLogFields, cacheMetadataOf, type CacheMetadata } from '../../shared/cache/metadata';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { Metric, type Logger } from '../../shared/observability';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE, signIn, startCacheWorld } from '../support/cache-harness';
import { useWorld } from '../support/use-world';
import { FailingStore, UnavailableKeyRing } from '../support/failing-parts';

describe('cache metadata of each result', () => {
  const world = useWorld(startCacheWorld);
  beforeEach(() => world.authority.counters.reset());

  const assertion = (oid: string) =>
    world.authority.mintUserToken({ audience: API_CLIENT_ID, oid, preferredUsername: `${oid}@example.com` });

  const envelope = () =>
    new Envelope({ keys: new DataKeyCache(new LocalKeyRing({ masterKey: world.masterKey })) });

  /** Every path's metadata is logged, so the file's secret scan covers it too. */
  function logged(m: CacheMetadata | undefined, logger: Logger): CacheMetadata {
    expect(m).toBeDefined();
    logger.info('metadata', cacheLogFields(m!));
    return m!;
  }

  it('a miss on an absent partition: from the authority, one token call, one write, with durations', async () => {
    const { cache, logger } = world.instance();
    const token = await assertion('meta-miss');

    const result = await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });

    const m = logged(result.cache, logger);
    expect(m).toMatchObject({
      partition: 'obo',
      tokenSource: 'authority',
      loadedFrom: 'absent',
      storeUnusedReason: 'absent',
      write: 'written',
      conflicts: 0,
      storeReads: 1,
      storeWrites: 1,
      keyServiceCalls: 1,
      tokenRequests: 1,
    });
    expect(m.timings.tokenCallMs).toBeGreaterThan(0);
    expect(m.timings.writeMs).toBeGreaterThan(0);
    expect(m.timings.storeReadMs).toBeGreaterThanOrEqual(0);
    expect(m.timings.envelopeOpenMs).toBeUndefined();
    expect(m.timings.totalMs).toBeGreaterThanOrEqual(m.timings.tokenCallMs!);
    expect(cacheMetadataOf(result)).toBe(m);
    expect(world.authority.counters.token()).toBe(1);
    // Nothing secret or user-identifying in it.
    const text = JSON.stringify(m);
    expect(text).not.toContain(result.accessToken);
    expect(text).not.toContain(token);
    expect(text).not.toContain(cache.storeKeyOf({ kind: 'obo', assertion: token }));
    expect(text).not.toContain('meta-miss');
  });

  it('a store hit: from the store, one read, one envelope open, no write and no token call', async () => {
    const token = await assertion('meta-store');
    await world.instance().cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });
    world.authority.counters.reset();
    const { cache, logger } = world.instance();

    const result = await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });

    const m = logged(result.cache, logger);
    expect(m).toMatchObject({
      tokenSource: 'store',
      loadedFrom: 'store',
      write: 'none',
      storeReads: 1,
      storeWrites: 0,
      keyServiceCalls: 1,
      tokenRequests: 0,
    });
    expect(m.storeUnusedReason).toBeUndefined();
    expect(m.timings.envelopeOpenMs).toBeGreaterThan(0);
    expect(m.timings.tokenCallMs).toBeUndefined();
    expect(world.authority.counters.token()).toBe(0);
  });

  it('an L1 hit: no store read, no key-service call, no token call', async () => {
    const token = await assertion('meta-l1');
    const { cache, logger } = world.instance({ l1: {} });
    await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });

    const result = await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });

    expect(logged(result.cache, logger)).toMatchObject({
      tokenSource: 'l1',
      loadedFrom: 'l1',
      write: 'none',
      storeReads: 0,
      storeWrites: 0,
      keyServiceCalls: 0,
      tokenRequests: 0,
    });
    expect(result.cache.timings.storeReadMs).toBeUndefined();
  });

  it('a rejected blob: from the authority, reason rejected with the envelope failure, replaced', async () => {
    const token = await assertion('meta-rejected');
    const { cache: first } = world.instance();
    await first.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });
    const key = first.storeKeyOf({ kind: 'obo', assertion: token });
    const item = (await world.store.read(key))!;
    const tampered = Uint8Array.from(item.blob);
    tampered[tampered.length - 1] ^= 0x01;
    await world.store.write(key, tampered, {
      condition: { expectedVersion: item.version },
      expiresAt: item.expiresAt,
    });
    const { cache, logger } = world.instance();

    const result = await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });

    expect(logged(result.cache, logger)).toMatchObject({
      tokenSource: 'authority',
      loadedFrom: 'unreadable',
      storeUnusedReason: 'rejected',
      rejectReason: 'authentication-failed',
      write: 'written',
      tokenRequests: 1,
    });
  });

  it('a store that is down: from the authority, reason store-unavailable', async () => {
    const { cache, logger } = world.instance({ store: new FailingStore(world.store, { read: true }) });
    const result = await cache.acquireTokenForApp({ scopes: ['api://meta-store-down/.default'] });
    expect(logged(result.cache, logger)).toMatchObject({
      partition: 'app',
      tokenSource: 'authority',
      loadedFrom: 'unavailable',
      storeUnusedReason: 'store-unavailable',
      storeReads: 1,
      tokenRequests: 1,
    });
  });

  it('a key service that is down: reason key-service-unavailable, and the stored item is not overwritten', async () => {
    await world.instance().cache.acquireTokenForApp({ scopes: ['api://meta-key-down/.default'] });
    const { cache, logger } = world.instance({ keyRing: new UnavailableKeyRing() });
    const result = await cache.acquireTokenForApp({ scopes: ['api://meta-key-down-2/.default'] });
    expect(logged(result.cache, logger)).toMatchObject({
      tokenSource: 'authority',
      storeUnusedReason: 'key-service-unavailable',
      write: 'skipped',
      writeSkipReason: 'unreadable-transient',
      storeWrites: 0,
    });
  });

  it('a partition whose access tokens expired: reason expired (MSAL redeemed the refresh token)', async () => {
    const oid = 'meta-expired';
    const first = world.instance();
    const signedIn = await signIn(world, first.cache, oid);
    expect(logged(signedIn.cache, first.logger)).toMatchObject({
      partition: 'user',
      tokenSource: 'authority',
      tokenRequests: 1,
      write: 'written',
    });
    const homeAccountId = signedIn.account!.homeAccountId;
    const key = first.cache.storeKeyOf({ kind: 'user', homeAccountId });
    await expireAccessTokens(key);
    world.authority.counters.reset();
    const { cache, logger } = world.instance();

    const result = await cache.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] });

    expect(logged(result.cache, logger)).toMatchObject({
      tokenSource: 'authority',
      loadedFrom: 'store',
      storeUnusedReason: 'expired',
      tokenRequests: 1,
      write: 'written',
    });
    expect(world.authority.counters.token()).toBe(1);

    const refreshed = await world.instance().cache.acquireTokenSilent({
      homeAccountId,
      scopes: ['User.Read'],
      forceRefresh: true,
    });
    expect(refreshed.cache.storeUnusedReason).toBe('no-matching-token');
  });

  it('counts per request under concurrency: 25 concurrent requests sum to the process-wide counters', async () => {
    const tokens = await Promise.all(Array.from({ length: 5 }, (_, i) => assertion(`meta-concurrent-${i}`)));
    const { cache, metrics, logger } = world.instance({ l1: {} });
    await cache.acquireTokenOnBehalfOf({ assertion: tokens[0], scopes: [DOWNSTREAM_SCOPE] });
    world.authority.counters.reset();
    metrics.reset();

    // Five callers, five requests each, at once: caller 0 is warm (L1), the others are cold.
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        cache.acquireTokenOnBehalfOf({ assertion: tokens[i % 5], scopes: [DOWNSTREAM_SCOPE] }),
      ),
    );

    const all = results.map((r) => logged(r.cache, logger));
    const sum = (f: (m: CacheMetadata) => number) => all.reduce((n, m) => n + f(m), 0);
    expect(sum((m) => m.tokenRequests)).toBe(world.authority.counters.token());
    expect(sum((m) => m.storeReads)).toBe(metrics.get(Metric.StoreRead));
    expect(sum((m) => m.storeWrites)).toBe(metrics.get(Metric.StoreWrite));
    expect(sum((m) => m.conflicts)).toBe(metrics.get(Metric.StoreConflict));
    // The warm caller's five requests were served by L1, whatever the others did meanwhile.
    for (let i = 0; i < 25; i += 5) {
      expect(all[i]).toMatchObject({ tokenSource: 'l1', storeReads: 0, tokenRequests: 0 });
    }
    // With single flight, the first request of each cold caller calls the authority and the
    // other four join it: they report the same source, `joined`, and no calls of their own.
    const fromAuthority = all.filter((m) => m.tokenSource === 'authority');
    expect(fromAuthority.filter((m) => !m.joined).every((m) => m.tokenRequests === 1)).toBe(true);
    expect(fromAuthority.filter((m) => m.joined)).toHaveLength(16);
    expect(
      fromAuthority.filter((m) => m.joined).every((m) => m.tokenRequests === 0 && m.storeReads === 0),
    ).toBe(true);
    expect(world.authority.counters.token()).toBe(4);
    expect(all.filter((m) => m.tokenSource !== 'authority').every((m) => m.tokenRequests === 0)).toBe(true);
  });

  it('calls onResult once per acquisition with the result’s metadata', async () => {
    const seen: CacheMetadata[] = [];
    const { cache } = world.instance({ onResult: (m) => seen.push(m) });
    const result = await cache.acquireTokenForApp({ scopes: ['api://meta-on-result/.default'] });
    await cache.acquireTokenForApp({ scopes: ['api://meta-on-result/.default'] });
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(result.cache);
    expect(seen.map((m) => m.tokenSource)).toEqual(['authority', 'store']);
  });

  it('survives an onResult that throws (logged, the token still returned)', async () => {
    const { cache, logger } = world.instance({
      onResult: () => {
        throw new Error('boom');
      },
    });
    const result = await cache.acquireTokenForApp({ scopes: ['api://meta-throws/.default'] });
    expect(result.accessToken).toBeTruthy();
    expect(logger.lines.some((l) => l.level === 'warn' && l.message === 'onResult callback failed')).toBe(
      true,
    );
  });

  async function expireAccessTokens(key: string): Promise<void> {
    const item = (await world.store.read(key))!;
    const doc: CacheDocument = parseDocument(
      Buffer.from(await envelope().open(item.blob, key)).toString('utf8'),
    );
    const past = String(Math.floor(Date.now() / 1000) - 60);
    for (const entity of Object.values(doc['AccessToken'] ?? {})) {
      entity['expires_on'] = past;
      entity['extended_expires_on'] = past;
    }
    const blob = await envelope().seal(Buffer.from(JSON.stringify(doc)), key);
    await world.store.write(key, blob, {
      condition: { expectedVersion: item.version },
      expiresAt: item.expiresAt,
    });
  }
});
