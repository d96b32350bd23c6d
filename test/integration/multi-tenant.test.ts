/**
 * Multi-tenant web API (issue 22), end to end with real tokens of the local authority and
 * the real msal-node: the issuer checked against each token's own tenant, the tenant
 * allow-list, the OBO exchange in the caller's tenant (counted per tenant by the
 * authority), and OBO partitions never shared across tenants.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { BearerFailure, createBearerValidator } from '../../shared/auth/bearer';
import { logicalKey, sha256Base64Url, storeKey } from '../../shared/cache/partitions';
import type { TokenCache } from '../../shared/cache/types';
import { AuthenticationError, ConfigurationError, TokenAcquisitionError } from '../../shared/errors';
import { loadFunctionConfig } from '../../functions/core/config';
import { createFunctionDeps, type FunctionDeps } from '../../functions/core/deps';
import type { DownstreamClient } from '../../functions/core/downstream';
import { handleWebApi } from '../../functions/core/web-api';
import { DaemonRunError, runDaemon } from '../../functions/core/daemon';
import { GrantType } from '../../local/authority';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  CapturingLogger,
  DOWNSTREAM_SCOPE,
  startCacheWorld,
  type CacheWorld,
} from '../support/cache-harness';
import {
  CUSTOMER_TENANT_A as ALLOWED,
  CUSTOMER_TENANT_B as ALLOWED_2,
  OUTSIDE_TENANT as OTHER,
} from '../support/tenants';
import { useWorld } from '../support/use-world';

const GUEST_OID = '4fa05d97-7e41-4c31-8d8a-6b8c9d0e1f04';

/** A cache world, and its authority's CA written to `caFile` (for the function config's EXTRA_CA_FILE). */
async function startWorldWithCaFile(): Promise<CacheWorld & { readonly caFile: string }> {
  const world = await startCacheWorld();
  const caDir = mkdtempSync(join(tmpdir(), 'multi-tenant-'));
  const caFile = join(caDir, 'ca.pem');
  writeFileSync(caFile, world.authority.ca);
  return {
    ...world,
    caFile,
    async stop() {
      await world.stop();
      rmSync(caDir, { recursive: true, force: true });
    },
  };
}

