/**
 * One instance of the herd benchmark (bench/scenarios/herd.ts), run as its own process:
 * a TokenCache like (a) (DynamoDB store, KMS envelope, L1 off) with coalescing on or off.
 * It warms itself up on a caller of its own, then for each burst starts `count` OBO
 * acquisitions for one caller at `startAt` (epoch ms, the same for every process) and
 * reports their latencies and its store calls. Local-only secrets travel over IPC.
 */
import { HttpsNetworkClient } from '../shared/cache/http';
import { createTokenCache } from '../shared/cache/token-cache';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import { CounterMetrics, Metric, silentLogger } from '../shared/observability';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import { localMsal } from './msal-options';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, type ServersInfo } from './protocol';

export type HerdBenchIn =
  | {
      readonly type: 'setup';
      readonly info: ServersInfo;
      readonly coalescing: boolean;
      readonly warmAssertion: string;
      readonly scope: string;
    }
  | {
      readonly type: 'burst';
      readonly assertion: string;
      readonly scope: string;
      readonly count: number;
      readonly startAt: number;
    }
  | { readonly type: 'stop' };

/** Store calls of one burst, by kind. */
export interface StoreCalls {
  readonly reads: number;
  readonly writes: number;
  readonly conflicts: number;
  readonly leases: number;
}

export type HerdBenchOut =
  | { readonly type: 'ready' }
  | {
      readonly type: 'burst-done';
      readonly latenciesMs: readonly number[];
      readonly failures: number;
      readonly store: StoreCalls;
    }
  | { readonly type: 'error'; readonly message: string };

const LOCAL = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

function send(m: HerdBenchOut): void {
  process.send?.(m);
}

let handle: ((m: HerdBenchIn) => Promise<void>) | undefined;

async function setup(m: Extract<HerdBenchIn, { type: 'setup' }>): Promise<(m: HerdBenchIn) => Promise<void>> {
  const { info } = m;
  const network = new HttpsNetworkClient({ ca: info.authority.ca });
  const store = new DynamoDbStore({
    tableName: info.dynamo.tableName,
    clientConfig: { region: 'us-east-1', endpoint: info.dynamo.endpoint, credentials: LOCAL },
  });
  const keyRing = new KmsKeyRing({
    keyId: info.kms.keyArn,
    clientId: BENCH_CLIENT_ID,
    clientConfig: { region: info.kms.region, endpoint: info.kms.endpoint, credentials: LOCAL },
  });
  const metrics = new CounterMetrics();
  const cache = createTokenCache({
    msal: localMsal({
      clientId: BENCH_CLIENT_ID,
      clientSecret: BENCH_CLIENT_SECRET,
      authority: info.authority.authority,
      host: info.authority.host,
      network,
    }),
    store,
    keyRing,
    l1: false,
    metrics,
    logger: silentLogger,
    ...(m.coalescing ? {} : { coalescing: false as const }),
  });
  // Warm: metadata fetched, data key generated, connections open.
  await cache.acquireTokenOnBehalfOf({ assertion: m.warmAssertion, scopes: [m.scope] });
  return async (message) => {
    if (message.type === 'burst') {
      metrics.reset();
      await new Promise((done) => setTimeout(done, Math.max(0, message.startAt - Date.now())));
      let failures = 0;
      const latenciesMs = await Promise.all(
        Array.from({ length: message.count }, async () => {
          const t0 = performance.now();
          try {
            await cache.acquireTokenOnBehalfOf({ assertion: message.assertion, scopes: [message.scope] });
          } catch {
            failures++;
          }
          return performance.now() - t0;
        }),
      );
      send({
        type: 'burst-done',
        latenciesMs,
        failures,
        store: {
          reads: metrics.get(Metric.StoreRead),
          writes: metrics.get(Metric.StoreWrite),
          conflicts: metrics.get(Metric.StoreConflict),
          leases: metrics.get(Metric.StoreLease),
        },
      });
    } else if (message.type === 'stop') {
      network.destroy();
      store.destroy();
      keyRing.destroy();
      process.disconnect();
    }
  };
}

process.on('message', (m: HerdBenchIn) => {
  const run = async (): Promise<void> => {
    if (m.type === 'setup') {
      handle = await setup(m);
      send({ type: 'ready' });
    } else {
      await handle?.(m);
    }
  };
  run().catch((e: unknown) => send({ type: 'error', message: e instanceof Error ? e.message : String(e) }));
});
