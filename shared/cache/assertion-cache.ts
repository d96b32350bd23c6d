/**
 * A client assertion from the platform's own identity (AWS STS `GetWebIdentityToken`, an
 * Azure managed identity), kept for the process until shortly before it expires: MSAL
 * calls its `clientAssertion` callback on every token request, and the identity service
 * must be asked once per assertion lifetime, not once per request. SDK-free: each cloud
 * supplies an {@link AssertionSource}.
 *
 * One fetch at a time (concurrent callers share it), bounded by a timeout; a failure is
 * never cached, is counted (`assertion.error{reason,source}`) and logged without the
 * assertion, and reaches the caller as a {@link ClientAssertionError}.
 */
import { ClientAssertionError, ClientAssertionFailure, isTokenCacheError } from '../errors';
import { Metric, noMetrics, silentLogger, type Logger, type Metrics } from '../observability';

/** What a source fetched: the JWT and, when the service says so, its expiry. */
export interface FetchedAssertion {
  readonly assertion: string;
  /** Epoch milliseconds; the JWT's own `exp` is used when earlier or when this is absent. */
  readonly expiresAt?: number;
}

/** A platform identity that can issue a client assertion (implemented per cloud). */
export interface AssertionSource {
  /** Names the source in errors, logs and metric tags, e.g. `aws-web-identity`. */
  readonly name: string;
  /**
   * Fetches a fresh assertion; stops when `signal` aborts. Throw a {@link ClientAssertionError}
   * to say whether a retry can help; anything else counts as `unavailable` (retryable).
   */
  fetch(signal: AbortSignal): Promise<FetchedAssertion>;
}

/** Options of {@link AssertionCache}. */
export interface AssertionCacheOptions {
  readonly source: AssertionSource;
  /**
   * Renew this long before the assertion expires (at most half its lifetime), so that
   * Entra never receives one that expires in flight. @default 60_000 (one minute)
   */
  readonly refreshMarginMs?: number;
  /** Longest one fetch may take before the callers get a retryable error. @default 5_000 */
  readonly timeoutMs?: number;
  /** @default silent */
  readonly logger?: Logger;
  /** @default no metrics */
  readonly metrics?: Metrics;
  /** The clock, in epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

/** Defaults of {@link AssertionCacheOptions}. */
export const AssertionCacheDefaults = { refreshMarginMs: 60_000, timeoutMs: 5_000 } as const;

interface Held {
  readonly assertion: string;
  readonly expiresAt: number;
  readonly renewAt: number;
}

/**
 * The process's client assertion, fetched once per lifetime.
 * @example
 * const assertions = new AssertionCache({ source: webIdentityAssertionSource({ region }) });
 * createTokenCache({ msal: { clientId, authority, clientAssertion: assertions.callback }, ... });
 */
export class AssertionCache {
  private held: Held | undefined;
  private inFlight: Promise<string> | undefined;
  private readonly source: AssertionSource;
  private readonly marginMs: number;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly metrics: Metrics;
  private readonly now: () => number;
  /** `get` bound to this cache, for MSAL's `clientAssertion` option. */
  readonly callback: () => Promise<string> = () => this.get();

  constructor(options: AssertionCacheOptions) {
    this.source = options.source;
    this.marginMs = options.refreshMarginMs ?? AssertionCacheDefaults.refreshMarginMs;
    this.timeoutMs = options.timeoutMs ?? AssertionCacheDefaults.timeoutMs;
    this.logger = options.logger ?? silentLogger;
    this.metrics = options.metrics ?? noMetrics;
    this.now = options.now ?? Date.now;
  }