describe('multi-tenant web API (local authority + msal-node)', () => {
  const world = useWorld(startWorldWithCaFile);
  beforeEach(() => world.authority.counters.reset());

  function userToken(options: Parameters<CacheWorld['authority']['mintUserToken']>[0]): Promise<string> {
    return world.authority.mintUserToken(options);
  }

  function validator(allowedTenants?: readonly string[]) {
    return createBearerValidator({
      issuer: {
        multiTenant: { authorityHost: world.authority.url, ...(allowedTenants ? { allowedTenants } : {}) },
      },
      audience: API_CLIENT_ID,
      requiredScopes: ['access_as_user'],
      ca: world.authority.ca,
    });
  }

  async function rejection(promise: Promise<unknown>): Promise<AuthenticationError> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AuthenticationError);
    return error as AuthenticationError;
  }

  describe('issuer of the token’s own tenant', () => {
    it('accepts each tenant’s token with its own issuer, keys from the common JWKS', async () => {
      const any = validator();
      for (const tenantId of [ALLOWED, ALLOWED_2, OTHER]) {
        const token = await userToken({ audience: API_CLIENT_ID, tenantId });
        const result = await any.validate(`Bearer ${token}`);
        expect(result.tenantId).toBe(tenantId);
        expect(result.claims.iss).toBe(world.authority.issuer(tenantId));
      }
      expect(world.authority.counters.jwks()).toBe(1);
    });

    it('refuses a tenant outside the allow-list (tenant_not_allowed) and accepts the listed ones', async () => {
      const listed = validator([ALLOWED, ALLOWED_2.toUpperCase()]);
      const other = await userToken({ audience: API_CLIENT_ID, tenantId: OTHER });
      const error = await rejection(listed.validate(`Bearer ${other}`));
      expect(error.reason).toBe(BearerFailure.TenantNotAllowed);
      expect(error.message).toContain(OTHER);
      expect(error.message).not.toContain(other);

      const allowed = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED_2 });
      await expect(listed.validate(`Bearer ${allowed}`)).resolves.toMatchObject({ tenantId: ALLOWED_2 });
    });

    it('accepts a guest by the resource tenant (tid), not by the home tenant the user comes from', async () => {
      const guest = await userToken({
        audience: API_CLIENT_ID,
        tenantId: ALLOWED,
        homeTenantId: OTHER,
        oid: GUEST_OID,
      });
      expect(decodeJwt(guest).idp).toBe(`https://sts.windows.net/${OTHER}/`);

      const result = await validator([ALLOWED]).validate(`Bearer ${guest}`);

      expect(result.tenantId).toBe(ALLOWED);
    });

    it.each([
      ['missing', { tid: null }, BearerFailure.MissingClaim, /no "tid" claim/],
      ['not a GUID', { tid: 'contoso.onmicrosoft.com' }, BearerFailure.InvalidTenant, /not a tenant id/],
      ['a GUID with trailing text', { tid: `${ALLOWED}x` }, BearerFailure.InvalidTenant, /not a tenant id/],
    ] as const)('refuses a token whose tid is %s', async (_name, override, reason, message) => {
      const token = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED, ...override });
      const error = await rejection(validator().validate(`Bearer ${token}`));
      expect(error.reason).toBe(reason);
      expect(error.message).toMatch(message);
    });

    it('refuses a tid that does not match the tenant in iss (tenant_mismatch), allow-list or not', async () => {
      // Signed by the authority, issued by the allowed tenant, claiming another tenant (and the reverse).
      const forged = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED, tid: OTHER });
      const reverse = await userToken({
        audience: API_CLIENT_ID,
        tenantId: OTHER,
        issuer: world.authority.issuer(ALLOWED),
      });
      for (const token of [forged, reverse]) {
        for (const v of [validator(), validator([ALLOWED, OTHER])]) {
          const error = await rejection(v.validate(`Bearer ${token}`));
          expect(error.reason).toBe(BearerFailure.TenantMismatch);
        }
      }
    });

    it('refuses an issuer of another host or form for the right tid (invalid_issuer)', async () => {
      for (const issuer of [
        `https://login.evil.example/${ALLOWED}/v2.0`,
        `${world.authority.url}/${ALLOWED}/v2.0/`,
        `${world.authority.url}/${ALLOWED}`,
        `https://sts.windows.net/${ALLOWED}/`, // v1 form: public cloud only
      ]) {
        const token = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED, issuer });
        const error = await rejection(validator().validate(`Bearer ${token}`));
        expect(error.reason).toBe(BearerFailure.InvalidIssuer);
      }
    });

    it('keeps a single-tenant API closed to every other tenant', async () => {
      const single = createBearerValidator({
        issuer: world.authority.issuer(ALLOWED),
        audience: API_CLIENT_ID,
        jwksUri: world.authority.jwksUri(ALLOWED),
        requiredScopes: ['access_as_user'],
        ca: world.authority.ca,
      });
      const other = await userToken({ audience: API_CLIENT_ID, tenantId: OTHER });
      const error = await rejection(single.validate(`Bearer ${other}`));
      expect(error.reason).toBe(BearerFailure.InvalidIssuer);
      const own = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });
      await expect(single.validate(`Bearer ${own}`)).resolves.toMatchObject({ tenantId: ALLOWED });
    });

    it.each([
      [{ authorityHost: 'https://login.microsoftonline.com/common' }, /without a path/],
      [{ authorityHost: 'http://login.microsoftonline.com' }, /without a path/],
      [{ authorityHost: 'login.microsoftonline.com' }, /expected an https URL/],
      [
        { authorityHost: 'https://login.microsoftonline.com', allowedTenants: ['contoso.com'] },
        /expected tenant ids \(GUIDs\), got \["contoso.com"\]/,
      ],
    ])('refuses a bad multiTenant option %j', (multiTenant, message) => {
      expect(() =>
        createBearerValidator({ issuer: { multiTenant }, audience: API_CLIENT_ID, requiredScopes: ['x'] }),
      ).toThrow(message);
    });
  });

  describe('the handler: configuration, OBO in the caller’s tenant, partitions', () => {
    const downstreamTokens: string[] = [];
    const downstream: DownstreamClient = {
      call: (request) => {
        downstreamTokens.push(request.accessToken);
        return Promise.resolve({ status: 200, body: { ok: true }, durationMs: 1 });
      },
      destroy: () => undefined,
      close: () => undefined,
    };
    let cache: TokenCache;

    function env(overrides: Record<string, string | undefined> = {}) {
      return {
        MSAL_CLIENT_ID: API_CLIENT_ID,
        MSAL_AUTHORITY: world.authority.authority('organizations'),
        MSAL_KNOWN_AUTHORITIES: world.authority.host,
        MSAL_CLIENT_SECRET: API_CLIENT_SECRET,
        TOKEN_CACHE_TABLE_NAME: 'token-cache',
        TOKEN_CACHE_KMS_KEY_ID: 'alias/token-cache',
        EXTRA_CA_FILE: world.caFile,
        DOWNSTREAM_URL: 'https://downstream.example/api',
        DOWNSTREAM_SCOPES: DOWNSTREAM_SCOPE,
        API_AUDIENCE: API_CLIENT_ID,
        API_REQUIRED_SCOPES: 'access_as_user',
        API_ALLOWED_TENANTS: `${ALLOWED},${ALLOWED_2}`,
        ...overrides,
      };
    }

    async function deps(overrides: Record<string, string | undefined> = {}) {
      const logger = new CapturingLogger();
      const built = await createFunctionDeps({
        env: env(overrides),
        logger,
        createCache: () => Promise.resolve(cache),
      });
      return { deps: { ...built, downstream } satisfies FunctionDeps, logger };
    }

    beforeEach(() => {
      downstreamTokens.length = 0;
      cache = world.instance({
        msal: {
          clientId: API_CLIENT_ID,
          authority: world.authority.authority('organizations'),
          clientSecret: API_CLIENT_SECRET,
          knownAuthorities: [world.authority.host],
          networkClient: world.network,
        },
      }).cache;
    });

    function call(ready: FunctionDeps, token: string) {
      return handleWebApi(
        { method: 'GET', path: '/api/downstream', headers: { authorization: `Bearer ${token}` } },
        ready,
      );
    }

    it('reads organizations/common as multi-tenant: no API_ISSUER, the common JWKS, the allow-list', () => {
      for (const tenant of ['organizations', 'common']) {
        const config = loadFunctionConfig(env({ MSAL_AUTHORITY: world.authority.authority(tenant) }));
        expect(config.api.issuers).toEqual([]);
        expect(config.api.multiTenant).toEqual({
          authorityHost: world.authority.url,
          allowedTenants: [ALLOWED, ALLOWED_2],
        });
        expect(config.api.jwksUri).toBe(`${world.authority.url}/common/discovery/v2.0/keys`);
      }
      // An explicit issuer list keeps today's behaviour.
      const listed = loadFunctionConfig(
        env({ API_ISSUER: world.authority.issuer(ALLOWED), API_ALLOWED_TENANTS: undefined }),
      );
      expect(listed.api.multiTenant).toBeUndefined();
      expect(listed.api.issuers).toEqual([world.authority.issuer(ALLOWED)]);
    });

    it.each([
      [
        { API_ALLOWED_TENANTS: `${ALLOWED},contoso.com` },
        /API_ALLOWED_TENANTS: expected comma-separated tenant ids/,
      ],
      [
        { API_ALLOWED_TENANTS: ALLOWED, MSAL_AUTHORITY: 'https://login.microsoftonline.com/' + ALLOWED },
        /API_ALLOWED_TENANTS: applies to a multi-tenant API only/,
      ],
      [
        { API_ALLOWED_TENANTS: ALLOWED, API_ISSUER: 'https://login.microsoftonline.com/x/v2.0' },
        /API_ALLOWED_TENANTS: is set with API_ISSUER/,
      ],
    ])('names a bad API_ALLOWED_TENANTS: %j', (overrides, message) => {
      let error: unknown;
      try {
        loadFunctionConfig(env(overrides));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toMatch(message);
    });

    it('warns loudly at cold start when any tenant is accepted, and not with an allow-list', async () => {
      const open = await deps({ API_ALLOWED_TENANTS: '' });
      const listed = await deps();
      const warning = (l: CapturingLogger) =>
        l.lines.filter((line) => line.level === 'warn' && line.fields?.setting === 'API_ALLOWED_TENANTS');
      expect(warning(open.logger)).toHaveLength(1);
      expect(warning(open.logger)[0].message).toMatch(/accepts tokens of any tenant/);
      expect(warning(listed.logger)).toHaveLength(0);
    });

    it('exchanges each caller’s token in the caller’s own tenant, guests in the resource tenant', async () => {
      const { deps: ready } = await deps();
      const member = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED_2 });
      const guest = await userToken({
        audience: API_CLIENT_ID,
        tenantId: ALLOWED,
        homeTenantId: OTHER,
        oid: GUEST_OID,
      });

      const memberAnswer = await call(ready, member);
      expect(memberAnswer.status).toBe(200);
      expect(world.authority.counters.token(GrantType.OnBehalfOf, ALLOWED_2)).toBe(1);
      const guestAnswer = await call(ready, guest);
      expect(guestAnswer.status).toBe(200);
      expect(world.authority.counters.token(GrantType.OnBehalfOf, ALLOWED)).toBe(1);

      // Nothing went to the alias or to the guest's home tenant.
      expect(world.authority.counters.token(GrantType.OnBehalfOf, 'organizations')).toBe(0);
      expect(world.authority.counters.token(GrantType.OnBehalfOf, OTHER)).toBe(0);
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(2);
      // The downstream tokens are the callers' tenants' tokens.
      expect(downstreamTokens.map((t) => decodeJwt(t).tid)).toEqual([ALLOWED_2, ALLOWED]);
      expect(decodeJwt(downstreamTokens[1]).iss).toBe(world.authority.issuer(ALLOWED));

      // A second call is served from the caller's partition: no token request.
      expect(JSON.parse((await call(ready, member)).body)).toMatchObject({ fromCache: true });
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(2);
    });

    it('with an explicit API_ISSUER list on organizations: only those issuers, still exchanged in the caller’s tenant', async () => {
      const { deps: ready } = await deps({
        API_ISSUER: world.authority.issuer(ALLOWED),
        API_ALLOWED_TENANTS: undefined,
      });
      const listed = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });
      const unlisted = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED_2 });

      expect((await call(ready, listed)).status).toBe(200);
      expect(JSON.parse((await call(ready, unlisted)).body)).toMatchObject({
        error: { code: BearerFailure.InvalidIssuer },
      });

      expect(world.authority.counters.token(GrantType.OnBehalfOf, ALLOWED)).toBe(1);
      expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
    });

    it('answers 401 tenant_not_allowed and makes no token request for a tenant outside the list', async () => {
      const { deps: ready } = await deps();
      const other = await userToken({ audience: API_CLIENT_ID, tenantId: OTHER });

      const answer = await call(ready, other);

      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: BearerFailure.TenantNotAllowed } });
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer error="invalid_token"/);
      expect(answer.body).not.toContain(other);
      expect(world.authority.counters.token()).toBe(0);
    });

    it.each([
      ['missing', { tid: null }, BearerFailure.MissingClaim],
      ['not a GUID', { tid: 'contoso.onmicrosoft.com' }, BearerFailure.InvalidTenant],
      ['another tenant than iss', { tid: ALLOWED_2 }, BearerFailure.TenantMismatch],
    ] as const)('answers 401 for a tid that is %s, with no token request', async (_name, override, code) => {
      const { deps: ready } = await deps();
      const token = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED, ...override });

      const answer = await call(ready, token);

      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code } });
      expect(world.authority.counters.token()).toBe(0);
    });

    it('without the caller’s tenant the exchange would go to the alias (what the counters tell apart)', async () => {
      const { deps: built } = await deps();
      const ready = { ...built, oboInCallerTenant: false };
      const token = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });

      expect((await call(ready, token)).status).toBe(200);

      expect(world.authority.counters.token(GrantType.OnBehalfOf, 'organizations')).toBe(1);
      expect(world.authority.counters.token(GrantType.OnBehalfOf, ALLOWED)).toBe(0);
    });

    it('never shares an OBO partition across tenants; keys without a tenant are unchanged', async () => {
      const assertion = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });
      const inAllowed = cache.storeKeyOf({ kind: 'obo', assertion, tenantId: ALLOWED });
      const inOther = cache.storeKeyOf({ kind: 'obo', assertion, tenantId: ALLOWED_2 });
      const untenanted = cache.storeKeyOf({ kind: 'obo', assertion });

      expect(new Set([inAllowed, inOther, untenanted]).size).toBe(3);
      expect(logicalKey(API_CLIENT_ID, { kind: 'obo', assertion, tenantId: ALLOWED })).toBe(
        `obo:${API_CLIENT_ID}:${ALLOWED}:${sha256Base64Url(assertion)}`,
      );
      // The key of partitions stored before this change.
      expect(untenanted).toBe(storeKey(`obo:${API_CLIENT_ID}:${sha256Base64Url(assertion)}`));

      // What the handler wrote lives under the tenant's key, and only there.
      const { deps: ready } = await deps();
      expect((await call(ready, assertion)).status).toBe(200);
      expect(await world.store.read(inAllowed)).toBeDefined();
      expect(await world.store.read(untenanted)).toBeUndefined();
      expect(await world.store.read(inOther)).toBeUndefined();
    });

    it('refuses a tenantId that is not a path segment, before any request', async () => {
      const assertion = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });
      for (const tenantId of ['../common', '', 'a/b', 'x'.repeat(300)]) {
        // Thrown before a promise exists, like the facade's other argument checks.
        expect(() =>
          cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], tenantId }),
        ).toThrow(/tenantId: expected a tenant id/);
      }
      expect(world.authority.counters.token()).toBe(0);
    });

    it('the local authority refuses an exchange in another tenant than the assertion’s', async () => {
      const assertion = await userToken({ audience: API_CLIENT_ID, tenantId: ALLOWED });
      const error = await cache
        .acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], tenantId: ALLOWED_2 })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(TokenAcquisitionError);
      expect(world.authority.counters.token(GrantType.OnBehalfOf, ALLOWED_2)).toBe(1);
    });

    it('runs the daemon once per DAEMON_TENANTS tenant, each in its own app partition', async () => {
      const { deps: ready } = await deps({ DAEMON_TENANTS: `${ALLOWED},${ALLOWED_2.toUpperCase()}` });
      expect(ready.tenants).toEqual([ALLOWED, ALLOWED_2]);

      const first = await runDaemon(ready, 'run-1');

      expect(first.ok).toBe(true);
      expect(first.tenants?.map((r) => [r.tenantId, r.tokenFromCache])).toEqual([
        [ALLOWED, false],
        [ALLOWED_2, false],
      ]);
      expect(world.authority.counters.token(GrantType.ClientCredentials, ALLOWED)).toBe(1);
      expect(world.authority.counters.token(GrantType.ClientCredentials, ALLOWED_2)).toBe(1);
      expect(world.authority.counters.token(GrantType.ClientCredentials, 'organizations')).toBe(0);
      expect(downstreamTokens.map((t) => decodeJwt(t).tid)).toEqual([ALLOWED, ALLOWED_2]);
      const keys = [ALLOWED, ALLOWED_2].map((tenantId) => cache.storeKeyOf({ kind: 'app', tenantId }));
      expect(new Set(keys).size).toBe(2);
      for (const key of keys) expect(await world.store.read(key)).toBeDefined();

      const second = await runDaemon(ready, 'run-2');
      expect(second.tokenFromCache).toBe(true);
      expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(2);
    });

    it('runs every tenant even when one fails, then fails the run naming it', async () => {
      const { deps: built } = await deps({ DAEMON_TENANTS: `${ALLOWED},${ALLOWED_2}` });
      const called: unknown[] = [];
      const failing: DownstreamClient = {
        call: (request) => {
          const { tid } = decodeJwt(request.accessToken);
          called.push(tid);
          return Promise.resolve({ status: tid === ALLOWED ? 500 : 200, body: {}, durationMs: 1 });
        },
        destroy: () => undefined,
        close: () => undefined,
      };
      const logger = new CapturingLogger();

      const error = await runDaemon({ ...built, downstream: failing, logger }, 'run-3').then(
        () => undefined,
        (e: unknown) => e,
      );

      expect(error).toBeInstanceOf(DaemonRunError);
      expect((error as DaemonRunError).stage).toBe('downstream');
      expect((error as Error).message).toContain(`1 of 2 tenants (first: ${ALLOWED}`);
      // The second tenant still ran.
      expect(called).toEqual([ALLOWED, ALLOWED_2]);
      expect(logger.lines.filter((l) => l.message === 'daemon run failed')).toHaveLength(1);
    });
  });
});
