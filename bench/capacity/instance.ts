/**
 * One instance of the capacity simulation (bench/capacity/simulate.ts), run as its own
 * process: a TokenCache as the handlers build it (DynamoDB store, KMS key ring, the given
 * L1 and data-key settings), fed Poisson arrivals at its share of the fleet's rate, each
 * request's caller drawn from the workload's mix and Zipf popularity. The load balancer's
 * even random spread is the same as each instance drawing its own Poisson stream. Reports
 * what it sent and the mean store-read and token-call times (inputs of the model).
 * Local-only secrets travel over IPC.
 */
import { HttpsNetworkClient } from '../../shared/cache/http';
import { createTokenCache } from '../../shared/cache/token-cache';
import type { TokenCache } from '../../shared/cache/types';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { silentLogger } from '../../shared/observability';
import type { KeyRing } from '../../shared/crypto/keyring';
import { localMsal } from '../msal-options';

/** What the parent sends to start an instance. */
export interface InstanceSetup {
  readonly type: 'setup';
  readonly dynamoEndpoint: string;
  readonly tableName: string;
  readonly kmsEndpoint: string;
  readonly kmsRegion: string;
  readonly keyArn: string;
  readonly authority: { readonly authority: string; readonly host: string; readonly ca: string };
  readonly clientId: string;
  readonly clientSecret: string;
  readonly appScope: string;
  readonly oboScope: string;
  /** Requests per second this instance serves. */
  readonly rate: number;
  readonly appShare: number;
  /** Cumulative popularity of the OBO callers (Zipf), ascending to 1. */
  readonly oboCdf: readonly number[];
  /** Per OBO caller: where its first assertion window starts (ms after `epochMs`). */
  readonly offsetsMs: readonly number[];
  readonly windowMs: number;
  /** assertions[caller][window]. */
  readonly assertions: readonly (readonly string[])[];
  readonly epochMs: number;
  readonly l1: { readonly ttlMs: number; readonly jitter: number } | false;
  readonly dataKeys: { readonly maxAgeMs: number; readonly maxUnwrappedAgeMs: number };
  /**
   * Mean lifetime of an instance (exponential), ms; undefined: it lives the whole run. At
   * the end of one, this process replaces it by a new one: a new TokenCache with its own
   * clients, L1 and data keys (requests in flight finish on the old one).
   */
  readonly lifetimeMs?: number;
}

export type InstanceIn =
  | InstanceSetup
  | {
      readonly type: 'run';
      readonly startAt: number;
      /** Requests from here on are the measured ones (before: warm-up). */
      readonly measureFrom: number;
      readonly endAt: number;
    }
  | { readonly type: 'stop' };

/** What the instance reports for a run. */
export interface InstanceReport {
  readonly type: 'done';
  readonly requests: number;
  /** Requests started at or after `measureFrom`. */
  readonly measured: number;
  readonly failures: number;
  readonly failureSample: string | undefined;
  readonly storeReadMsMean: number;
  readonly tokenCallMsMean: number;
  /** Requests started per kind. */
  readonly app: number;
  readonly obo: number;
  /** Instances this process ran (1 without a lifetime). */
  readonly generations: number;
  /** Key-ring calls of the measured window, by `generate:<kind>` / `unwrap:<kind>`. */
  readonly keyCalls: Readonly<Record<string, number>>;
}

export type InstanceOut =
  { readonly type: 'ready' } | InstanceReport | { readonly type: 'error'; readonly message: string };

const LOCAL = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

function send(m: InstanceOut): void {
  process.send?.(m);
}

/** Index of the first CDF entry >= u. */
function pick(cdf: readonly number[], u: number): number {
  let lo = 0;
  let hi = cdf.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] >= u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

let setup: InstanceSetup | undefined;
/** One instance: its cache and what closes its clients. */
interface Generation {
  readonly cache: TokenCache;
  readonly close: () => void;
}
let current: Generation | undefined;
/** Key-ring calls counted while `counting` is on (the measured window). */
const keyCalls: Record<string, number> = {};
let counting = false;

/** `ring` with its generate and unwrap calls counted by partition kind. */
function counted(ring: KeyRing): KeyRing {
  const count = (op: string, kind: string | undefined): void => {
    if (!counting) return;
    const key = `${op}:${kind ?? 'none'}`;
    keyCalls[key] = (keyCalls[key] ?? 0) + 1;
  };
  return {
    name: ring.name,
    ...(ring.attestsDataKeys ? { attestsDataKeys: ring.attestsDataKeys } : {}),
    generateDataKey: (context) => {
      count('generate', context?.partitionKind);
      return ring.generateDataKey(context);
    },
    unwrapDataKey: (wrapped, keyId, context) => {
      count('unwrap', context?.partitionKind);
      return ring.unwrapDataKey(wrapped, keyId, context);
    },
  };
}

