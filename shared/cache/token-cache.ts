/**
 * The token cache facade: acquire tokens through msal-node with one encrypted partition
 * per caller, persisted in a store with conditional writes.
 */
import {
  AuthError,
  ConfidentialClientApplication,
  InteractionRequiredAuthError,
  LogLevel,
  ServerError,
  type AuthenticationResult,
  type Configuration,
  type INetworkModule,
} from '@azure/msal-node';
import { CLIENT_CAPABILITY, InvalidClaimsError, parseClaims } from '../auth/claims';
import { DataKeyCache } from '../crypto/data-key-cache';
import { COALESCING_DEFAULTS, CONFLICT_RETRY_DEFAULTS, L1_DEFAULTS, TOKEN_CACHE_DEFAULTS } from '../defaults';
import { Envelope } from '../crypto/envelope';
import type { PartitionKind } from '../crypto/keyring';
import {
  ConfigurationError,
  InteractionRequiredError,
  TokenAcquisitionError,
  TokenCacheError,
} from '../errors';
import { JsonLogger, Metric, noMetrics, type Logger, type Metrics } from '../observability';
import { hasLeases, type LeaseStore, type TokenStore } from '../store/store';
import { AuthorityMetadataCache } from './authority-metadata';
import { GatedNetwork, LeaseGate, SingleFlight, type LeaseSettings } from './coalescing';
import { latestAccessTokenExpiry, parseDocument, type CacheDocument } from './cache-document';
import { FastHits, type FastHitRequest } from './fast-hit';
import { HttpsNetworkClient } from './http';
import { L1Cache, OPENED_ENVELOPES_TTL_MS, OpenedEnvelopes } from './l1';
import { SharedReads } from './shared-reads';
import { keyErrorsCountedBySessions } from './session/events';
import { isUnavailable } from './session/snapshot';
import {
  PartitionSession,
  PartitionWrites,
  type ExpiryPolicy,
  type SessionContext,
} from './partition-session';
import {
  RequestTrace,
  type CacheMetadata,
  type CachedAuthenticationResult,
  type LoadSource,
  type StoreUnusedReason,
} from './metadata';
import { epochSeconds } from '../store/store';
import { authorityFor, partitionStoreKey, sha256Base64Url, tenantOf, unverifiedExpiry } from './partitions';
import type {
  AppTokenRequest,
  AuthCodeRequest,
  EvictionOutcome,
  OnBehalfOfRequest,
  Partition,
  SilentUserRequest,
  TokenCache,
  TokenCacheOptions,
} from './types';

/** Memo of opened envelopes (see OpenedEnvelopes): bounded, not an option. */
const OPENED_ENVELOPES_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Defaults of {@link TokenCacheOptions} as one flat object.
 * @deprecated Use the constants of shared/defaults.ts (`TOKEN_CACHE_DEFAULTS`,
 * `L1_DEFAULTS`, `COALESCING_DEFAULTS`, `CONFLICT_RETRY_DEFAULTS`), which this is built from.
 */
export const TokenCacheDefaults = {
  l1MaxBytes: L1_DEFAULTS.maxBytes,
  l1TtlMs: L1_DEFAULTS.ttlMs,
  l1Jitter: L1_DEFAULTS.jitter,
  userSlidingWindowSeconds: TOKEN_CACHE_DEFAULTS.userSlidingWindowSeconds,
  compressAboveBytes: TOKEN_CACHE_DEFAULTS.compressAboveBytes,
  conflictMaxAttempts: CONFLICT_RETRY_DEFAULTS.maxAttempts,
  conflictBaseDelayMs: CONFLICT_RETRY_DEFAULTS.baseDelayMs,
  conflictMaxDelayMs: CONFLICT_RETRY_DEFAULTS.maxDelayMs,
  /** Not an option. */
  openedEnvelopesMaxBytes: OPENED_ENVELOPES_MAX_BYTES,
  coalescingLease: COALESCING_DEFAULTS.lease,
  leaseTtlMs: COALESCING_DEFAULTS.leaseTtlMs,
  leaseMaxWaitMs: COALESCING_DEFAULTS.maxWaitMs,
  leasePollBaseMs: COALESCING_DEFAULTS.pollBaseMs,
  leasePollMaxMs: COALESCING_DEFAULTS.pollMaxMs,
  maxInFlight: COALESCING_DEFAULTS.maxInFlight,
  /** Not an option. */
  openedEnvelopesTtlMs: OPENED_ENVELOPES_TTL_MS,
} as const;

/** Reruns of one request after the store served it (the partition changed, yet MSAL missed). */
const MAX_GATED_RUNS = 3;

/** Most tenants (authorities) the hit path remembers things of; past it, each request works them out. */
const MAX_REMEMBERED_TENANTS = 1024;

/** `map`'s value for `key`, made by `make` the first time and kept while the map has room. */
function remembered<V>(map: Map<string, V>, key: string, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    if (map.size < MAX_REMEMBERED_TENANTS) map.set(key, value);
  }
  return value;
}

