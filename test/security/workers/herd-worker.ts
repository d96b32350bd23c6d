/**
 * One instance of the herd suite (test/security/one-token-request-per-caller.test.ts), run as its own Node
 * process (`node --import tsx`): a real TokenCache on the shared DynamoDB or Cosmos DB
 * server and the parent's local authority. For each burst the parent asks for, it starts
 * `count` OBO acquisitions for one caller and scope at once and reports sha256 hashes of
 * the tokens (never the tokens), or the errors' codes; then its counters and log records.
 */
import { createHash } from 'node:crypto';
import { HttpsNetworkClient } from '../../../shared/cache/http';
import { createTokenCache } from '../../../shared/cache/token-cache';
import type { CoalescingOptions } from '../../../shared/cache/types';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import { CounterMetrics, type LogFields, type Logger } from '../../../shared/observability';
import { workerStore, type WorkerStoreSetup } from '../../support/worker-process';

/** The first message from the parent. Secrets travel over IPC, not argv or the environment. */
export interface HerdSetup {
  readonly type: 'setup';
  readonly store: WorkerStoreSetup;
  readonly authority: string;
  readonly authorityHost: string;
  readonly ca: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly masterKey: string;
  readonly coalescing?: CoalescingOptions | false;
}

export type HerdParentMessage =
  | HerdSetup
  | {
      readonly type: 'burst';
      readonly id: number;
      readonly assertion: string;
      readonly scope: string;
      readonly count: number;
    }
  | { readonly type: 'finish' };

export type HerdOutcome =
  | { readonly ok: true; readonly tokenHash: string; readonly fromCache: boolean; readonly ms: number }
  | { readonly ok: false; readonly error: string; readonly code: string; readonly ms: number };

export type HerdWorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'burst-done'; readonly id: number; readonly outcomes: readonly HerdOutcome[] }
  | { readonly type: 'error'; readonly message: string }
  | {
      readonly type: 'finished';
      readonly metrics: Record<string, number>;
      readonly logs: ReadonlyArray<{ level: string; message: string; fields?: LogFields }>;
    };

const logs: Array<{ level: string; message: string; fields?: LogFields }> = [];
const logger: Logger = {
  debug: () => undefined,
  info: (message, fields) => logs.push({ level: 'info', message, fields }),
  warn: (message, fields) => logs.push({ level: 'warn', message, fields }),
  error: (message, fields) => logs.push({ level: 'error', message, fields }),
};

/** The provider's error code (TokenAcquisitionError) or our stable code. */
function codeOf(e: unknown): string {
  const { providerCode, code } = e as { providerCode?: unknown; code?: unknown };
  if (typeof providerCode === 'string') return providerCode;
  return typeof code === 'string' ? code : '';
}

function send(message: HerdWorkerMessage): void {
  process.send?.(message);
}

let run: ((message: HerdParentMessage) => Promise<void>) | undefined;

function start(setup: HerdSetup): (message: HerdParentMessage) => Promise<void> {
  const store = workerStore(setup.store);
  const network = new HttpsNetworkClient({ ca: setup.ca });
  const metrics = new CounterMetrics();
  const cache = createTokenCache({
    msal: {
      clientId: setup.clientId,
      clientSecret: setup.clientSecret,
      authority: setup.authority,
      knownAuthorities: [setup.authorityHost],
      networkClient: network,
    },
    store,
    keyRing: new LocalKeyRing({ masterKey: setup.masterKey }),
    l1: false,
    metrics,
    logger,
    ...(setup.coalescing !== undefined ? { coalescing: setup.coalescing } : {}),
  });
  return async (message) => {
    if (message.type === 'burst') {
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
      send({ type: 'burst-done', id: message.id, outcomes });
    } else if (message.type === 'finish') {
      send({ type: 'finished', metrics: metrics.snapshot(), logs });
      network.destroy();
      store.close();
      process.disconnect();
    }
  };
}

process.on('message', (message: HerdParentMessage) => {
  const handle = async (): Promise<void> => {
    if (message.type === 'setup') {
      run = start(message);
      send({ type: 'ready' });
    } else if (run) {
      await run(message);
    }
  };
  handle().catch((e: unknown) => {
    send({ type: 'error', message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  });
});