function build(s: InstanceSetup): Generation {
  const network = new HttpsNetworkClient({ ca: s.authority.ca });
  const store = new DynamoDbStore({
    tableName: s.tableName,
    clientConfig: { region: 'us-east-1', endpoint: s.dynamoEndpoint, credentials: LOCAL },
  });
  const keyRing = new KmsKeyRing({
    keyId: s.keyArn,
    clientId: s.clientId,
    clientConfig: { region: s.kmsRegion, endpoint: s.kmsEndpoint, credentials: LOCAL },
  });
  const cache = createTokenCache({
    msal: localMsal({
      clientId: s.clientId,
      clientSecret: s.clientSecret,
      authority: s.authority.authority,
      host: s.authority.host,
      network,
    }),
    store,
    keyRing: counted(keyRing),
    l1: s.l1 === false ? false : { ttlMs: s.l1.ttlMs, jitter: s.l1.jitter },
    dataKeys: s.dataKeys,
    logger: silentLogger,
  });
  return {
    cache,
    close: () => {
      network.destroy();
      store.destroy();
      keyRing.destroy();
    },
  };
}

/** An exponential lifetime of mean `meanMs` (Infinity without one). */
function lifetime(meanMs: number | undefined): number {
  return meanMs === undefined ? Number.POSITIVE_INFINITY : -Math.log(1 - Math.random()) * meanMs;
}

async function run(startAt: number, measureFrom: number, endAt: number): Promise<InstanceReport> {
  const s = setup!;
  let gen = current!;
  let generations = 1;
  let genInFlight = new Set<Promise<void>>();
  await new Promise((done) => setTimeout(done, Math.max(0, startAt - Date.now())));
  const startCounting = setTimeout(() => (counting = true), Math.max(0, measureFrom - Date.now()));
  const inFlight = new Set<Promise<void>>();
  let requests = 0;
  let measured = 0;
  let failures = 0;
  let failureSample: string | undefined;
  let storeReadMs = 0;
  let storeReadN = 0;
  let tokenMs = 0;
  let tokenN = 0;
  let app = 0;
  let obo = 0;
  let next = Date.now() - Math.log(1 - Math.random()) * (1000 / s.rate);
  let retireAt = Date.now() + lifetime(s.lifetimeMs);
  while (next < endAt) {
    if (next >= retireAt) {
      // The instance ends: a new one takes the next request; the old one's clients close
      // once its requests in flight are done.
      const old = gen;
      const draining = [...genInFlight];
      void Promise.allSettled(draining).then(() => old.close());
      gen = build(s);
      current = gen;
      genInFlight = new Set();
      generations++;
      retireAt = next + lifetime(s.lifetimeMs);
    }
    const c = gen.cache;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((done) => setTimeout(done, wait));
    const at = next;
    next += -Math.log(1 - Math.random()) * (1000 / s.rate);
    requests++;
    if (at >= measureFrom) measured++;
    let call: Promise<{
      cache: { timings: { storeReadMs?: number; tokenCallMs?: number; writeMs?: number } };
    }>;
    if (Math.random() < s.appShare) {
      app++;
      call = c.acquireTokenForApp({ scopes: [s.appScope] });
    } else {
      obo++;
      const caller = pick(s.oboCdf, Math.random());
      const window = Math.floor((at - s.epochMs - s.offsetsMs[caller]) / s.windowMs) + 1;
      const assertion = s.assertions[caller][window];
      call = c.acquireTokenOnBehalfOf({ assertion, scopes: [s.oboScope] });
    }
    const p = call.then(
      (r) => {
        const t = r.cache.timings;
        if (t.storeReadMs !== undefined) {
          storeReadMs += t.storeReadMs;
          storeReadN++;
        }
        if (t.tokenCallMs !== undefined) {
          tokenMs += t.tokenCallMs + (t.writeMs ?? 0);
          tokenN++;
        }
      },
      (e: unknown) => {
        failures++;
        failureSample ??= e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      },
    );
    const mine = genInFlight;
    const tracked = p.finally(() => {
      inFlight.delete(tracked);
      mine.delete(tracked);
    });
    inFlight.add(tracked);
    mine.add(tracked);
  }
  await Promise.all(inFlight);
  clearTimeout(startCounting);
  counting = false;
  return {
    type: 'done',
    requests,
    measured,
    failures,
    failureSample,
    storeReadMsMean: storeReadN ? storeReadMs / storeReadN : 0,
    tokenCallMsMean: tokenN ? tokenMs / tokenN : 0,
    app,
    obo,
    generations,
    keyCalls: { ...keyCalls },
  };
}

process.on('message', (m: InstanceIn) => {
  const handle = async (): Promise<void> => {
    if (m.type === 'setup') {
      setup = m;
      current = build(m);
      send({ type: 'ready' });
    } else if (m.type === 'run') {
      send(await run(m.startAt, m.measureFrom, m.endAt));
    } else {
      current?.close();
      process.disconnect();
    }
  };
  handle().catch((e: unknown) =>
    send({ type: 'error', message: e instanceof Error ? e.message : String(e) }),
  );
});
