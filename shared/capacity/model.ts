/**
 * The capacity model (issue 19): from a workload (callers by kind, request rate, Zipf
 * popularity, instances and their lifetime, L1 settings, item sizes, token lifetimes) it
 * computes what the cache asks of the store, the authority and the key service, per
 * second in total and on the hottest key, and what that costs. Pure functions, no I/O:
 * `msal-cloud-cache capacity` prints them, docs/scale.md is generated from them, and
 * bench/capacity/simulate.ts checks them against a real run.
 *
 * How a request becomes calls (the cache's own rules, see README "How a request uses the
 * cache"): requests are spread evenly over the instances; an instance serves a partition
 * from L1 while its entry lives (ttl shortened by jitter, cut short by LRU eviction and by
 * the instance's end), else reads the store once (concurrent first loads of one
 * partition share the read). A token is used until `refreshMarginSeconds` before it
 * expires; then the request calls the authority, under a lease (one conditional write to
 * take it, one delete to release it) and writes the partition. An instance whose L1 still
 * holds the old token refreshes on its own and meets a version conflict (one failed write,
 * one re-read, one merged write). An on-behalf-of partition lives as long as its incoming
 * assertion: its first request is a miss. Data keys: each instance seals with one key per
 * partition kind for `maxAgeSeconds` (or `maxUses`); a key is made by a sealing episode (a
 * refresh with its writes) that finds none alive; each instance unwraps each other
 * instance's key once per `maxUnwrappedAgeSeconds` when it opens an item sealed with it.
 *
 * Arrivals are Poisson; the formulas are renewal arguments (exact for fixed lifetimes and
 * Poisson arrivals) plus Che's approximation for LRU eviction. Lease waiters and
 * multi-instance refreshes of on-behalf-of tokens are first-order terms.
 */
import { DATA_KEY_CACHE_DEFAULTS, L1_DEFAULTS } from '../defaults';
import { ConfigurationError } from '../errors';
import { PRICES, SECONDS_PER_MONTH } from './prices';

/** The three kinds of partition (README, "Three kinds of partition"). */
export type CallerKind = 'app' | 'obo' | 'user';

/** Every caller kind, in the order reports list them. */
export const CALLER_KINDS: readonly CallerKind[] = ['app', 'obo', 'user'];

/** A workload and the cache's settings: everything the model reads. */
export interface CapacityInput {
  /** Requests per second over the whole fleet (acquisitions through the cache). */
  readonly requestsPerSecond: number;
  /** Share of the requests by kind; the shares sum to 1. */
  readonly mix: Readonly<Record<CallerKind, number>>;
  /** Distinct callers by kind: app partitions (tenants), web API callers (OBO), signed-in users. */
  readonly callers: Readonly<Record<CallerKind, number>>;
  /** Zipf exponent of caller popularity within a kind (0: all alike; 1: the classic web curve). */
  readonly zipfExponent: number;
  /** Instances (Lambda execution environments, Function App workers) serving at once. */
  readonly instances: number;
  /** Mean lifetime of an instance, s (its L1 and data keys die with it); Infinity: never recycled. */
  readonly instanceLifetimeSeconds: number;
  readonly l1: {
    readonly enabled: boolean;
    readonly ttlSeconds: number;
    readonly maxBytes: number;
    /** Fraction 0..0.5: an entry lives ttl x (1 - jitter x U[0,1)). */
    readonly jitter: number;
  };
  /** Concurrent first loads of a partition in an instance share one read (`sharedReads`). */
  readonly sharedReads: boolean;
  /** Store item size by kind, bytes (envelope plus attributes). */
  readonly itemBytes: Readonly<Record<CallerKind, number>>;
  /** MSAL JSON size by kind, bytes: L1 holds it (as UTF-16, two bytes a character). */
  readonly plaintextBytes: Readonly<Record<CallerKind, number>>;
  /** Lifetime of the access tokens the authority issues, s. */
  readonly tokenLifetimeSeconds: number;
  /** Lifetime of the callers' incoming tokens (one OBO partition each), s. */
  readonly assertionLifetimeSeconds: number;
  /** MSAL renews a token this long before it expires (msal-node: 300 s); callers renew theirs too. */
  readonly refreshMarginSeconds: number;
  /** One store read, s (how long a read is in flight for others to share). */
  readonly storeReadSeconds: number;
  /** One token call with its lease and write, s (how long other instances wait on it). */
  readonly tokenCallSeconds: number;
  readonly dataKeys: {
    readonly maxAgeSeconds: number;
    readonly maxUses: number;
    readonly maxUnwrappedAgeSeconds: number;
    readonly maxUnwrapped: number;
  };
  /** The cross-instance lease on a miss (`coalescing.lease`). */
  readonly lease: boolean;
  /** Strongly consistent reads (what the stores do) or eventually consistent. */
  readonly consistency: 'strong' | 'eventual';
  readonly store: 'dynamodb' | 'cosmos';
  readonly keyService: 'kms' | 'keyvault';
}

