/**
 * Fast hits through the real TokenCache: the local authority, a DynamoDbStore over
 * dynalite, the local key ring and the real msal-node. msal-node's acquire methods are
 * spied on (called through, not replaced), so a hit served without msal-node is counted
 * as one that never reached it; the result's metadata says `fastHit`, and `fastHits: false`
 * sends every hit to msal-node again.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import type { CachedAuthenticationResult } from '../../shared/cache/metadata';
import { GrantType } from '../../local/authority';
import { Metric } from '../../shared/observability';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE, startCacheWorld, type CacheWorld } from '../support/cache-harness';

/** A result without what differs per call by design: the correlation id and the metadata. */
function comparable(r: CachedAuthenticationResult): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...r };
  delete copy.correlationId;
  delete copy.cache;
  return copy;
}

describe('fast hits through the TokenCache', () => {
  let world: CacheWorld;
  let dynamo: LocalDynamo;
  let store: DynamoDbStore;
  let obo: jest.SpiedFunction<ConfidentialClientApplication['acquireTokenOnBehalfOf']>;
  let app: jest.SpiedFunction<ConfidentialClientApplication['acquireTokenByClientCredential']>;
  let userCount = 0;

  beforeAll(async () => {
    [world, dynamo] = await Promise.all([startCacheWorld(), startLocalDynamo()]);
    store = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
  });
  afterAll(async () => {
    store.destroy();
    await Promise.all([world.stop(), dynamo.stop()]);
  });
  beforeEach(() => {
    world.authority.counters.reset();
    world.authority.setAccessTokenLifetime(3600);
    obo = jest.spyOn(ConfidentialClientApplication.prototype, 'acquireTokenOnBehalfOf');
    app = jest.spyOn(ConfidentialClientApplication.prototype, 'acquireTokenByClientCredential');
  });
  afterEach(() => jest.restoreAllMocks());

  const assertion = () =>
    world.authority.mintUserToken({ audience: API_CLIENT_ID, oid: `fast-hit-user-${++userCount}` });

  it('OBO: after msal-node acquired the token, hits are served without it, equal to its own', async () => {
    const { cache } = world.instance({ store, l1: {} });
    const reference = world.instance({ store, l1: {}, fastHits: false }).cache;
    const request = { assertion: await assertion(), scopes: [DOWNSTREAM_SCOPE] };

    const miss = await cache.acquireTokenOnBehalfOf(request);
    const fast = [];
    for (let i = 0; i < 5; i++) fast.push(await cache.acquireTokenOnBehalfOf(request));
    const viaMsal = await reference.acquireTokenOnBehalfOf(request);

    expect(miss.cache).toMatchObject({ tokenSource: 'authority', tokenRequests: 1 });
    expect(miss.cache.fastHit).toBeUndefined();
    expect(viaMsal.cache).toMatchObject({ tokenSource: 'store', tokenRequests: 0 });
    expect(viaMsal.cache.fastHit).toBeUndefined();
    // The miss and the reference went through msal-node; the five hits did not.
    expect(obo).toHaveBeenCalledTimes(2);
    expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
    const msal = comparable(viaMsal);
    for (const hit of fast) {
      expect(hit.cache).toMatchObject({
        fastHit: true,
        tokenSource: 'l1',
        loadedFrom: 'l1',
        write: 'none',
        storeReads: 0,
        storeWrites: 0,
        tokenRequests: 0,
      });
      expect(comparable(hit)).toEqual(msal);
      expect(hit.accessToken).toBe(miss.accessToken);
      expect(hit.fromCache).toBe(true);
    }
  });

  // A fast hit from L1 builds no partition session: it must report what a session would.
  it('an L1 fast hit counts the metrics and gives the metadata of an L1 hit through msal-node', async () => {
    const fastWorld = world.instance({ store, l1: {} });
    const msalWorld = world.instance({ store, l1: {}, fastHits: false });
    const request = { assertion: await assertion(), scopes: [DOWNSTREAM_SCOPE] };
    await fastWorld.cache.acquireTokenOnBehalfOf(request);
    await fastWorld.cache.acquireTokenOnBehalfOf(request);
    await msalWorld.cache.acquireTokenOnBehalfOf(request);
    await msalWorld.cache.acquireTokenOnBehalfOf(request);
    fastWorld.metrics.reset();
    msalWorld.metrics.reset();

    const fast = await fastWorld.cache.acquireTokenOnBehalfOf(request);
    const viaMsal = await msalWorld.cache.acquireTokenOnBehalfOf(request);

    expect(fast.cache.fastHit).toBe(true);
    expect(viaMsal.cache.fastHit).toBeUndefined();
    const fastRest: Record<string, unknown> = { ...fast.cache };
    const msalRest: Record<string, unknown> = { ...viaMsal.cache };
    for (const rest of [fastRest, msalRest]) {
      delete rest.fastHit;
      delete rest.timings;
    }
    expect(fastRest).toEqual(msalRest);
    expect(fastRest).toMatchObject({ tokenSource: 'l1', loadedFrom: 'l1', write: 'none' });
    expect(Object.keys(fast.cache.timings)).toEqual(Object.keys(viaMsal.cache.timings));
    expect(fastWorld.metrics.snapshot()).toEqual(msalWorld.metrics.snapshot());
    expect(fastWorld.metrics.get(Metric.L1Hit, { kind: 'obo' })).toBe(1);
    expect(fastWorld.metrics.get(Metric.TokenSource, { kind: 'obo', source: 'l1' })).toBe(1);
  });

  it('OBO with L1 off: each hit reads the store and is still served without msal-node', async () => {
    const { cache } = world.instance({ store, l1: false });
    const request = { assertion: await assertion(), scopes: [DOWNSTREAM_SCOPE] };
    await cache.acquireTokenOnBehalfOf(request);

    const hits = [await cache.acquireTokenOnBehalfOf(request), await cache.acquireTokenOnBehalfOf(request)];

    for (const hit of hits) {
      expect(hit.cache).toMatchObject({
        fastHit: true,
        tokenSource: 'store',
        storeReads: 1,
        tokenRequests: 0,
      });
    }
    expect(obo).toHaveBeenCalledTimes(1);
  });

  // App tokens are matched by environment too: learnt from a hit msal-node served itself.
  it('app: hits are served without msal-node once it has served one from the cache', async () => {
    const { cache } = world.instance({ store, l1: {} });
    const scopes = ['api://fast-hit-app/.default'];

    const miss = await cache.acquireTokenForApp({ scopes });
    const viaMsal = await cache.acquireTokenForApp({ scopes });
    const hit = await cache.acquireTokenForApp({ scopes });

    expect(miss.cache.tokenSource).toBe('authority');
    expect(viaMsal.cache.fastHit).toBeUndefined();
    expect(hit.cache).toMatchObject({ fastHit: true, tokenSource: 'l1', tokenRequests: 0 });
    expect(app).toHaveBeenCalledTimes(2);
    expect(comparable(hit)).toEqual(comparable(viaMsal));
    expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(1);
  });

  it('a token within msal-node refresh margin is never served fast: msal-node asks the authority', async () => {
    const { cache } = world.instance({ store, l1: {} });
    const request = { assertion: await assertion(), scopes: [DOWNSTREAM_SCOPE] };
    await cache.acquireTokenOnBehalfOf(request);
    world.authority.setAccessTokenLifetime(290);
    const otherScope = { ...request, scopes: ['api://fast-hit-margin/.default'] };
    await cache.acquireTokenOnBehalfOf(otherScope);
    obo.mockClear();

    const again = await cache.acquireTokenOnBehalfOf(otherScope);

    expect(again.cache.fastHit).toBeUndefined();
    expect(again.cache.tokenSource).toBe('authority');
    expect(obo).toHaveBeenCalledTimes(1);
  });

  it('another scope is not served from a token for the first one', async () => {
    const { cache } = world.instance({ store, l1: {} });
    const token = await assertion();
    await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] });
    expect(
      (await cache.acquireTokenOnBehalfOf({ assertion: token, scopes: [DOWNSTREAM_SCOPE] })).cache.fastHit,
    ).toBe(true);

    const other = await cache.acquireTokenOnBehalfOf({
      assertion: token,
      scopes: ['api://fast-hit-other/.default'],
    });

    expect(other.cache.fastHit).toBeUndefined();
    expect(other.cache.tokenSource).toBe('authority');
    expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(2);
  });

  it('fastHits: false sends every hit to msal-node', async () => {
    const { cache } = world.instance({ store, l1: {}, fastHits: false });
    const request = { assertion: await assertion(), scopes: [DOWNSTREAM_SCOPE] };
    await cache.acquireTokenOnBehalfOf(request);

    const hits = [];
    for (let i = 0; i < 3; i++) hits.push(await cache.acquireTokenOnBehalfOf(request));

    expect(obo).toHaveBeenCalledTimes(4);
    for (const hit of hits) {
      expect(hit.cache.fastHit).toBeUndefined();
      expect(hit.cache).toMatchObject({ tokenSource: 'l1', tokenRequests: 0 });
    }
  });
});
