/**
 * Acceptance of the token cache with the real msal-node, the local authority, a
 * MemoryStore and the local key ring. Each `instance()` is a separately constructed
 * cache: a stand-in for one Lambda container or Functions instance.
 */
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { parseDocument, type CacheDocument } from '../../shared/cache/cache-document';
import { Envelope } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { ConfigurationError, EnvelopeFailure, InteractionRequiredError } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import type { TokenStore } from '../../shared/store/store';
import { GrantType } from '../../local/authority';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  DOWNSTREAM_SCOPE,
  signIn,
  startCacheWorld,
} from '../support/cache-harness';
import { useWorld } from '../support/use-world';
import { FailingStore, UnavailableKeyRing } from '../support/failing-parts';

describe('TokenCache (msal-node + local authority + MemoryStore)', () => {
  const world = useWorld(startCacheWorld);

  beforeEach(() => {
    world.authority.counters.reset();
  });

  /** Opens what is stored for a store key with the world's master key. */
  async function storedDocument(store: TokenStore, key: string): Promise<CacheDocument | undefined> {
    const item = await store.read(key);
    if (!item) return undefined;
    const envelope = new Envelope({
      keys: new DataKeyCache(new LocalKeyRing({ masterKey: world.masterKey })),
    });
    return parseDocument(Buffer.from(await envelope.open(item.blob, key)).toString('utf8'));
  }

  async function userAssertion(oid: string): Promise<string> {
    return world.authority.mintUserToken({
      audience: API_CLIENT_ID,
      oid,
      preferredUsername: `${oid}@example.com`,
    });
  }

  async function signInUser(oid: string, cache = world.instance().cache) {
    return signIn(world, cache, oid);
  }

  describe('two containers sharing one store', () => {
    it('serves OBO from the store to a second instance with zero token-endpoint calls', async () => {
      const assertion = await userAssertion('obo-user-1');
      const first = await world
        .instance()
        .cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      expect(first.fromCache).toBe(false);
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);

      const second = world.instance();
      const again = await second.cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      expect(again.fromCache).toBe(true);
      expect(again.accessToken).toBe(first.accessToken);
      expect(world.authority.counters.token()).toBe(1);
      expect(second.metrics.get(Metric.StoreRead)).toBe(1);
    });

    it('serves app tokens from the store to a second instance with zero token-endpoint calls', async () => {
      const scopes = ['api://app-two-containers/.default'];
      const first = await world.instance().cache.acquireTokenForApp({ scopes });
      const again = await world.instance().cache.acquireTokenForApp({ scopes });
      expect(again.fromCache).toBe(true);
      expect(again.accessToken).toBe(first.accessToken);
      expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(1);
    });

    it('serves a signed-in user silently from a second instance with zero token-endpoint calls', async () => {
      const signedIn = await signInUser('user-two-containers');
      const homeAccountId = signedIn.account!.homeAccountId;
      world.authority.counters.reset();

      const again = await world.instance().cache.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] });
      expect(again.fromCache).toBe(true);
      expect(again.accessToken).toBe(signedIn.accessToken);
      expect(world.authority.counters.token()).toBe(0);
    });

    it('redeems the stored refresh token from another instance when asked to refresh', async () => {
      const signedIn = await signInUser('user-refresh');
      world.authority.counters.reset();
      const refreshed = await world.instance().cache.acquireTokenSilent({
        homeAccountId: signedIn.account!.homeAccountId,
        scopes: ['User.Read'],
        forceRefresh: true,
      });
      expect(refreshed.fromCache).toBe(false);
      expect(refreshed.accessToken).not.toBe(signedIn.accessToken);
      expect(world.authority.counters.token(GrantType.RefreshToken)).toBe(1);
    });
  });

  describe('warm requests', () => {
    it('cost 1 store read, 0 writes, 0 key-service and 0 token-endpoint calls with L1 off', async () => {
      const assertion = await userAssertion('warm-user');
      const { cache, metrics } = world.instance();
      await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      world.authority.counters.reset();
      metrics.reset();

      const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

      expect(result.fromCache).toBe(true);
      expect(metrics.get(Metric.StoreRead)).toBe(1);
      expect(metrics.get(Metric.StoreWrite)).toBe(0);
      expect(metrics.get(Metric.KeyGenerate) + metrics.get(Metric.KeyUnwrap)).toBe(0);
      expect(world.authority.counters.token()).toBe(0);
      expect(world.authority.counters.metadata()).toBe(0);
    });

    it('cost 0 store reads with L1 on', async () => {
      const scopes = ['api://warm-l1/.default'];
      const { cache, metrics } = world.instance({ l1: {} });
      await cache.acquireTokenForApp({ scopes });
      metrics.reset();
      world.authority.counters.reset();

      const result = await cache.acquireTokenForApp({ scopes });

      expect(result.fromCache).toBe(true);
      expect(metrics.get(Metric.StoreRead)).toBe(0);
      expect(metrics.get(Metric.L1Hit)).toBe(1);
      expect(metrics.get(Metric.StoreWrite)).toBe(0);
      expect(world.authority.counters.token()).toBe(0);
    });

    it('fetch the authority metadata once per instance, not per request', async () => {
      const { cache, metrics } = world.instance();
      for (let i = 0; i < 3; i++)
        await cache.acquireTokenForApp({ scopes: [`api://metadata-${i}/.default`] });
      expect(metrics.get(Metric.MetadataFetch)).toBe(1);
      expect(world.authority.counters.metadata()).toBe(1);
    });
  });

  describe('concurrent writers', () => {
    it('keeps all 20 tokens when 20 instances acquire 20 scopes on one partition at once', async () => {
      const tenantId = world.authority.tenantId;
      const scopes = Array.from({ length: 20 }, (_, i) => `api://concurrent-${i}/.default`);
      const instances = scopes.map(() => world.instance());

      const results = await Promise.all(
        instances.map(({ cache }, i) => cache.acquireTokenForApp({ scopes: [scopes[i]] })),
      );

      const key = instances[0].cache.storeKeyOf({ kind: 'app', tenantId });
      const doc = await storedDocument(world.store, key);
      const stored = Object.values(doc!['AccessToken'] ?? {}).map((e) => e['secret']);
      for (const r of results) expect(stored).toContain(r.accessToken);
      const conflicts = instances.reduce((n, i) => n + i.metrics.get(Metric.StoreConflict), 0);
      const failures = instances.reduce((n, i) => n + i.metrics.get(Metric.WriteFailed), 0);
      expect(failures).toBe(0);
      expect(conflicts).toBeGreaterThan(0);
    });
  });

  describe('blobs that cannot be opened', () => {
    async function twoUsers() {
      const a = await userAssertion('swap-a');
      const b = await userAssertion('swap-b');
      const { cache } = world.instance();
      await cache.acquireTokenOnBehalfOf({ assertion: a, scopes: [DOWNSTREAM_SCOPE] });
      await cache.acquireTokenOnBehalfOf({ assertion: b, scopes: [DOWNSTREAM_SCOPE] });
      return {
        a,
        b,
        keyA: cache.storeKeyOf({ kind: 'obo', assertion: a }),
        keyB: cache.storeKeyOf({ kind: 'obo', assertion: b }),
      };
    }

    async function plant(key: string, blob: Uint8Array): Promise<string> {
      const current = await world.store.read(key);
      return world.store.write(key, blob, {
        condition: current ? { expectedVersion: current.version } : { mustNotExist: true },
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      });
    }

    it('never serves user A’s blob copied into user B’s partition, and says why', async () => {
      const { a, b, keyA, keyB } = await twoUsers();
      const blobA = (await world.store.read(keyA))!.blob;
      const plantedVersion = await plant(keyB, blobA);
      const tokenOfA = (
        await world.instance().cache.acquireTokenOnBehalfOf({ assertion: a, scopes: [DOWNSTREAM_SCOPE] })
      ).accessToken;
      world.authority.counters.reset();

      const { cache, metrics, logger } = world.instance();
      const result = await cache.acquireTokenOnBehalfOf({ assertion: b, scopes: [DOWNSTREAM_SCOPE] });

      expect(result.fromCache).toBe(false);
      expect(result.accessToken).not.toBe(tokenOfA);
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
      expect(
        metrics.get(Metric.EnvelopeRejected, { kind: 'obo', reason: EnvelopeFailure.AuthenticationFailed }),
      ).toBe(1);
      expect(logger.lines.some((l) => l.level === 'error' && l.fields?.['code'] === 'ENVELOPE_INVALID')).toBe(
        true,
      );
      // The planted blob was replaced by a conditional write on its own version.
      const after = await world.store.read(keyB);
      expect(after!.version).not.toBe(plantedVersion);
      expect((await storedDocument(world.store, keyB))!['AccessToken']).toBeDefined();
    });

    it.each([
      ['a flipped byte in the header', (blob: Uint8Array) => flip(blob, 6)],
      ['a flipped byte in the ciphertext', (blob: Uint8Array) => flip(blob, blob.length - 20)],
      ['a flipped byte in the tag', (blob: Uint8Array) => flip(blob, blob.length - 1)],
      ['truncation', (blob: Uint8Array) => blob.subarray(0, blob.length - 17)],
      ['truncation to the header', (blob: Uint8Array) => blob.subarray(0, 8)],
    ])('never serves a blob with %s', async (_name, mutate) => {
      const assertion = await userAssertion(`tamper-${_name}`);
      const { cache } = world.instance();
      const original = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      const key = cache.storeKeyOf({ kind: 'obo', assertion });
      await plant(key, mutate(Uint8Array.from((await world.store.read(key))!.blob)));
      world.authority.counters.reset();

      const fresh = world.instance();
      const result = await fresh.cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

      expect(result.fromCache).toBe(false);
      expect(result.accessToken).not.toBe(original.accessToken);
      expect(world.authority.counters.token()).toBe(1);
      expect(fresh.metrics.get(Metric.EnvelopeRejected)).toBe(1);
    });
  });

  describe('faults', () => {
    it('acquires through the authority when the store cannot be read, and reports it', async () => {
      const failing = new FailingStore(world.store, { read: true });
      const { cache, metrics, logger } = world.instance({ store: failing });
      const assertion = await userAssertion('store-down');

      const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

      expect(result.accessToken).toBeTruthy();
      expect(metrics.get(Metric.StoreError, { kind: 'obo', operation: 'read' })).toBe(1);
      expect(logger.lines.some((l) => l.level === 'warn' && l.fields?.['code'] === 'STORE_UNAVAILABLE')).toBe(
        true,
      );
    });

    it('does not overwrite a stored blob it could not open because the key service failed', async () => {
      const scopes = ['api://key-down/.default'];
      await world.instance().cache.acquireTokenForApp({ scopes });
      const key = world.instance().cache.storeKeyOf({ kind: 'app', tenantId: world.authority.tenantId });
      const before = await world.store.read(key);

      const down = new UnavailableKeyRing();
      const { cache, metrics } = world.instance({ keyRing: down });
      const result = await cache.acquireTokenForApp({ scopes: ['api://key-down-other/.default'] });

      expect(result.fromCache).toBe(false);
      expect(metrics.get(Metric.WriteSkipped, { kind: 'app', reason: 'unreadable-transient' })).toBe(1);
      expect((await world.store.read(key))!.version).toBe(before!.version);
    });

    it('writes nothing, not even unencrypted, when no data key can be had', async () => {
      const store = new MemoryStore();
      const { cache, metrics } = world.instance({ store, keyRing: new UnavailableKeyRing() });
      const result = await cache.acquireTokenForApp({ scopes: ['api://no-key/.default'] });
      expect(result.accessToken).toBeTruthy();
      expect(store.size).toBe(0);
      expect(metrics.get(Metric.WriteFailed, { kind: 'app', reason: 'key-service' })).toBe(1);
    });
  });

  describe('what is stored', () => {
    it('never holds a token in the clear', async () => {
      const assertion = await userAssertion('clear-text');
      const { cache } = world.instance();
      const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      const blob = Buffer.from((await world.store.read(cache.storeKeyOf({ kind: 'obo', assertion })))!.blob);
      expect(blob.includes(Buffer.from(result.accessToken))).toBe(false);
      expect(blob.includes(Buffer.from(result.accessToken.split('.')[1]))).toBe(false);
    });

    it('never writes back an access token that has expired', async () => {
      let clock = Date.now();
      const store = new MemoryStore({ now: () => clock });
      const { cache } = world.instance({ store, now: () => clock });
      const old = await cache.acquireTokenForApp({ scopes: ['api://expiring-a/.default'] });
      // Past the first token's expiry for the cache (MSAL keeps real time); the second
      // token lives long enough to outlast the jump.
      clock += 3700_000;
      world.authority.setAccessTokenLifetime(7200);
      let next;
      try {
        next = await cache.acquireTokenForApp({ scopes: ['api://expiring-b/.default'] });
      } finally {
        world.authority.setAccessTokenLifetime(3600);
      }

      const doc = await storedDocument(
        store,
        cache.storeKeyOf({ kind: 'app', tenantId: world.authority.tenantId }),
      );
      const secrets = Object.values(doc!['AccessToken'] ?? {}).map((e) => e['secret']);
      expect(secrets).toContain(next.accessToken);
      expect(secrets).not.toContain(old.accessToken);
    });

    it('sets the OBO item to expire with the incoming assertion', async () => {
      const assertion = await world.authority.mintUserToken({
        audience: API_CLIENT_ID,
        oid: 'exp-user',
        expiresInSeconds: 900,
      });
      const exp = JSON.parse(Buffer.from(assertion.split('.')[1], 'base64url').toString()) as {
        exp: number;
      };
      const { cache } = world.instance();
      await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
      expect((await world.store.read(cache.storeKeyOf({ kind: 'obo', assertion })))!.expiresAt).toBe(exp.exp);
    });

    it('does not write when nothing changed', async () => {
      const scopes = ['api://unchanged/.default'];
      await world.instance().cache.acquireTokenForApp({ scopes });
      const { cache, metrics } = world.instance();
      await cache.acquireTokenForApp({ scopes });
      await cache.withPartition({ kind: 'app', tenantId: world.authority.tenantId }, (cca) =>
        cca.getTokenCache().getAllAccounts(),
      );
      expect(metrics.get(Metric.StoreWrite)).toBe(0);
    });
  });

  describe('signOut', () => {
    it('removes the user’s partition so the next silent request needs interaction', async () => {
      const signedIn = await signInUser('user-sign-out');
      const homeAccountId = signedIn.account!.homeAccountId;
      const { cache } = world.instance({ l1: {} });
      await cache.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] });

      await cache.signOut(homeAccountId);

      expect(await world.store.read(cache.storeKeyOf({ kind: 'user', homeAccountId }))).toBeUndefined();
      await expect(cache.acquireTokenSilent({ homeAccountId, scopes: ['User.Read'] })).rejects.toBeInstanceOf(
        InteractionRequiredError,
      );
    });
  });

  describe('configuration', () => {
    const base = () => ({
      msal: {
        clientId: API_CLIENT_ID,
        authority: world.authority.authority(),
        clientSecret: API_CLIENT_SECRET,
      },
      store: world.store,
      keyRing: new LocalKeyRing({ masterKey: world.masterKey }),
    });

    it.each([
      ['msal.clientId', () => ({ msal: { ...base().msal, clientId: '' } })],
      ['msal.authority', () => ({ msal: { ...base().msal, authority: 'not a url' } })],
      ['msal.authority', () => ({ msal: { ...base().msal, authority: 'http://login.example/tenant' } })],
      ['store', () => ({ store: undefined })],
      ['keyRing', () => ({ keyRing: undefined })],
      ['l1.maxBytes', () => ({ l1: { maxBytes: 0 } })],
      ['userSlidingWindowSeconds', () => ({ userSlidingWindowSeconds: -5 })],
    ])('names %s when it is invalid', (setting, override) => {
      const options = { ...base(), ...(override() as object) };
      expect(() => world.instance(options)).toThrow(ConfigurationError);
      expect(() => world.instance(options)).toThrow(setting);
    });

    it('refuses two client credentials at once', () => {
      const msal = { ...base().msal, clientAssertion: 'x' } as never;
      expect(() => world.instance({ msal })).toThrow(/exactly one client credential/);
    });
  });
});

function flip(blob: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(blob);
  copy[index] = copy[index] ^ 0x01;
  return copy;
}
