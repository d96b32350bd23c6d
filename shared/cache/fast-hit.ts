/**
 * Fast hits: an OBO or app (client credentials) access token served from the partition
 * the request already opened, without building a ConfidentialClientApplication and
 * running msal-node's lookup. It restates msal-node 7.2.3 / msal-common 16.17's cache
 * lookup for these two flows (OnBehalfOfClient.readAccessTokenFromCacheForOBO,
 * ClientCredentialClient.readAccessTokenFromCache, CacheManager.getAccessTokensByFilter,
 * credentialMatchesFilter, ScopeSet, TimeUtils.isTokenExpired and
 * ResponseHandler.generateAuthenticationResult) and answers only where that lookup
 * provably returns the same token; anything else is `undefined`, and the caller hands
 * the request to msal-node as before. test/unit/cache/fast-hit.property.test.ts checks
 * it against msal-node's own lookup over generated cache documents.
 */
import { hash as digest, randomUUID } from 'node:crypto';
import type { AuthenticationResult } from '@azure/msal-node';
import { LRUCache } from 'lru-cache';

/** The request, as far as the lookup depends on it. */
export interface FastHitRequest {
  readonly kind: 'obo' | 'app';
  readonly scopes: readonly string[];
  /** The incoming assertion (OBO). */
  readonly assertion?: string;
  /** `base64url(sha256(assertion))` when the caller already computed it (the store key hashes it too). */
  readonly assertionHash?: string;
  /** Any request asking to skip the cache is never served here. */
  readonly forceRefresh?: boolean;
  /** Claims of any kind (a claims challenge, client claims) are never served here. */
  readonly claims?: unknown;
}

/** The opened partition (the session's snapshot): MSAL's JSON and the store version it came from. */
export interface FastHitSnapshot {
  readonly json: string;
  readonly version: string | undefined;
  /**
   * `json` already parsed (the session's validated document, when it just opened the
   * envelope): read, never kept or changed, and saves a second JSON.parse of a new version.
   */
  readonly doc?: unknown;
}

/** msal-node's default `tokenRenewalOffsetSeconds` (the cache's MSAL config never sets it). */
export const MSAL_TOKEN_RENEWAL_OFFSET_SECONDS = 300;

/** Scopes MSAL adds or strips itself (OIDC_SCOPES); a request naming one is left to msal-node. */
const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'offline_access', 'email']);

/** The access-token credential types msal-common knows (its in-memory classification). */
const BEARER_CREDENTIAL = 'AccessToken';
const SCHEME_CREDENTIAL = 'AccessToken_With_AuthScheme';

/** The sections msal-node deserializes, in the order it flattens them (a later one wins a key). */
const KNOWN_SECTIONS = ['Account', 'IdToken', 'AccessToken', 'RefreshToken', 'AppMetadata'] as const;

/** Keys msal-node writes into the same flat map as the tokens (authority metadata, telemetry, throttling). */
const MSAL_INTERNAL_KEY = /^(authority-metadata|server-telemetry|throttling)/i;

/** Bounds of the index of opened documents. */
const INDEX_MAX_BYTES = 8 * 1024 * 1024;
const INDEX_MAX_ENTRIES = 4096;
/** Most authorities whose msal-node results are remembered (the cache uses one per tenant). */
const MAX_AUTHORITIES = 1024;

/** One access token as msal-node would see it after deserializing the document. */
interface IndexedToken {
  readonly keyLower: string;
  readonly credentialType: string;
  readonly clientId: string | undefined;
  readonly homeAccountId: string | undefined;
  readonly environment: string | undefined;
  readonly realmLower: string | undefined;
  readonly userAssertionHash: string | undefined;
  /** `target` as msal's ScopeSet.fromString: trimmed, non-empty, distinct, in order. */
  readonly scopes: readonly string[] | undefined;
  readonly scopesLower: ReadonlySet<string>;
  readonly hasCacheKeyComponents: boolean;
  readonly tokenType: string | undefined;
  readonly secret: string;
  readonly expiresOn: string;
  readonly extendedExpiresOn: string;
  readonly refreshOn: string | undefined;
}

/** A document's access tokens; `undefined` tokens: something in it msal-node may trip on (never served). */
interface DocumentIndex {
  readonly json: string;
  readonly tokens: readonly IndexedToken[] | undefined;
}

