/**
 * Tamper (issue 7, item 2): property-based mutation (fast-check) of stored blobs — bit
 * flips, byte edits, truncation, extension, splices, well-formed header edits, header and
 * body grafted from another blob, swaps between partitions and between apps. For 10,000
 * cases, through the real Envelope, MemoryStore and the cache's PartitionSession (the
 * MSAL cache plugin): none opens, none is handed to MSAL, each is counted and logged, and
 * the only write that follows is a conditional replace by a blob that opens — never a
 * garbage overwrite. A smaller sample runs the full path: msal-node, the local authority,
 * a fresh cache instance per case.
 */
import { randomBytes } from 'node:crypto';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import * as fc from 'fast-check';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { GrantType } from '../../local/authority';
import { parseDocument, sameDocument, type CacheDocument } from '../../shared/cache/cache-document';
import { OpenedEnvelopes } from '../../shared/cache/l1';
import { PartitionSession, PartitionWrites, type SessionContext } from '../../shared/cache/partition-session';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { EnvelopeError, EnvelopeFailure, ErrorCode } from '../../shared/errors';
import { CounterMetrics, Metric } from '../../shared/observability';
import type { Partition, TokenCache } from '../../shared/cache/types';
import { MemoryStore } from '../../shared/store/memory';
import {
  API_CLIENT_ID,
  CapturingLogger,
  DOWNSTREAM_SCOPE,
  signIn,
  type CacheWorld,
} from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';
import {
  accessTokensIn,
  linesWithCode,
  OTHER_APP,
  startSecureWorld,
  storedDocument,
  userAssertion,
} from '../support/security-world';

/** Cases of the envelope + store + plugin property. */
const CASES = 10_000;
/** Cases of the full msal-node path. */
const FULL_PATH_CASES = 100;

/** A good blob as the cache wrote it under `key` of `store`, and the JSON it opens to with `masterKey`. */
async function sealedBy(store: MemoryStore, label: string, key: string, masterKey: Buffer) {
  const item = (await store.read(key))!;
  const keys = new DataKeyCache(new LocalKeyRing({ masterKey }));
  const json = Buffer.from(await new Envelope({ keys }).open(item.blob, key)).toString('utf8');
  return { label, key, blob: item.blob, json } as const;
}
type Sealed = Awaited<ReturnType<typeof sealedBy>>;

let world: CacheWorld;
/** Blobs of the web API (the victim app): OBO, app and user partitions, compressed and not. */
let victims: Sealed[];
/** Blobs of the same app's other partitions and of other apps, to swap in. */
let foreign: Sealed[];

beforeAll(async () => {
  world = await startSecureWorld();
  const otherMaster = randomBytes(32);
  registerSecret('master-key', otherMaster);

  const store = new MemoryStore();
  const plain = world.instance({ store, compressAboveBytes: false }).cache;
  const packed = world.instance({ store }).cache;
  const a = await userAssertion(world, 'tamper-a');
  const b = await userAssertion(world, 'tamper-b');
  await plain.acquireTokenOnBehalfOf({ assertion: a, scopes: [DOWNSTREAM_SCOPE] });
  await packed.acquireTokenOnBehalfOf({ assertion: b, scopes: [DOWNSTREAM_SCOPE] });
  await packed.acquireTokenForApp({ scopes: ['api://tamper-app/.default'] });
  const signedIn = await signIn(world, packed, 'tamper-user');
  const homeAccountId = signedIn.account!.homeAccountId;
  const tenantId = world.authority.tenantId;
  /** The item `cache` wrote for `partition` in `into`, sealed under `masterKey`. */
  const sealedIn =
    (into: MemoryStore, masterKey: Buffer) => (label: string, cache: TokenCache, partition: Partition) =>
      sealedBy(into, label, cache.storeKeyOf(partition), masterKey);
  const victim = sealedIn(store, world.masterKey);
  victims = [
    await victim('obo (uncompressed)', plain, { kind: 'obo', assertion: a }),
    await victim('obo (compressed)', packed, { kind: 'obo', assertion: b }),
    await victim('app', packed, { kind: 'app', tenantId }),
    await victim('user', packed, { kind: 'user', homeAccountId }),
  ];

  // Another app sharing the store: once with the same master key, once with its own.
  const otherStore = new MemoryStore();
  const otherMsal = {
    clientId: OTHER_APP.clientId,
    clientSecret: OTHER_APP.clientSecret,
    authority: world.authority.authority(),
    knownAuthorities: [world.authority.host],
    networkClient: world.network,
  };
  const sameKey = world.instance({ store: otherStore, msal: otherMsal }).cache;
  const ownKey = world.instance({
    store: otherStore,
    msal: otherMsal,
    keyRing: new LocalKeyRing({ masterKey: otherMaster }),
  }).cache;
  const otherAssertion = await world.authority.mintUserToken({
    audience: OTHER_APP.clientId,
    oid: 'tamper-a',
  });
  await sameKey.acquireTokenOnBehalfOf({ assertion: otherAssertion, scopes: [DOWNSTREAM_SCOPE] });
  await ownKey.acquireTokenForApp({ scopes: ['api://tamper-app/.default'] });
  foreign = [
    ...victims,
    await sealedIn(otherStore, world.masterKey)('other app, same master key', sameKey, {
      kind: 'obo',
      assertion: otherAssertion,
    }),
    await sealedIn(otherStore, otherMaster)('other app, own master key', ownKey, { kind: 'app', tenantId }),
  ];
});

