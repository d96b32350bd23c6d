import { createTokenCache } from '../../../../shared/cache/token-cache';
import {
  SessionEvents,
  WriteFailReason,
  keyErrorsCountedBySessions,
  writeFailReason,
} from '../../../../shared/cache/session/events';
import { RequestTrace } from '../../../../shared/cache/metadata';
import { DataKeyCache } from '../../../../shared/crypto/data-key-cache';
import { Envelope } from '../../../../shared/crypto/envelope';
import { LocalKeyRing } from '../../../../shared/crypto/local-keyring';
import {
  ConfigurationError,
  ConflictRetriesExhaustedError,
  ErrorCode,
  KeyServiceError,
  KeyServiceFailure,
  SizeLimitError,
  StoreUnavailableError,
} from '../../../../shared/errors';
import { CounterMetrics, Metric, type MetricName } from '../../../../shared/observability';
import { MemoryStore } from '../../../../shared/store/memory';
import { CapturingLogger } from '../../../support/cache-harness';
import { FaultyRing, LATER, coldRig, documentWith, masterKey, rig } from './harness';

const KEY = 'events-partition-key';
const TENANT = '11111111-2222-3333-4444-555555555555';

describe('writeFailReason', () => {
  it.each([
    [new ConflictRetriesExhaustedError(3), 'conflict-retries-exhausted'],
    [new StoreUnavailableError('memory', 'write', 'down'), 'store-unavailable'],
    [new KeyServiceError('local', 'generate', KeyServiceFailure.Throttled, 'slow down'), 'key-service'],
    [new SizeLimitError('memory', 500_000, 409_600), 'size-limit'],
    [new ConfigurationError('x', 'bad'), 'unexpected'],
    [new Error('boom'), 'unexpected'],
    ['not even an error', 'unexpected'],
  ])('names %p %p', (error, reason) => {
    expect(writeFailReason(error)).toBe(reason);
  });

  it('has one name per ErrorCode and no other keys', () => {
    const codes = new Set<string>(Object.values(ErrorCode));
    for (const code of Object.keys(WriteFailReason)) expect(codes.has(code)).toBe(true);
  });
});

describe('keyErrorsCountedBySessions', () => {
  it('passes every metric and observation through except keyring.error', () => {
    const seen: Array<[string, number | undefined]> = [];
    const inner = {
      increment: (name: MetricName, value?: number) => void seen.push([name, value]),
      observe: (name: MetricName, value: number) => void seen.push([`observe:${name}`, value]),
    };
    const view = keyErrorsCountedBySessions(inner);

    view.increment(Metric.KeyUnwrap, 1);
    view.increment(Metric.KeyError, 1, { reason: 'unavailable' });
    view.observe?.(Metric.AcquireDuration, 5);

    expect(seen).toEqual([
      [Metric.KeyUnwrap, 1],
      [`observe:${Metric.AcquireDuration}`, 5],
    ]);
  });
});

