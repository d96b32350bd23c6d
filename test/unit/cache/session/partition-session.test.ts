import { PartitionSession, PartitionWrites } from '../../../../shared/cache/partition-session';
import type { CacheDocument } from '../../../../shared/cache/cache-document';
import { EnvelopeFailure, KeyServiceFailure } from '../../../../shared/errors';
import { Metric } from '../../../../shared/observability';
import { LATER, coldRig, documentWith, rig, storedDocument, tokenKeys } from './harness';

const KEY = 'session-partition-key';

/** What `prime` hands to MSAL. */
async function primed(session: {
  prime(c: { deserialize(json: string): void }): Promise<void>;
}): Promise<string[]> {
  const served: string[] = [];
  await session.prime({ deserialize: (json) => served.push(json) });
  return served;
}

describe('PartitionSession', () => {
  it('absent: hands MSAL nothing, and the first write creates the item', async () => {
    const r = rig();
    const session = r.session(KEY);

    expect(await primed(session)).toEqual([]);
    expect([session.state, session.source, session.trace.loadedFrom]).toEqual(['absent', 'absent', 'absent']);
    await session.persist(documentWith(['a']));

    expect(session.persisted).toBe(true);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a']);
    expect(r.metrics.get(Metric.StoreWrite, { kind: 'obo' })).toBe(1);
    expect(session.trace).toMatchObject({ wrote: true, storeWrites: 1, storeReads: 1 });
  });

  it('loaded: hands MSAL the stored JSON once per token cache, and writes nothing unchanged', async () => {
    const r = rig();
    await r.seed(KEY, documentWith(['a']));
    const session = r.session(KEY);
    const calls: string[] = [];
    const cache = { deserialize: (json: string) => void calls.push(json) };

    await session.prime(cache);
    await session.prime(cache);
    await session.persist(documentWith(['a']));

    expect(calls).toHaveLength(1);
    expect(tokenKeys(JSON.parse(calls[0]) as CacheDocument)).toEqual(['a']);
    expect(session.source).toBe('store');
    expect(r.metrics.get(Metric.WriteSkipped, { kind: 'obo', reason: 'unchanged' })).toBe(1);
    expect(r.metrics.get(Metric.StoreWrite)).toBe(0);
  });

  it('L1 hit: a second request of the instance loads from L1 with no store read', async () => {
    const r = rig({ l1: true });
    await r.seed(KEY, documentWith(['a']));
    await r.session(KEY).load();
    const reads = r.store.reads;

    const second = r.session(KEY);
    const served = await primed(second);

    expect(second.source).toBe('l1');
    expect(tokenKeys(JSON.parse(served[0]) as CacheDocument)).toEqual(['a']);
    expect(r.store.reads).toBe(reads);
    expect(r.metrics.get(Metric.L1Hit, { kind: 'obo' })).toBe(1);
    expect(second.trace.storeReads).toBe(0);
  });

  it('rejected: served to no one, counted and logged once, replaced by a conditional write on its version', async () => {
    const r = rig();
    const good = await r.seed(KEY, documentWith(['a']));
    const item = (await r.store.inner.read(KEY))!;
    const planted = await r.store.inner.write(KEY, item.blob.subarray(0, item.blob.length - 1), {
      condition: { expectedVersion: good },
      expiresAt: LATER(),
    });
    const session = r.session(KEY);

    expect(await primed(session)).toEqual([]);
    expect(session.state).toBe('rejected');
    expect(session.source).toBe('unreadable');
    expect(session.loadedVersion).toBe(planted);
    expect(
      r.metrics.get(Metric.EnvelopeRejected, { kind: 'obo', reason: EnvelopeFailure.AuthenticationFailed }),
    ).toBe(1);
    expect(r.logger.lines.filter((l) => l.level === 'error')).toHaveLength(1);
    await session.persist(documentWith(['b']));

    const after = (await r.store.inner.read(KEY))!;
    expect(after.version).not.toBe(planted);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['b']);
  });

  it('locked: never overwritten; the write is skipped as unreadable-transient', async () => {
    const cold = await coldRig(KEY, documentWith(['a']), KeyServiceFailure.Disabled);
    const before = (await cold.store.inner.read(KEY))!;
    const session = cold.session(KEY);

    expect(await primed(session)).toEqual([]);
    await session.persist(documentWith(['mine']));

    expect([session.state, session.source]).toEqual(['locked', 'unavailable']);
    expect(session.persisted).toBe(false);
    expect(session.trace.loadFailure).toBe('key-service-unavailable');
    expect(cold.metrics.get(Metric.WriteSkipped, { kind: 'obo', reason: 'unreadable-transient' })).toBe(1);
    const after = (await cold.store.inner.read(KEY))!;
    expect(after.version).toBe(before.version);
    expect(Buffer.from(after.blob).equals(Buffer.from(before.blob))).toBe(true);
  });

  it('store unavailable on load: the write may only create, so an existing item is merged, not overwritten', async () => {
    const r = rig();
    await r.seed(KEY, documentWith(['theirs']));
    r.store.failReads = true;
    const session = r.session(KEY);
    await session.load();
    r.store.failReads = false;

    await session.persist(documentWith(['mine']));

    expect([session.state, session.trace.loadedFrom]).toEqual(['loaded', 'unavailable']);
    expect(session.trace.conflicts).toBe(1);
    expect(r.metrics.get(Metric.StoreConflict, { kind: 'obo' })).toBe(1);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['mine', 'theirs']);
  });

  it('two instances writing one partition: the second conflicts, merges and retries; both tokens stay', async () => {
    const r = rig();
    await r.seed(KEY, documentWith(['a']));
    const other = { ...r.ctx, writes: new PartitionWrites() };
    const first = r.session(KEY);
    const second = new PartitionSession(other, KEY, 'obo', (_doc, now) => now + 3600);
    await Promise.all([first.load(), second.load()]);

    await first.persist(documentWith(['a', 'one']));
    await second.persist(documentWith(['a', 'two']));

    expect(first.trace.conflicts).toBe(0);
    expect(second.trace.conflicts).toBe(1);
    expect(second.persisted).toBe(true);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a', 'one', 'two']);
  });

  it('refresh: reads the store past L1 and primes the next client with it', async () => {
    const r = rig({ l1: true });
    const v1 = await r.seed(KEY, documentWith(['a']));
    const session = r.session(KEY);
    await session.load();
    const v2 = await r.seed(KEY, documentWith(['a', 'b']), v1);

    const fresh = await session.refresh();
    const served = await primed(session);

    expect([fresh.state, fresh.version, session.source]).toEqual(['loaded', v2, 'store']);
    expect(tokenKeys(JSON.parse(served[0]) as CacheDocument)).toEqual(['a', 'b']);
  });
});
