import { readPartition } from '../../../../shared/cache/session/reader';
import {
  changeOver,
  nothingToWrite,
  writeConditionally,
  type WriterContext,
} from '../../../../shared/cache/session/writer';
import { absent, loaded } from '../../../../shared/cache/session/snapshot';
import { emptyDocument, merge, type CacheDocument } from '../../../../shared/cache/cache-document';
import {
  ConflictRetriesExhaustedError,
  EnvelopeFailure,
  KeyServiceError,
  KeyServiceFailure,
  SizeLimitError,
} from '../../../../shared/errors';
import { MemoryStore } from '../../../../shared/store/memory';
import { documentWith, masterKey, rig, storedDocument, tokenKeys, type Rig } from './harness';

const KEY = 'writer-partition-key';

function writer(r: Rig, overrides: Partial<WriterContext> = {}): WriterContext {
  return {
    store: r.store,
    envelope: r.envelope,
    key: KEY,
    kind: 'obo',
    expiry: (_doc, now) => now + 3600,
    now: Date.now,
    retries: r.ctx.conflictRetries,
    reread: async () => (await readPartition(r.ctx, KEY, 'obo', 'fresh')).snapshot,
    ...overrides,
  };
}

/** A snapshot of an item that failed to authenticate: never served, always replaced. */
const REJECTED = {
  state: 'rejected',
  reason: EnvelopeFailure.AuthenticationFailed,
  json: '',
  version: 'v1',
} as const;

describe('changeOver', () => {
  const now = Math.floor(Date.now() / 1000);
  const stored = (doc: CacheDocument) => loaded('store', JSON.stringify(doc), 'v1', doc);

  it('is nothing to write when the request holds what was loaded', () => {
    const doc = documentWith(['a']);

    expect(changeOver(stored(doc), documentWith(['a']), now)).toBeUndefined();
  });

  it('is nothing to write when the only difference has expired', () => {
    const loadedDoc = documentWith(['a']);
    const mine = merge(emptyDocument(), documentWith(['a']), documentWith(['gone'], now - 1));

    expect(tokenKeys(mine)).toEqual(['a', 'gone']);
    expect(changeOver(stored(loadedDoc), mine, now)).toBeUndefined();
  });

  it('gives both documents pruned when the request has more', () => {
    const loadedDoc = merge(emptyDocument(), documentWith(['a']), documentWith(['old'], now - 1));
    const mine = merge(emptyDocument(), loadedDoc, documentWith(['b']));

    const change = changeOver(stored(loadedDoc), mine, now);

    expect(change && tokenKeys(change.base)).toEqual(['a']);
    expect(change && tokenKeys(change.mine)).toEqual(['a', 'b']);
  });

  it('replaces a rejected item even with an empty document (it never opens again)', () => {
    const change = changeOver(REJECTED, emptyDocument(), now);

    expect(change).toBeDefined();
    expect(change && tokenKeys(change.base)).toEqual([]);
  });

  it('writes anything useful over an absent partition, and nothing when there is nothing', () => {
    expect(changeOver(absent('no-item'), emptyDocument(), now)).toBeUndefined();
    const change = changeOver(absent('no-item'), documentWith(['a']), now);
    expect(change && tokenKeys(change.base)).toEqual([]);
    expect(change && tokenKeys(change.mine)).toEqual(['a']);
  });
});

describe('nothingToWrite', () => {
  it('holds for equal documents over an item that opens, and not for different ones', () => {
    const doc = documentWith(['a']);
    const opened = loaded('store', JSON.stringify(doc), 'v1', doc);

    expect(nothingToWrite(opened, doc, documentWith(['a']))).toBe(true);
    expect(nothingToWrite(opened, doc, documentWith(['a', 'b']))).toBe(false);
  });

  it('never holds over a rejected item, even for equal documents', () => {
    expect(nothingToWrite(REJECTED, emptyDocument(), emptyDocument())).toBe(false);
  });
});

