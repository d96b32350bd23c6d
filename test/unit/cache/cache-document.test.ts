import {
  canonicalJson,
  emptyDocument,
  isUseful,
  latestAccessTokenExpiry,
  merge,
  parseDocument,
  prune,
  sameDocument,
  type CacheDocument,
  type CacheEntity,
} from '../../../shared/cache/cache-document';

const home = 'oid-1.tid-1';
const env = 'login.example.com';

/** An access token entity in msal-node's serialized shape. */
function accessToken(
  scope: string,
  expiresOn: number,
  secret = `at-${scope}-${expiresOn}`,
): [string, CacheEntity] {
  const key = `${home}-${env}-accesstoken-client-1-tid-1-${scope}--`;
  return [
    key,
    {
      home_account_id: home,
      environment: env,
      credential_type: 'AccessToken',
      client_id: 'client-1',
      secret,
      realm: 'tid-1',
      target: scope,
      cached_at: String(expiresOn - 3600),
      expires_on: String(expiresOn),
      extended_expires_on: String(expiresOn + 3600),
      token_type: 'Bearer',
    },
  ];
}

function refreshToken(secret: string): [string, CacheEntity] {
  return [
    `${home}-${env}-refreshtoken-client-1----`,
    {
      home_account_id: home,
      environment: env,
      credential_type: 'RefreshToken',
      client_id: 'client-1',
      secret,
    },
  ];
}

function doc(
  parts: Partial<Record<'AccessToken' | 'RefreshToken' | 'Account', Array<[string, CacheEntity]>>>,
) {
  const d = emptyDocument();
  for (const [section, entries] of Object.entries(parts)) d[section] = Object.fromEntries(entries);
  return d;
}

describe('cache-document', () => {
  describe('prune', () => {
    it('removes access tokens expired at now and keeps live ones and undated entities', () => {
      const live = accessToken('a', 2000);
      const expired = accessToken('b', 1000);
      const rt = refreshToken('rt-1');
      const pruned = prune(doc({ AccessToken: [live, expired], RefreshToken: [rt] }), 1000);
      expect(Object.keys(pruned.AccessToken)).toEqual([live[0]]);
      expect(Object.keys(pruned.RefreshToken)).toEqual([rt[0]]);
    });

    it('does not modify its input', () => {
      const input = doc({ AccessToken: [accessToken('a', 10)] });
      prune(input, 100);
      expect(Object.keys(input.AccessToken)).toHaveLength(1);
    });
  });

  describe('isUseful', () => {
    it('is false for accounts and id tokens alone, true with an access or refresh token', () => {
      const account: [string, CacheEntity] = [`${home}-${env}-tid-1`, { home_account_id: home }];
      expect(isUseful(doc({ Account: [account] }))).toBe(false);
      expect(isUseful(doc({ RefreshToken: [refreshToken('x')] }))).toBe(true);
      expect(isUseful(doc({ AccessToken: [accessToken('a', 5)] }))).toBe(true);
    });
  });

  describe('latestAccessTokenExpiry', () => {
    it('is the largest expires_on, or undefined without access tokens', () => {
      expect(latestAccessTokenExpiry(doc({ AccessToken: [accessToken('a', 5), accessToken('b', 9)] }))).toBe(
        9,
      );
      expect(latestAccessTokenExpiry(emptyDocument())).toBeUndefined();
    });
  });

  describe('sameDocument / canonicalJson', () => {
    it('ignores key order and empty sections', () => {
      const a: CacheDocument = {
        AccessToken: Object.fromEntries([accessToken('a', 5), accessToken('b', 6)]),
      };
      const b: CacheDocument = {
        RefreshToken: {},
        AccessToken: Object.fromEntries([accessToken('b', 6), accessToken('a', 5)]),
      };
      expect(sameDocument(a, b)).toBe(true);
      expect(canonicalJson({ b: 1, a: { d: 1, c: 2 } })).toBe('{"a":{"c":2,"d":1},"b":1}');
    });

    it('sees a changed field', () => {
      const a = doc({ AccessToken: [accessToken('a', 5, 's1')] });
      const b = doc({ AccessToken: [accessToken('a', 5, 's2')] });
      expect(sameDocument(a, b)).toBe(false);
    });
  });

  describe('parseDocument', () => {
    it('rejects non-objects and non-object sections', () => {
      expect(() => parseDocument('[]')).toThrow(TypeError);
      expect(() => parseDocument('{"AccessToken": 3}')).toThrow(/AccessToken/);
      expect(parseDocument('{"AccessToken": {}}')).toEqual({ AccessToken: {} });
    });
  });

  describe('merge', () => {
    const a = accessToken('a', 100);
    const b = accessToken('b', 100);

    it('keeps what each side added', () => {
      const merged = merge(emptyDocument(), doc({ AccessToken: [a] }), doc({ AccessToken: [b] }));
      expect(Object.keys(merged.AccessToken).sort()).toEqual([a[0], b[0]].sort());
    });

    it('keeps a removal made by this request even if the other side refreshed the entity', () => {
      const base = doc({ AccessToken: [a], RefreshToken: [refreshToken('rt-1')] });
      const mine = doc({ RefreshToken: [refreshToken('rt-1')] });
      const theirs = doc({ AccessToken: [accessToken('a', 500)], RefreshToken: [refreshToken('rt-1')] });
      expect(merge(base, mine, theirs).AccessToken).toEqual({});
    });

    it('keeps a removal made by the other side when this request did not touch the entity', () => {
      const base = doc({ AccessToken: [a, b] });
      const mine = doc({ AccessToken: [a, b] });
      const theirs = doc({ AccessToken: [b] });
      expect(Object.keys(merge(base, mine, theirs).AccessToken)).toEqual([b[0]]);
    });

    it('keeps my update of an entity the other side removed', () => {
      const base = doc({ AccessToken: [a] });
      const mine = doc({ AccessToken: [accessToken('a', 300)] });
      const merged = merge(base, mine, emptyDocument());
      expect(merged.AccessToken[a[0]]['expires_on']).toBe('300');
    });

    it('on the same key changed by both, the entity that expires later wins', () => {
      const base = doc({ AccessToken: [a] });
      const mine = doc({ AccessToken: [accessToken('a', 200)] });
      const theirs = doc({ AccessToken: [accessToken('a', 300)] });
      expect(merge(base, mine, theirs).AccessToken[a[0]]['expires_on']).toBe('300');
      expect(merge(base, theirs, mine).AccessToken[a[0]]['expires_on']).toBe('300');
    });

    it('takes the other side’s update when this request left the entity alone', () => {
      const base = doc({ RefreshToken: [refreshToken('rt-1')] });
      const theirs = doc({ RefreshToken: [refreshToken('rt-2')] });
      const merged = merge(base, base, theirs);
      expect(Object.values(merged.RefreshToken)[0]['secret']).toBe('rt-2');
    });

    it('merges sections a newer MSAL might add', () => {
      const mine: CacheDocument = { ...emptyDocument(), Future: { k1: { x: 1 } } };
      const theirs: CacheDocument = { ...emptyDocument(), Future: { k2: { y: 2 } } };
      expect(Object.keys(merge(emptyDocument(), mine, theirs)['Future']).sort()).toEqual(['k1', 'k2']);
    });
  });
});
