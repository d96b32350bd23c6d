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
import { DataKeyCache } from '../crypto/data-key-cache';
import { Envelope } from '../crypto/envelope';
import {
  ConfigurationError,
  InteractionRequiredError,
  TokenAcquisitionError,
  TokenCacheError,
} from '../errors';
import { JsonLogger, Metric, noMetrics, type Logger, type Metrics } from '../observability';
import { AuthorityMetadataCache } from './authority-metadata';
import { latestAccessTokenExpiry, parseDocument, type CacheDocument } from './cache-document';
import { HttpsNetworkClient } from './http';
import { L1Cache, OpenedEnvelopes } from './l1';
import {
  RequestTrace,
  type CacheMetadata,
  type CachedAuthenticationResult,
  type StoreUnusedReason,
} from './metadata';
import { PartitionSession, type ExpiryPolicy, type SessionContext } from './partition-session';
import { epochSeconds } from '../store/store';
import { authorityFor, logicalKey, storeKey, tenantOf, unverifiedExpiry } from './partitions';
import type {
  AppTokenRequest,
  AuthCodeRequest,
  OnBehalfOfRequest,
  Partition,
  SilentUserRequest,
  TokenCache,
  TokenCacheOptions,
} from './types';

/** Defaults of {@link TokenCacheOptions}; see the README for why. */
export const TokenCacheDefaults = {
  l1MaxBytes: 16 * 1024 * 1024,
  l1TtlMs: 5 * 60_000,
  userSlidingWindowSeconds: 14 * 24 * 3600,
  compressAboveBytes: 1024,
  conflictMaxAttempts: 20,
  conflictBaseDelayMs: 10,
  conflictMaxDelayMs: 500,
  /** Memo of opened envelopes (see OpenedEnvelopes): bounded, not an option. */
  openedEnvelopesMaxBytes: 8 * 1024 * 1024,
} as const;

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
  private readonly onResult: TokenCacheOptions['onResult'];

  constructor(options: TokenCacheOptions) {
    validate(options);
    this.msal = options.msal;
    this.logger =
      options.logger ?? new JsonLogger({ level: 'warn', base: { component: 'msal-cloud-cache' } });
    this.metrics = options.metrics ?? noMetrics;
    this.onResult = options.onResult;
    const now = options.now ?? Date.now;
    this.network = options.msal.networkClient ?? new HttpsNetworkClient();
    this.userWindowSeconds = options.userSlidingWindowSeconds ?? TokenCacheDefaults.userSlidingWindowSeconds;
    const keys = new DataKeyCache(options.keyRing, { ...options.dataKeys, metrics: this.metrics, now });
    const l1 =
      options.l1 === false
        ? undefined
        : new L1Cache(
            {
              maxBytes: options.l1?.maxBytes ?? TokenCacheDefaults.l1MaxBytes,
              ttlMs: options.l1?.ttlMs ?? TokenCacheDefaults.l1TtlMs,
            },
            now,
          );
    this.ctx = {
      store: options.store,
      envelope: new Envelope({
        keys,
        compressAboveBytes: options.compressAboveBytes ?? TokenCacheDefaults.compressAboveBytes,
      }),
      l1,
      opened: new OpenedEnvelopes(TokenCacheDefaults.openedEnvelopesMaxBytes),
      logger: this.logger,
      metrics: this.metrics,
      now,
      conflictRetries: {
        maxAttempts: options.conflictRetries?.maxAttempts ?? TokenCacheDefaults.conflictMaxAttempts,
        baseDelayMs: options.conflictRetries?.baseDelayMs ?? TokenCacheDefaults.conflictBaseDelayMs,
        maxDelayMs: options.conflictRetries?.maxDelayMs ?? TokenCacheDefaults.conflictMaxDelayMs,
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
    return this.acquire({ kind: 'obo', assertion: request.assertion }, async (cca) => {
      const result = await cca.acquireTokenOnBehalfOf({
        oboAssertion: request.assertion,
        scopes: [...request.scopes],
      });
      if (!result)
        throw new TokenAcquisitionError(false, 'no_result', 'MSAL returned no token on behalf of the caller');
      return result;
    });
  }

  acquireTokenForApp(request: AppTokenRequest): Promise<CachedAuthenticationResult> {
    requireScopes(request.scopes);
    const tenantId = request.tenantId ?? tenantOf(this.msal.authority);
    return this.acquire({ kind: 'app', tenantId }, async (cca) => {
      const result = await cca.acquireTokenByClientCredential({ scopes: [...request.scopes] });
      if (!result) throw new TokenAcquisitionError(false, 'no_result', 'MSAL returned no token for the app');
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
      await this.msalConfig(this.msal.authority, undefined, redemption),
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
      throw new TokenAcquisitionError(
        false,
        'no_account',
        'the authority returned no account (client_info/id_token)',
      );
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
    return this.acquire({ kind: 'user', homeAccountId: request.homeAccountId }, async (cca) => {
      const account = await cca.getTokenCache().getAccountByHomeId(request.homeAccountId);
      if (!account) {
        throw new InteractionRequiredError('no cached account for this user: sign the user in again');
      }
      const result = await cca.acquireTokenSilent({
        account,
        scopes: [...request.scopes],
        forceRefresh: request.forceRefresh ?? false,
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
    await this.ctx.store.delete(key);
    this.metrics.increment(Metric.StoreDelete, 1, { kind: 'user' });
  }

  async withPartition<T>(
    partition: Partition,
    fn: (client: ConfidentialClientApplication) => Promise<T>,
  ): Promise<T> {
    return this.run(this.session(partition), partition, fn);
  }

  /** An acquisition through a partition, its result carrying the cache metadata. */
  private async acquire(
    partition: Partition,
    fn: (client: ConfidentialClientApplication) => Promise<AuthenticationResult>,
  ): Promise<CachedAuthenticationResult> {
    const session = this.session(partition);
    const result = await this.run(session, partition, fn);
    return this.withMetadata(result, session, session.trace.started);
  }

  private async run<T>(
    session: PartitionSession,
    partition: Partition,
    fn: (client: ConfidentialClientApplication) => Promise<T>,
  ): Promise<T> {
    const authority =
      partition.kind === 'app' ? authorityFor(this.msal.authority, partition.tenantId) : this.msal.authority;
    const [config] = await Promise.all([this.msalConfig(authority, session), session.load()]);
    const cca = new ConfidentialClientApplication(config);
    await session.prime(cca.getTokenCache());
    return this.call(() => fn(cca));
  }

  storeKeyOf(partition: Partition): string {
    return storeKey(logicalKey(this.msal.clientId, partition));
  }

  private session(partition: Partition): PartitionSession {
    return new PartitionSession(
      this.ctx,
      this.storeKeyOf(partition),
      partition.kind,
      this.expiryPolicy(partition),
    );
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
    trace: RequestTrace | undefined = plugin?.trace,
  ): Promise<Configuration> {
    const { clientId, knownAuthorities, clientSecret, clientCertificate, clientAssertion } = this.msal;
    const authorityMetadata = await this.metadata.resolve(authority);
    return {
      auth: {
        clientId,
        authority,
        ...(knownAuthorities?.length ? { knownAuthorities: [...knownAuthorities] } : {}),
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
        networkClient: trace
          ? tracedNetwork(this.network, trace, this.metrics, plugin?.kind ?? 'user')
          : this.network,
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
  ): CachedAuthenticationResult {
    const kind = session.kind as CacheMetadata['partition'];
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
    if (this.onResult) {
      try {
        this.onResult(cache);
      } catch (e) {
        this.logger.warn('onResult callback failed', { error: e instanceof Error ? e.name : 'unknown' });
      }
    }
    return { ...result, cache };
  }
}

/** MSAL's refresh offset: it renews access tokens this close to expiry. */
const MSAL_REFRESH_OFFSET_SECONDS = 300;

function unusedReason(loadedFrom: string, t: RequestTrace, nowSeconds: number): StoreUnusedReason {
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
  kind: string,
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

/** MSAL's errors as ours: interaction required, or a token acquisition failure (retryable or not). */
export function translateMsalError(e: unknown): unknown {
  if (e instanceof TokenCacheError) return e;
  if (e instanceof InteractionRequiredAuthError) {
    return new InteractionRequiredError(`the user must sign in again (${e.errorCode})`, { cause: e });
  }
  if (e instanceof ServerError) {
    // msal-node does not always keep the HTTP status; Entra's error codes say it too.
    const status = e.status ?? 0;
    const retryable = status >= 500 || status === 429 || TRANSIENT_SERVER_CODES.has(e.errorCode);
    return new TokenAcquisitionError(
      retryable,
      e.errorCode,
      `the authority refused the token request (${e.errorCode}${status ? `, HTTP ${status}` : ''})`,
      { cause: e },
    );
  }
  if (e instanceof AuthError) {
    const retryable = e.errorCode === 'network_error';
    return new TokenAcquisitionError(retryable, e.errorCode, `token request failed (${e.errorCode})`, {
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
  if (options.compressAboveBytes !== undefined && options.compressAboveBytes !== false) {
    if (!Number.isInteger(options.compressAboveBytes) || options.compressAboveBytes < 0) {
      throw new ConfigurationError('compressAboveBytes', 'expected false or a non-negative integer');
    }
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