/** The defaults: the cache's own defaults and a one-tenant daemon plus an OBO web API. */
export const DEFAULT_INPUT: CapacityInput = {
  requestsPerSecond: 1000,
  mix: { app: 0.1, obo: 0.9, user: 0 },
  callers: { app: 1, obo: 1_000_000, user: 0 },
  zipfExponent: 1,
  instances: 100,
  instanceLifetimeSeconds: 3600,
  l1: {
    enabled: true,
    ttlSeconds: L1_DEFAULTS.ttlMs / 1000,
    maxBytes: L1_DEFAULTS.maxBytes,
    jitter: L1_DEFAULTS.jitter,
  },
  sharedReads: true,
  // Measured by `npm run bench` (blob sizes): an OBO or app partition's envelope is
  // ~2.4 KB for ~4.9 KB of MSAL JSON; a user partition carries refresh and ID tokens too.
  itemBytes: { app: 2400, obo: 2400, user: 4000 },
  plaintextBytes: { app: 4900, obo: 4900, user: 9000 },
  // Entra ID: access tokens live 60-90 minutes (75 on average).
  tokenLifetimeSeconds: 4500,
  assertionLifetimeSeconds: 4500,
  refreshMarginSeconds: 300,
  storeReadSeconds: 0.005,
  tokenCallSeconds: 0.15,
  dataKeys: {
    maxAgeSeconds: DATA_KEY_CACHE_DEFAULTS.maxAgeMs / 1000,
    maxUses: DATA_KEY_CACHE_DEFAULTS.maxUses,
    maxUnwrappedAgeSeconds: DATA_KEY_CACHE_DEFAULTS.maxUnwrappedAgeMs / 1000,
    maxUnwrapped: DATA_KEY_CACHE_DEFAULTS.maxUnwrapped,
  },
  lease: true,
  consistency: 'strong',
  store: 'dynamodb',
  keyService: 'kms',
};

/** Calls per second, by what they are. */
export interface StoreCalls {
  /** GetItem / point reads. */
  readonly reads: number;
  /** PutItem / DeleteItem of partitions and leases, failed conditional writes included. */
  readonly writes: number;
  /** Of `writes`: lease takes and releases. */
  readonly leaseWrites: number;
  /** Of `writes`: conditional writes that failed (a conflict), billed all the same. */
  readonly failedWrites: number;
}

/** What the model predicts. Rates are per second unless named otherwise. */
export interface CapacityEstimate {
  readonly input: CapacityInput;
  readonly store: StoreCalls & {
    /** DynamoDB read request units, or Cosmos RU spent on reads. */
    readonly readUnits: number;
    /** DynamoDB write request units, or Cosmos RU spent on writes. */
    readonly writeUnits: number;
    readonly unitsPer1000Requests: { readonly read: number; readonly write: number };
    readonly byKind: Readonly<Record<CallerKind, StoreCalls>>;
  };
  readonly hottestKey: {
    readonly kind: CallerKind;
    readonly reads: number;
    readonly writes: number;
    readonly readUnits: number;
    readonly writeUnits: number;
    /** Its units against the store's per-key ceiling (DynamoDB: reads and writes apart; Cosmos: RU together). */
    readonly readLimit: number;
    readonly writeLimit: number;
    /** The larger of units / limit: above 1 the key is throttled. */
    readonly utilisation: number;
  };
  readonly tokenCalls: { readonly total: number; readonly byKind: Readonly<Record<CallerKind, number>> };
  readonly keyService: {
    /** Data keys made (KMS GenerateDataKey; Key Vault wrapKey + sign is two calls each). */
    readonly generate: number;
    /** Data keys unwrapped (KMS Decrypt, Key Vault unwrapKey). */
    readonly unwrap: number;
    /** Requests to the key service (what it bills and throttles). */
    readonly calls: number;
    readonly limit: number;
    readonly utilisation: number;
    /** Data keys made and unwrapped for each partition kind (each kind has its own keys). */
    readonly byKind: Readonly<Record<CallerKind, { readonly generate: number; readonly unwrap: number }>>;
  };
  readonly l1: {
    /** Che's characteristic time of one instance's LRU, s (Infinity: everything fits). */
    readonly characteristicTimeSeconds: number;
    /** Share of requests served from L1. */
    readonly hitRatio: number;
  };
  /** USD, at the prices in prices.ts (on demand / serverless). */
  readonly cost: {
    readonly storePerSecond: number;
    readonly keyServicePerSecond: number;
    readonly perMillionRequests: number;
    readonly perMonth: number;
  };
}