/** What msal-node's own results taught about one authority string. */
interface Learned {
  /** `result.authority` (msal's canonical authority); null once two results disagreed. */
  canonical: string | undefined | null;
  /** The realm an app token of this authority matched, lowercased; null once two disagreed. */
  realmLower: string | undefined | null;
  /** Environments app tokens of this authority were served from (aliases msal-node accepted). */
  readonly environments: Set<string>;
}

/**
 * The fast-hit lookup of one TokenCache (per client id). Process-wide state is only what
 * is safe to share: an index of opened documents by store key and version, and what
 * msal-node's results said about each authority.
 */
export class FastHits {
  private readonly index = new LRUCache<string, DocumentIndex>({
    max: INDEX_MAX_ENTRIES,
    maxSize: INDEX_MAX_BYTES,
    sizeCalculation: (entry, key) => Math.max(1, (entry.json.length + key.length) * 2),
  });
  private readonly learned = new Map<string, Learned>();
  private readonly clientIdLower: string;

  constructor(
    private readonly clientId: string,
    /** Clock in epoch ms: msal-node reads the real clock, so this must be the same one. */
    private readonly now: () => number = Date.now,
  ) {
    this.clientIdLower = clientId.toLowerCase();
  }

  /**
   * The result msal-node would return for `request` on `authority` over the opened
   * partition, or undefined when that is not certain (then ask msal-node).
   */
  serve(
    request: FastHitRequest,
    authority: string,
    storeKey: string,
    snapshot: FastHitSnapshot,
  ): AuthenticationResult | undefined {
    if (request.forceRefresh || hasClaims(request)) return undefined;
    const learned = this.learned.get(authority);
    if (!learned || typeof learned.canonical !== 'string') return undefined;
    if (request.kind === 'app' && (!learned.realmLower || learned.environments.size === 0)) return undefined;
    const search = searchScopes(request.scopes);
    if (!search) return undefined;
    const tokens = this.indexOf(storeKey, snapshot);
    if (!tokens) return undefined;
    const hash =
      request.kind === 'obo'
        ? typeof request.assertion === 'string' && request.assertion !== ''
          ? // msal's userAssertionHash: base64url(sha256(assertion)); the one-shot hash is the cheap one.
            (request.assertionHash ?? digest('sha256', request.assertion, 'base64url'))
          : undefined
        : undefined;
    if (request.kind === 'obo' && hash === undefined) return undefined;
    const match = this.match(request.kind, tokens, search, hash, learned);
    if (!match) return undefined;
    // Only Bearer: msal signs PoP tokens and builds DPoP proofs per request.
    if (match.tokenType?.toLowerCase() !== 'bearer') return undefined;
    const nowSeconds = Math.round(this.now() / 1000);
    if (nowSeconds + MSAL_TOKEN_RENEWAL_OFFSET_SECONDS > (Number(match.expiresOn) || 0)) return undefined;
    // Past refresh_on msal-node serves the app token but first fetches a new one.
    if (request.kind === 'app' && match.refreshOn && nowSeconds > (Number(match.refreshOn) || 0))
      return undefined;
    return resultOf(match, learned.canonical);
  }

  /**
   * Remembers what a result of msal-node itself says about `authority`: its canonical
   * form and, for an app token it served from the cache, the environment and realm it
   * accepted. Only these learned facts let {@link serve} answer.
   */
  learn(
    request: FastHitRequest,
    authority: string,
    storeKey: string,
    snapshot: FastHitSnapshot,
    result: AuthenticationResult,
  ): void {
    let learned = this.learned.get(authority);
    if (!learned) {
      if (this.learned.size >= MAX_AUTHORITIES) return;
      learned = { canonical: undefined, realmLower: undefined, environments: new Set() };
      this.learned.set(authority, learned);
    }
    if (typeof result.authority === 'string' && result.authority !== '' && learned.canonical !== null) {
      if (learned.canonical === undefined) learned.canonical = result.authority;
      else if (learned.canonical !== result.authority) learned.canonical = null;
    }
    if (request.kind !== 'app' || !result.fromCache || !result.accessToken) return;
    // After msal-node ran: index the JSON itself, never a document something may have used since.
    const tokens = this.indexOf(storeKey, { json: snapshot.json, version: snapshot.version });
    const served = tokens?.filter(
      (t) => t.credentialType === BEARER_CREDENTIAL && t.secret === result.accessToken,
    );
    const token = served?.length === 1 ? served[0] : undefined;
    if (!token || token.environment === undefined || token.realmLower === undefined) return;
    learned.environments.add(token.environment);
    if (learned.realmLower === undefined) learned.realmLower = token.realmLower;
    else if (learned.realmLower !== token.realmLower) learned.realmLower = null;
  }