/** Item lifetime when a partition holds no dated token (should not happen; bounded anyway). */
const FALLBACK_LIFETIME_SECONDS = 3600;

/**
 * Creates the token cache. Call once per process (module scope, lazily) and reuse it for
 * every request: it holds only what is safe to share (store and key-ring clients, the
 * data-key cache, L1, authority metadata).
 * @example
 * const cache = createTokenCache({
 *   msal: { clientId, authority: `https://login.microsoftonline.com/${tenantId}`, clientSecret },
 *   store: new DynamoDbStore({ tableName: 'token-cache', clientConfig: {} }),
 *   keyRing: new KmsKeyRing({ keyId: 'alias/token-cache', clientId, clientConfig: {} }),
 * });
 * const result = await cache.acquireTokenOnBehalfOf({ assertion: incomingToken, scopes: ['api://downstream/.default'] });
 */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  return new PersistentTokenCache(options);
}

class PersistentTokenCache implements TokenCache {
  private readonly msal: TokenCacheOptions['msal'];
  private readonly ctx: SessionContext;
  private readonly metadata: AuthorityMetadataCache;
  private readonly network: NonNullable<TokenCacheOptions['msal']['networkClient']>;
  private readonly userWindowSeconds: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  /** Identical acquisitions in flight in this process; undefined when coalescing is off. */
  private readonly flights: SingleFlight<AuthenticationResult> | undefined;
  /** The store's leases and their settings; undefined when off or the store has none. */
  private readonly leases:
    { readonly store: TokenStore & LeaseStore; readonly settings: LeaseSettings } | undefined;
  private readonly onResult: TokenCacheOptions['onResult'];
  /** OBO and app hits matched without msal-node (see fast-hit.ts); undefined when off. */
  private readonly fastHits: FastHits | undefined;
  /** The tenant of `msal.authority` (the app partition's when a request names none). */
  private readonly defaultTenant: string;
  /** Authority URL per tenant id (bounded: tenants come from requests). */
  private readonly tenantAuthorities = new Map<string, string>();
  /** Store key of each tenant's app partition (bounded like tenantAuthorities). */
  private readonly appKeys = new Map<string, string>();
  /** Authorities whose metadata was resolved once (bounded like tenantAuthorities). */
  private readonly metadataSeen = new Set<string>();

  constructor(options: TokenCacheOptions) {
    validate(options);
    this.msal = options.msal;
    this.defaultTenant = tenantOf(options.msal.authority);
    this.logger =
      options.logger ?? new JsonLogger({ level: 'warn', base: { component: 'msal-cloud-cache' } });
    this.metrics = options.metrics ?? noMetrics;
    this.onResult = options.onResult;
    this.fastHits = options.fastHits === false ? undefined : new FastHits(options.msal.clientId);
    const now = options.now ?? Date.now;
    this.network = options.msal.networkClient ?? new HttpsNetworkClient();
    this.userWindowSeconds =
      options.userSlidingWindowSeconds ?? TOKEN_CACHE_DEFAULTS.userSlidingWindowSeconds;
    // keyring.error is counted by the sessions' events sink (with the partition kind), once.
    const metrics = keyErrorsCountedBySessions(this.metrics);
    const keys = new DataKeyCache(options.keyRing, { ...options.dataKeys, metrics, now });
    const l1 =
      options.l1 === false
        ? undefined
        : new L1Cache(
            {
              maxBytes: options.l1?.maxBytes ?? L1_DEFAULTS.maxBytes,
              ttlMs: options.l1?.ttlMs ?? L1_DEFAULTS.ttlMs,
              jitter: options.l1?.jitter ?? L1_DEFAULTS.jitter,
            },
            now,
          );
    const coalescing = options.coalescing === false ? undefined : (options.coalescing ?? {});
    this.flights = coalescing
      ? new SingleFlight(coalescing.maxInFlight ?? COALESCING_DEFAULTS.maxInFlight)
      : undefined;
    const useLease = coalescing && (coalescing.lease ?? COALESCING_DEFAULTS.lease);
    this.leases =
      useLease && hasLeases(options.store)
        ? {
            store: options.store,
            settings: {
              leaseTtlMs: coalescing.leaseTtlMs ?? COALESCING_DEFAULTS.leaseTtlMs,
              maxWaitMs: coalescing.maxWaitMs ?? COALESCING_DEFAULTS.maxWaitMs,
              pollBaseMs: coalescing.pollBaseMs ?? COALESCING_DEFAULTS.pollBaseMs,
              pollMaxMs: coalescing.pollMaxMs ?? COALESCING_DEFAULTS.pollMaxMs,
            },
          }
        : undefined;
    this.ctx = {
      store: options.store,
      writes: new PartitionWrites(),
      envelope: new Envelope({
        keys,
        // The envelope applies the default and validates the value (once, there).
        compressAboveBytes: options.compressAboveBytes,
      }),
      l1,
      ...(options.sharedReads === false ? {} : { reads: new SharedReads() }),
      // The memo holds decrypted JSON like L1 does, so it is aged like L1: `l1.ttlMs`, or
      // 5 minutes with L1 off (where it keeps the warm read path cheap).
      opened: new OpenedEnvelopes(OPENED_ENVELOPES_MAX_BYTES, {
        ttlMs: options.l1 === false ? OPENED_ENVELOPES_TTL_MS : (options.l1?.ttlMs ?? L1_DEFAULTS.ttlMs),
        now,
      }),
      logger: this.logger,
      metrics: this.metrics,
      now,
      conflictRetries: {
        maxAttempts: options.conflictRetries?.maxAttempts ?? CONFLICT_RETRY_DEFAULTS.maxAttempts,
        baseDelayMs: options.conflictRetries?.baseDelayMs ?? CONFLICT_RETRY_DEFAULTS.baseDelayMs,
        maxDelayMs: options.conflictRetries?.maxDelayMs ?? CONFLICT_RETRY_DEFAULTS.maxDelayMs,
      },
    };
    this.metadata = new AuthorityMetadataCache(
      this.network,
      options.msal.knownAuthorities ?? [],
      this.logger,
      this.metrics,
    );
  }

