/**
 * The capacity model (issue 19): its building blocks against values computed by hand,
 * whole estimates in cases small enough to work out on paper, and the directions every
 * setting must move the result in.
 */
import {
  breakPoint,
  characteristicTime,
  DEFAULT_INPUT,
  estimateCapacity,
  missesInWindow,
  poissonAtLeast,
  requestsPerCycle,
  truncatedByLifetime,
  metAgain,
  validateInput,
  withInput,
  zipfBuckets,
  type CapacityInput,
} from '../../../shared/capacity/model';
import { PRICES } from '../../../shared/capacity/prices';
import { ConfigurationError } from '../../../shared/errors';
import { thrownBy } from '../thrown';

/** One daemon tenant, one instance, no L1: every request is a store read. */
const daemonOnly: CapacityInput = withInput(DEFAULT_INPUT, {
  requestsPerSecond: 10,
  mix: { app: 1, obo: 0, user: 0 },
  callers: { app: 1, obo: 0, user: 0 },
  instances: 1,
  instanceLifetimeSeconds: Number.POSITIVE_INFINITY,
  l1: { enabled: false },
  sharedReads: false,
  tokenLifetimeSeconds: 3600,
  refreshMarginSeconds: 300,
});

describe('zipfBuckets', () => {
  it('splits by rank^-s: 3 callers, s = 1, 11 rps -> 6, 3, 2', () => {
    const buckets = zipfBuckets(3, 1, 11);
    expect(buckets.map((b) => b.count)).toEqual([1, 1, 1]);
    expect(buckets.map((b) => b.rate)).toEqual([
      expect.closeTo(6, 10),
      expect.closeTo(3, 10),
      expect.closeTo(2, 10),
    ]);
  });

  it('s = 0 gives every caller the same rate', () => {
    const buckets = zipfBuckets(5000, 0, 100);
    for (const b of buckets) expect(b.rate).toBeCloseTo(0.02, 10);
    expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(5000);
  });

  it('groups a long tail and keeps the total: 10 million callers', () => {
    const buckets = zipfBuckets(10_000_000, 1, 50_000);
    expect(buckets.length).toBeLessThan(2000);
    expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(10_000_000);
    expect(buckets.reduce((n, b) => n + b.count * b.rate, 0)).toBeCloseTo(50_000, 6);
    // Rank 1's share is 1 / H(10^7) = 1 / 16.695 (the harmonic number, to 3 decimals).
    expect(buckets[0].rate / 50_000).toBeCloseTo(1 / 16.695, 4);
  });
});

describe('building blocks', () => {
  it('poissonAtLeast: P(Poisson(2) >= 1) = 1 - e^-2, P(>= 3) = 1 - 5e^-2', () => {
    expect(poissonAtLeast(2, 1)).toBeCloseTo(1 - Math.exp(-2), 12);
    expect(poissonAtLeast(2, 3)).toBeCloseTo(1 - 5 * Math.exp(-2), 12);
    expect(poissonAtLeast(2, 0)).toBe(1);
  });

  it('truncatedByLifetime: E[min(300, Exp(mean 300))] = 300 (1 - 1/e)', () => {
    expect(truncatedByLifetime(300, 300)).toBeCloseTo(300 * (1 - Math.exp(-1)), 9);
    expect(truncatedByLifetime(300, Number.POSITIVE_INFINITY)).toBe(300);
  });

  it('requestsPerCycle: without eviction 1 + rate x ttl', () => {
    expect(requestsPerCycle(2, 10, Number.POSITIVE_INFINITY)).toBe(21);
  });

  it('requestsPerCycle: an LRU much shorter than the ttl gives e^(rate x tc) (pure LRU)', () => {
    expect(requestsPerCycle(0.01, 1e9, 50)).toBeCloseTo(Math.exp(0.5), 3);
  });

  it('missesInWindow: no L1 is one miss a request; one request per window is one miss', () => {
    expect(missesInWindow(3, 100, 0)).toBe(300);
    // theta longer than the window: only the first request misses: P(at least one) = 1 - e^-1.
    expect(missesInWindow(0.01, 100, 1000)).toBeCloseTo(1 - Math.exp(-1), 12);
  });

  it('missesInWindow: two misses possible when theta < window: P(N>=1) + P(Gamma(2) <= w - theta)', () => {
    const rate = 0.5;
    const expected = poissonAtLeast(rate * 10, 1) + poissonAtLeast(rate * 4, 2);
    expect(missesInWindow(rate, 10, 6)).toBeCloseTo(expected, 12);
  });

  it('characteristicTime: fills maxBytes exactly (one group: bytes x count x (1 - e^-rT) = max)', () => {
    const t = characteristicTime([{ count: 1000, rate: 0.01, bytes: 1000 }], 500_000);
    expect(t).toBeCloseTo(Math.log(2) / 0.01, 3);
    expect(characteristicTime([{ count: 10, rate: 1, bytes: 10 }], 1000)).toBe(Number.POSITIVE_INFINITY);
  });
});

