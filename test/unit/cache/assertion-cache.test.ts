import {
  AssertionCache,
  type AssertionSource,
  type FetchedAssertion,
} from '../../../shared/cache/assertion-cache';
import { ClientAssertionError, ErrorCode } from '../../../shared/errors';
import { CounterMetrics, Metric } from '../../../shared/observability';
import { CapturingLogger } from '../../support/cache-harness';
import { registerSecret } from '../../support/secret-registry';

/** An unsigned JWT-shaped assertion with the given exp (seconds); registered as a secret. */
function jwt(expSeconds: number, sub = 'arn:aws:iam::123456789012:role/fn'): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${part({ alg: 'RS256', kid: 'k' })}.${part({
    iss: 'https://issuer.example',
    sub,
    aud: 'api://AzureADTokenExchange',
    exp: expSeconds,
    jti: Math.random().toString(36),
  })}.${Buffer.from(`signature-${Math.random()}`).toString('base64url')}`;
  registerSecret('assertion', token);
  return token;
}

/** A source whose answers the test scripts, counting calls. */
class ScriptedSource implements AssertionSource {
  readonly name = 'test-source';
  calls = 0;
  constructor(private readonly answer: (call: number, signal: AbortSignal) => Promise<FetchedAssertion>) {}
  fetch(signal: AbortSignal): Promise<FetchedAssertion> {
    this.calls++;
    return this.answer(this.calls, signal);
  }
}

describe('AssertionCache', () => {
  let clock: number;
  const now = () => clock;
  beforeEach(() => {
    clock = Date.UTC(2026, 11, 2, 4, 0, 0);
  });

  describe('get', () => {
    it('fetches once per assertion lifetime, however many callers', async () => {
      const source = new ScriptedSource(async () => ({ assertion: jwt(clock / 1000 + 900) }));
      const metrics = new CounterMetrics();
      const cache = new AssertionCache({ source, metrics, now });

      const first = await Promise.all(Array.from({ length: 20 }, () => cache.get()));
      clock += 800_000; // still before exp - 60 s
      const later = await cache.get();

      expect(source.calls).toBe(1);
      expect(new Set([...first, later]).size).toBe(1);
      expect(metrics.get(Metric.AssertionFetch)).toBe(1);
      expect(metrics.get(Metric.AssertionCached)).toBe(1);
    });

    it('renews within the margin before exp, and uses the earlier of exp and the service expiry', async () => {
      const source = new ScriptedSource(async () => ({
        assertion: jwt(clock / 1000 + 3600),
        expiresAt: clock + 600_000,
      }));
      const cache = new AssertionCache({ source, now, refreshMarginMs: 60_000 });

      const a = await cache.get();
      clock += 539_000;
      const b = await cache.get();
      clock += 2_000; // 59 s before the service's expiry
      const c = await cache.get();

      expect(a).toBe(b);
      expect(c).not.toBe(a);
      expect(source.calls).toBe(2);
    });

    it('caps the margin at half of a short lifetime', async () => {
      const source = new ScriptedSource(async () => ({ assertion: jwt(clock / 1000 + 60) }));
      const cache = new AssertionCache({ source, now, refreshMarginMs: 300_000 });

      await cache.get();
      clock += 29_000;
      await cache.get();
      expect(source.calls).toBe(1);
      clock += 2_000;
      await cache.get();
      expect(source.calls).toBe(2);
    });

    it('never caches a failure: the next call fetches again', async () => {
      const source = new ScriptedSource(async (call) => {
        if (call === 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        return { assertion: jwt(clock / 1000 + 900) };
      });
      const metrics = new CounterMetrics();
      const cache = new AssertionCache({ source, metrics, now });

      const failure = await cache.get().catch((e: unknown) => e);
      const token = await cache.get();

      expect(failure).toBeInstanceOf(ClientAssertionError);
      expect(failure).toMatchObject({
        code: ErrorCode.ClientAssertion,
        retryable: true,
        reason: 'unavailable',
      });
      expect(token.split('.')).toHaveLength(3);
      expect(source.calls).toBe(2);
      expect(metrics.get(Metric.AssertionError, { reason: 'unavailable', source: 'test-source' })).toBe(1);
    });

    it('gives a retryable timeout error within the bound, aborting the fetch', async () => {
      let aborted = false;
      const source = new ScriptedSource(
        (_call, signal) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () => {
              aborted = true;
            });
            setTimeout(() => resolve({ assertion: 'late' }), 10_000).unref();
          }),
      );
      const logger = new CapturingLogger();
      const cache = new AssertionCache({ source, logger, timeoutMs: 100 });

      const started = Date.now();
      const error = await cache.get().catch((e: unknown) => e);

      expect(Date.now() - started).toBeLessThan(1_000);
      expect(error).toMatchObject({ name: 'ClientAssertionError', reason: 'timeout', retryable: true });
      expect(aborted).toBe(true);
      expect(logger.lines.some((r) => r.message === 'client assertion fetch failed')).toBe(true);
    });

    it('refuses an answer that is not a JWT with exp, and one already expired', async () => {
      const notJwt = new AssertionCache({
        source: new ScriptedSource(async () => ({ assertion: 'opaque-token-value' })),
        now,
      });
      const expired = new AssertionCache({
        source: new ScriptedSource(async () => ({ assertion: jwt(clock / 1000 - 10) })),
        now,
      });

      await expect(notJwt.get()).rejects.toMatchObject({ reason: 'invalid', retryable: false });
      await expect(expired.get()).rejects.toMatchObject({ reason: 'invalid' });
    });

    it('logs issuer, subject and audience of a fetched assertion, never the assertion', async () => {
      let issued = '';
      const source = new ScriptedSource(async () => {
        issued = jwt(clock / 1000 + 900);
        return { assertion: issued };
      });
      const logger = new CapturingLogger();
      await new AssertionCache({ source, logger, now }).get();

      const line = JSON.stringify(logger.lines);
      expect(line).toContain('arn:aws:iam::123456789012:role/fn');
      expect(line).toContain('api://AzureADTokenExchange');
      expect(line).not.toContain(issued.split('.')[1]);
    });
  });

  describe('clear', () => {
    it('makes the next get fetch a fresh assertion', async () => {
      const source = new ScriptedSource(async () => ({ assertion: jwt(clock / 1000 + 900) }));
      const cache = new AssertionCache({ source, now });
      await cache.get();
      cache.clear();
      await cache.get();
      expect(source.calls).toBe(2);
    });
  });
});