/** A group of callers of one kind with the same request rate (Zipf ranks grouped). */
export interface CallerBucket {
  readonly count: number;
  /** Requests per second of each caller in the group. */
  readonly rate: number;
}

/** Ranks computed one by one before the tail is grouped. */
const EXACT_RANKS = 1000;
/** Width of a tail group: ranks within 1% of each other. */
const GROUP_RATIO = 1.01;

/**
 * Splits `total` requests per second over `n` callers by Zipf(`s`) popularity: the caller of
 * rank k gets a share proportional to k^-s. The first 1,000 ranks are exact; the tail is
 * grouped in bands 1% wide, each band's mass from the integral of x^-s over it.
 */
export function zipfBuckets(n: number, s: number, total: number): CallerBucket[] {
  if (n <= 0 || total <= 0) return [];
  const masses: Array<{ count: number; mass: number }> = [];
  const exact = Math.min(n, EXACT_RANKS);
  for (let k = 1; k <= exact; k++) masses.push({ count: 1, mass: k ** -s });
  let lo = exact + 1;
  while (lo <= n) {
    const hi = Math.min(n, Math.max(lo, Math.floor(lo * GROUP_RATIO)));
    masses.push({ count: hi - lo + 1, mass: integralPower(lo - 0.5, hi + 0.5, s) });
    lo = hi + 1;
  }
  const sum = masses.reduce((acc, m) => acc + m.mass, 0);
  return masses.map((m) => ({ count: m.count, rate: (total * m.mass) / sum / m.count }));
}

/** The integral of x^-s from a to b. */
function integralPower(a: number, b: number, s: number): number {
  return Math.abs(s - 1) < 1e-12 ? Math.log(b / a) : (b ** (1 - s) - a ** (1 - s)) / (1 - s);
}

/** E[min(t, lifetime)] for an exponential lifetime of mean `life`: what dies with its instance. */
export function truncatedByLifetime(t: number, life: number): number {
  return Number.isFinite(life) ? life * (1 - Math.exp(-t / life)) : t;
}

/** P(Poisson(mu) >= k). */
export function poissonAtLeast(mu: number, k: number): number {
  if (k <= 0) return 1;
  if (mu <= 0) return 0;
  let term = Math.exp(-mu);
  let below = term;
  for (let m = 1; m < k; m++) {
    term *= mu / m;
    below += term;
  }
  return Math.max(0, 1 - below);
}

/**
 * Expected cache misses in a window of `w` seconds for Poisson requests at `rate` when each
 * miss makes the next `theta` seconds hits: a renewal count, exact for fixed theta.
 */
export function missesInWindow(rate: number, w: number, theta: number): number {
  if (rate <= 0 || w <= 0) return 0;
  if (theta <= 0) return rate * w;
  if (rate * w > 300) return (w + theta) / (theta + 1 / rate);
  let total = 0;
  // The k-th miss happens at (k-1) theta + Gamma(k, rate).
  for (let k = 1; ; k++) {
    const x = w - (k - 1) * theta;
    if (x <= 0) break;
    const p = poissonAtLeast(rate * x, k);
    total += p;
    if (p < 1e-12) break;
  }
  return total;
}

/**
 * Requests per L1 cycle (one miss and the hits after it) at one instance for a partition
 * requested at `rate` there, with entry life `theta` and LRU characteristic time `tc`.
 */
export function requestsPerCycle(rate: number, theta: number, tc: number): number {
  if (rate <= 0) return 1;
  if (!(tc < theta)) return 1 + rate * theta;
  const q = 1 - Math.exp(-rate * tc);
  if (q <= 0) return 1;
  if (q >= 1) return 1 + rate * theta;
  // Hits continue while every gap is under tc and the entry is younger than theta.
  const meanShortGap = 1 / rate - (tc * Math.exp(-rate * tc)) / q;
  const steps = theta / Math.max(meanShortGap, 1e-12);
  return 1 + (q * (1 - q ** steps)) / (1 - q);
}

/** Bytes one L1 entry of `kind` takes (what l1.ts counts: UTF-16 JSON, key, version, overhead). */
function l1EntryBytes(input: CapacityInput, kind: CallerKind): number {
  return 2 * input.plaintextBytes[kind] + 2 * (43 + 16) + 128;
}

/**
 * Che's characteristic time of one instance's L1: the T at which the expected bytes of
 * entries requested within the last T seconds fill `maxBytes`.
 */
export function characteristicTime(
  groups: ReadonlyArray<{ readonly count: number; readonly rate: number; readonly bytes: number }>,
  maxBytes: number,
): number {
  const filled = (t: number): number =>
    groups.reduce((acc, g) => acc + g.count * g.bytes * -Math.expm1(-g.rate * t), 0);
  const all = groups.reduce((acc, g) => acc + g.count * g.bytes, 0);
  if (all <= maxBytes) return Number.POSITIVE_INFINITY;
  let lo = 1e-9;
  let hi = 1e12;
  for (let i = 0; i < 200 && hi / lo > 1 + 1e-9; i++) {
    const mid = Math.sqrt(lo * hi);
    if (filled(mid) > maxBytes) hi = mid;
    else lo = mid;
  }
  return Math.sqrt(lo * hi);
}

