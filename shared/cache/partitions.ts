/**
 * Partition keys. Each caller's tokens live in one partition; the store only ever sees a
 * hash of the logical key, so it holds no user ids or assertions.
 */
import { hash } from 'node:crypto';
import type { Partition } from './types';

/** base64url(sha256(text)), no padding. */
export function sha256Base64Url(text: string): string {
  // The one-shot hash: no Hash object per call (it runs several times on every request).
  return hash('sha256', text, 'base64url');
}

/**
 * The logical partition key, per DESIGN.md: `app:{clientId}:{tenantId}`,
 * `obo:{clientId}:{sha256(assertion)}` (`obo:{clientId}:{tenantId}:{sha256(assertion)}` when
 * the exchange runs in the caller's tenant), `user:{clientId}:{homeAccountId}`.
 */
export function logicalKey(
  clientId: string,
  partition: Partition,
  /** `sha256Base64Url(partition.assertion)` when the caller already has it (OBO only). */
  assertionHash?: string,
): string {
  switch (partition.kind) {
    case 'app':
      return `app:${clientId}:${partition.tenantId}`;
    case 'obo': {
      const hashed = assertionHash ?? sha256Base64Url(partition.assertion);
      return partition.tenantId === undefined
        ? `obo:${clientId}:${hashed}`
        : `obo:${clientId}:${partition.tenantId}:${hashed}`;
    }
    case 'user':
      return `user:${clientId}:${partition.homeAccountId}`;
  }
}

/**
 * The key written to the store: a hash of the logical key. An operator can recompute it
 * from a client id and a user's home account id (`oid.tid`) with this same function.
 * @example storeKey(logicalKey(clientId, { kind: 'user', homeAccountId: `${oid}.${tid}` }))
 */
export function storeKey(logical: string): string {
  return sha256Base64Url(logical);
}

/** The store key of a partition: {@link storeKey} of its {@link logicalKey}. */
export function partitionStoreKey(clientId: string, partition: Partition, assertionHash?: string): string {
  return storeKey(logicalKey(clientId, partition, assertionHash));
}

/**
 * The `exp` claim of a JWT, without validating it (the web API validated the incoming
 * token before calling the cache). `undefined` when it is not a readable JWT.
 */
export function unverifiedExpiry(jwt: string): number | undefined {
  const payload = jwt.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/** The tenant id in an authority URL (`https://host/<tenant>[/...]`). */
export function tenantOf(authority: string): string {
  const segment = new URL(authority).pathname.split('/').filter(Boolean)[0];
  return segment ?? 'common';
}

/** The authority URL with its tenant segment replaced. */
export function authorityFor(authority: string, tenantId: string): string {
  const url = new URL(authority);
  const rest = url.pathname.split('/').filter(Boolean).slice(1);
  url.pathname = `/${[tenantId, ...rest].join('/')}`;
  return url.toString().replace(/\/$/, '');
}