  acquireTokenOnBehalfOf(request: OnBehalfOfRequest): Promise<CachedAuthenticationResult> {
    requireNonEmpty(request.assertion, 'assertion');
    requireScopes(request.scopes);
    if (request.tenantId !== undefined) requireTenant(request.tenantId);
    const claims = request.claims === undefined ? undefined : parseClaims(request.claims, 'request');
    const partition: Partition =
      request.tenantId === undefined
        ? { kind: 'obo', assertion: request.assertion }
        : { kind: 'obo', assertion: request.assertion, tenantId: request.tenantId };
    // Hashed once: the store key and the fast hit's userAssertionHash are the same digest.
    const assertionHash = sha256Base64Url(request.assertion);
    // With claims MSAL skips the cached token, so a fast hit never applies.
    const fast: FastHitRequest | undefined =
      claims === undefined
        ? { kind: 'obo', assertion: request.assertion, assertionHash, scopes: request.scopes }
        : undefined;
    return this.coalesced(
      partition,
      this.authorityOf(partition),
      request.scopes,
      { fast, claims, assertionHash },
      async (cca) => {
        const result = await cca.acquireTokenOnBehalfOf({
          oboAssertion: request.assertion,
          scopes: [...request.scopes],
          ...(claims !== undefined ? { claims } : {}),
        });
        if (!result)
          throw new TokenAcquisitionError('MSAL returned no token on behalf of the caller', {
            providerCode: 'no_result',
            retryable: false,
          });
        return result;
      },
    );
  }

  acquireTokenForApp(request: AppTokenRequest): Promise<CachedAuthenticationResult> {
    requireScopes(request.scopes);
    const tenantId = request.tenantId ?? this.defaultTenant;
    const partition: Partition = { kind: 'app', tenantId };
    const authority = this.tenantAuthority(tenantId);
    const fast: FastHitRequest = { kind: 'app', scopes: request.scopes };
    return this.coalesced(partition, authority, request.scopes, { fast }, async (cca) => {
      const result = await cca.acquireTokenByClientCredential({ scopes: [...request.scopes] });
      if (!result)
        throw new TokenAcquisitionError('MSAL returned no token for the app', {
          providerCode: 'no_result',
          retryable: false,
        });
      return result;
    });
  }

  async acquireTokenByCode(request: AuthCodeRequest): Promise<CachedAuthenticationResult> {
    requireNonEmpty(request.code, 'code');
    requireScopes(request.scopes);
    const redemption = new RequestTrace();
    // The partition is the user's, known only from the response: redeem on a client with
    // an empty in-memory cache, then fold its tokens into the user's stored partition.
    const cca = new ConfidentialClientApplication(
      await this.msalConfig(
        this.msal.authority,
        undefined,
        tracedNetwork(this.network, redemption, this.metrics, 'user'),
      ),
    );
    const result = await this.call(() =>
      cca.acquireTokenByCode({
        code: request.code,
        scopes: [...request.scopes],
        redirectUri: request.redirectUri,
        ...(request.codeVerifier ? { codeVerifier: request.codeVerifier } : {}),
      }),
    );
    const homeAccountId = result.account?.homeAccountId;
    if (!homeAccountId) {
      throw new TokenAcquisitionError('the authority returned no account (client_info/id_token)', {
        providerCode: 'no_account',
        retryable: false,
      });
    }
    const session = this.session({ kind: 'user', homeAccountId });
    session.trace.tokenRequests += redemption.tokenRequests;
    session.trace.tokenCallMs += redemption.tokenCallMs;
    await session.absorb(parseDocument(cca.getTokenCache().serialize()));
    return this.withMetadata(result, session, redemption.started);
  }

