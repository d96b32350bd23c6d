/**
 * MSAL's unified cache document (the JSON `TokenCache.serialize()` produces and other
 * MSALs read): top-level sections of entities keyed by MSAL's cache keys. This module
 * owns the rules the cache applies to it: pruning, usefulness, expiry, comparison and the
 * three-way merge of concurrent writes.
 */

/** One cache entity (AccessToken, RefreshToken, ...), as MSAL serializes it. */
export type CacheEntity = Record<string, unknown>;
/** MSAL's serialized cache: section name -> entity key -> entity. */
export type CacheDocument = Record<string, Record<string, CacheEntity>>;

/** The sections MSAL writes. Unknown sections (a newer MSAL's) are kept and merged too. */
export const Section = {
  Account: 'Account',
  IdToken: 'IdToken',
  AccessToken: 'AccessToken',
  RefreshToken: 'RefreshToken',
  AppMetadata: 'AppMetadata',
} as const;

/** Parses MSAL JSON into a document; throws on anything that is not an object of sections. */
export function parseDocument(json: string): CacheDocument {
  const value: unknown = JSON.parse(json);
  if (!isRecord(value)) throw new TypeError('MSAL cache JSON is not an object');
  const doc: CacheDocument = {};
  for (const [name, section] of Object.entries(value)) {
    if (!isRecord(section)) throw new TypeError(`MSAL cache section ${name} is not an object`);
    doc[name] = section as Record<string, CacheEntity>;
  }
  return doc;
}

/** An empty document with MSAL's five sections. */
export function emptyDocument(): CacheDocument {
  return { Account: {}, IdToken: {}, AccessToken: {}, RefreshToken: {}, AppMetadata: {} };
}

/** Epoch seconds at which an entity expires, if it says (`expires_on`). */
export function expiresOn(entity: CacheEntity): number | undefined {
  const raw = entity['expires_on'];
  const n = typeof raw === 'string' ? Number(raw) : typeof raw === 'number' ? raw : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Removes access tokens (and any entity with an `expires_on`) that have expired by
 * `nowSeconds`. Returns a new document; the input is not changed.
 */
export function prune(doc: CacheDocument, nowSeconds: number): CacheDocument {
  const out: CacheDocument = {};
  for (const [name, section] of Object.entries(doc)) {
    const kept: Record<string, CacheEntity> = {};
    for (const [key, entity] of Object.entries(section)) {
      const exp = expiresOn(entity);
      if (exp === undefined || exp > nowSeconds) kept[key] = entity;
    }
    out[name] = kept;
  }
  return out;
}

/** True when the document can still serve a token: an access token or a refresh token. */
export function isUseful(doc: CacheDocument): boolean {
  return count(doc, Section.AccessToken) > 0 || count(doc, Section.RefreshToken) > 0;
}

/** Number of entities in a section. */
export function count(doc: CacheDocument, section: string): number {
  return Object.keys(doc[section] ?? {}).length;
}

/** The latest access-token expiry in the document, epoch seconds. */
export function latestAccessTokenExpiry(doc: CacheDocument): number | undefined {
  let latest: number | undefined;
  for (const entity of Object.values(doc[Section.AccessToken] ?? {})) {
    const exp = expiresOn(entity);
    if (exp !== undefined && (latest === undefined || exp > latest)) latest = exp;
  }
  return latest;
}

/**
 * Canonical JSON: keys sorted at every level, so two documents with the same content
 * compare equal whatever order MSAL wrote them in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

/** True when both documents hold the same entities with the same fields. */
export function sameDocument(a: CacheDocument, b: CacheDocument): boolean {
  return canonicalJson(withoutEmptySections(a)) === canonicalJson(withoutEmptySections(b));
}

/**
 * Three-way merge of a lost conflicting write, per entity key, section by section:
 * - a key only one side changed since `base` takes that side's value;
 * - a key this request removed stays removed, whatever the other side did to it (a
 *   sign-out or an MSAL removal must not be undone by a concurrent refresh);
 * - a key the other side removed stays removed, unless this request changed it;
 * - a key both sides changed keeps the entity that expires later (ties: mine).
 * Nothing either side added is lost.
 */
export function merge(base: CacheDocument, mine: CacheDocument, theirs: CacheDocument): CacheDocument {
  const out: CacheDocument = {};
  const sections = new Set([...Object.keys(base), ...Object.keys(mine), ...Object.keys(theirs)]);
  for (const name of sections) {
    const b = base[name] ?? {};
    const m = mine[name] ?? {};
    const t = theirs[name] ?? {};
    const merged: Record<string, CacheEntity> = {};
    for (const key of new Set([...Object.keys(b), ...Object.keys(m), ...Object.keys(t)])) {
      const winner = mergeEntity(b[key], m[key], t[key]);
      if (winner !== undefined) merged[key] = winner;
    }
    out[name] = merged;
  }
  return out;
}

function mergeEntity(
  base: CacheEntity | undefined,
  mine: CacheEntity | undefined,
  theirs: CacheEntity | undefined,
): CacheEntity | undefined {
  if (base !== undefined && mine === undefined) return undefined;
  const mineChanged = !sameEntity(base, mine);
  const theirsChanged = !sameEntity(base, theirs);
  if (!mineChanged) return theirs;
  if (!theirsChanged) return mine;
  // Both changed (or both added) the same key; mine is defined here.
  if (mine === undefined || theirs === undefined) return mine;
  const mineExp = expiresOn(mine) ?? -Infinity;
  const theirsExp = expiresOn(theirs) ?? -Infinity;
  return theirsExp > mineExp ? theirs : mine;
}

function sameEntity(a: CacheEntity | undefined, b: CacheEntity | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function withoutEmptySections(doc: CacheDocument): CacheDocument {
  return Object.fromEntries(Object.entries(doc).filter(([, s]) => Object.keys(s).length > 0));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