/** Per caller, per second: what one caller's partitions cost. */
interface CallerCost {
  reads: number;
  writes: number;
  leaseWrites: number;
  failedWrites: number;
  tokenCalls: number;
  /** Partition writes that sealed an envelope (the failed conditional ones too). */
  seals: number;
  /**
   * Sealing episodes per second, fleet-wide: one instance sealing once or a few times in a
   * row for one token (a refresh, or a stale refresh's failed and merged writes), all with
   * one data key.
   */
  sealEvents: number;
  /** Seconds at least between two episodes of this caller at one instance. */
  sealPeriodSeconds: number;
  /**
   * Items of this caller that an instance ending at a random moment had opened (or sealed)
   * and that its successor reads again before they are superseded: each needs its data key
   * unwrapped again, since a new instance starts with no keys.
   */
  itemsMetAgain: number;
  /** Items sealed by another instance that one instance opens for the first time. */
  foreignOpensPerInstance: number;
  l1Hits: number;
  requests: number;
}

/** Checks every field, naming the one at fault. @throws ConfigurationError */
export function validateInput(input: CapacityInput): void {
  const problems: ConfigurationError[] = [];
  const positive = (v: number, name: string, allowInfinity = false): void => {
    if (!(typeof v === 'number' && v > 0 && (allowInfinity ? !Number.isNaN(v) : Number.isFinite(v))))
      problems.push(new ConfigurationError(name, `expected a positive number, got ${String(v)}`));
  };
  const nonNegative = (v: number, name: string): void => {
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
      problems.push(new ConfigurationError(name, `expected a number >= 0, got ${String(v)}`));
  };
  positive(input.requestsPerSecond, 'requestsPerSecond');
  positive(input.instances, 'instances');
  positive(input.instanceLifetimeSeconds, 'instanceLifetimeSeconds', true);
  nonNegative(input.zipfExponent, 'zipfExponent');
  for (const kind of CALLER_KINDS) {
    nonNegative(input.mix[kind], `mix.${kind}`);
    nonNegative(input.callers[kind], `callers.${kind}`);
    positive(input.itemBytes[kind], `itemBytes.${kind}`);
    positive(input.plaintextBytes[kind], `plaintextBytes.${kind}`);
    if (input.mix[kind] > 0 && !(input.callers[kind] >= 1))
      problems.push(
        new ConfigurationError(
          `callers.${kind}`,
          `mix.${kind} is ${input.mix[kind]}, so at least 1 caller is needed`,
        ),
      );
  }
  const mixSum = CALLER_KINDS.reduce((acc, k) => acc + (input.mix[k] || 0), 0);
  if (Math.abs(mixSum - 1) > 1e-6)
    problems.push(new ConfigurationError('mix', `expected shares summing to 1, got ${mixSum}`));
  positive(input.l1.ttlSeconds, 'l1.ttlSeconds');
  positive(input.l1.maxBytes, 'l1.maxBytes');
  if (!(input.l1.jitter >= 0 && input.l1.jitter <= 0.5))
    problems.push(
      new ConfigurationError('l1.jitter', `expected a fraction from 0 to 0.5, got ${input.l1.jitter}`),
    );
  positive(input.tokenLifetimeSeconds, 'tokenLifetimeSeconds');
  positive(input.assertionLifetimeSeconds, 'assertionLifetimeSeconds');
  nonNegative(input.refreshMarginSeconds, 'refreshMarginSeconds');
  if (input.tokenLifetimeSeconds <= input.refreshMarginSeconds)
    problems.push(
      new ConfigurationError('tokenLifetimeSeconds', 'expected a lifetime longer than refreshMarginSeconds'),
    );
  nonNegative(input.storeReadSeconds, 'storeReadSeconds');
  nonNegative(input.tokenCallSeconds, 'tokenCallSeconds');
  positive(input.dataKeys.maxAgeSeconds, 'dataKeys.maxAgeSeconds');
  positive(input.dataKeys.maxUses, 'dataKeys.maxUses');
  positive(input.dataKeys.maxUnwrappedAgeSeconds, 'dataKeys.maxUnwrappedAgeSeconds');
  positive(input.dataKeys.maxUnwrapped, 'dataKeys.maxUnwrapped');
  if (input.consistency !== 'strong' && input.consistency !== 'eventual')
    problems.push(
      new ConfigurationError('consistency', `expected strong or eventual, got ${String(input.consistency)}`),
    );
  if (input.store !== 'dynamodb' && input.store !== 'cosmos')
    problems.push(new ConfigurationError('store', `expected dynamodb or cosmos, got ${String(input.store)}`));
  if (input.keyService !== 'kms' && input.keyService !== 'keyvault')
    problems.push(
      new ConfigurationError('keyService', `expected kms or keyvault, got ${String(input.keyService)}`),
    );
  if (problems.length > 0) throw ConfigurationError.of(problems);
}

