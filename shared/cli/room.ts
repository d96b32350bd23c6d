/**
 * Where the CLI works: the store, its scanner and the key ring, from the cloud room that
 * TOKEN_CACHE_STORE names. Each room is loaded only when chosen, so an install with only
 * the AWS SDKs (or only the Azure ones) runs the CLI.
 */
import type { CacheConfig } from '../config';
import type { KeyRing } from '../crypto/keyring';
import { ConfigurationError } from '../errors';
import type { ScannableStore } from './scan';

/** Per attempt, in every room: bulk work tolerates a slower answer than a request path does. */
export const CLI_TIMEOUT_MS = 5000;

/** A store with its scanner and the key ring of the deployment. */
export interface CliRoom extends ScannableStore {
  readonly keyRing: KeyRing;
}

/** Options of a room. */
export interface CliRoomOptions {
  /** Parallel scan segments, where the store has them. @default the room's */
  readonly segments?: number;
}

/**
 * Opens the room of `config.store`.
 * @throws ConfigurationError naming TOKEN_CACHE_STORE or the key-ring variable at fault
 */
export function openRoom(config: CacheConfig, options: CliRoomOptions = {}): CliRoom {
  /* eslint-disable @typescript-eslint/no-require-imports */
  switch (config.store.kind) {
    case 'dynamodb':
      return (require('../aws/cli-room') as typeof import('../aws/cli-room')).openRoom(config, options);
    case 'cosmos':
      return (require('../azure/cli-room') as typeof import('../azure/cli-room')).openRoom(config, options);
    case 'memory':
      throw new ConfigurationError(
        'TOKEN_CACHE_STORE',
        '"memory" lives inside one process, there is nothing for the CLI to read; set dynamodb or cosmos (or --store)',
      );
    case 'redis':
      throw new ConfigurationError(
        'TOKEN_CACHE_STORE',
        '"redis" has no scanner in the CLI yet; the CLI reads dynamodb or cosmos (or --store)',
      );
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}