  /** msal-node's filter over the document's access tokens: exactly one match, or undefined. */
  private match(
    kind: 'obo' | 'app',
    tokens: readonly IndexedToken[],
    search: readonly string[],
    hash: string | undefined,
    learned: Learned,
  ): IndexedToken | undefined {
    const realmLower = learned.realmLower ?? '';
    let found: IndexedToken | undefined;
    for (const t of tokens) {
      // CacheManager.accessTokenKeyMatchesFilter: substrings of the lowercased key.
      if (!t.keyLower.includes(this.clientIdLower)) continue;
      if (kind === 'app' && !t.keyLower.includes(realmLower)) continue;
      if (!search.every((s) => t.keyLower.includes(s.toLowerCase()))) continue;
      // credentialMatchesFilter, field by field.
      if (!t.clientId || t.clientId !== this.clientId) continue;
      if (kind === 'obo' && (!t.userAssertionHash || t.userAssertionHash !== hash)) continue;
      if (kind === 'app') {
        if (t.homeAccountId !== '') continue;
        if (t.realmLower !== realmLower) continue;
      }
      if (t.credentialType !== BEARER_CREDENTIAL) continue;
      if (!t.scopes || t.scopes.length < search.length) continue;
      if (!search.every((s) => t.scopesLower.has(s.toLowerCase()))) continue;
      if (t.hasCacheKeyComponents) continue;
      // An alias msal-node was never seen accept may or may not match: not certain.
      if (kind === 'app' && (t.environment === undefined || !learned.environments.has(t.environment)))
        return undefined;
      // Several matches: msal-node drops them and asks the authority.
      if (found) return undefined;
      found = t;
    }
    return found;
  }

  private indexOf(storeKey: string, snapshot: FastHitSnapshot): readonly IndexedToken[] | undefined {
    if (!snapshot.json) return undefined;
    const key = `${storeKey}\u0000${snapshot.version ?? ''}`;
    const known = this.index.get(key);
    // Same string object on an L1 hit: the comparison is a pointer check.
    if (known && known.json === snapshot.json) return known.tokens;
    const built: DocumentIndex = {
      json: snapshot.json,
      tokens: indexDocument(snapshot.doc === undefined ? snapshot.json : snapshot.doc),
    };
    this.index.set(key, built);
    return built.tokens;
  }
}

/** True when the request carries claims of any kind (any property named like `claims`). */
export function hasClaims(request: object): boolean {
  return Object.entries(request).some(
    ([name, value]) => /claims/i.test(name) && value !== undefined && value !== null && value !== '',
  );
}

/**
 * The request's search scopes as msal's ScopeSet.createSearchScopes makes them, or
 * undefined for anything it would change (whitespace, OIDC scopes, empty).
 */