/** Read and write units of one call on the chosen store. */
function units(input: CapacityInput, kind: CallerKind): { read: number; write: number; lease: number } {
  const bytes = input.itemBytes[kind];
  if (input.store === 'dynamodb') {
    const read = Math.ceil(bytes / 4096) * (input.consistency === 'strong' ? 1 : 0.5);
    return { read, write: Math.ceil(bytes / 1024), lease: 1 };
  }
  const kb = Math.max(1, bytes / 1024);
  const read = kb * PRICES.cosmos.pointReadRuPerKb.value * (input.consistency === 'strong' ? 2 : 1);
  return { read, write: kb * PRICES.cosmos.writeRuPerKb.value, lease: PRICES.cosmos.writeRuPerKb.value };
}

/** The model: what `input` asks of the store, the authority and the key service, and its cost. */
export function estimateCapacity(input: CapacityInput): CapacityEstimate {
  validateInput(input);
  const n = input.instances;
  const life = input.instanceLifetimeSeconds;
  const buckets = Object.fromEntries(
    CALLER_KINDS.map((kind) => [
      kind,
      zipfBuckets(
        Math.round(input.callers[kind]),
        input.zipfExponent,
        input.requestsPerSecond * input.mix[kind],
      ),
    ]),
  ) as Record<CallerKind, CallerBucket[]>;

  const tc = input.l1.enabled
    ? characteristicTime(
        CALLER_KINDS.flatMap((kind) =>
          buckets[kind].map((b) => ({ count: b.count, rate: b.rate / n, bytes: l1EntryBytes(input, kind) })),
        ),
        input.l1.maxBytes,
      )
    : 0;
  const theta = input.l1.enabled
    ? truncatedByLifetime(input.l1.ttlSeconds * (1 - input.l1.jitter / 2), life)
    : 0;

  const perCaller = (kind: CallerKind, rate: number): CallerCost =>
    kind === 'obo' ? windowedCaller(input, rate, theta, tc) : lastingCaller(input, rate, theta, tc);

  const zero = (): CallerCost => ({
    reads: 0,
    writes: 0,
    leaseWrites: 0,
    failedWrites: 0,
    tokenCalls: 0,
    seals: 0,
    sealEvents: 0,
    sealPeriodSeconds: 0,
    itemsMetAgain: 0,
    foreignOpensPerInstance: 0,
    l1Hits: 0,
    requests: 0,
  });
  const byKind = {} as Record<CallerKind, CallerCost>;
  const episodes = {} as Record<CallerKind, SealEpisodes[]>;
  let hottest: { kind: CallerKind; cost: CallerCost; score: number } | undefined;
  for (const kind of CALLER_KINDS) {
    const sum = zero();
    episodes[kind] = [];
    for (const b of buckets[kind]) {
      const c = perCaller(kind, b.rate);
      episodes[kind].push({
        count: b.count,
        perSecond: c.sealEvents,
        periodSeconds: c.sealPeriodSeconds,
        metAgain: c.itemsMetAgain,
      });
      for (const field of Object.keys(sum) as Array<keyof CallerCost>) sum[field] += c[field] * b.count;
      const u = units(input, kind);
      const score = Math.max(
        c.reads * u.read,
        (c.writes - c.leaseWrites) * u.write + c.leaseWrites * u.lease,
      );
      if (!hottest || score > hottest.score) hottest = { kind, cost: c, score };
    }
    byKind[kind] = sum;
  }

  let readUnits = 0;
  let writeUnits = 0;
  for (const kind of CALLER_KINDS) {
    const u = units(input, kind);
    readUnits += byKind[kind].reads * u.read;
    writeUnits +=
      (byKind[kind].writes - byKind[kind].leaseWrites) * u.write + byKind[kind].leaseWrites * u.lease;
  }
  const total = (f: keyof CallerCost): number => CALLER_KINDS.reduce((acc, k) => acc + byKind[k][f], 0);

  const keys = keyServiceCalls(input, byKind, episodes);
  const hot = hottest ?? { kind: 'app' as CallerKind, cost: zero(), score: 0 };
  const hu = units(input, hot.kind);
  const hotReadUnits = hot.cost.reads * hu.read;
  const hotWriteUnits = (hot.cost.writes - hot.cost.leaseWrites) * hu.write + hot.cost.leaseWrites * hu.lease;
  const dynamo = input.store === 'dynamodb';
  const readLimit = dynamo
    ? PRICES.dynamodb.partitionReadUnitsPerSecond.value
    : PRICES.cosmos.logicalPartitionRuPerSecond.value;
  const writeLimit = dynamo
    ? PRICES.dynamodb.partitionWriteUnitsPerSecond.value
    : PRICES.cosmos.logicalPartitionRuPerSecond.value;
  const utilisation = dynamo
    ? Math.max(hotReadUnits / readLimit, hotWriteUnits / writeLimit)
    : (hotReadUnits + hotWriteUnits) / readLimit;

  const storePerSecond = dynamo
    ? readUnits * PRICES.dynamodb.readRequestUnit.value + writeUnits * PRICES.dynamodb.writeRequestUnit.value
    : (readUnits + writeUnits) * PRICES.cosmos.serverlessRequestUnit.value;
  const keyPrice = input.keyService === 'kms' ? PRICES.kms.request.value : PRICES.keyVault.transaction.value;
  const keyServicePerSecond = keys.calls * keyPrice;
  const requests = input.requestsPerSecond;
  const calls = (k: CallerKind): StoreCalls => ({
    reads: byKind[k].reads,
    writes: byKind[k].writes,
    leaseWrites: byKind[k].leaseWrites,
    failedWrites: byKind[k].failedWrites,
  });
  return {
    input,
    store: {
      reads: total('reads'),
      writes: total('writes'),
      leaseWrites: total('leaseWrites'),
      failedWrites: total('failedWrites'),
      readUnits,
      writeUnits,
      unitsPer1000Requests: { read: (readUnits / requests) * 1000, write: (writeUnits / requests) * 1000 },
      byKind: { app: calls('app'), obo: calls('obo'), user: calls('user') },
    },
    hottestKey: {
      kind: hot.kind,
      reads: hot.cost.reads,
      writes: hot.cost.writes,
      readUnits: hotReadUnits,
      writeUnits: hotWriteUnits,
      readLimit,
      writeLimit,
      utilisation,
    },
    tokenCalls: {
      total: total('tokenCalls'),
      byKind: { app: byKind.app.tokenCalls, obo: byKind.obo.tokenCalls, user: byKind.user.tokenCalls },
    },
    keyService: keys,
    l1: { characteristicTimeSeconds: tc, hitRatio: total('l1Hits') / requests },
    cost: {
      storePerSecond,
      keyServicePerSecond,
      perMillionRequests: ((storePerSecond + keyServicePerSecond) / requests) * 1e6,
      perMonth: (storePerSecond + keyServicePerSecond) * SECONDS_PER_MONTH,
    },
  };
}