describe('SessionEvents', () => {
  describe('keyring.error: once per failed unwrap', () => {
    it('counts a locked load once, with the partition kind and the reason', async () => {
      const cold = await coldRig(KEY, documentWith(['a']), KeyServiceFailure.Unavailable);

      await cold.session(KEY).load();

      expect(cold.ring.unwrapCalls).toBe(1);
      expect(cold.metrics.get(Metric.KeyError)).toBe(1);
      expect(cold.metrics.get(Metric.KeyError, { kind: 'obo', reason: KeyServiceFailure.Unavailable })).toBe(
        1,
      );
      expect(cold.metrics.get(Metric.KeyUnwrap)).toBe(1);
    });

    it('counts one failed call once, however many sessions waited on it', async () => {
      const cold = await coldRig(KEY, documentWith(['a']), KeyServiceFailure.Throttled);
      let release!: () => void;
      cold.ring.hold = new Promise((resolve) => (release = resolve));

      const sessions = [cold.session(KEY), cold.session(KEY), cold.session(KEY)];
      const loads = Promise.all(sessions.map((s) => s.load()));
      await new Promise((resolve) => setTimeout(resolve, 10));
      release();
      const snapshots = await loads;

      expect(snapshots.map((s) => s.state)).toEqual(['locked', 'locked', 'locked']);
      expect(cold.ring.unwrapCalls).toBe(1);
      expect(cold.metrics.get(Metric.KeyError)).toBe(1);
      // Each request still logs that it went without the cache.
      expect(cold.logger.lines.filter((l) => l.fields?.['code'] === ErrorCode.KeyService)).toHaveLength(3);
    });

    it('counts a failed data-key generation once, next to cache.write.failed{reason=key-service}', async () => {
      const r = rig();
      r.ring.generateFault = KeyServiceFailure.Disabled;
      const session = r.session(KEY);

      await session.persist(documentWith(['a']));

      expect(r.metrics.get(Metric.KeyError)).toBe(1);
      expect(r.metrics.get(Metric.KeyError, { kind: 'obo', reason: KeyServiceFailure.Disabled })).toBe(1);
      expect(r.metrics.get(Metric.WriteFailed, { kind: 'obo', reason: 'key-service' })).toBe(1);
      expect(session.trace.writeFailReason).toBe('key-service');
    });

    it('through a TokenCache: one unwrap failure is one keyring.error (it was counted twice)', async () => {
      const master = masterKey();
      const store = new MemoryStore();
      const metrics = new CounterMetrics();
      const ring = new FaultyRing(new LocalKeyRing({ masterKey: master }));
      const cache = createTokenCache({
        msal: {
          clientId: '1d6c3f0a-8b2e-4c59-a7d4-3e9f1b2c5a60',
          authority: `https://localhost:9/${TENANT}`,
          clientSecret: 'events-test-client-secret',
        },
        store,
        keyRing: ring,
        metrics,
        logger: new CapturingLogger(),
        l1: false,
      });
      const key = cache.storeKeyOf({ kind: 'app', tenantId: TENANT });
      const sealer = new Envelope({ keys: new DataKeyCache(new LocalKeyRing({ masterKey: master })) });
      const blob = await sealer.seal(Buffer.from(JSON.stringify(documentWith(['a']))), key, {
        partitionKind: 'app',
      });
      await store.write(key, blob, { condition: { mustNotExist: true }, expiresAt: LATER() });
      ring.unwrapFault = KeyServiceFailure.Unavailable;

      const outcome = await cache.evictAccessToken(
        { kind: 'app', tenantId: TENANT },
        'an-access-token-not-stored',
      );

      expect(outcome).toBe('failed');
      expect(ring.unwrapCalls).toBe(1);
      expect(metrics.get(Metric.KeyError)).toBe(1);
      expect(metrics.get(Metric.KeyError, { kind: 'app', reason: KeyServiceFailure.Unavailable })).toBe(1);
    });
  });

  it('turns a store-unavailable read into store.error, a warn line and the trace’s loadFailure', () => {
    const metrics = new CounterMetrics();
    const logger = new CapturingLogger();
    const trace = new RequestTrace();
    const events = new SessionEvents({ metrics, logger }, KEY, 'user', trace);

    events.read({
      snapshot: { state: 'absent', reason: 'store-unavailable', json: '', version: undefined },
      l1: 'miss',
      storeCalled: true,
      storeReadMs: 3,
      opened: false,
      openMs: 0,
      keyServiceCalls: 0,
      error: new StoreUnavailableError('memory', 'read', 'down'),
    });

    expect(metrics.get(Metric.StoreError, { kind: 'user', operation: 'read' })).toBe(1);
    expect(metrics.get(Metric.StoreRead, { kind: 'user' })).toBe(1);
    expect(metrics.get(Metric.L1Miss, { kind: 'user' })).toBe(1);
    expect(metrics.get(Metric.StoreReadMiss)).toBe(0);
    expect(trace).toMatchObject({ loadFailure: 'store-unavailable', storeReads: 1, storeReadMs: 3 });
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: 'warn',
      message: 'token cache read failed; acquiring without the cache',
      fields: { code: ErrorCode.StoreUnavailable, key: KEY, partition: 'user' },
    });
  });
});