  acquireTokenSilent(request: SilentUserRequest): Promise<CachedAuthenticationResult> {
    requireNonEmpty(request.homeAccountId, 'homeAccountId');
    requireScopes(request.scopes);
    const partition: Partition = { kind: 'user', homeAccountId: request.homeAccountId };
    const forceRefresh = request.forceRefresh ?? false;
    const claims = request.claims === undefined ? undefined : parseClaims(request.claims, 'request');
    const extra = { forceRefresh, claims };
    return this.coalesced(partition, this.msal.authority, request.scopes, extra, async (cca) => {
      const account = await cca.getTokenCache().getAccountByHomeId(request.homeAccountId);
      if (!account) {
        throw new InteractionRequiredError('no cached account for this user: sign the user in again');
      }
      const result = await cca.acquireTokenSilent({
        account,
        scopes: [...request.scopes],
        forceRefresh: request.forceRefresh ?? false,
        ...(claims !== undefined ? { claims } : {}),
      });
      if (!result)
        throw new InteractionRequiredError('no token could be acquired silently: sign the user in again');
      return result;
    });
  }

  async signOut(homeAccountId: string): Promise<void> {
    requireNonEmpty(homeAccountId, 'homeAccountId');
    const key = this.storeKeyOf({ kind: 'user', homeAccountId });
    this.ctx.l1?.delete(key);
    this.ctx.opened.delete(key);
    this.ctx.writes.forget(key);
    await this.ctx.store.delete(key);
    this.metrics.increment(Metric.StoreDelete, 1, { kind: 'user' });
  }

  async evictAccessToken(partition: Partition, accessToken: string): Promise<EvictionOutcome> {
    requireNonEmpty(accessToken, 'accessToken');
    const session = this.session(partition);
    // Read the store, not L1: this instance's L1 entry may be what served the rejected
    // token. The read also replaces that entry with what the store holds now.
    const fresh = await session.refresh();
    let json = '';
    await session.prime({ deserialize: (j: string) => void (json = j) });
    if (!json) return isUnavailable(fresh) ? 'failed' : 'not-found';
    const doc = parseDocument(json);
    const tokens = doc['AccessToken'] ?? {};
    const rejected = Object.keys(tokens).filter((k) => tokens[k]?.['secret'] === accessToken);
    if (rejected.length === 0) return 'not-found';
    const kept = { ...tokens };
    for (const k of rejected) delete kept[k];
    // The persist path: a conditional write on the version just read, merged and retried
    // on a conflict (a removal made here stays removed), the item deleted if nothing is left.
    await session.persist({ ...doc, AccessToken: kept });
    const outcome: EvictionOutcome = session.persisted ? 'removed' : 'failed';
    this.logger.info('access token evicted from the stored partition', {
      partition: partition.kind,
      key: session.key,
      outcome,
    });
    return outcome;
  }

  async withPartition<T>(
    partition: Partition,
    fn: (client: ConfidentialClientApplication) => Promise<T>,
  ): Promise<T> {
    const session = this.session(partition);
    const [config] = await Promise.all([
      this.msalConfig(this.authorityOf(partition), session),
      session.load(),
    ]);
    const cca = new ConfidentialClientApplication(config);
    await session.prime(cca.getTokenCache());
    return this.call(() => fn(cca));
  }

  private authorityOf(partition: Partition): string {
    const tenantId = partition.kind === 'user' ? undefined : partition.tenantId;
    return tenantId === undefined ? this.msal.authority : this.tenantAuthority(tenantId);
  }

  /** `authorityFor(msal.authority, tenantId)`, remembered per tenant (a URL parse per request otherwise). */
  private tenantAuthority(tenantId: string): string {
    return remembered(this.tenantAuthorities, tenantId, () => authorityFor(this.msal.authority, tenantId));
  }

  /**
   * One acquisition, coalesced: identical ones in flight in this process share it
   * (single flight), and on a miss it passes the store's lease so that one instance calls
   * the authority and the others are served from the store. Each caller gets its own
   * result object and its own metadata (a joined caller made no calls of its own).
   */
  private coalesced(
    partition: Partition,
    authority: string,
    scopes: readonly string[],
    extra: {
      readonly forceRefresh?: boolean;
      readonly fast?: FastHitRequest | undefined;
      readonly claims?: string | undefined;
      /** sha256Base64Url of an OBO partition's assertion, already computed. */
      readonly assertionHash?: string;
    },
    fn: (client: ConfidentialClientApplication) => Promise<AuthenticationResult>,
  ): Promise<CachedAuthenticationResult> {
    const started = performance.now();
    const key =
      partition.kind === 'obo' && extra.assertionHash !== undefined
        ? partitionStoreKey(this.msal.clientId, partition, extra.assertionHash)
        : this.storeKeyOf(partition);
    // Everything that makes MSAL send a different token request: the partition (caller),
    // the request kind, the authority (tenant included), the scopes, as a set, and the
    // claims (a claims request never shares a call without them).
    const fingerprint = JSON.stringify([
      partition.kind,
      key,
      authority,
      [...new Set(scopes)].sort(),
      extra.forceRefresh ?? false,
      ...(extra.claims !== undefined ? [extra.claims] : []),
    ]);
    // With claims MSAL skips the cached token, so waiting on another instance's is useless.
    const lease = extra.claims === undefined;
    const run = (): Promise<CachedAuthenticationResult> =>
      this.acquireGated(partition, key, authority, fingerprint, fn, extra.fast, lease);
    if (!this.flights) return run();
    // In process the fingerprint itself is the key (it holds no secret: the store key is
    // a hash); its hash, the lease's key in the store, is made only on a miss.
    const { promise, joined } = this.flights.run(fingerprint, run);
    if (!joined) return promise as Promise<CachedAuthenticationResult>;
    this.metrics.increment(Metric.FlightJoined, 1, { kind: partition.kind });
    return (promise as Promise<CachedAuthenticationResult>).then((r) => this.joinedResult(r, started));
  }

