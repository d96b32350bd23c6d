/**
 * One instance of the herd suite (test/security/one-token-request-per-caller.test.ts), run as its own Node
 * process (`node --import tsx`): a real TokenCache on the shared DynamoDB or Cosmos DB
 * server and the parent's local authority. For each burst the parent asks for, it starts
 * `count` OBO acquisitions for one caller and scope at once and reports sha256 hashes of
 * the tokens (never the tokens), or the errors' codes; then its counters and log records.
 */
import { createHash } from 'node:crypto';
import type { CoalescingOptions } from '../../../shared/cache/types';
import { serveCacheWorker, type CacheWorkerReport, type CacheWorkerSetup } from '../../support/cache-worker';

/** The first message from the parent: the common setup and whether requests coalesce. */
export interface HerdSetup extends CacheWorkerSetup {
  readonly coalescing?: CoalescingOptions | false;
}

/** A burst: `count` acquisitions for one caller and scope, all at once. */
export interface Burst {
  readonly type: 'burst';
  readonly id: number;
  readonly assertion: string;
  readonly scope: string;
  readonly count: number;
}

export type HerdParentMessage = HerdSetup | Burst | { readonly type: 'finish' };

export type HerdOutcome =
  | { readonly ok: true; readonly tokenHash: string; readonly fromCache: boolean; readonly ms: number }
  | { readonly ok: false; readonly error: string; readonly code: string; readonly ms: number };

export type HerdWorkerMessage =
  | CacheWorkerReport
  | { readonly type: 'burst-done'; readonly id: number; readonly outcomes: readonly HerdOutcome[] };

/** The provider's error code (TokenAcquisitionError) or our stable code. */
function codeOf(e: unknown): string {
  const { providerCode, code } = e as { providerCode?: unknown; code?: unknown };
  if (typeof providerCode === 'string') return providerCode;
  return typeof code === 'string' ? code : '';
}

serveCacheWorker<HerdSetup, Burst>({
  keepDebug: false,
  options: (setup) => (setup.coalescing !== undefined ? { coalescing: setup.coalescing } : {}),
  async handle(cache, message) {
    const outcomes = await Promise.all(
      Array.from({ length: message.count }, async (): Promise<HerdOutcome> => {
        const t0 = performance.now();
        try {
          const result = await cache.acquireTokenOnBehalfOf({
            assertion: message.assertion,
            scopes: [message.scope],
          });
          const tokenHash = createHash('sha256').update(result.accessToken).digest('hex');
          return { ok: true, tokenHash, fromCache: result.fromCache, ms: performance.now() - t0 };
        } catch (e) {
          return {
            ok: false,
            error: e instanceof Error ? e.name : 'unknown',
            code: codeOf(e),
            ms: performance.now() - t0,
          };
        }
      }),
    );
    return { type: 'burst-done', id: message.id, outcomes };
  },
});
