/** The MSAL settings every bench cache uses: a confidential app against a local authority. */
import type { HttpsNetworkClient } from '../shared/cache/http';
import type { MsalOptions } from '../shared/cache/types';
import type { LocalAuthority } from '../local/authority';

/** What a bench app needs to reach its local authority. */
export interface LocalMsalApp {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The authority URL (`https://localhost:<port>/<tenant>`). */
  readonly authority: string;
  /** The authority's host, its only known authority. */
  readonly host: string;
  /** The client MSAL calls the authority through. */
  readonly network: HttpsNetworkClient;
}

/** MSAL settings of `app` against its local authority. */
export function localMsal(app: LocalMsalApp): MsalOptions {
  return {
    clientId: app.clientId,
    authority: app.authority,
    clientSecret: app.clientSecret,
    knownAuthorities: [app.host],
    networkClient: app.network,
  };
}

/** MSAL settings of the app `clientId` against a running {@link LocalAuthority} of this process. */
export function localAuthorityMsal(
  authority: LocalAuthority,
  clientId: string,
  clientSecret: string,
  network: HttpsNetworkClient,
): MsalOptions {
  return localMsal({
    clientId,
    clientSecret,
    authority: authority.authority(),
    host: authority.host,
    network,
  });
}