/**
 * Reads at one instance for a partition requested there at `rate`: with L1, one per cycle
 * (requests arriving while the miss's read is in flight join it with shared reads, or read
 * too without); without L1, one per request unless a shared read is in flight.
 */
function instanceReads(
  input: CapacityInput,
  rate: number,
  theta: number,
  tc: number,
): { reads: number; hits: number; cycleTheta: number } {
  const d = input.storeReadSeconds;
  if (!input.l1.enabled) {
    const reads = input.sharedReads ? rate / (1 + rate * d) : rate;
    return { reads, hits: 0, cycleTheta: 0 };
  }
  const m = requestsPerCycle(rate, theta, tc);
  // Effective entry life implied by m (theta itself when nothing is evicted).
  const cycleTheta = rate > 0 ? (m - 1) / rate : 0;
  const perCycle = input.sharedReads ? 1 : 1 + rate * d;
  const cycles = rate / (m + rate * d);
  return { reads: cycles * perCycle, hits: rate - cycles * perCycle, cycleTheta };
}

/** A partition that lasts (app, user): its token is renewed every usable lifetime. */
function lastingCaller(input: CapacityInput, rate: number, theta: number, tc: number): CallerCost {
  const n = input.instances;
  const perInstance = rate / n;
  const { reads: instReads, hits, cycleTheta } = instanceReads(input, perInstance, theta, tc);
  const usable = input.tokenLifetimeSeconds - input.refreshMarginSeconds;
  const renewals = rate > 0 ? 1 / (usable + 1 / rate) : 0;
  // Instances whose L1 still holds the old token when they next serve a request refresh too.
  let stale = 0;
  if (input.l1.enabled && n > 1 && perInstance > 0 && cycleTheta > 0) {
    const x = perInstance * cycleTheta;
    const live = cycleTheta / (cycleTheta + 1 / perInstance);
    stale = (n - 1) * live * (1 - -Math.expm1(-x) / x);
  }
  const waiters = rate * input.tokenCallSeconds * ((n - 1) / n);
  const lease = input.lease ? 1 : 0;
  const tokenCalls = renewals * (1 + stale) + (input.lease ? 0 : renewals * waiters);
  const leaseWrites = input.lease ? renewals * (2 * (1 + stale) + waiters) : 0;
  const failedWrites = renewals * stale;
  const partitionWrites = renewals * (1 + 2 * stale);
  const versions = renewals * (1 + stale);
  const readsPerInstance = instReads;
  const reads = n * instReads + renewals * (stale + lease * 2 * waiters);
  return {
    reads,
    writes: partitionWrites + leaseWrites,
    leaseWrites,
    failedWrites,
    tokenCalls,
    seals: partitionWrites,
    sealEvents: versions,
    sealPeriodSeconds: usable,
    itemsMetAgain: metAgain(perInstance, usable + (rate > 0 ? 1 / rate : 0)),
    foreignOpensPerInstance: Math.min(versions, readsPerInstance) * ((n - 1) / n),
    l1Hits: n * hits,
    requests: rate,
  };
}

