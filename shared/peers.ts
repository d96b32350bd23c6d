/**
 * Cloud SDKs are optional peer dependencies: an entry point checks, before it loads any of
 * them, that the ones it needs are installed, and names what to install instead of
 * failing with `Cannot find module`.
 */
import { ConfigurationError } from './errors';

/** A peer package and its loader (a literal `require`, so bundlers see and bundle it). */
export type Peer = readonly [name: string, load: () => unknown];

/**
 * Loads each peer; when one or more are missing, throws one error naming them all and
 * the install command.
 * @throws ConfigurationError whose `setting` is the first missing package
 */
export function requirePeers(entry: string, peers: readonly Peer[]): void {
  const missing = peers.filter(([name, load]) => !loads(name, load)).map(([name]) => name);
  if (missing.length > 0) {
    throw new ConfigurationError(
      missing[0],
      `${entry} needs ${missing.join(', ')}, not installed: run \`npm install ${missing.join(' ')}\` (optional peer dependencies of msal-cloud-cache)`,
    );
  }
}

/**
 * The error to throw when `require(name)` failed in a feature that needs that peer: a
 * {@link ConfigurationError} naming it when it is not installed, else the failure itself.
 * (The `require` stays at the call site, inside its own `try`, so that bundlers leave an
 * uninstalled optional peer to run time instead of failing the build.)
 * @example
 * try { sm = require('@aws-sdk/client-secrets-manager'); }
 * catch (e) { throw peerError('msal-cloud-cache/aws', 'MSAL_CLIENT_SECRET_ARN', '@aws-sdk/client-secrets-manager', e); }
 */
export function peerError(entry: string, feature: string, name: string, e: unknown): unknown {
  if (!isMissing(e, name)) return e;
  return new ConfigurationError(
    name,
    `${feature} (${entry}) needs ${name}, not installed: run \`npm install ${name}\``,
    { cause: e },
  );
}

function loads(name: string, load: () => unknown): boolean {
  try {
    load();
    return true;
  } catch (e) {
    if (isMissing(e, name)) return false;
    throw e;
  }
}

function isMissing(e: unknown, name: string): boolean {
  const error = e as { code?: unknown; message?: unknown };
  return (
    (error.code === 'MODULE_NOT_FOUND' || error.code === 'ERR_MODULE_NOT_FOUND') &&
    typeof error.message === 'string' &&
    error.message.includes(`'${name}'`)
  );
}
