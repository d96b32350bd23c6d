/**
 * `msal-cloud-cache/auth`: validation of incoming bearer tokens for a web API (issuer,
 * audience, signature against the authority's JWKS, cached per process), the gate in front
 * of an on-behalf-of exchange. Its own entry point because it loads jose, which the cache
 * itself does not need.
 */
export { createBearerValidator, BearerFailure } from './bearer';
export type { BearerValidator, BearerValidatorOptions, ValidatedBearer } from './bearer';
