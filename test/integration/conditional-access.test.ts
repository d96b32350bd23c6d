/**
 * Conditional Access and continuous access evaluation (issue 21), over the local authority
 * (a Conditional Access rule for carol; CAE tokens for cp1) and the local downstream API
 * (which revokes a user's tokens), through the real web API handlers and real msal-node:
 * the step-up challenge relayed with the exact WWW-Authenticate header, acquisition with
 * claims, eviction of a revoked token seen by a second instance (L1 off, and on within the
 * stated window), one retry at most, and client capabilities.
 */
import { decodeJwt } from 'jose';
import { acrsChallenge, GrantType } from '../../local/authority';
import type { CachedAuthenticationResult } from '../../shared/cache/metadata';
import { InteractionRequiredError } from '../../shared/errors';
import {
  ALICE,
  CAROL,
  DOWNSTREAM_SCOPE,
  startCaeWorld,
  type CaeWorld,
  type Transport,
} from '../support/cae-world';
import { accessTokensIn, storedDocument } from '../support/security-world';
import { useWorld } from '../support/use-world';

const world = useWorld(startCaeWorld);

afterEach(() => {
  world.downstream.restore(ALICE);
  world.downstream.restore(CAROL);
});

const b64 = (json: string) => Buffer.from(json).toString('base64');
const body = (answer: { body: string }) =>
  JSON.parse(answer.body) as { error?: { code: string; message: string }; fromCache?: boolean };
