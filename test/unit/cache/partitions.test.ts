import {
  authorityFor,
  logicalKey,
  partitionStoreKey,
  sha256Base64Url,
  storeKey,
  tenantOf,
  unverifiedExpiry,
} from '../../../shared/cache/partitions';

function jwt(claims: object): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(claims)}.sig`;
}

describe('partitions', () => {
  describe('logicalKey', () => {
    it('follows the three partition shapes of DESIGN.md', () => {
      expect(logicalKey('c1', { kind: 'app', tenantId: 't1' })).toBe('app:c1:t1');
      expect(logicalKey('c1', { kind: 'user', homeAccountId: 'o.t' })).toBe('user:c1:o.t');
      const assertion = jwt({ exp: 1 });
      expect(logicalKey('c1', { kind: 'obo', assertion })).toBe(`obo:c1:${sha256Base64Url(assertion)}`);
    });

    it('never contains the assertion itself', () => {
      const assertion = jwt({ exp: 1, oid: 'secret-oid' });
      expect(logicalKey('c1', { kind: 'obo', assertion })).not.toContain(assertion.split('.')[1]);
    });

    it('uses an OBO assertion hash the caller already computed, with and without a tenant', () => {
      const assertion = jwt({ exp: 1 });
      const hashed = sha256Base64Url(assertion);
      for (const partition of [
        { kind: 'obo', assertion },
        { kind: 'obo', assertion, tenantId: 't1' },
      ] as const) {
        expect(logicalKey('c1', partition, hashed)).toBe(logicalKey('c1', partition));
      }
      expect(logicalKey('c1', { kind: 'obo', assertion }, 'given')).toBe('obo:c1:given');
    });
  });

  describe('storeKey', () => {
    it('is a 43-character base64url hash, different per partition and per app', () => {
      const k1 = storeKey(logicalKey('c1', { kind: 'user', homeAccountId: 'o.t' }));
      const k2 = storeKey(logicalKey('c2', { kind: 'user', homeAccountId: 'o.t' }));
      expect(k1).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(k1).not.toBe(k2);
      expect(k1).not.toContain('o.t');
    });
  });

  describe('partitionStoreKey', () => {
    it.each([
      { kind: 'app', tenantId: 't1' },
      { kind: 'obo', assertion: 'a.b.c' },
      { kind: 'obo', assertion: 'a.b.c', tenantId: 't2' },
      { kind: 'user', homeAccountId: 'o.t' },
    ] as const)('is the store key of the logical key ($kind)', (partition) => {
      expect(partitionStoreKey('c1', partition)).toBe(storeKey(logicalKey('c1', partition)));
    });

    it("uses an OBO assertion's hash when given", () => {
      const partition = { kind: 'obo', assertion: 'a.b.c' } as const;
      expect(partitionStoreKey('c1', partition, 'given')).toBe(storeKey('obo:c1:given'));
    });
  });

  describe('unverifiedExpiry', () => {
    it('reads exp from a JWT and returns undefined for anything else', () => {
      expect(unverifiedExpiry(jwt({ exp: 1234 }))).toBe(1234);
      expect(unverifiedExpiry(jwt({ exp: 'soon' }))).toBeUndefined();
      expect(unverifiedExpiry('not-a-jwt')).toBeUndefined();
      expect(unverifiedExpiry('a.!!!.c')).toBeUndefined();
    });
  });

  describe('authority helpers', () => {
    it('reads and replaces the tenant segment', () => {
      expect(tenantOf('https://login.microsoftonline.com/tid-1')).toBe('tid-1');
      expect(tenantOf('https://login.microsoftonline.com/')).toBe('common');
      expect(authorityFor('https://localhost:8443/tid-1', 'tid-2')).toBe('https://localhost:8443/tid-2');
    });
  });
});
