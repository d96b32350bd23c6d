/**
 * An Entra ID-compatible authority over HTTPS for tests and the local stack: client
 * credentials, on-behalf-of, refresh token and authorization code grants, Entra-shaped
 * tokens, errors, `client_info`, OpenID configuration, instance discovery and JWKS.
 */
export { startLocalAuthority } from './server';
export { DEFAULT_CALLER_CLIENT_ID, DEFAULT_TENANT_ID, DEFAULT_USER, GrantType } from './constants';
export { TOKEN_EXCHANGE_AUDIENCE } from './clients';
export {
  acrsChallenge,
  CAE_TOKEN_LIFETIME_SECONDS,
  DEFAULT_AUTHENTICATION_CONTEXT,
  type ConditionalAccessRule,
} from './conditional-access';
// Every type of the authority's surface (types.ts holds nothing else).
export type * from './types';