/** One kind of caller only: `callers` of it at `rps` over `instances` instances. */
function only(
  kind: 'app' | 'obo',
  rps: number,
  callers: number,
  instances: number,
  more: Parameters<typeof withInput>[1] = {},
): CapacityInput {
  return withInput(DEFAULT_INPUT, {
    requestsPerSecond: rps,
    mix: { app: kind === 'app' ? 1 : 0, obo: kind === 'obo' ? 1 : 0, user: 0 },
    callers: { app: kind === 'app' ? callers : 0, obo: kind === 'obo' ? callers : 0, user: 0 },
    instances,
    instanceLifetimeSeconds: Number.POSITIVE_INFINITY,
    ...more,
  });
}

describe('estimateCapacity, worked by hand', () => {
  it('one daemon tenant, L1 off, one instance: 10 reads/s; one renewal every 3300.1 s', () => {
    const e = estimateCapacity(daemonOnly);
    const renewals = 1 / (3300 + 0.1); // usable 3600 - 300 s, plus the wait for the next request

    expect(e.store.reads).toBeCloseTo(10, 9);
    expect(e.tokenCalls.total).toBeCloseTo(renewals, 12);
    // A renewal: lease take, partition write, lease release.
    expect(e.store.writes).toBeCloseTo(3 * renewals, 12);
    expect(e.store.leaseWrites).toBeCloseTo(2 * renewals, 12);
    // 2,400 B: 1 read unit (4 KB), 3 write units (1 KB); a lease item is 1.
    expect(e.store.readUnits).toBeCloseTo(10, 9);
    expect(e.store.writeUnits).toBeCloseTo(5 * renewals, 12);
    expect(e.store.unitsPer1000Requests.read).toBeCloseTo(1000, 6);
    // Each renewal seals 3,000 s after the last one's key (300 s) aged out: one new key each.
    expect(e.keyService.generate).toBeCloseTo(renewals, 12);
    expect(e.keyService.byKind.app.generate).toBeCloseTo(renewals, 12);
    expect(e.keyService.unwrap).toBe(0);
    expect(e.hottestKey).toMatchObject({ kind: 'app', readLimit: 3000, writeLimit: 1000 });
    expect(e.hottestKey.utilisation).toBeCloseTo(10 / 3000, 9);
    const perSecond =
      10 * PRICES.dynamodb.readRequestUnit.value +
      5 * renewals * PRICES.dynamodb.writeRequestUnit.value +
      e.keyService.generate * PRICES.kms.request.value;
    expect(e.cost.perMillionRequests).toBeCloseTo((perSecond / 10) * 1e6, 9);
  });

  it('eventually consistent reads halve the read units, not the reads', () => {
    const strong = estimateCapacity(daemonOnly);
    const eventual = estimateCapacity(withInput(daemonOnly, { consistency: 'eventual' }));
    expect(eventual.store.reads).toBeCloseTo(strong.store.reads, 9);
    expect(eventual.store.readUnits).toBeCloseTo(strong.store.readUnits / 2, 9);
  });

  it('the hot daemon key breaks at 3,000 rps without L1 or shared reads (1 read unit a request)', () => {
    const rps = breakPoint(daemonOnly, (e) => e.hottestKey.readUnits / e.hottestKey.readLimit);
    expect(rps).toBeGreaterThan(2990);
    expect(rps).toBeLessThan(3010);
  });

  it('shared reads: rate / (1 + rate x read time) reads per instance', () => {
    const e = estimateCapacity(withInput(daemonOnly, { requestsPerSecond: 400, sharedReads: true }));
    expect(e.store.reads).toBeCloseTo(400 / (1 + 400 * 0.005), 6);
  });

  it('L1 on, 10 instances, 1,000 rps, ttl 100 s: each instance reads once per 100 s + wait', () => {
    const input = withInput(daemonOnly, {
      requestsPerSecond: 1000,
      instances: 10,
      l1: { enabled: true, ttlSeconds: 100, jitter: 0 },
      sharedReads: true,
      storeReadSeconds: 0,
      tokenCallSeconds: 0,
    });
    const e = estimateCapacity(input);
    const perInstance = 100 / (1 + 100 * 100);
    // Plus one re-read per instance that refreshed on its own (its write conflicted).
    const renewals = 1 / (3300 + 1 / 1000);
    const stale = 9 * (100 / (100 + 1 / 100)) * (1 - (1 - Math.exp(-100 * 100)) / (100 * 100));
    expect(e.store.reads).toBeCloseTo(10 * perInstance + renewals * stale, 9);
    expect(e.tokenCalls.total).toBeCloseTo(renewals * (1 + stale), 9);
    expect(e.store.failedWrites).toBeCloseTo(renewals * stale, 9);
    expect(e.l1.hitRatio).toBeCloseTo(1 - (10 * perInstance) / 1000, 9);
  });

  it('an OBO caller seen once per assertion window makes one token call and three writes per window', () => {
    const input = withInput(daemonOnly, {
      requestsPerSecond: 0.001,
      mix: { app: 0, obo: 1, user: 0 },
      callers: { app: 0, obo: 1, user: 0 },
      assertionLifetimeSeconds: 3600,
      tokenCallSeconds: 0,
    });
    const e = estimateCapacity(input);
    const window = 3300;
    const active = 1 - Math.exp(-0.001 * window);
    expect(e.tokenCalls.byKind.obo).toBeCloseTo(active / window, 12);
    expect(e.store.writes).toBeCloseTo((3 * active) / window, 12);
    expect(e.store.reads).toBeCloseTo(0.001, 12);
  });

  it("KMS: N busy instances reading each other's items unwrap N x (N - 1) keys per key age", () => {
    // Age, not uses, ends each key (10,000 uses would end them first at this rate).
    const input = only('obo', 20_000, 1e7, 20, { dataKeys: { maxUses: 1e9 } });
    const e = estimateCapacity(input);
    const keysPerSecond = 20 / 300; // each instance seals all the time: one key per 300 s
    expect(e.keyService.generate).toBeCloseTo(keysPerSecond, 2);
    expect(e.keyService.unwrap).toBeCloseTo(20 * keysPerSecond * (19 / 20), 2);
  });

  it('data keys: a refresh episode seals with one key; many small callers share keys as Poisson', () => {
    // One app partition, 4 instances with L1: a renewal is one refresh plus the stale
    // instances' failed and merged writes, all within seconds: one key per instance episode.
    const burst = only('app', 40, 1, 4, { tokenLifetimeSeconds: 320, dataKeys: { maxAgeSeconds: 2 } });
    const b = estimateCapacity(burst);
    const episodes = b.tokenCalls.total; // a refresher or a stale instance: one token call each
    expect(b.store.writes - b.store.leaseWrites).toBeGreaterThan(1.5 * episodes);
    expect(b.keyService.generate).toBeCloseTo(episodes, 12);

    // 10^7 OBO callers, each seen about once: episodes are Poisson, rate E per instance,
    // and a key serves all of them for its 300 s: E / (1 + 300 E) per instance.
    const many = only('obo', 100, 1e7, 10);
    const m = estimateCapacity(many);
    const perInstance = m.tokenCalls.total / 10;
    expect(m.keyService.generate).toBeCloseTo((10 * perInstance) / (1 + 300 * perInstance), 6);
  });

  it('metAgain: (1/span) ∫ (1 - e^-rt)(1 - e^-r(span - t)) dt, by quadrature', () => {
    const quad = (rate: number, span: number): number => {
      const steps = 20_000;
      let acc = 0;
      for (let i = 0; i < steps; i++) {
        const t = ((i + 0.5) * span) / steps;
        acc += (1 - Math.exp(-rate * t)) * (1 - Math.exp(-rate * (span - t)));
      }
      return acc / steps;
    };
    for (const [rate, span] of [
      [0.05, 12],
      [1, 12],
      [3, 20],
      [0.001, 3300],
    ] as const)
      expect(metAgain(rate, span)).toBeCloseTo(quad(rate, span), 6);
    expect(metAgain(0, 12)).toBe(0);
  });

  it('instances that end: their successors unwrap the keys of live items again', () => {
    const forever = withInput(DEFAULT_INPUT, { instanceLifetimeSeconds: Number.POSITIVE_INFINITY });
    const hourly = withInput(forever, { instanceLifetimeSeconds: 3600 });
    const a = estimateCapacity(forever).keyService;
    const b = estimateCapacity(hourly).keyService;
    expect(b.unwrap).toBeGreaterThan(a.unwrap);
    // One instance, one daemon partition requested 100 times a second, living 100 s: no
    // other instance's keys, so every unwrap is a successor's. Each successor reads the
    // partition at once (metAgain ~1) and unwraps its key: 1 per restart, K = born x (age + usable).
    const daemon = only('app', 100, 1, 1, { instanceLifetimeSeconds: 100 });
    const d = estimateCapacity(daemon).keyService;
    const usable = daemon.tokenLifetimeSeconds - daemon.refreshMarginSeconds;
    const met = metAgain(100, usable + 1 / 100);
    expect(met).toBeGreaterThan(0.9999);
    const live = d.generate * (truncatedByLifetime(daemon.dataKeys.maxAgeSeconds, 100) + usable);
    expect(d.unwrap).toBeCloseTo((1 / 100) * live * -Math.expm1(-met / live), 12);
    expect(
      estimateCapacity(withInput(daemon, { instanceLifetimeSeconds: Number.POSITIVE_INFINITY })).keyService
        .unwrap,
    ).toBe(0);
  });

  it('Cosmos DB: 2,400 B is 2.34 KB: reads 2 x 2.34 RU strong, writes 5.5 x 2.34 RU', () => {
    const e = estimateCapacity(withInput(daemonOnly, { store: 'cosmos' }));
    expect(e.store.readUnits).toBeCloseTo(10 * 2 * (2400 / 1024), 9);
    expect(e.hottestKey.readLimit).toBe(10_000);
  });
});