function searchScopes(scopes: readonly string[]): readonly string[] | undefined {
  if (!Array.isArray(scopes) || scopes.length === 0) return undefined;
  const out: string[] = [];
  for (const s of scopes) {
    if (typeof s !== 'string' || !/^\S+$/.test(s) || OIDC_SCOPES.has(s.toLowerCase())) return undefined;
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/**
 * The access tokens msal-node would hold after deserializing `source` (the JSON, or it
 * parsed), or undefined when
 * the document holds anything where msal-node's deserialize or lookup could throw or
 * classify differently (never served then).
 */
function indexDocument(source: unknown): readonly IndexedToken[] | undefined {
  let doc: unknown = source;
  if (typeof source === 'string') {
    try {
      doc = JSON.parse(source);
    } catch {
      return undefined;
    }
  }
  if (!isRecord(doc)) return undefined;
  const seen = new Set<string>();
  const tokens: IndexedToken[] = [];
  for (const name of KNOWN_SECTIONS) {
    const section = doc[name];
    if (section === undefined || section === null) continue;
    if (!isRecord(section)) return undefined;
    for (const [key, entity] of Object.entries(section)) {
      // msal-node flattens the sections into one map: a key in two sections is one entity.
      if (seen.has(key) || MSAL_INTERNAL_KEY.test(key)) return undefined;
      seen.add(key);
      if (!isRecord(entity)) return undefined;
      const credentialType = entity['credential_type'];
      const isToken = credentialType === BEARER_CREDENTIAL || credentialType === SCHEME_CREDENTIAL;
      if (name === 'Account' && !tenantProfilesParse(entity['tenantProfiles'])) return undefined;
      // A refresh-token entry shaped like an access token is one to msal-node.
      if (name === 'RefreshToken' && isToken) return undefined;
      if (name !== 'AccessToken' || !isToken) continue;
      const token = indexToken(key, credentialType, entity);
      if (!token) return undefined;
      tokens.push(token);
    }
  }
  return tokens;
}

function indexToken(
  key: string,
  credentialType: string,
  e: Record<string, unknown>,
): IndexedToken | undefined {
  const str = (v: unknown): v is string | undefined => v === undefined || typeof v === 'string';
  const digits = (v: unknown): v is string => typeof v === 'string' && /^[0-9]{1,15}$/.test(v);
  const {
    home_account_id: homeAccountId,
    environment,
    client_id: clientId,
    realm,
    target,
    userAssertionHash,
    token_type: tokenType,
    secret,
    expires_on: expiresOn,
    extended_expires_on: extendedExpiresOn,
    refresh_on: refreshOn,
    additionalCacheKeyComponents: components,
  } = e;
  if (
    !str(homeAccountId) ||
    !str(environment) ||
    !str(clientId) ||
    !str(realm) ||
    !str(target) ||
    !str(userAssertionHash) ||
    !str(tokenType) ||
    typeof secret !== 'string' ||
    secret === '' ||
    !digits(expiresOn) ||
    !digits(extendedExpiresOn) ||
    !(refreshOn === undefined || refreshOn === '' || digits(refreshOn))
  ) {
    return undefined;
  }
  let scopes: string[] | undefined;
  if (target) {
    scopes = [];
    for (const s of target.split(' ')) {
      const trimmed = s.trim();
      if (trimmed !== '' && !scopes.includes(trimmed)) scopes.push(trimmed);
    }
    // msal's ScopeSet throws on a target of only spaces: msal-node then behaves differently.
    if (scopes.length === 0) return undefined;
  }
  return {
    keyLower: key.toLowerCase(),
    credentialType,
    clientId,
    homeAccountId,
    environment,
    realmLower: realm?.toLowerCase(),
    userAssertionHash,
    scopes,
    scopesLower: new Set((scopes ?? []).map((s) => s.toLowerCase())),
    hasCacheKeyComponents:
      components !== undefined && components !== null && Object.keys(components).length > 0,
    tokenType,
    secret,
    expiresOn,
    extendedExpiresOn,
    refreshOn: refreshOn === '' ? undefined : refreshOn,
  };
}

/** msal-node parses each account's tenant profile JSON on deserialize; one it cannot parse throws. */
function tenantProfilesParse(profiles: unknown): boolean {
  if (profiles === undefined || profiles === null) return true;
  if (!Array.isArray(profiles)) return false;
  for (const p of profiles) {
    if (typeof p !== 'string') return false;
    try {
      JSON.parse(p);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * ResponseHandler.generateAuthenticationResult for a cached Bearer token with no account
 * (the app flow has none; msal-node's OBO id-token lookup returns none either: it counts
 * a Map with Object.values).
 */
function resultOf(t: IndexedToken, authority: string): AuthenticationResult {
  return {
    authority,
    uniqueId: '',
    tenantId: '',
    scopes: [...(t.scopes ?? [])],
    account: null,
    idToken: '',
    idTokenClaims: {},
    accessToken: t.secret,
    dpopProof: undefined,
    fromCache: true,
    expiresOn: new Date(Number(t.expiresOn) * 1000),
    extExpiresOn: new Date(Number(t.extendedExpiresOn) * 1000),
    refreshOn: t.refreshOn ? new Date(Number(t.refreshOn) * 1000) : undefined,
    correlationId: randomUUID(),
    requestId: '',
    familyId: '',
    tokenType: t.tokenType ?? '',
    state: '',
    cloudGraphHostName: '',
    msGraphHost: '',
    code: undefined,
    fromPlatformBroker: false,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
