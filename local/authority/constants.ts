/** Fixed identifiers of the local authority, stable across runs so logs and fixtures stay readable. */
import type { LocalUser } from './types';

/** The authority's default tenant id. */
export const DEFAULT_TENANT_ID = '90bb045f-08cc-4e4a-8ed4-45f406fd29fe';

/** The user mintUserToken() speaks for unless told otherwise. */
export const DEFAULT_USER = {
  oid: '8fd157fa-1680-44f6-8836-d62b99102bb2',
  preferredUsername: 'adele.vance@contoso.example',
  name: 'Adele Vance',
} as const satisfies LocalUser;

/** The client app (the `azp` claim) that minted user tokens were issued to, e.g. a SPA calling the web API. */
export const DEFAULT_CALLER_CLIENT_ID = '92b9b9b7-d7ea-46c9-9f88-fd85d5acad9b';

/** The grant_type values the token endpoint serves; counters.token() takes them. */
export const GrantType = {
  ClientCredentials: 'client_credentials',
  /** On-behalf-of (RFC 7523 JWT bearer with requested_token_use=on_behalf_of). */
  OnBehalfOf: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  RefreshToken: 'refresh_token',
  AuthorizationCode: 'authorization_code',
} as const;
export type GrantType = (typeof GrantType)[keyof typeof GrantType];

/** OpenID Connect scopes: they ask for an id_token / refresh token, not for access to a resource. */
export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'offline_access', 'email']);

/** Microsoft Graph: the resource of scopes without a resource prefix (`User.Read`), as in Entra. */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