  /** A joined caller's copy: the same tokens, metadata saying it joined and called nothing itself. */
  private joinedResult(leader: CachedAuthenticationResult, started: number): CachedAuthenticationResult {
    const cache: CacheMetadata = {
      ...leader.cache,
      joined: true,
      conflicts: 0,
      storeReads: 0,
      storeWrites: 0,
      keyServiceCalls: 0,
      tokenRequests: 0,
      timings: { totalMs: performance.now() - started },
    };
    const kind = cache.partition;
    this.metrics.increment(leader.fromCache ? Metric.CacheHit : Metric.CacheMiss, 1, { kind });
    this.report(cache);
    return { ...leader, cache };
  }

  private async acquireGated(
    partition: Partition,
    key: string,
    authority: string,
    fingerprint: string,
    fn: (client: ConfidentialClientApplication) => Promise<AuthenticationResult>,
    fast: FastHitRequest | undefined,
    lease: boolean,
  ): Promise<CachedAuthenticationResult> {
    const l1Hit = fast && this.l1FastHit(partition.kind, key, authority, fast);
    if (l1Hit) return l1Hit;
    const session = this.session(partition, key);
    // The authority's metadata is fetched beside the first load; once it has been
    // resolved, a hit (which needs none) does not ask again, and a miss asks in msalConfig.
    const metadata = this.metadataSeen.has(authority) ? undefined : this.resolveMetadata(authority);
    const snapshot = await session.load();
    // The token msal-node would find in this snapshot, matched without it (fast-hit.ts).
    const hit = fast && this.fastHits?.serve(fast, authority, session.key, snapshot);
    if (hit) {
      // resolve() does not reject (a failed fetch resolves undefined); never leave one unheard.
      void metadata?.catch(() => undefined);
      return this.withMetadata(hit, session, session.trace.started, true);
    }
    await metadata;
    const requestKey = `${key}.${sha256Base64Url(fingerprint)}`;
    const leases = lease ? this.leases : undefined;
    const deadline = this.ctx.now() + (leases?.settings.maxWaitMs ?? 0);
    // Traced inside the gate: only token requests that really went out are counted.
    const traced = tracedNetwork(this.network, session.trace, this.metrics, partition.kind);
    for (let run = 1; ; run++) {
      const gate =
        leases && run <= MAX_GATED_RUNS
          ? new LeaseGate(leases.store, requestKey, session, leases.settings, deadline, {
              metrics: this.metrics,
              logger: this.logger,
              now: this.ctx.now,
              kind: partition.kind,
            })
          : undefined;
      const config = await this.msalConfig(
        authority,
        session,
        gate ? new GatedNetwork(traced, gate) : traced,
      );
      const cca = new ConfidentialClientApplication(config);
      await session.prime(cca.getTokenCache());
      let result: AuthenticationResult;
      try {
        result = await this.call(() => fn(cca));
      } catch (e) {
        await gate?.settle();
        // The lease holder stored the partition meanwhile: run MSAL again on it.
        if (gate?.served) continue;
        throw e;
      }
      // Released, not left to expire: a later miss of the same request (an unreadable
      // blob replaced, a token within MSAL's refresh margin) must not wait for it.
      await gate?.settle();
      if (fast) this.fastHits?.learn(fast, authority, session.key, await session.load(), result);
      return this.withMetadata(result, session, session.trace.started);
    }
  }

  /**
   * A fast hit straight from L1, with no session or trace: an L1 hit reads no store, opens
   * nothing and writes nothing, so its metadata and metrics are those a session would give
   * it (`withMetadata` below). Undefined: take the session path (which reads L1 again).
   */
  private l1FastHit(
    kind: Partition['kind'],
    key: string,
    authority: string,
    fast: FastHitRequest,
  ): CachedAuthenticationResult | undefined {
    // Unseen metadata: the session path resolves it beside the load.
    if (!this.fastHits || !this.ctx.l1 || !this.metadataSeen.has(authority)) return undefined;
    const started = performance.now();
    const entry = this.ctx.l1.get(key);
    if (!entry) return undefined;
    const hit = this.fastHits.serve(fast, authority, key, { json: entry.json, version: entry.version });
    if (!hit?.fromCache) return undefined;
    // What the session's events sink counts for an L1 load (session/events.ts).
    this.metrics.increment(Metric.L1Hit, 1, { kind });
    return this.withL1Metadata(hit, kind, started);
  }