/** A partition per incoming assertion (OBO): lives one assertion window, its first request misses. */
function windowedCaller(input: CapacityInput, rate: number, theta: number, tc: number): CallerCost {
  const n = input.instances;
  const perInstance = rate / n;
  const w = Math.max(1, input.assertionLifetimeSeconds - input.refreshMarginSeconds);
  const usable = input.tokenLifetimeSeconds - input.refreshMarginSeconds;
  const active = -Math.expm1(-rate * w);
  const renewalsAfterFirst = rate > 0 ? Math.max(0, w - usable - 1 / rate) / (usable + 1 / rate) : 0;
  const callsPerWindow = active + renewalsAfterFirst;
  const waiters = rate * input.tokenCallSeconds * ((n - 1) / n);
  let readsPerWindow: number;
  let hitsPerWindow: number;
  if (!input.l1.enabled) {
    const r = instanceReads(input, perInstance, 0, 0).reads;
    readsPerWindow = n * r * w;
    hitsPerWindow = 0;
  } else {
    const { cycleTheta } = instanceReads(input, perInstance, theta, tc);
    const misses = missesInWindow(perInstance, w, cycleTheta + input.storeReadSeconds);
    const extraPerMiss = input.sharedReads ? 0 : perInstance * input.storeReadSeconds;
    readsPerWindow = n * misses * (1 + extraPerMiss);
    hitsPerWindow = rate * w - readsPerWindow;
  }
  const lease = input.lease ? 1 : 0;
  const leaseWrites = lease * callsPerWindow * (2 + waiters);
  const tokenCalls = callsPerWindow * (1 + (input.lease ? 0 : waiters));
  const firstOpens = Math.max(0, -Math.expm1(-perInstance * w) - active / n);
  return {
    reads: (readsPerWindow + lease * callsPerWindow * 2 * waiters) / w,
    writes: (tokenCalls + leaseWrites) / w,
    leaseWrites: leaseWrites / w,
    failedWrites: 0,
    tokenCalls: tokenCalls / w,
    seals: tokenCalls / w,
    sealEvents: tokenCalls / w,
    sealPeriodSeconds: Math.min(w, usable),
    itemsMetAgain: metAgain(perInstance, Math.min(w, usable)),
    foreignOpensPerInstance: firstOpens / w,
    l1Hits: Math.max(0, hitsPerWindow) / w,
    requests: rate,
  };
}

/**
 * For an item that lives `span` seconds, requested at one instance at `rate`: the chance
 * that the instance had a request for it before a random moment of its life (so it sealed
 * or opened it) and has another after it: (1/span) ∫ (1 - e^-rate t)(1 - e^-rate (span - t)) dt.
 */
export function metAgain(rate: number, span: number): number {
  if (!(rate > 0 && span > 0)) return 0;
  const x = rate * span;
  return 1 - (2 * -Math.expm1(-x)) / x + Math.exp(-x);
}

/** One bucket's sealing episodes: `count` callers, each with `perSecond` fleet-wide. */
interface SealEpisodes {
  readonly count: number;
  readonly perSecond: number;
  readonly periodSeconds: number;
  /** {@link CallerCost.itemsMetAgain} of each caller. */
  readonly metAgain: number;
}

/**
 * Key-service calls: keys made per instance and kind, and foreign keys unwrapped. A data
 * key serves every seal of its kind at its instance for `maxAgeSeconds`, so what makes keys
 * is sealing episodes (a refresh and the writes that go with it), not seals: an episode
 * makes a key unless another caller's episode made one within the last `maxAgeSeconds`
 * (the others taken as Poisson). A caller's own previous episode counts only when its
 * episodes come closer together than a key's age.
 */
