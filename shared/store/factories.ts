/**
 * Stores that live in their own entry point (Redis) and are built from the environment
 * register a factory here when imported, so a cloud's composition can build them without
 * importing them: `import 'msal-cloud-cache/redis'` once, then `TOKEN_CACHE_STORE=redis`
 * works with `createTokenCacheFromEnv()` of `msal-cloud-cache/aws` or `/azure`.
 */
import type { StoreConfig } from '../config';
import { ConfigurationError } from '../errors';
import type { TokenStore } from './store';

/** Builds a store from its configuration; `ca` are the CAs the process trusts (or the system store). */
export type StoreFactory = (config: StoreConfig, ca: readonly string[] | undefined) => TokenStore;

const factories = new Map<string, StoreFactory>();

/** Registers the factory of a store kind (called by the store's entry point when imported). */
export function registerStoreFactory(kind: string, factory: StoreFactory): void {
  factories.set(kind, factory);
}

/**
 * Builds a registered store.
 * @throws ConfigurationError naming TOKEN_CACHE_STORE and the import that registers the kind
 */
export function buildRegisteredStore(config: StoreConfig, ca: readonly string[] | undefined): TokenStore {
  const factory = factories.get(config.kind);
  if (!factory) {
    throw new ConfigurationError(
      'TOKEN_CACHE_STORE',
      `"${config.kind}" is built by msal-cloud-cache/${config.kind}: import it once in your function (\`import 'msal-cloud-cache/${config.kind}';\`) and install its client (@redis/client)`,
    );
  }
  return factory(config, ca);
}