afterAll(async () => {
  await world.stop();
});

// --- mutations -------------------------------------------------------------------------

const HEADER_FIELDS = [
  'magic',
  'version',
  'flags',
  'key ring name',
  'key id',
  'wrapped key',
  'salt',
  'nonce',
] as const;
type HeaderField = (typeof HEADER_FIELDS)[number];

type Mutation =
  | { kind: 'bit-flip'; at: number; bit: number }
  | { kind: 'byte-set'; at: number; value: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'splice'; at: number; remove: number; insert: Uint8Array }
  | { kind: 'header-edit'; field: HeaderField; bytes: Uint8Array }
  | { kind: 'graft'; from: number; keep: 'header' | 'body' }
  | { kind: 'swap'; from: number }
  | { kind: 'chain'; steps: Mutation[] };

const byteMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('bit-flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('byte-set' as const),
    at: fc.nat(),
    value: fc.integer({ min: 0, max: 255 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant('splice' as const),
    at: fc.nat(),
    remove: fc.integer({ min: 0, max: 48 }),
    insert: fc.uint8Array({ maxLength: 48 }),
  }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: byteMutation, weight: 5 },
  {
    arbitrary: fc.record({
      kind: fc.constant('header-edit' as const),
      field: fc.constantFrom(...HEADER_FIELDS),
      bytes: fc.uint8Array({ maxLength: 80 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('graft' as const),
      from: fc.nat(),
      keep: fc.constantFrom('header' as const, 'body' as const),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('swap' as const), from: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('chain' as const),
      steps: fc.array(byteMutation, { minLength: 2, maxLength: 4 }),
    }),
    weight: 1,
  },
);

/** Byte ranges of the header fields of a well-formed envelope (docs/envelope.md). */
function layout(blob: Uint8Array): Record<HeaderField, { start: number; end: number; lengthBytes: number }> {
  const h = parseEnvelopeHeader(blob);
  const ring = 7;
  const keyId = ring + Buffer.byteLength(h.keyRing) + 2;
  const wrapped = keyId + Buffer.byteLength(h.keyId) + 2;
  const salt = wrapped + h.wrappedKey.length;
  return {
    magic: { start: 0, end: 4, lengthBytes: 0 },
    version: { start: 4, end: 5, lengthBytes: 0 },
    flags: { start: 5, end: 6, lengthBytes: 0 },
    'key ring name': { start: ring, end: keyId - 2, lengthBytes: 1 },
    'key id': { start: keyId, end: wrapped - 2, lengthBytes: 2 },
    'wrapped key': { start: wrapped, end: salt, lengthBytes: 2 },
    salt: { start: salt, end: salt + 16, lengthBytes: 0 },
    nonce: { start: salt + 16, end: salt + 28, lengthBytes: 0 },
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/**
 * Rewrites one header field. Fields with a length prefix get any new content with the
 * prefix fixed (a well-formed header that says something else); fixed-size fields get
 * their size's worth of new bytes.
 */
function editHeader(blob: Uint8Array, field: HeaderField, bytes: Uint8Array): Uint8Array {
  const f = layout(blob)[field];
  let content = bytes;
  if (f.lengthBytes === 0) {
    content = Uint8Array.from({ length: f.end - f.start }, (_, i) => bytes[i] ?? blob[f.start + i] ^ 0xff);
  }
  const prefix =
    f.lengthBytes === 1
      ? Uint8Array.of(content.length & 0xff)
      : f.lengthBytes === 2
        ? Uint8Array.of(content.length >> 8, content.length & 0xff)
        : new Uint8Array(0);
  return concat(blob.subarray(0, f.start - f.lengthBytes), prefix, content, blob.subarray(f.end));
}

function mutate(blob: Uint8Array, m: Mutation, victim: Sealed): Uint8Array {
  const n = blob.length;
  switch (m.kind) {
    case 'bit-flip': {
      const out = Uint8Array.from(blob);
      if (n > 0) out[m.at % n] ^= 1 << m.bit;
      return out;
    }
    case 'byte-set': {
      const out = Uint8Array.from(blob);
      if (n > 0) out[m.at % n] = m.value;
      return out;
    }
    case 'truncate':
      return blob.slice(0, n > 0 ? m.length % n : 0);
    case 'extend':
      return concat(blob, m.bytes);
    case 'splice': {
      const at = n > 0 ? m.at % (n + 1) : 0;
      return concat(blob.subarray(0, at), m.insert, blob.subarray(Math.min(n, at + m.remove)));
    }
    case 'header-edit':
      return editHeader(blob, m.field, m.bytes);
    case 'graft': {
      const donor = others(victim)[m.from % others(victim).length].blob;
      const mine = parseEnvelopeHeader(blob).headerLength;
      const theirs = parseEnvelopeHeader(donor).headerLength;
      return m.keep === 'header'
        ? concat(blob.subarray(0, mine), donor.subarray(theirs))
        : concat(donor.subarray(0, theirs), blob.subarray(mine));
    }
    case 'swap':
      return others(victim)[m.from % others(victim).length].blob;
    case 'chain':
      return m.steps.reduce((b, step) => mutate(b, step, victim), blob);
  }
}

/** Every good blob not sealed for the victim's partition. */
function others(victim: Sealed): Sealed[] {
  return foreign.filter((s) => s.key !== victim.key);
}

/**
 * A plain assertion for the 10,000-case loop: expect() costs a stack capture per call,
 * which would triple the suite's run time. Fails with what was expected and received.
 */
function check(condition: boolean, expected: string, received: unknown): void {
  if (!condition) throw new Error(`expected ${expected}, received ${JSON.stringify(received, replacer)}`);
}

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

// --- the property ------------------------------------------------------------------------

/** A partition session's context over the given parts: no L1, fast conflict retries. */
function sessionContext(
  parts: Pick<SessionContext, 'store' | 'envelope' | 'logger' | 'metrics'>,
): SessionContext {
  return {
    ...parts,
    writes: new PartitionWrites(),
    l1: undefined,
    opened: new OpenedEnvelopes(8 * 1024 * 1024),
    now: Date.now,
    conflictRetries: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
  };
}

describe(`tampered blobs (${CASES} fast-check cases through Envelope, MemoryStore and the cache plugin)`, () => {
  it('never open, are never handed to MSAL, are counted and logged, and are only replaced by a conditional write of a good blob', async () => {
    const store = new MemoryStore();
    const metrics = new CounterMetrics();
    const logger = new CapturingLogger();
    const keys = new DataKeyCache(new LocalKeyRing({ masterKey: world.masterKey }), { metrics });
    const envelope = new Envelope({ keys });
    const ctx = sessionContext({ store, envelope, logger, metrics });
    // The corpus has compressed and uncompressed blobs, and every partition kind.
    expect(new Set(victims.map((v) => parseEnvelopeHeader(v.blob).compressed))).toEqual(
      new Set([true, false]),
    );
    const byKind = new Map<string, number>();
    const byReason = new Map<string, number>();

    await fc.assert(
      fc.asyncProperty(fc.nat(), mutation, async (victimIndex, m) => {
        const victim = victims[victimIndex % victims.length];
        const mutated = mutate(victim.blob, m, victim);
        fc.pre(!sameBytes(mutated, victim.blob));
        byKind.set(m.kind, (byKind.get(m.kind) ?? 0) + 1);
        const current = await store.read(victim.key);
        const plantedVersion = await store.write(victim.key, mutated, {
          condition: current ? { expectedVersion: current.version } : { mustNotExist: true },
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        });

        // 1. It does not open: an EnvelopeError, never a plaintext.
        const opened: unknown = await envelope.open(mutated, victim.key).then(
          () => 'opened',
          (e: unknown) => e,
        );
        check(opened instanceof EnvelopeError, 'an EnvelopeError', opened);
        const reason = (opened as EnvelopeError).reason;
        byReason.set(reason, (byReason.get(reason) ?? 0) + 1);

        // 2. The plugin treats it as a miss: nothing reaches MSAL; counted and logged.
        const rejected = metrics.get(Metric.EnvelopeRejected);
        const logged = logger.lines.length;
        const session = new PartitionSession(ctx, victim.key, 'obo', (_doc, now) => now + 3600);
        const served: string[] = [];
        await session.prime({ deserialize: (json: string) => served.push(json) });
        check(served.length === 0, 'nothing handed to MSAL', served.length);
        check(session.source === 'unreadable', "source 'unreadable'", session.source);
        check(metrics.get(Metric.EnvelopeRejected) === rejected + 1, 'one rejection counted', rejected);
        const lines = logger.lines.slice(logged);
        check(
          lines.length === 1 &&
            lines[0].level === 'error' &&
            lines[0].fields?.['code'] === ErrorCode.EnvelopeInvalid,
          'one error line with code ENVELOPE_INVALID',
          lines,
        );

        // 3. What replaces it is a good blob, written on the tampered item's version.
        const fresh: CacheDocument = parseDocument(victim.json);
        await session.persist(fresh);
        const after = (await store.read(victim.key))!;
        check(after.version !== plantedVersion, 'a new version', after.version);
        const reopened = parseDocument(
          Buffer.from(await envelope.open(after.blob, victim.key)).toString('utf8'),
        );
        check(sameDocument(reopened, fresh), 'the stored blob opens to what the session wrote', reopened);
      }),
      { numRuns: CASES },
    );

    // Every kind of mutation ran often, and the envelope said why it refused.
    for (const kind of [
      'bit-flip',
      'byte-set',
      'truncate',
      'extend',
      'splice',
      'header-edit',
      'graft',
      'swap',
      'chain',
    ]) {
      expect(byKind.get(kind)).toBeGreaterThan(CASES / 40);
    }
    for (const reason of [
      EnvelopeFailure.AuthenticationFailed,
      EnvelopeFailure.Malformed,
      EnvelopeFailure.UnsupportedVersion,
      EnvelopeFailure.ForeignKeyRing,
      EnvelopeFailure.UnknownKey,
    ]) {
      expect(byReason.get(reason)).toBeGreaterThan(0);
    }
    expect(metrics.get(Metric.WriteFailed)).toBe(0);
    for (const reason of byReason.keys()) {
      expect(metrics.get(Metric.EnvelopeRejected, { kind: 'obo', reason })).toBe(byReason.get(reason));
    }
  });

  it('a tampered item replaced by someone else between the read and the write is merged, never overwritten', async () => {
    const store = new MemoryStore();
    const metrics = new CounterMetrics();
    const envelope = new Envelope({
      keys: new DataKeyCache(new LocalKeyRing({ masterKey: world.masterKey })),
    });
    const ctx = sessionContext({ store, envelope, logger: new CapturingLogger(), metrics });
    const [victim] = victims;
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    const planted = await store.write(
      victim.key,
      mutate(victim.blob, { kind: 'truncate', length: 40 }, victim),
      {
        condition: { mustNotExist: true },
        expiresAt,
      },
    );
    const session = new PartitionSession(ctx, victim.key, 'obo', (_doc, now) => now + 3600);
    await session.load();
    // Another instance repairs the item first, with the good blob.
    await store.write(victim.key, victim.blob, { condition: { expectedVersion: planted }, expiresAt });

    const mine = parseDocument(victim.json);
    mine['AccessToken'] = {
      ...mine['AccessToken'],
      'extra-token-key': { secret: 'x', expires_on: String(expiresAt) },
    };
    await session.persist(mine);

    expect(metrics.get(Metric.StoreConflict)).toBe(1);
    const stored = parseDocument(
      Buffer.from(await envelope.open((await store.read(victim.key))!.blob, victim.key)).toString('utf8'),
    );
    expect(Object.keys(stored['AccessToken'])).toEqual(
      expect.arrayContaining([...Object.keys(parseDocument(victim.json)['AccessToken']), 'extra-token-key']),
    );
  });
});

describe(`tampered blobs through the full path (${FULL_PATH_CASES} cases: msal-node, local authority, fresh instance)`, () => {
  it('are never served: the caller gets a new token from the authority, and the stored blob is good again', async () => {
    const store = new MemoryStore();
    const assertion = await userAssertion(world, 'tamper-full-path');
    const first = await world.instance({ store }).cache.acquireTokenOnBehalfOf({
      assertion,
      scopes: [DOWNSTREAM_SCOPE],
    });
    const key = world.instance().cache.storeKeyOf({ kind: 'obo', assertion });
    const seen = new Set([first.accessToken]);
    const victim: Sealed = { label: 'full path', key, blob: new Uint8Array(0), json: '{}' };

    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const current = (await store.read(key))!;
        const mutated = mutate(current.blob, m, victim);
        fc.pre(!sameBytes(mutated, current.blob));
        await store.write(key, mutated, {
          condition: { expectedVersion: current.version },
          expiresAt: current.expiresAt,
        });
        world.authority.counters.reset();

        const { cache, metrics } = world.instance({ store });
        const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

        expect(result.fromCache).toBe(false);
        expect(seen.has(result.accessToken)).toBe(false);
        expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
        expect(metrics.get(Metric.EnvelopeRejected)).toBe(1);
        expect(
          accessTokensIn(await storedDocument(store, key, new LocalKeyRing({ masterKey: world.masterKey }))),
        ).toEqual([result.accessToken]);
        seen.add(result.accessToken);
      }),
      { numRuns: FULL_PATH_CASES },
    );
  });
});

describe('blobs swapped between apps under AWS KMS', () => {
  let kms: LocalKms;
  let admin: KMSClient;
  const rings: KmsKeyRing[] = [];

  beforeAll(async () => {
    kms = await startLocalKms();
    await kms.createKey({ alias: 'alias/token-cache' });
    admin = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
  });
  afterAll(async () => {
    for (const ring of rings) ring.destroy();
    admin.destroy();
    await kms.stop();
  });

  const ringFor = (clientId: string) => {
    const ring = new KmsKeyRing({
      keyId: 'alias/token-cache',
      clientId,
      clientConfig: { ...kms.clientConfig, maxAttempts: 1 },
    });
    rings.push(ring);
    return ring;
  };

  it('a data key wrapped for one app does not unwrap for another, even under the same KMS key', async () => {
    const store = new MemoryStore();
    const other = world.instance({
      store,
      keyRing: ringFor(OTHER_APP.clientId),
      msal: {
        clientId: OTHER_APP.clientId,
        clientSecret: OTHER_APP.clientSecret,
        authority: world.authority.authority(),
        knownAuthorities: [world.authority.host],
        networkClient: world.network,
      },
    }).cache;
    const tenantId = world.authority.tenantId;
    await other.acquireTokenForApp({ scopes: ['api://kms-swap/.default'] });
    const otherBlob = (await store.read(other.storeKeyOf({ kind: 'app', tenantId })))!.blob;
    const { cache, metrics, logger } = world.instance({ store, keyRing: ringFor(API_CLIENT_ID) });
    const mineKey = cache.storeKeyOf({ kind: 'app', tenantId });
    await store.write(mineKey, otherBlob, { condition: { mustNotExist: true }, expiresAt: 2 ** 31 - 1 });
    world.authority.counters.reset();

    const result = await cache.acquireTokenForApp({ scopes: ['api://kms-swap/.default'] });

    expect(result.fromCache).toBe(false);
    expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(1);
    // KMS refuses before AES-GCM is even tried: the encryption context names the other app.
    expect(metrics.get(Metric.EnvelopeRejected, { kind: 'app', reason: EnvelopeFailure.UnknownKey })).toBe(1);
    expect(linesWithCode(logger, 'error', ErrorCode.EnvelopeInvalid)[0]?.fields?.['detail']).toMatch(
      /invalid-ciphertext/,
    );
    const wrapped = parseEnvelopeHeader(otherBlob).wrappedKey;
    await expect(
      admin.send(
        new DecryptCommand({
          CiphertextBlob: wrapped,
          EncryptionContext: { purpose: 'msal-token-cache', app: API_CLIENT_ID },
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
  });
});
