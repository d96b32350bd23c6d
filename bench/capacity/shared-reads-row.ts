/**
 * The bench row of the shared store reads (issue 19): C concurrent requests for one
 * partition in one cold instance (each for its own scope, so each is its own single
 * flight and loads the partition itself), L1 off, against dynalite through the counting
 * proxy: GetItems at the wire and the burst's wall time, with shared reads on and off.
 */
import { randomBytes } from 'node:crypto';
import { HttpsNetworkClient } from '../../shared/cache/http';
import { createTokenCache } from '../../shared/cache/token-cache';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { silentLogger } from '../../shared/observability';
import { startLocalAuthority } from '../../local/authority';
import { startLocalDynamo } from '../../local/dynamodb';
import { localAuthorityMsal } from '../msal-options';
import { startCountingProxy } from './counting-proxy';

/** One series of the row. */
export interface SharedReadsSeries {
  readonly sharedReads: boolean;
  readonly trials: number;
  /** GetItems per burst, mean over the trials. */
  readonly getItemsPerBurst: number;
  /** Wall time of a burst, ms, median over the trials. */
  readonly burstMsMedian: number;
}

/** The row: the same bursts with shared reads on and off. */
export interface SharedReadsRow {
  readonly concurrency: number;
  readonly on: SharedReadsSeries;
  readonly off: SharedReadsSeries;
}

const CLIENT_ID = '7d2e3f40-1a2b-4c3d-8e4f-5a6b7c8d9e0f';
const CLIENT_SECRET = 'shared-reads-local-only-secret';

/** Runs `trials` bursts of `concurrency` requests per series (alternating on and off). */
export async function measureSharedReads(concurrency = 20, trials = 5): Promise<SharedReadsRow> {
  const [dynamo, authority] = await Promise.all([
    startLocalDynamo({ tableName: 'shared-reads-bench' }),
    startLocalAuthority({ clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }] }),
  ]);
  const proxy = await startCountingProxy(dynamo.endpoint);
  const network = new HttpsNetworkClient({ ca: authority.ca });
  const masterKey = randomBytes(32);
  const stores: DynamoDbStore[] = [];
  const instance = (sharedReads: boolean) => {
    const store = new DynamoDbStore({
      tableName: dynamo.tableName,
      clientConfig: { ...dynamo.clientConfig, endpoint: proxy.endpoint },
    });
    stores.push(store);
    return createTokenCache({
      msal: localAuthorityMsal(authority, CLIENT_ID, CLIENT_SECRET, network),
      store,
      keyRing: new LocalKeyRing({ masterKey }),
      l1: false,
      sharedReads,
      logger: silentLogger,
    });
  };
  const scope = (i: number) => `api://shared-reads-${i}/.default`;
  try {
    const assertion = await authority.mintUserToken({
      audience: CLIENT_ID,
      oid: '00000000-0000-4000-8000-0000000b0001',
    });
    const seeder = instance(true);
    for (let i = 0; i < concurrency; i++)
      await seeder.acquireTokenOnBehalfOf({ assertion, scopes: [scope(i)] });
    const series = {
      on: { gets: [] as number[], ms: [] as number[] },
      off: { gets: [] as number[], ms: [] as number[] },
    };
    for (let t = 0; t < trials; t++) {
      for (const mode of ['on', 'off'] as const) {
        const cache = instance(mode === 'on');
        // Warm the new instance's clients and metadata on another caller's partition first.
        await cache.acquireTokenForApp({ scopes: ['api://shared-reads-warm/.default'] });
        proxy.reset();
        const started = performance.now();
        await Promise.all(
          Array.from({ length: concurrency }, (_, i) =>
            cache.acquireTokenOnBehalfOf({ assertion, scopes: [scope(i)] }),
          ),
        );
        series[mode].ms.push(performance.now() - started);
        series[mode].gets.push(proxy.counts().operations['GetItem'] ?? 0);
      }
    }
    const summary = (sharedReads: boolean, s: { gets: number[]; ms: number[] }): SharedReadsSeries => ({
      sharedReads,
      trials,
      getItemsPerBurst: s.gets.reduce((a, b) => a + b, 0) / s.gets.length,
      burstMsMedian: [...s.ms].sort((a, b) => a - b)[Math.floor(s.ms.length / 2)],
    });
    return { concurrency, on: summary(true, series.on), off: summary(false, series.off) };
  } finally {
    for (const s of stores) s.destroy();
    network.destroy();
    await proxy.stop();
    await Promise.allSettled([dynamo.stop(), authority.stop()]);
  }
}