  storeKeyOf(partition: Partition): string {
    // App keys hash no secret and repeat on every app request: remembered per tenant.
    if (partition.kind !== 'app') return partitionStoreKey(this.msal.clientId, partition);
    return remembered(this.appKeys, partition.tenantId, () =>
      partitionStoreKey(this.msal.clientId, partition),
    );
  }

  private async resolveMetadata(authority: string): Promise<void> {
    await this.metadata.resolve(authority);
    if (this.metadataSeen.size < MAX_REMEMBERED_TENANTS) this.metadataSeen.add(authority);
  }

  private session(partition: Partition, key: string = this.storeKeyOf(partition)): PartitionSession {
    return new PartitionSession(this.ctx, key, partition.kind, this.expiryPolicy(partition));
  }

  /** Item expiry per partition kind, as DESIGN.md sets it. */
  private expiryPolicy(partition: Partition): ExpiryPolicy {
    switch (partition.kind) {
      case 'app':
        return (doc, now) => latestAccessTokenExpiry(doc) ?? now + FALLBACK_LIFETIME_SECONDS;
      case 'obo':
        // Nobody can present the assertion after its own exp, so its tokens are useless then.
        // Read only when a write needs it: most requests write nothing.
        return (doc: CacheDocument, now: number) =>
          unverifiedExpiry(partition.assertion) ??
          latestAccessTokenExpiry(doc) ??
          now + FALLBACK_LIFETIME_SECONDS;
      case 'user':
        return (doc, now) => Math.max(now + this.userWindowSeconds, latestAccessTokenExpiry(doc) ?? 0);
    }
  }

  private async msalConfig(
    authority: string,
    plugin?: PartitionSession,
    network: INetworkModule = plugin
      ? tracedNetwork(this.network, plugin.trace, this.metrics, plugin.kind)
      : this.network,
  ): Promise<Configuration> {
    const {
      clientId,
      knownAuthorities,
      clientCapabilities,
      clientSecret,
      clientCertificate,
      clientAssertion,
    } = this.msal;
    const authorityMetadata = await this.metadata.resolve(authority);
    return {
      auth: {
        clientId,
        authority,
        ...(knownAuthorities?.length ? { knownAuthorities: [...knownAuthorities] } : {}),
        ...(clientCapabilities?.length ? { clientCapabilities: [...clientCapabilities] } : {}),
        ...(authorityMetadata ? { authorityMetadata } : {}),
        ...(clientSecret !== undefined ? { clientSecret } : {}),
        ...(clientCertificate !== undefined ? { clientCertificate } : {}),
        ...(clientAssertion !== undefined
          ? {
              clientAssertion:
                typeof clientAssertion === 'string' ? clientAssertion : () => clientAssertion(),
            }
          : {}),
      },
      ...(plugin ? { cache: { cachePlugin: plugin } } : {}),
      system: {
        networkClient: network,
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Error,
          loggerCallback: (_level, message, containsPii) => {
            if (!containsPii) this.logger.debug('msal', { detail: message });
          },
        },
      },
    };
  }

  /** Runs an MSAL call, translating its errors into ours (cause kept). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw translateMsalError(e);
    }
  }

  /** Counts the outcome and returns a copy of `result` with its {@link CacheMetadata}. */
  private withMetadata(
    result: AuthenticationResult,
    session: PartitionSession,
    started: number,
    fastHit = false,
  ): CachedAuthenticationResult {
    const kind = session.kind;
    const t = session.trace;
    const loadedFrom = t.loadedFrom ?? 'absent';
    const tokenSource = result.fromCache ? (loadedFrom === 'l1' ? 'l1' : 'store') : 'authority';
    const reason =
      tokenSource === 'authority' ? unusedReason(loadedFrom, t, epochSeconds(this.ctx.now)) : undefined;
    const timings: CacheMetadata['timings'] = {
      totalMs: performance.now() - started,
      ...(t.storeReads > 0 ? { storeReadMs: t.storeReadMs } : {}),
      ...(t.opened ? { envelopeOpenMs: t.envelopeOpenMs } : {}),
      ...(t.tokenRequests > 0 ? { tokenCallMs: t.tokenCallMs } : {}),
      ...(t.writeMs > 0 ? { writeMs: t.writeMs } : {}),
    };
    const cache: CacheMetadata = {
      partition: kind,
      tokenSource,
      loadedFrom,
      ...(fastHit ? { fastHit: true } : {}),
      ...(reason ? { storeUnusedReason: reason } : {}),
      ...(reason === 'rejected' && t.rejectReason ? { rejectReason: t.rejectReason } : {}),
      write: t.writeFailReason ? 'failed' : t.wrote ? 'written' : t.writeSkipReason ? 'skipped' : 'none',
      ...(t.writeSkipReason && !t.wrote ? { writeSkipReason: t.writeSkipReason } : {}),
      ...(t.writeFailReason ? { writeFailReason: t.writeFailReason } : {}),
      conflicts: t.conflicts,
      storeReads: t.storeReads,
      storeWrites: t.storeWrites,
      keyServiceCalls: t.keyServiceCalls,
      tokenRequests: t.tokenRequests,
      timings,
    };
    this.metrics.increment(result.fromCache ? Metric.CacheHit : Metric.CacheMiss, 1, { kind });
    this.metrics.increment(Metric.TokenSource, 1, {
      kind,
      source: tokenSource,
      ...(reason ? { reason } : {}),
    });
    this.metrics.observe?.(Metric.AcquireDuration, timings.totalMs, { kind, source: tokenSource });
    this.report(cache);
    return { ...result, cache };
  }

  /** {@link withMetadata} of a fast L1 hit (always `fromCache`): no reads, opens, token calls or writes. */
  private withL1Metadata(
    result: AuthenticationResult,
    kind: Partition['kind'],
    started: number,
  ): CachedAuthenticationResult {
    const timings: CacheMetadata['timings'] = { totalMs: performance.now() - started };
    const cache: CacheMetadata = {
      partition: kind,
      tokenSource: 'l1',
      loadedFrom: 'l1',
      fastHit: true,
      write: 'none',
      conflicts: 0,
      storeReads: 0,
      storeWrites: 0,
      keyServiceCalls: 0,
      tokenRequests: 0,
      timings,
    };
    this.metrics.increment(Metric.CacheHit, 1, { kind });
    this.metrics.increment(Metric.TokenSource, 1, { kind, source: 'l1' });
    this.metrics.observe?.(Metric.AcquireDuration, timings.totalMs, { kind, source: 'l1' });
    this.report(cache);
    return { ...result, cache };
  }

  private report(cache: CacheMetadata): void {
    if (!this.onResult) return;
    try {
      this.onResult(cache);
    } catch (e) {
      this.logger.warn('onResult callback failed', { error: e instanceof Error ? e.name : 'unknown' });
    }
  }
}

