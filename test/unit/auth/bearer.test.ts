import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  CompactSign,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import {
  ANY_SCOPE,
  BearerFailure,
  createBearerValidator,
  type BearerValidatorOptions,
} from '../../../shared/auth/bearer';
import { AuthenticationError, ConfigurationError } from '../../../shared/errors';
import { createDevCertificate } from '../../../local/tls';
import { CUSTOMER_TENANT_A as TID, OUTSIDE_TENANT as OTHER } from '../../support/tenants';
import { segmentSpellings, tokenSpellings } from '../../support/token-spellings';

const ISSUER = 'https://login.example.test/tenant-1/v2.0';
const AUDIENCE = 'api://web-api';

interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicKey: CryptoKey;
}

async function signingKey(kid: string, alg = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return {
    kid,
    alg,
    privateKey,
    publicKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
  };
}

/** A JWKS endpoint counting its requests. */
interface JwksServer {
  readonly url: string;
  fetches(): number;
  stop(): Promise<void>;
}

async function serveJwks(keys: readonly JWK[], tls?: { cert: string; key: string }): Promise<JwksServer> {
  let fetches = 0;
  const listener = (_req: unknown, res: import('node:http').ServerResponse) => {
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  };
  const server: Server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://localhost:${port}/tenant-1/discovery/v2.0/keys`,
    fetches: () => fetches,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function claims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'subject-1',
    oid: 'user-1',
    scp: 'access_as_user',
    iat: now,
    nbf: now,
    exp: now + 3600,
    ...overrides,
  };
}

function sign(key: SigningKey, payload: JWTPayload = claims(), header: { kid?: string; alg?: string } = {}) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: header.alg ?? key.alg, kid: header.kid ?? key.kid, typ: 'JWT' })
    .sign(key.privateKey);
}

/** Asserts `promise` rejects with an AuthenticationError of `reason` whose message does not contain `token`. */
async function expectRejected(
  promise: Promise<unknown>,
  reason: string,
  token?: string,
): Promise<AuthenticationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuthenticationError);
  const auth = error as AuthenticationError;
  expect(auth.reason).toBe(reason);
  expect(auth.code).toBe('AUTHENTICATION');
  if (token) expect(auth.message).not.toContain(token);
  return auth;
}

/** The identity provider the suite validates against: `key` is in its JWKS, `otherKey` is not. */
interface Idp {
  readonly key: SigningKey;
  readonly otherKey: SigningKey;
  readonly jwks: JwksServer;
  /** Validator options for this provider, requiring the `access_as_user` scope. */
  readonly options: BearerValidatorOptions;
}

