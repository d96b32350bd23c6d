import { AuthorityMetadataCache } from '../../../shared/cache/authority-metadata';
import { HttpsNetworkClient } from '../../../shared/cache/http';
import { CounterMetrics, Metric } from '../../../shared/observability';
import { startLocalAuthority, type LocalAuthority } from '../../../local/authority';
import { CapturingLogger } from '../../support/cache-harness';

describe('AuthorityMetadataCache', () => {
  let authority: LocalAuthority;
  let network: HttpsNetworkClient;

  beforeAll(async () => {
    authority = await startLocalAuthority();
    network = new HttpsNetworkClient({ ca: authority.ca, timeoutMs: 2_000 });
  });

  afterAll(async () => {
    network.destroy();
    await authority.stop();
  });

  beforeEach(() => authority.counters.reset());

  const cacheFor = (knownAuthorities: readonly string[]) => {
    const metrics = new CounterMetrics();
    const logger = new CapturingLogger();
    return { cache: new AuthorityMetadataCache(network, knownAuthorities, logger, metrics), metrics, logger };
  };

  describe('resolve', () => {
    it('needs nothing for a host outside knownAuthorities (MSAL ships public-cloud metadata)', async () => {
      const { cache, metrics } = cacheFor([authority.host]);

      const metadata = await cache.resolve('https://login.microsoftonline.com/common');

      expect(metadata).toBeUndefined();
      expect(metrics.get(Metric.MetadataFetch)).toBe(0);
    });

    it("fetches a known host's OpenID configuration into the fields MSAL's authorityMetadata takes", async () => {
      const { cache } = cacheFor([authority.host]);

      const metadata = JSON.parse((await cache.resolve(authority.authority())) ?? 'null') as Record<
        string,
        string
      >;

      expect(Object.keys(metadata).sort()).toEqual(
        ['authorization_endpoint', 'issuer', 'jwks_uri', 'token_endpoint']
          .concat(metadata.end_session_endpoint === undefined ? [] : ['end_session_endpoint'])
          .sort(),
      );
      expect(metadata.issuer).toBe(authority.issuer());
      expect(metadata.token_endpoint.startsWith(authority.authority())).toBe(true);
      expect(authority.counters.metadata()).toBe(1);
    });

    it('fetches once per authority URL, also for concurrent first calls', async () => {
      const { cache, metrics } = cacheFor([authority.host]);

      const first = await Promise.all(Array.from({ length: 8 }, () => cache.resolve(authority.authority())));
      const again = await cache.resolve(authority.authority());
      const otherTenant = await cache.resolve(authority.authority('other-tenant'));

      expect(new Set([...first, again]).size).toBe(1);
      expect(otherTenant).not.toBe(again);
      expect(authority.counters.metadata()).toBe(2);
      expect(metrics.get(Metric.MetadataFetch)).toBe(2);
    });

    it('matches knownAuthorities without regard to case', async () => {
      const { cache } = cacheFor([authority.host.toUpperCase()]);

      const metadata = await cache.resolve(authority.authority());

      expect(metadata).toBeDefined();
    });

    it('answers undefined on a failed fetch, logs it without failing the request, and retries next time', async () => {
      const gone = await startLocalAuthority();
      const url = gone.authority();
      await gone.stop();
      const { cache, metrics, logger } = cacheFor([new URL(url).host]);

      const first = await cache.resolve(url);
      const second = await cache.resolve(url);

      expect([first, second]).toEqual([undefined, undefined]);
      expect(metrics.get(Metric.MetadataFetch)).toBe(2);
      expect(logger.lines.filter((l) => l.level === 'warn')).toHaveLength(2);
      expect(logger.lines[0]?.fields).toMatchObject({ authority: url });
    });
  });
});