function keyServiceCalls(
  input: CapacityInput,
  byKind: Readonly<Record<CallerKind, CallerCost>>,
  episodes: Readonly<Record<CallerKind, readonly SealEpisodes[]>>,
): CapacityEstimate['keyService'] {
  const n = input.instances;
  const life = input.instanceLifetimeSeconds;
  const age = truncatedByLifetime(input.dataKeys.maxAgeSeconds, life);
  let generate = 0;
  let unwrap = 0;
  const perKind = {} as Record<CallerKind, { generate: number; unwrap: number }>;
  for (const kind of CALLER_KINDS) {
    perKind[kind] = { generate: 0, unwrap: 0 };
    const seals = byKind[kind].seals / n;
    if (seals <= 0) continue;
    // Per instance: every episode of the kind, then those that find no live key.
    const all = episodes[kind].reduce((acc, e) => acc + (e.count * e.perSecond) / n, 0);
    const makers = episodes[kind].reduce((acc, e) => {
      const own = e.periodSeconds > age ? e.perSecond / n : 0;
      return acc + (e.count * (e.perSecond / n)) / (1 + Math.max(0, all - own) * age);
    }, 0);
    const perInstance = Math.max(makers, seals / input.dataKeys.maxUses);
    const born = n * perInstance;
    generate += born;
    perKind[kind].generate = born;
    // An instance that ends leaves a successor with no keys: it unwraps again the keys of
    // the live items its predecessor had met and it reads, distinct keys of the K whose
    // items are live (born over a key's age and its items' life).
    let restarts = 0;
    if (Number.isFinite(life)) {
      const met = episodes[kind].reduce((acc, e) => acc + e.count * e.metAgain, 0);
      const weight = episodes[kind].reduce((acc, e) => acc + e.count * e.perSecond, 0);
      const period =
        weight > 0
          ? episodes[kind].reduce((acc, e) => acc + e.count * e.perSecond * e.periodSeconds, 0) / weight
          : 0;
      const live = born * (age + period);
      restarts = live > 0 ? (n / life) * live * -Math.expm1(-met / live) : 0;
    }
    const foreignBorn = born * ((n - 1) / n);
    if (foreignBorn <= 0) {
      unwrap += restarts;
      perKind[kind].unwrap = restarts;
      continue;
    }
    const opens = byKind[kind].foreignOpensPerInstance;
    // Each foreign key is unwrapped once if this instance opens any item sealed with it,
    // again when its unwrapped copy ages out (or is evicted) while it is still in use.
    const kept = Math.min(
      truncatedByLifetime(input.dataKeys.maxUnwrappedAgeSeconds, life),
      input.dataKeys.maxUnwrapped / foreignBorn,
    );
    const again = Math.max(1, age / kept);
    const unwrapped = n * foreignBorn * -Math.expm1(-opens / foreignBorn) * again + restarts;
    unwrap += unwrapped;
    perKind[kind].unwrap = unwrapped;
  }
  const perGenerate = input.keyService === 'kms' ? 1 : 2;
  const calls = generate * perGenerate + unwrap;
  const limit =
    input.keyService === 'kms'
      ? PRICES.kms.requestsPerSecondQuota.value
      : PRICES.keyVault.transactionsPerSecondLimit.value;
  return { generate, unwrap, calls, limit, utilisation: calls / limit, byKind: perKind };
}

/** `input` with `changes` applied (nested objects merged one level deep). */
export function withInput(input: CapacityInput, changes: DeepPartial<CapacityInput>): CapacityInput {
  const out: Record<string, unknown> = { ...input };
  for (const [key, value] of Object.entries(changes)) {
    const current = (input as unknown as Record<string, unknown>)[key];
    out[key] =
      value !== null && typeof value === 'object' && typeof current === 'object'
        ? { ...(current as object), ...value }
        : value;
  }
  return out as unknown as CapacityInput;
}

/** A partial input, one level of nesting deep. */
export type DeepPartial<T> = { -readonly [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };

/**
 * The request rate at which `measure(estimate)` reaches 1 (a limit), searched from `from`
 * (default 1) to 10^7 requests per second; undefined when it stays below 1 (or is above it
 * from the start). `at` says what else changes with the rate (e.g. a fleet that grows with
 * it); by default only `requestsPerSecond` does.
 */
export function breakPoint(
  input: CapacityInput,
  measure: (e: CapacityEstimate) => number,
  options: { readonly at?: (rps: number) => DeepPartial<CapacityInput>; readonly from?: number } = {},
): number | undefined {
  const changes = options.at ?? ((rps: number) => ({ requestsPerSecond: rps }));
  const at = (rps: number): number => measure(estimateCapacity(withInput(input, changes(rps))));
  let lo = options.from ?? 1;
  let hi = 1e7;
  if (at(lo) >= 1 || at(hi) < 1) return undefined;
  for (let i = 0; i < 60 && hi / lo > 1.001; i++) {
    const mid = Math.sqrt(lo * hi);
    if (at(mid) >= 1) hi = mid;
    else lo = mid;
  }
  return hi;
}