/** MSAL's refresh offset: it renews access tokens this close to expiry. */
const MSAL_REFRESH_OFFSET_SECONDS = 300;

function unusedReason(loadedFrom: LoadSource, t: RequestTrace, nowSeconds: number): StoreUnusedReason {
  switch (loadedFrom) {
    case 'absent':
      return 'absent';
    case 'unreadable':
      return 'rejected';
    case 'unavailable':
      return t.loadFailure ?? 'store-unavailable';
    default:
      return t.loadedLatestExpiry === undefined ||
        t.loadedLatestExpiry <= nowSeconds + MSAL_REFRESH_OFFSET_SECONDS
        ? 'expired'
        : 'no-matching-token';
  }
}

/** The network client for one request: counts and times its token-endpoint POSTs. */
function tracedNetwork(
  inner: INetworkModule,
  trace: RequestTrace,
  metrics: Metrics,
  kind: PartitionKind,
): INetworkModule {
  return {
    sendGetRequestAsync: (url, options, timeout) => inner.sendGetRequestAsync(url, options, timeout),
    sendPostRequestAsync: async (url, options) => {
      trace.tokenRequests += 1;
      metrics.increment(Metric.TokenRequest, 1, { kind });
      const started = performance.now();
      try {
        return await inner.sendPostRequestAsync(url, options);
      } finally {
        trace.tokenCallMs += performance.now() - started;
      }
    },
  };
}

/** OAuth error codes of a failure that may pass (RFC 6749 section 4.1.2.1). */
const TRANSIENT_SERVER_CODES: ReadonlySet<string> = new Set(['temporarily_unavailable', 'server_error']);

/**
 * Entra's own words when a federated credential does not match: they name the issuer,
 * subject and audience presented (public values, never the assertion), which is what to
 * register on the app.
 */
function federatedHint(description: string | undefined): string {
  const line = /AADSTS(?:70021|700211|700212|700213|50166):[^\r\n]*/.exec(description ?? '')?.[0];
  return line
    ? `: ${line} Register a federated credential on the app with the issuer, subject and audience of the assertion (infra/README.md).`
    : '';
}

/** MSAL's errors as ours: interaction required, or a token acquisition failure (retryable or not). */
export function translateMsalError(e: unknown): unknown {
  if (e instanceof TokenCacheError) return e;
  if (e instanceof InteractionRequiredAuthError) {
    // Entra's claims challenge, relayed only if it is a bounded JSON object.
    let claims: string | undefined;
    try {
      claims = e.claims ? parseClaims(e.claims, 'authority') : undefined;
    } catch (invalid) {
      if (!(invalid instanceof InvalidClaimsError)) throw invalid;
    }
    return new InteractionRequiredError(
      claims
        ? `the user must satisfy a claims challenge (${e.errorCode}): sign in again with its claims`
        : `the user must sign in again (${e.errorCode})`,
      { cause: e, ...(claims ? { claims } : {}) },
    );
  }
  if (e instanceof ServerError) {
    // msal-node does not always keep the HTTP status; Entra's error codes say it too.
    const status = e.status ?? 0;
    const retryable = status >= 500 || status === 429 || TRANSIENT_SERVER_CODES.has(e.errorCode);
    return new TokenAcquisitionError(
      `the authority refused the token request (${e.errorCode}${status ? `, HTTP ${status}` : ''})${federatedHint(e.errorMessage)}`,
      { providerCode: e.errorCode, retryable, cause: e },
    );
  }
  if (e instanceof AuthError) {
    const retryable = e.errorCode === 'network_error';
    return new TokenAcquisitionError(`token request failed (${e.errorCode})`, {
      providerCode: e.errorCode,
      retryable,
      cause: e,
    });
  }
  return e;
}

