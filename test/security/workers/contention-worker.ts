/**
 * One "container" of the cross-process contention suite (test/security/no-token-lost-under-contention.test.ts),
 * run as its own Node process (`node --import tsx`). It builds a real TokenCache on the
 * shared DynamoDB, Cosmos DB or Redis server and the parent's local authority, then, for each
 * round the parent starts, acquires app tokens for the scopes it is given, all at once,
 * on the one partition every worker shares. It reports sha256 hashes of the tokens (never
 * the tokens), its counters, and its log records.
 */
import { createHash } from 'node:crypto';
import { serveCacheWorker, type CacheWorkerReport, type CacheWorkerSetup } from '../../support/cache-worker';

/** A round: app tokens for each scope, all at once. */
export interface Round {
  readonly type: 'round';
  readonly round: number;
  readonly scopes: readonly string[];
}

export type ParentMessage = CacheWorkerSetup | Round | { readonly type: 'finish' };

export interface Acquired {
  readonly scope: string;
  /** sha256 (hex) of the access token. */
  readonly tokenHash: string;
  readonly fromCache: boolean;
}

export type WorkerMessage =
  | CacheWorkerReport
  | { readonly type: 'round-done'; readonly round: number; readonly acquired: readonly Acquired[] };

serveCacheWorker<CacheWorkerSetup, Round>({
  keepDebug: true,
  async handle(cache, message) {
    const acquired = await Promise.all(
      message.scopes.map(async (scope) => {
        const result = await cache.acquireTokenForApp({ scopes: [scope] });
        const tokenHash = createHash('sha256').update(result.accessToken).digest('hex');
        return { scope, tokenHash, fromCache: result.fromCache };
      }),
    );
    return { type: 'round-done', round: message.round, acquired };
  },
});