describe('createBearerValidator', () => {
  /** Set up before the suite's tests. */
  let idp: Idp;

  beforeAll(async () => {
    const key = await signingKey('key-1');
    const jwks = await serveJwks([key.publicJwk]);
    idp = {
      key,
      otherKey: await signingKey('key-2'),
      jwks,
      options: { issuer: ISSUER, audience: AUDIENCE, jwksUri: jwks.url, requiredScopes: ['access_as_user'] },
    };
  });

  afterAll(async () => {
    await idp.jwks.stop();
  });

  describe('validate', () => {
    it('accepts a token signed by a published key and returns its claims', async () => {
      const token = await sign(idp.key);
      const validator = createBearerValidator(idp.options);

      const result = await validator.validate(`Bearer ${token}`);

      expect(result.token).toBe(token);
      expect(result.claims).toMatchObject({ oid: 'user-1', aud: AUDIENCE, iss: ISSUER });
    });

    it('accepts the scheme in any case and a single-element array of header values', async () => {
      const token = await sign(idp.key);
      const validator = createBearerValidator(idp.options);

      await expect(validator.validate([`bearer ${token}`])).resolves.toMatchObject({ token });
      await expect(validator.validate(`BEARER ${token}`)).resolves.toMatchObject({ token });
    });

    it('accepts any of several audiences and issuers', async () => {
      const token = await sign(
        idp.key,
        claims({ aud: 'client-guid', iss: 'https://sts.example.test/tenant-1/' }),
      );
      const validator = createBearerValidator({
        ...idp.options,
        audience: [AUDIENCE, 'client-guid'],
        issuer: [ISSUER, 'https://sts.example.test/tenant-1/'],
      });

      await expect(validator.validate(`Bearer ${token}`)).resolves.toMatchObject({ token });
    });

    it('accepts an expiry within the clock tolerance', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await sign(idp.key, claims({ exp: now - 20 }));
      const validator = createBearerValidator({ ...idp.options, clockToleranceSeconds: 60 });

      await expect(validator.validate(`Bearer ${token}`)).resolves.toMatchObject({ token });
    });

    it('rejects a missing header as missing_token', async () => {
      const validator = createBearerValidator(idp.options);

      await expectRejected(validator.validate(undefined), BearerFailure.MissingToken);
      await expectRejected(validator.validate(''), BearerFailure.MissingToken);
      await expectRejected(validator.validate([]), BearerFailure.MissingToken);
      await expectRejected(validator.validate('   '), BearerFailure.MissingToken);
      await expectRejected(validator.validate('Bearer '), BearerFailure.MissingToken);
    });

    it('rejects a repeated header as multiple_tokens, whether kept apart or joined with a comma', async () => {
      const token = await sign(idp.key);
      const validator = createBearerValidator(idp.options);

      await expectRejected(
        validator.validate([`Bearer ${token}`, `Bearer ${token}`]),
        BearerFailure.MultipleTokens,
        token,
      );
      await expectRejected(
        validator.validate(`Bearer ${token}, Bearer ${token}`),
        BearerFailure.MultipleTokens,
        token,
      );
    });

    it('rejects another scheme as invalid_scheme, naming only well-known schemes', async () => {
      const token = await sign(idp.key);
      const validator = createBearerValidator(idp.options);

      const basic = await expectRejected(
        validator.validate('Basic dXNlcjpwYXNz'),
        BearerFailure.InvalidScheme,
      );
      expect(basic.message).toContain('"Basic"');
      const bare = await expectRejected(validator.validate(token), BearerFailure.InvalidScheme, token);
      expect(bare.message).toContain('no scheme');
      const odd = await expectRejected(
        validator.validate(`${token} ${token}`),
        BearerFailure.InvalidScheme,
        token,
      );
      expect(odd.message).toContain('not Bearer');
      await expectRejected(validator.validate(`Bearer ${token} extra`), BearerFailure.InvalidScheme, token);
    });

    /** A token refused with one reason, by the suite's validator with `options` applied on top. */
    interface Rejection {
      readonly title: string;
      readonly token: () => Promise<string>;
      readonly reason: BearerFailure;
      /** What the error message names besides the reason. */
      readonly names?: readonly string[];
      readonly options?: Partial<BearerValidatorOptions>;
    }

    it.each<Rejection>([
      {
        title: 'rejects a token over the size limit as oversize_token before verifying it',
        token: () => sign(idp.key, claims({ padding: 'x'.repeat(20_000) })),
        reason: BearerFailure.OversizeToken,
        names: ['16384'],
      },
      {
        title: 'rejects a correctly signed payload that is not a JSON claims set as malformed_token',
        token: () =>
          new CompactSign(new TextEncoder().encode('not json'))
            .setProtectedHeader({ alg: 'RS256', kid: idp.key.kid })
            .sign(idp.key.privateKey),
        reason: BearerFailure.MalformedToken,
      },
      {
        title: 'rejects an unsecured token (alg none) as unsupported_algorithm',
        token: async () => {
          const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
          const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
          return `${header}.${payload}.`;
        },
        reason: BearerFailure.UnsupportedAlgorithm,
        names: ['"none"'],
      },
      {
        title: 'rejects an asymmetric algorithm outside the allow-list as unsupported_algorithm',
        token: async () => sign(await signingKey(idp.key.kid, 'RS384')),
        reason: BearerFailure.UnsupportedAlgorithm,
        names: ['RS256'],
      },
      {
        title: 'rejects a token whose nbf is in the future as not_yet_valid',
        token: () => {
          const now = Math.floor(Date.now() / 1000);
          return sign(idp.key, claims({ nbf: now + 3600, exp: now + 7200 }));
        },
        reason: BearerFailure.NotYetValid,
      },
      {
        title: 'rejects a token for another audience as invalid_audience, naming the audience received',
        token: () => sign(idp.key, claims({ aud: 'api://someone-else' })),
        reason: BearerFailure.InvalidAudience,
        names: ['api://someone-else'],
      },
      {
        title: 'rejects a token of another issuer as invalid_issuer',
        token: () => sign(idp.key, claims({ iss: 'https://evil.example.test/v2.0' })),
        reason: BearerFailure.InvalidIssuer,
        names: ['https://evil.example.test/v2.0'],
      },
      {
        title: 'rejects a token signed by a key not in the JWKS as unknown_key',
        token: () => sign(idp.otherKey),
        reason: BearerFailure.UnknownKey,
      },
      {
        title: 'rejects a token naming a published kid but signed by another key as invalid_signature',
        token: () => sign(idp.otherKey, claims(), { kid: idp.key.kid }),
        reason: BearerFailure.InvalidSignature,
      },
      {
        title: 'rejects a token whose payload was edited after signing as invalid_signature',
        token: async () => {
          const [header, , signature] = (await sign(idp.key)).split('.');
          return `${header}.${Buffer.from(JSON.stringify(claims({ oid: 'admin' }))).toString('base64url')}.${signature}`;
        },
        reason: BearerFailure.InvalidSignature,
      },
      {
        title: 'rejects a token without exp as missing_claim',
        token: () => {
          const payload = claims();
          delete payload.exp;
          return sign(idp.key, payload);
        },
        reason: BearerFailure.MissingClaim,
        names: ['"exp"'],
      },
      {
        title: 'rejects a token missing a configured required claim as missing_claim',
        token: () => sign(idp.key),
        options: { requiredClaims: ['tid'] },
        reason: BearerFailure.MissingClaim,
        names: ['"tid"'],
      },
    ])('$title', async (rejection) => {
      const token = await rejection.token();
      const validator = createBearerValidator({ ...idp.options, ...rejection.options });

      const error = await expectRejected(validator.validate(`Bearer ${token}`), rejection.reason, token);
      for (const name of rejection.names ?? []) expect(error.message).toContain(name);
    });

    it.each([
      ['one segment', 'abc'],
      ['two segments', 'abc.def'],
      ['four segments', 'a.b.c.d'],
      ['a JWE (five segments)', 'a.b.c.d.e'],
      ['characters outside base64url', 'ab+c.de/f.gh='],
      ['a header that is not JSON', `${Buffer.from('not json').toString('base64url')}.e30.sig`],
      ['a header without alg', `${Buffer.from('{"typ":"JWT"}').toString('base64url')}.e30.sig`],
      ['junk unicode', 'ünïcødé.☃.🙂'],
    ])('rejects %s as malformed_token', async (_name, token) => {
      const validator = createBearerValidator(idp.options);

      await expectRejected(validator.validate(`Bearer ${token}`), BearerFailure.MalformedToken, token);
    });

    it('rejects HS256 signed with the bytes of the published RSA public key as unsupported_algorithm', async () => {
      const validator = createBearerValidator(idp.options);
      const pem = new TextEncoder().encode(await exportSPKI(idp.key.publicKey));
      const modulus = Buffer.from(idp.key.publicJwk.n!, 'base64url');
      const jwkJson = new TextEncoder().encode(JSON.stringify(idp.key.publicJwk));

      for (const secret of [pem, modulus, jwkJson]) {
        const token = await new SignJWT(claims())
          .setProtectedHeader({ alg: 'HS256', kid: idp.key.kid, typ: 'JWT' })
          .sign(secret);
        await expectRejected(
          validator.validate(`Bearer ${token}`),
          BearerFailure.UnsupportedAlgorithm,
          token,
        );
      }
    });

    it('accepts an algorithm added to the allow-list when the JWKS has a matching key', async () => {
      const ecKey = await signingKey('ec-1', 'ES256');
      const server = await serveJwks([idp.key.publicJwk, ecKey.publicJwk]);
      try {
        const token = await sign(ecKey);
        const validator = createBearerValidator({
          ...idp.options,
          jwksUri: server.url,
          algorithms: ['RS256', 'ES256'],
        });

        await expect(validator.validate(`Bearer ${token}`)).resolves.toMatchObject({ token });
      } finally {
        await server.stop();
      }
    });

    it('rejects an expired token as expired', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = await sign(idp.key, claims({ iat: now - 7200, nbf: now - 7200, exp: now - 3600 }));
      const validator = createBearerValidator(idp.options);

      const error = await expectRejected(validator.validate(`Bearer ${token}`), BearerFailure.Expired, token);
      expect(error.message).toContain(new Date((now - 3600) * 1000).toISOString());
    });

    it('rejects a delegated token granting none of the required scopes as insufficient_scope', async () => {
      const validator = createBearerValidator({ ...idp.options, requiredScopes: ['Data.Read'] });
      const delegated = await sign(idp.key, claims({ scp: 'access_as_user other' }));
      const granted = await sign(idp.key, claims({ scp: 'other Data.Read' }));

      const error = await expectRejected(
        validator.validate(`Bearer ${delegated}`),
        BearerFailure.InsufficientScope,
        delegated,
      );
      expect(error.message).toContain('Data.Read');
      await expect(validator.validate(`Bearer ${granted}`)).resolves.toMatchObject({
        token: granted,
        kind: 'delegated',
      });
    });

    it('reports an unreachable JWKS endpoint as jwks_unavailable', async () => {
      const server = await serveJwks([idp.key.publicJwk]);
      await server.stop();
      const token = await sign(idp.key);
      const validator = createBearerValidator({ ...idp.options, jwksUri: server.url });

      await expectRejected(validator.validate(`Bearer ${token}`), BearerFailure.JwksUnavailable, token);
    });
  });

  describe('JWKS fetching', () => {
    it('fetches the key set once per process for every validator of the same URI', async () => {
      const server = await serveJwks([idp.key.publicJwk]);
      try {
        const first = createBearerValidator({ ...idp.options, jwksUri: server.url });
        const second = createBearerValidator({ ...idp.options, jwksUri: server.url });

        for (let i = 0; i < 3; i += 1) {
          await first.validate(`Bearer ${await sign(idp.key)}`);
          await second.validate(`Bearer ${await sign(idp.key)}`);
        }

        expect(server.fetches()).toBe(1);
      } finally {
        await server.stop();
      }
    });

    it('does not refetch for every unknown kid within the cooldown', async () => {
      const server = await serveJwks([idp.key.publicJwk]);
      try {
        const validator = createBearerValidator({ ...idp.options, jwksUri: server.url });
        await validator.validate(`Bearer ${await sign(idp.key)}`);

        for (let i = 0; i < 5; i += 1) {
          await expectRejected(
            validator.validate(`Bearer ${await sign(idp.otherKey, claims(), { kid: `forged-${i}` })}`),
            BearerFailure.UnknownKey,
          );
        }

        expect(server.fetches()).toBe(1);
      } finally {
        await server.stop();
      }
    });

    it('trusts a private CA for an https JWKS endpoint only when given it', async () => {
      const certificate = await createDevCertificate();
      const server = await serveJwks([idp.key.publicJwk], certificate);
      try {
        const token = await sign(idp.key);
        const trusting = createBearerValidator({ ...idp.options, jwksUri: server.url, ca: certificate.cert });
        const untrusting = createBearerValidator({ ...idp.options, jwksUri: `${server.url}?untrusted` });

        await expect(trusting.validate(`Bearer ${token}`)).resolves.toMatchObject({ token });
        await expectRejected(untrusting.validate(`Bearer ${token}`), BearerFailure.JwksUnavailable, token);
      } finally {
        await server.stop();
      }
    });
  });

  describe('authorization: delegated scopes in scp, app permissions in roles, separately', () => {
    const appToken = (extra: JWTPayload = {}) =>
      sign(
        idp.key,
        claims({ scp: undefined, idtyp: 'app', azp: 'some-app', appid: 'some-app', oid: 'sp-1', ...extra }),
      );
    const idToken = () =>
      sign(
        idp.key,
        claims({ scp: undefined, aud: AUDIENCE, nonce: 'n-1', preferred_username: 'a@b.example' }),
      );

    it.each([
      ['an app-only token without roles', () => appToken()],
      [
        'an app-only token whose app role is named like the required scope',
        () => appToken({ roles: ['access_as_user'] }),
      ],
      [
        'an app-only token without idtyp (no scp, an azp)',
        () => appToken({ idtyp: undefined, roles: ['x'] }),
      ],
      ['an app-only token carrying an scp anyway', () => appToken({ scp: 'access_as_user' })],
      ['an ID token for this audience', () => idToken()],
      [
        'a token with neither scp nor a client (no azp, appid, idtyp)',
        () => sign(idp.key, claims({ scp: undefined })),
      ],
      ['a token with an empty scp', () => sign(idp.key, claims({ scp: '' }))],
    ])('refuses %s as insufficient_scope when delegated scopes are required', async (_name, mint) => {
      const token = await mint();
      const validator = createBearerValidator(idp.options);

      await expectRejected(validator.validate(`Bearer ${token}`), BearerFailure.InsufficientScope, token);
    });

    it('refuses app-only and ID tokens even when any delegated scope is accepted', async () => {
      const validator = createBearerValidator({ ...idp.options, requiredScopes: ANY_SCOPE });
      const app = await appToken({ roles: ['Data.Read'] });
      const id = await idToken();
      const user = await sign(idp.key, claims({ scp: 'anything' }));

      await expectRejected(validator.validate(`Bearer ${app}`), BearerFailure.InsufficientScope, app);
      await expectRejected(validator.validate(`Bearer ${id}`), BearerFailure.InsufficientScope, id);
      await expect(validator.validate(`Bearer ${user}`)).resolves.toMatchObject({ kind: 'delegated' });
    });

    it('checks app permissions in roles only: a delegated scope named like one grants nothing', async () => {
      const validator = createBearerValidator({
        ...idp.options,
        requiredScopes: [],
        requiredAppPermissions: ['Data.Read.All'],
      });
      const app = await appToken({ roles: ['Data.Read.All'] });
      const otherRole = await appToken({ roles: ['Data.Write.All'] });
      const delegated = await sign(idp.key, claims({ scp: 'Data.Read.All' }));
      const id = await idToken();

      await expect(validator.validate(`Bearer ${app}`)).resolves.toMatchObject({ token: app, kind: 'app' });
      await expectRejected(validator.validate(`Bearer ${otherRole}`), BearerFailure.InsufficientScope);
      await expectRejected(validator.validate(`Bearer ${delegated}`), BearerFailure.InsufficientScope);
      await expectRejected(validator.validate(`Bearer ${id}`), BearerFailure.InsufficientScope);
    });

    it('accepts either kind with RequiredScopeOrAppPermission-style options, each by its own claim', async () => {
      const validator = createBearerValidator({
        ...idp.options,
        requiredScopes: ['Data.Read'],
        requiredAppPermissions: ['Data.Read.All'],
      });
      const user = await sign(idp.key, claims({ scp: 'Data.Read' }));
      const app = await appToken({ roles: ['Data.Read.All'] });
      const crossed = await appToken({ roles: ['Data.Read'] });

      await expect(validator.validate(`Bearer ${user}`)).resolves.toMatchObject({ kind: 'delegated' });
      await expect(validator.validate(`Bearer ${app}`)).resolves.toMatchObject({ kind: 'app' });
      await expectRejected(validator.validate(`Bearer ${crossed}`), BearerFailure.InsufficientScope);
    });
  });

  describe('canonical base64url', () => {
    it('accepts the one canonical spelling of a token and refuses every other one as malformed_token', async () => {
      const token = await sign(idp.key);
      const spellings = tokenSpellings(token);
      const validator = createBearerValidator(idp.options);

      const outcomes = await Promise.all(
        spellings.map((s) =>
          validator.validate(`Bearer ${s}`).then(
            () => 'accepted',
            (e: unknown) => (e as AuthenticationError).reason,
          ),
        ),
      );

      expect(spellings.length).toBeGreaterThanOrEqual(16);
      expect(outcomes[0]).toBe('accepted');
      expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
      expect(new Set(outcomes.slice(1))).toEqual(new Set([BearerFailure.MalformedToken]));
    });

    it('names the segment, and never verifies a non-canonical one', async () => {
      const token = await sign(idp.key);
      const [header, payload, signature] = token.split('.');
      const validator = createBearerValidator({
        ...idp.options,
        jwksUri: 'https://localhost:9/never-fetched',
      });
      const altSignature = segmentSpellings(signature)[1];

      const error = await expectRejected(
        validator.validate(`Bearer ${header}.${payload}.${altSignature}`),
        BearerFailure.MalformedToken,
      );
      expect(error.message).toContain('signature');
    });

    it.each([
      ['a padded segment', (t: string) => `${t}=`],
      [
        'a segment of length 1 mod 4',
        (t: string) => `${t}${'A'.repeat((5 - (t.split('.')[2].length % 4)) % 4 || 4)}`,
      ],
      ['base64 (not url) characters', (t: string) => t.replace(/-/g, '+').replace(/_/g, '/')],
    ])('refuses %s as malformed_token', async (_name, spoil) => {
      const token = await sign(idp.key, claims({ padding: '>>>???' }));
      const spoiled = spoil(token);
      expect(spoiled).not.toBe(token);
      const validator = createBearerValidator(idp.options);

      await expectRejected(validator.validate(`Bearer ${spoiled}`), BearerFailure.MalformedToken);
    });
  });

  describe('multi-tenant issuers (issue 22)', () => {
    const PUBLIC = 'https://login.microsoftonline.com';

    function multiTenant(extra: { allowedTenants?: string[]; v1Issuer?: boolean } = {}) {
      return createBearerValidator({
        ...idp.options,
        issuer: { multiTenant: { authorityHost: PUBLIC, ...extra } },
        jwksUri: idp.jwks.url,
      });
    }

    it('accepts the v2 and, on the public cloud, the v1 issuer of the token’s own tid', async () => {
      for (const iss of [`${PUBLIC}/${TID}/v2.0`, `https://sts.windows.net/${TID}/`]) {
        const token = await sign(idp.key, claims({ iss, tid: TID }));
        await expect(multiTenant().validate(`Bearer ${token}`)).resolves.toMatchObject({ tenantId: TID });
      }
    });

    it('refuses the v1 issuer when v1Issuer is false, and on another host by default', async () => {
      const v1 = await sign(idp.key, claims({ iss: `https://sts.windows.net/${TID}/`, tid: TID }));
      await expectRejected(
        multiTenant({ v1Issuer: false }).validate(`Bearer ${v1}`),
        BearerFailure.InvalidIssuer,
      );
      const usGov = createBearerValidator({
        ...idp.options,
        issuer: { multiTenant: { authorityHost: 'https://login.microsoftonline.us' } },
        jwksUri: idp.jwks.url,
      });
      await expectRejected(usGov.validate(`Bearer ${v1}`), BearerFailure.InvalidIssuer);
      const v2 = await sign(
        idp.key,
        claims({ iss: `https://login.microsoftonline.us/${TID}/v2.0`, tid: TID }),
      );
      await expect(usGov.validate(`Bearer ${v2}`)).resolves.toMatchObject({ tenantId: TID });
    });

    it('names a tid that differs from the tenant in iss, in either issuer form', async () => {
      for (const iss of [`${PUBLIC}/${OTHER}/v2.0`, `https://sts.windows.net/${OTHER}/`]) {
        const token = await sign(idp.key, claims({ iss, tid: TID }));
        const error = await expectRejected(
          multiTenant().validate(`Bearer ${token}`),
          BearerFailure.TenantMismatch,
        );
        expect(error.message).toContain(OTHER);
      }
    });

    it('refuses a tid that is not a string GUID', async () => {
      for (const tid of [42, ['a'], '', 'common', `{${TID}}`]) {
        const token = await sign(idp.key, claims({ iss: `${PUBLIC}/${String(tid)}/v2.0`, tid }));
        await expectRejected(multiTenant().validate(`Bearer ${token}`), BearerFailure.InvalidTenant);
      }
    });

    it('checks the tenant before authorizing, so a foreign tenant learns nothing about scopes', async () => {
      const token = await sign(idp.key, claims({ iss: `${PUBLIC}/${OTHER}/v2.0`, tid: OTHER, scp: 'other' }));
      await expectRejected(
        multiTenant({ allowedTenants: [TID] }).validate(`Bearer ${token}`),
        BearerFailure.TenantNotAllowed,
      );
    });

    it('keeps a fixed issuer list as it was: tenantId is reported, no tenant check', async () => {
      const token = await sign(idp.key, claims({ tid: TID.toUpperCase() }));
      await expect(createBearerValidator(idp.options).validate(`Bearer ${token}`)).resolves.toMatchObject({
        tenantId: TID,
      });
      expect(() => createBearerValidator({ ...idp.options, jwksUri: undefined })).toThrow(/^jwksUri: /);
    });
  });

  describe('options', () => {
    it.each([
      ['HS256', ['HS256']],
      ['none', ['RS256', 'none']],
      ['an empty list', []],
    ])('refuses an algorithm allow-list with %s', (_name, algorithms) => {
      expect(() => createBearerValidator({ ...idp.options, algorithms })).toThrow(ConfigurationError);
      expect(() => createBearerValidator({ ...idp.options, algorithms })).toThrow(/^algorithms: /);
    });

    it('refuses a plain-http JWKS URI other than localhost', () => {
      expect(() =>
        createBearerValidator({ ...idp.options, jwksUri: 'http://login.example.test/keys' }),
      ).toThrow(/^jwksUri: expected an https URL/);
      expect(() => createBearerValidator({ ...idp.options, jwksUri: 'not a url' })).toThrow(/^jwksUri: /);
    });

    it('refuses empty issuer and audience lists', () => {
      expect(() => createBearerValidator({ ...idp.options, issuer: [] })).toThrow(/^issuer: /);
      expect(() => createBearerValidator({ ...idp.options, audience: '' })).toThrow(/^audience: /);
    });

    it('refuses a validator that names neither delegated scopes nor app permissions', () => {
      const none: BearerValidatorOptions = { ...idp.options, requiredScopes: undefined };
      expect(() => createBearerValidator(none)).toThrow(/^requiredScopes: expected the delegated scopes/);
      expect(() =>
        createBearerValidator({ ...none, requiredScopes: [], requiredAppPermissions: [] }),
      ).toThrow(ConfigurationError);
      expect(() => createBearerValidator({ ...none, requiredScopes: ['*', 'a'] })).toThrow(
        /^requiredScopes: /,
      );
      expect(() => createBearerValidator({ ...none, requiredScopes: ['two words'] })).toThrow(
        /^requiredScopes: /,
      );
    });

    it('refuses a negative clock tolerance', () => {
      expect(() => createBearerValidator({ ...idp.options, clockToleranceSeconds: -1 })).toThrow(
        /^clockToleranceSeconds: /,
      );
    });
  });
});
