/**
 * Authority metadata, fetched once per process. msal-node keeps discovered metadata in
 * each application's own cache, and the cache builds a new application per request, so
 * without this every request would fetch the OpenID configuration again.
 *
 * Microsoft's public-cloud hosts need nothing: msal-common ships their endpoint and
 * instance-discovery metadata. Hosts listed in `knownAuthorities` (B2C, CIAM, ADFS, a
 * local authority) skip instance discovery, and their endpoints are fetched here once.
 */
import type { INetworkModule } from '@azure/msal-node';
import { Metric, type Logger, type Metrics } from '../observability';

/** The fields MSAL requires of `authorityMetadata`. */
interface OpenIdConfiguration {
  readonly token_endpoint: string;
  readonly authorization_endpoint: string;
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly end_session_endpoint?: string;
}

/** Resolves and memoises `authorityMetadata` strings per authority URL. */
export class AuthorityMetadataCache {
  private readonly memo = new Map<string, Promise<string | undefined>>();
  private readonly known: ReadonlySet<string>;

  constructor(
    private readonly network: INetworkModule,
    knownAuthorities: readonly string[],
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.known = new Set(knownAuthorities.map((h) => h.toLowerCase()));
  }

  /** The metadata JSON for MSAL's config, or undefined when MSAL needs none (or the fetch failed). */
  resolve(authority: string): Promise<string | undefined> {
    const host = new URL(authority).host.toLowerCase();
    if (!this.known.has(host)) return Promise.resolve(undefined);
    let pending = this.memo.get(authority);
    if (!pending) {
      pending = this.fetch(authority);
      this.memo.set(authority, pending);
    }
    return pending;
  }

  private async fetch(authority: string): Promise<string | undefined> {
    this.metrics.increment(Metric.MetadataFetch);
    const url = `${authority.replace(/\/$/, '')}/v2.0/.well-known/openid-configuration`;
    try {
      const response = await this.network.sendGetRequestAsync<OpenIdConfiguration>(url);
      const body = response.body;
      if (
        response.status !== 200 ||
        typeof body?.token_endpoint !== 'string' ||
        typeof body.issuer !== 'string'
      ) {
        throw new Error(`status ${response.status}, no token_endpoint/issuer in the body`);
      }
      const { token_endpoint, authorization_endpoint, issuer, jwks_uri, end_session_endpoint } = body;
      return JSON.stringify({
        token_endpoint,
        authorization_endpoint,
        issuer,
        jwks_uri,
        end_session_endpoint,
      });
    } catch (e) {
      // Forget the failure so the next request retries; MSAL falls back to its own discovery.
      this.memo.delete(authority);
      this.logger.warn('authority metadata fetch failed; MSAL will discover it itself', {
        authority,
        error: e instanceof Error ? e.message : String(e),
      });
      return undefined;
    }
  }
}