describe('estimateCapacity, directions', () => {
  const base = DEFAULT_INPUT;
  const reads = (i: CapacityInput) => estimateCapacity(i).store.reads;

  it('a longer L1 ttl means fewer reads; L1 off means more', () => {
    expect(reads(withInput(base, { l1: { ttlSeconds: 600 } }))).toBeLessThan(reads(base));
    expect(reads(withInput(base, { l1: { enabled: false } }))).toBeGreaterThan(reads(base));
  });

  it('more callers mean more token calls; more instances more key-service calls', () => {
    const more = withInput(base, { callers: { obo: 1e7 } });
    expect(estimateCapacity(more).tokenCalls.total).toBeGreaterThan(estimateCapacity(base).tokenCalls.total);
    const wider = withInput(base, { instances: 400 });
    expect(estimateCapacity(wider).keyService.calls).toBeGreaterThan(estimateCapacity(base).keyService.calls);
  });

  it('Key Vault bills two calls per data key (wrap and sign)', () => {
    const kms = estimateCapacity(base).keyService;
    const kv = estimateCapacity(withInput(base, { keyService: 'keyvault' })).keyService;
    expect(kv.calls).toBeCloseTo(2 * kms.generate + kms.unwrap, 9);
    expect(kv.limit).toBe(400);
  });
});

describe('validateInput', () => {
  it('names every field at fault', async () => {
    const bad = withInput(DEFAULT_INPUT, {
      requestsPerSecond: -1,
      mix: { app: 0.5, obo: 0.2, user: 0 },
      l1: { jitter: 0.9 },
    });
    const error = await thrownBy(() => validateInput(bad), ConfigurationError);
    const settings = error.problems.map((p) => p.setting);
    expect(settings).toEqual(expect.arrayContaining(['requestsPerSecond', 'mix', 'l1.jitter']));
  });

  it('needs a caller for a kind with requests', () => {
    expect(() => validateInput(withInput(DEFAULT_INPUT, { callers: { obo: 0 } }))).toThrow(/callers\.obo/);
  });
});