const oboCalls = () => world.authority.counters.token(GrantType.OnBehalfOf);
/** A fresh user id per test, so partitions and revocations never leak between tests. */
let n = 0;
const someUser = () => `a11ce000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
/** A fresh user and an incoming token of theirs for the web API. */
async function newCaller(): Promise<{ user: string; token: string }> {
  const user = someUser();
  return { user, token: await world.userToken(user) };
}

describe('relaying a Conditional Access step-up challenge', () => {
  it.each<Transport>(['core', 'aws', 'azure'])(
    'answers 401 with the exact WWW-Authenticate Entra clients parse and a JSON body saying what to do (%s)',
    async (transport) => {
      const token = await world.userToken(CAROL);
      const container = world.container();
      const downstreamCalls = world.downstream.calls().length;

      const answer = await container.call(token, transport);

      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toBe(
        `Bearer realm="", authorization_uri="${world.authority.authority()}/oauth2/v2.0/authorize", error="insufficient_claims", claims="${b64('{"access_token":{"acrs":{"essential":true,"value":"c1"}}}')}"`,
      );
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      const error = body(answer).error!;
      expect(error.code).toBe('insufficient_claims');
      expect(error.message).toMatch(/interactively with the claims in the WWW-Authenticate header/);
      expect(world.downstream.calls().length).toBe(downstreamCalls);
    },
  );

  it('serves the user once the incoming token carries the authentication context', async () => {
    const container = world.container();
    const plain = await container.call(await world.userToken(CAROL));
    const stepped = await container.call(await world.userToken(CAROL, ['c1']));

    expect(plain.status).toBe(401);
    expect(stepped.status).toBe(200);
    expect(world.downstream.calls().at(-1)).toMatchObject({ status: 200, oid: CAROL });
  });

  it('keeps the claims on InteractionRequiredError for a library caller', async () => {
    const error = await world
      .container()
      .cache.acquireTokenOnBehalfOf({ assertion: await world.userToken(CAROL), scopes: [DOWNSTREAM_SCOPE] })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InteractionRequiredError);
    expect((error as InteractionRequiredError).claims).toBe(acrsChallenge('c1'));
  });
});

describe('acquiring with claims', () => {
  it('skips the cached access token and replaces it in the stored partition', async () => {
    const assertion = await world.userToken(someUser());
    const { cache } = world.container();
    const first = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
    const cached = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
    const calls = oboCalls();

    const claims = JSON.stringify({ access_token: { nbf: { essential: true, value: '1700000000' } } });
    const fresh = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], claims });

    expect(cached.fromCache).toBe(true);
    expect(fresh.fromCache).toBe(false);
    expect(oboCalls()).toBe(calls + 1);
    expect(fresh.accessToken).not.toBe(first.accessToken);
    const stored = await storedDocument(world.store, world.storeKeyOf(assertion), world.keyRing);
    expect(accessTokensIn(stored)).toEqual([fresh.accessToken]);
    const again = await world
      .container()
      .cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
    expect(again).toMatchObject({ fromCache: true, accessToken: fresh.accessToken });
  });

  it('never shares a call with a request without the same claims, and takes no lease', async () => {
    const assertion = await world.userToken(someUser());
    const { cache } = world.container({ l1: false });
    const claims = JSON.stringify({ access_token: { nbf: { essential: true, value: '1700000000' } } });
    const leases = jest.spyOn(world.store, 'acquireLease');
    const calls = oboCalls();

    const results = await Promise.all([
      cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] }),
      cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], claims }),
      cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], claims }),
    ]);

    // One call without claims, one shared by the two identical claims requests.
    expect(oboCalls()).toBe(calls + 2);
    expect(results[1].cache.joined ?? results[2].cache.joined).toBe(true);
    expect(results[0].accessToken).not.toBe(results[1].accessToken);
    // Only the request without claims took the cross-instance lease.
    expect(leases).toHaveBeenCalledTimes(1);
    leases.mockRestore();
  });
});

describe('CAE revocation by the downstream API', () => {
  it('evicts the revoked token, acquires with the claims and retries once', async () => {
    const { user, token } = await newCaller();
    const a = world.container();
    expect((await a.call(token)).status).toBe(200);
    const revoked = world.downstream.calls().at(-1)!.tokenId;
    const calls = oboCalls();
    const revokedAt = world.downstream.revoke({ oid: user });
    const since = world.downstream.calls().length;

    const answer = await a.call(token);

    expect(answer.status).toBe(200);
    const seen = world.downstream.calls().slice(since);
    expect(seen).toEqual([
      expect.objectContaining({ status: 401, challenged: true, tokenId: revoked }),
      expect.objectContaining({ status: 200, oid: user }),
    ]);
    expect(seen[1].tokenId).not.toBe(revoked);
    expect(oboCalls()).toBe(calls + 1);
    const line = a.logger.lines.filter((l) => l.message === 'request').at(-1)!.fields!;
    expect(line).toMatchObject({ claimsChallenge: 'downstream', evicted: 'removed', downstreamRetries: 1 });
    // The token now stored is the one acquired for the challenge, which asked for its nbf.
    const stored = accessTokensIn(await storedDocument(world.store, world.storeKeyOf(token), world.keyRing));
    expect(stored).toHaveLength(1);
    expect(decodeJwt(stored[0]).uti).toBe(seen[1].tokenId);
    expect(Number(decodeJwt(stored[0]).iat)).toBeGreaterThanOrEqual(revokedAt);
  });

  it('relays the authority’s challenge when acquiring with the claims needs interaction, the revoked token gone', async () => {
    const { user, token } = await newCaller();
    const a = world.container();
    expect((await a.call(token)).status).toBe(200);
    const revoked = world.downstream.calls().at(-1)!.tokenId;
    // The resource wants an authentication context: Entra answers the claims request with interaction_required.
    world.downstream.revoke({ oid: user, rawClaims: b64(acrsChallenge('c1')) });

    const answer = await a.call(token);

    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe(
      `Bearer realm="", authorization_uri="${world.authority.authority()}/oauth2/v2.0/authorize", error="insufficient_claims", claims="${b64(acrsChallenge('c1'))}"`,
    );
    expect(body(answer).error?.code).toBe('insufficient_claims');
    const stored = await storedDocument(world.store, world.storeKeyOf(token), world.keyRing);
    expect(accessTokensIn(stored).map((t) => decodeJwt(t).uti)).not.toContain(revoked);
  });

  it('retries at most once: a downstream that keeps refusing gets a 502 JSON error', async () => {
    const { user, token } = await newCaller();
    const a = world.container();
    expect((await a.call(token)).status).toBe(200);
    world.downstream.revoke({ oid: user, always: true });
    const since = world.downstream.calls().length;
    const calls = oboCalls();

    const answer = await a.call(token, 'aws');

    expect(answer.status).toBe(502);
    expect(body(answer).error?.code).toBe('downstream_rejected_token');
    expect(world.downstream.calls().length - since).toBe(2);
    expect(oboCalls()).toBe(calls + 1);
  });

  it.each<Transport>(['aws', 'azure'])('works the same through the %s adapter', async (transport) => {
    const { user, token } = await newCaller();
    const a = world.container();
    expect((await a.call(token, transport)).status).toBe(200);
    world.downstream.revoke({ oid: user });

    const answer = await a.call(token, transport);

    expect(answer.status).toBe(200);
    expect(
      world.downstream
        .calls()
        .slice(-2)
        .map((c) => c.status),
    ).toEqual([401, 200]);
  });

  describe('a second instance after the eviction', () => {
    /** Caches a token for a fresh user in instance `b` too, then has `a` evict it. */
    async function warmAndEvict(b: ReturnType<CaeWorld['container']>) {
      const assertion = await world.userToken(someUser());
      const a = world.container();
      const request = { assertion, scopes: [DOWNSTREAM_SCOPE] };
      const first = await a.cache.acquireTokenOnBehalfOf(request);
      const warm = await b.cache.acquireTokenOnBehalfOf(request);
      expect(warm).toMatchObject({ fromCache: true, accessToken: first.accessToken });

      const outcome = await a.cache.evictAccessToken({ kind: 'obo', assertion }, first.accessToken);

      expect(outcome).toBe('removed');
      const stored = await storedDocument(world.store, world.storeKeyOf(assertion), world.keyRing);
      expect(accessTokensIn(stored)).not.toContain(first.accessToken);
      return { request, revoked: first.accessToken };
    }

    it('with L1 off: never serves the revoked token again', async () => {
      const b = world.container({ l1: false });
      const { request, revoked } = await warmAndEvict(b);

      const next = await b.cache.acquireTokenOnBehalfOf(request);

      expect(next.accessToken).not.toBe(revoked);
      expect(next.fromCache).toBe(false);
    });

    it('with L1 on: serves it only until its L1 entry ages out (l1.ttlMs), then never', async () => {
      let now = Date.now();
      const ttlMs = 60_000;
      // No jitter: it only shortens an entry's life (to 80-100% of ttlMs), so the window's
      // upper bound is ttlMs with or without it, and this checks exactly that bound.
      const b = world.container({ l1: { ttlMs, jitter: 0 }, now: () => now });
      const { request, revoked } = await warmAndEvict(b);

      now += ttlMs - 1_000;
      const within = await b.cache.acquireTokenOnBehalfOf(request);
      now += 2_000;
      const after = await b.cache.acquireTokenOnBehalfOf(request);

      // The stated window: an instance that loaded the partition before the eviction may
      // serve from L1 until the entry's age passes l1.ttlMs; past it, the store decides.
      expect(within.accessToken).toBe(revoked);
      expect(within.cache.tokenSource).toBe('l1');
      expect(after.accessToken).not.toBe(revoked);
      expect(after.cache.tokenSource).toBe('authority');
    });

    it('with L1 on, through the handler: a stale instance pays one refused call, evicts and retries', async () => {
      const { user, token } = await newCaller();
      const a = world.container();
      const b = world.container({ l1: { ttlMs: 300_000 } });
      expect((await a.call(token)).status).toBe(200);
      expect((await b.call(token)).status).toBe(200);
      const revoked = world.downstream.calls().at(-1)!.tokenId;
      world.downstream.revoke({ oid: user });
      expect((await a.call(token)).status).toBe(200);
      const since = world.downstream.calls().length;

      const answer = await b.call(token);

      expect(answer.status).toBe(200);
      const seen = world.downstream.calls().slice(since);
      expect(seen.map((c) => c.status)).toEqual([401, 200]);
      expect(seen[0].tokenId).toBe(revoked);
      // A had evicted it already: B found it gone from the store, and its L1 now holds the store's state.
      expect(b.logger.lines.filter((l) => l.message === 'request').at(-1)!.fields).toMatchObject({
        evicted: 'not-found',
      });
    });

    it('with L1 off, through the handler: presents the token A acquired, with no refused call', async () => {
      const { user, token } = await newCaller();
      const a = world.container();
      const b = world.container({ l1: false });
      expect((await a.call(token)).status).toBe(200);
      expect((await b.call(token)).status).toBe(200);
      world.downstream.revoke({ oid: user });
      expect((await a.call(token)).status).toBe(200);
      const replacement = world.downstream.calls().at(-1)!.tokenId;
      const since = world.downstream.calls().length;
      const calls = oboCalls();

      const answer = await b.call(token);

      expect(answer.status).toBe(200);
      expect(world.downstream.calls().slice(since)).toEqual([
        expect.objectContaining({ status: 200, tokenId: replacement }),
      ]);
      expect(oboCalls()).toBe(calls);
    });
  });
});

describe('client capabilities (cp1) and the revocation window with 28 h tokens', () => {
  const hours = (r: CachedAuthenticationResult) => ((r.expiresOn?.getTime() ?? 0) - Date.now()) / 3_600_000;

  it('gets CAE tokens (28 h, xms_cc) with cp1, and 1 h tokens without', async () => {
    const cae = await world.container().cache.acquireTokenOnBehalfOf({
      assertion: await world.userToken(someUser()),
      scopes: [DOWNSTREAM_SCOPE],
    });
    const plain = await world.container({}, []).cache.acquireTokenOnBehalfOf({
      assertion: await world.userToken(someUser()),
      scopes: [DOWNSTREAM_SCOPE],
    });

    expect(hours(cae)).toBeGreaterThan(27.9);
    expect(decodeJwt(cae.accessToken).xms_cc).toEqual(['cp1']);
    expect(hours(plain)).toBeLessThan(1.01);
    expect(decodeJwt(plain.accessToken).xms_cc).toBeUndefined();
  });

  it('keeps an OBO item to its assertion’s expiry, not the 28 h token’s', async () => {
    const assertion = await world.userToken(someUser());
    await world.container().cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

    const item = await world.store.read(world.storeKeyOf(assertion));

    expect(item?.expiresAt).toBe(Number(decodeJwt(assertion).exp));
  });

  it('bounds L1 and the opened-envelope memo by their age, not by the token lifetime', async () => {
    // An app partition lives as long as its latest token: 28 h with cp1.
    let now = Date.now();
    const ttlMs = 300_000;
    const a = world.container();
    const b = world.container({ l1: { ttlMs }, now: () => now });
    const first = await a.cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] });
    const item = await world.store.read(
      a.cache.storeKeyOf({ kind: 'app', tenantId: world.authority.tenantId }),
    );
    expect((item!.expiresAt * 1000 - Date.now()) / 3_600_000).toBeGreaterThan(27.9);
    expect((await b.cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] })).accessToken).toBe(
      first.accessToken,
    );

    const outcome = await a.cache.evictAccessToken(
      { kind: 'app', tenantId: world.authority.tenantId },
      first.accessToken,
    );
    now += ttlMs + 1;
    const after = await b.cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] });

    expect(outcome).toBe('removed');
    expect(after.accessToken).not.toBe(first.accessToken);
    expect(after.cache.tokenSource).toBe('authority');
  });
});