function validate(options: TokenCacheOptions): void {
  const msal = options.msal as Partial<TokenCacheOptions['msal']> | undefined;
  if (!msal)
    throw new ConfigurationError('msal', 'expected the MSAL settings { clientId, authority, credential }');
  requireNonEmpty(msal.clientId, 'msal.clientId');
  let authority: URL;
  try {
    authority = new URL(msal.authority ?? '');
  } catch (cause) {
    throw new ConfigurationError(
      'msal.authority',
      `expected an https URL like https://login.microsoftonline.com/<tenant-id>, got "${msal.authority ?? ''}"`,
      { cause },
    );
  }
  if (authority.protocol !== 'https:') {
    throw new ConfigurationError('msal.authority', `expected https, got ${authority.protocol}`);
  }
  const credentials = [msal.clientSecret, msal.clientCertificate, msal.clientAssertion].filter(
    (c) => c !== undefined,
  );
  if (credentials.length !== 1) {
    throw new ConfigurationError(
      'msal.clientSecret | msal.clientCertificate | msal.clientAssertion',
      `expected exactly one client credential, got ${credentials.length}`,
    );
  }
  if (msal.clientSecret !== undefined) requireNonEmpty(msal.clientSecret, 'msal.clientSecret');
  if (
    msal.clientCapabilities !== undefined &&
    (!Array.isArray(msal.clientCapabilities) ||
      !msal.clientCapabilities.every((c) => typeof c === 'string' && CLIENT_CAPABILITY.test(c)))
  ) {
    throw new ConfigurationError(
      'msal.clientCapabilities',
      'expected an array of capability names such as "cp1" (letters, digits, _ and -, up to 32 each)',
    );
  }
  if (!options.store || typeof options.store.read !== 'function') {
    throw new ConfigurationError('store', 'expected a TokenStore (DynamoDbStore, CosmosStore, MemoryStore)');
  }
  if (!options.keyRing || typeof options.keyRing.generateDataKey !== 'function') {
    throw new ConfigurationError('keyRing', 'expected a KeyRing (KmsKeyRing, KeyVaultKeyRing, LocalKeyRing)');
  }
  if (options.l1) {
    requirePositive(options.l1.maxBytes, 'l1.maxBytes');
    requirePositive(options.l1.ttlMs, 'l1.ttlMs');
  }
  requirePositive(options.userSlidingWindowSeconds, 'userSlidingWindowSeconds');
  requirePositive(options.conflictRetries?.maxAttempts, 'conflictRetries.maxAttempts');
  if (options.coalescing) {
    const c = options.coalescing;
    requirePositive(c.maxInFlight, 'coalescing.maxInFlight');
    requirePositive(c.maxWaitMs, 'coalescing.maxWaitMs');
    requirePositive(c.pollBaseMs, 'coalescing.pollBaseMs');
    requirePositive(c.pollMaxMs, 'coalescing.pollMaxMs');
    if (
      c.leaseTtlMs !== undefined &&
      !(Number.isSafeInteger(c.leaseTtlMs) && c.leaseTtlMs >= 1 && c.leaseTtlMs <= 60_000)
    ) {
      throw new ConfigurationError(
        'coalescing.leaseTtlMs',
        `expected whole milliseconds in 1..60000, got ${String(c.leaseTtlMs)}`,
      );
    }
  }
}

/** A tenant id or domain, fit to be the authority's path segment. */
function requireTenant(value: unknown): void {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,253}$/.test(value)) {
    throw new ConfigurationError(
      'tenantId',
      `expected a tenant id (GUID) or domain, got ${typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value}`,
    );
  }
}

function requireNonEmpty(value: unknown, name: string): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigurationError(
      name,
      `expected a non-empty string, got ${value === '' ? '""' : typeof value}`,
    );
  }
}

function requirePositive(value: number | undefined, name: string): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new ConfigurationError(name, `expected a positive number, got ${String(value)}`);
  }
}

function requireScopes(scopes: readonly string[] | undefined): void {
  if (
    !Array.isArray(scopes) ||
    scopes.length === 0 ||
    scopes.some((s) => typeof s !== 'string' || s === '')
  ) {
    throw new ConfigurationError('scopes', 'expected a non-empty array of scope strings');
  }
}