describe('writeConditionally', () => {
  it('creates the item (mustNotExist) sealed for this partition', async () => {
    const r = rig();
    const mine = documentWith(['a']);

    const report = await writeConditionally(writer(r), { base: emptyDocument(), mine, version: undefined });

    expect(report).toMatchObject({
      result: { status: 'written' },
      conflicts: 0,
      storeWrites: 1,
      deleted: false,
    });
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a']);
    const item = await r.store.inner.read(KEY);
    expect(report.result.status === 'written' && report.result.version).toBe(item?.version);
  });

  it('prunes expired access tokens before writing', async () => {
    const r = rig();
    const expired = documentWith(['old'], Math.floor(Date.now() / 1000) - 10);
    const mine = merge(emptyDocument(), documentWith(['a']), expired);

    await writeConditionally(writer(r), { base: emptyDocument(), mine, version: undefined });

    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a']);
  });

  it('deletes the item on its version when nothing useful is left', async () => {
    const r = rig();
    const version = await r.seed(KEY, documentWith(['a']));

    const report = await writeConditionally(writer(r), {
      base: documentWith(['a']),
      mine: emptyDocument(),
      version,
    });

    expect(report).toMatchObject({
      result: { status: 'written', json: '', version: undefined },
      deleted: true,
    });
    expect(await r.store.inner.read(KEY)).toBeUndefined();
  });

  it('on a conflict re-reads, merges and retries: neither writer loses a token', async () => {
    const r = rig();
    const version = await r.seed(KEY, documentWith(['a']));
    let interleaved = false;
    const theirs = documentWith(['a', 'theirs']);
    r.store.beforeWrite = async () => {
      if (interleaved) return;
      interleaved = true;
      // Another instance writes first, on the same version.
      await r.seed(KEY, theirs, version);
    };

    const report = await writeConditionally(writer(r), {
      base: documentWith(['a']),
      mine: documentWith(['a', 'mine']),
      version,
    });

    expect(report).toMatchObject({ result: { status: 'written' }, conflicts: 1, storeWrites: 1 });
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a', 'mine', 'theirs']);
  });

  it('after a conflict, writes nothing when the other writer already stored all of it', async () => {
    const r = rig();
    const version = await r.seed(KEY, documentWith(['a']));
    r.store.beforeWrite = async () => {
      r.store.beforeWrite = undefined;
      await r.seed(KEY, documentWith(['a', 'b']), version);
    };
    const stored = await r.store.inner.read(KEY);

    const report = await writeConditionally(writer(r), {
      base: documentWith(['a']),
      mine: documentWith(['a', 'b']),
      version,
    });

    expect(report).toMatchObject({ result: { status: 'merged-unchanged' }, conflicts: 1, storeWrites: 0 });
    expect((await r.store.inner.read(KEY))!.version).not.toBe(stored!.version);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a', 'b']);
  });

  it('gives up after maxAttempts conflicts, leaving the other writer’s item as it was', async () => {
    const r = rig({ maxAttempts: 3 });
    await r.seed(KEY, documentWith(['a']));
    let n = 0;
    r.store.beforeWrite = async () => {
      // Someone else always writes first.
      const current = (await r.store.inner.read(KEY))!;
      await r.seed(KEY, documentWith(['a', `theirs-${++n}`]), current.version);
    };

    const report = await writeConditionally(writer(r), {
      base: documentWith(['a']),
      mine: documentWith(['a', 'mine']),
      version: (await r.store.inner.read(KEY))!.version,
    });

    expect(report.conflicts).toBe(3);
    expect(report.storeWrites).toBe(0);
    expect(report.result.status).toBe('failed');
    const error = report.result.status === 'failed' ? report.result.error : undefined;
    expect(error).toBeInstanceOf(ConflictRetriesExhaustedError);
    expect((error as ConflictRetriesExhaustedError).attempts).toBe(3);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a', 'theirs-3']);
  });

  it('never overwrites an item the re-read finds locked (key service down)', async () => {
    const master = masterKey();
    const seeder = rig({ master });
    const version = await seeder.seed(KEY, documentWith(['a']));
    const r = rig({ store: seeder.store.inner, master });
    r.store.beforeWrite = async () => {
      r.store.beforeWrite = undefined;
      await seeder.seed(KEY, documentWith(['a', 'theirs']), version);
      r.ring.unwrapFault = KeyServiceFailure.Throttled;
    };
    // This instance's own data key is cached; only the re-read needs the ring.
    const before = (await r.store.inner.read(KEY))!;

    const report = await writeConditionally(writer(r), {
      base: emptyDocument(),
      mine: documentWith(['mine']),
      version: before.version,
    });

    expect(report.result).toEqual({ status: 'locked' });
    expect(report.conflicts).toBe(1);
    r.ring.unwrapFault = undefined;
    expect(tokenKeys((await storedDocument(seeder, KEY))!)).toEqual(['a', 'theirs']);
  });

  it('fails with a SizeLimitError when the blob does not fit, and keeps the previous item', async () => {
    const probe = rig();
    const small = await probe.envelope.seal(Buffer.from(JSON.stringify(documentWith(['a']))), KEY, {
      partitionKind: 'obo',
    });
    const r = rig({ store: new MemoryStore({ maxItemBytes: small.length + KEY.length + 64 }) });
    const version = await r.seed(KEY, documentWith(['a']));
    const big = documentWith(Array.from({ length: 40 }, (_, i) => `t${i}`));

    const report = await writeConditionally(writer(r), { base: documentWith(['a']), mine: big, version });

    expect(report.result.status).toBe('failed');
    expect(report.result.status === 'failed' && report.result.error).toBeInstanceOf(SizeLimitError);
    expect((await r.store.inner.read(KEY))!.version).toBe(version);
    expect(tokenKeys((await storedDocument(r, KEY))!)).toEqual(['a']);
  });

  it('fails with the KeyServiceError when no data key can be had, writing nothing', async () => {
    const r = rig();
    r.ring.generateFault = KeyServiceFailure.Unavailable;

    const report = await writeConditionally(writer(r), {
      base: emptyDocument(),
      mine: documentWith(['a']),
      version: undefined,
    });

    expect(report.result).toMatchObject({ status: 'failed', keyServiceCallFailed: true });
    expect(report.result.status === 'failed' && report.result.error).toBeInstanceOf(KeyServiceError);
    expect(report.keyServiceCalls).toBe(1);
    expect(r.store.inner.size).toBe(0);
  });
});
