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

/** Loads one peer used by a single feature, when that feature is first used. */
export function loadPeer<T>(entry: string, feature: string, name: string, load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (!isMissing(e, name)) throw e;
    throw new ConfigurationError(
      name,
      `${feature} (${entry}) needs ${name}, not installed: run \`npm install ${name}\``,
      { cause: e },
    );
  }
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