  /**
   * A valid assertion: the cached one until its renewal time, else a fresh one.
   * @throws ClientAssertionError when none can be had
   */
  get(): Promise<string> {
    const held = this.held;
    if (held && this.now() < held.renewAt) {
      this.metrics.increment(Metric.AssertionCached, 1, { source: this.source.name });
      return Promise.resolve(held.assertion);
    }
    this.inFlight ??= this.refresh().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Drops the cached assertion (e.g. after Entra refused it); the next `get` fetches. */
  clear(): void {
    this.held = undefined;
  }

  private async refresh(): Promise<string> {
    const source = this.source.name;
    const started = this.now();
    try {
      const fetched = await this.fetchBounded();
      const held = this.hold(fetched);
      this.metrics.increment(Metric.AssertionFetch, 1, { source });
      // What to register in Entra, and when the next fetch is due; never the assertion.
      this.logger.info('client assertion fetched', {
        source,
        ...claimsOf(fetched.assertion),
        expiresAt: new Date(held.expiresAt).toISOString(),
        durationMs: this.now() - started,
      });
      this.held = held;
      return held.assertion;
    } catch (e) {
      const error = asAssertionError(source, e);
      this.metrics.increment(Metric.AssertionError, 1, { source, reason: error.reason });
      this.logger.warn('client assertion fetch failed', {
        source,
        code: error.code,
        reason: error.reason,
        retryable: error.retryable,
        error: error.message,
        durationMs: this.now() - started,
      });
      throw error;
    }
  }

  private fetchBounded(): Promise<FetchedAssertion> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(
          new ClientAssertionError(`no answer within ${this.timeoutMs} ms`, {
            source: this.source.name,
            reason: ClientAssertionFailure.Timeout,
            retryable: true,
          }),
        );
      }, this.timeoutMs);
    });
    return Promise.race([this.source.fetch(controller.signal), timeout]).finally(() => clearTimeout(timer));
  }

  private hold(fetched: FetchedAssertion): Held {
    const { assertion } = fetched;
    const exp = typeof assertion === 'string' ? jwtExpiry(assertion) : undefined;
    if (exp === undefined) {
      throw new ClientAssertionError(
        'the identity service answered with something that is not a JWT with an exp claim',
        { source: this.source.name, reason: ClientAssertionFailure.Invalid, retryable: false },
      );
    }
    const expiresAt = Math.min(exp, fetched.expiresAt ?? Number.POSITIVE_INFINITY);
    const now = this.now();
    if (expiresAt <= now) {
      throw new ClientAssertionError(
        `the identity service answered with an assertion that expired at ${new Date(expiresAt).toISOString()}; check the clock`,
        { source: this.source.name, reason: ClientAssertionFailure.Invalid, retryable: true },
      );
    }
    const margin = Math.min(this.marginMs, (expiresAt - now) / 2);
    return { assertion, expiresAt, renewAt: expiresAt - margin };
  }
}

/** The JWT's `exp` in epoch milliseconds, or `undefined` when it is not a JWT with one. */
function jwtExpiry(jwt: string): number | undefined {
  const exp = payloadOf(jwt)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
}

function payloadOf(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The claims Entra's federated credential matches on: public values, safe to log. */
function claimsOf(jwt: string): { issuer?: string; subject?: string; audience?: string } {
  const payload = payloadOf(jwt) ?? {};
  const text = (v: unknown) => (typeof v === 'string' ? v : Array.isArray(v) ? v.join(' ') : undefined);
  return { issuer: text(payload.iss), subject: text(payload.sub), audience: text(payload.aud) };
}

function asAssertionError(source: string, e: unknown): ClientAssertionError {
  if (e instanceof ClientAssertionError) return e;
  if (isTokenCacheError(e)) {
    return new ClientAssertionError(e.message, {
      source,
      reason: ClientAssertionFailure.NotPermitted,
      retryable: false,
      cause: e,
    });
  }
  const name = (e as { name?: unknown })?.name;
  return new ClientAssertionError(
    `the identity service failed (${typeof name === 'string' ? name : 'error'})`,
    { source, reason: ClientAssertionFailure.Unavailable, retryable: true, cause: e },
  );
}
