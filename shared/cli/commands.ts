/**
 * The CLI's commands over a scannable store and a key ring: cloud-neutral, each returning
 * one JSON-ready report and the exit code it implies. Nothing here ever prints a token, a
 * refresh token, an assertion or a data key: reports hold counts, key ids, store keys
 * (hashes), scopes and expiries only.
 */
import {
  parseDocument,
  Section,
  expiresOn,
  type CacheDocument,
  type CacheEntity,
} from '../cache/cache-document';
import { partitionStoreKey } from '../cache/partitions';
import type { Partition } from '../cache/types';
import { DataKeyCache } from '../crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader, type EnvelopeHeader } from '../crypto/envelope';
import type { KeyRing, PartitionKind } from '../crypto/keyring';
import {
  EnvelopeError,
  EnvelopeFailure,
  KeyServiceError,
  KeyServiceFailure,
  VersionConflictError,
} from '../errors';
import type { StoredItem, TokenStore } from '../store/store';
import type {
  CommandReport,
  EntityView,
  FoundFields,
  InspectReport,
  PruneReport,
  PurgeFields,
  PurgeReport,
  ReportError,
  RewrapFields,
  RewrapReport,
  StatsReport,
  VerifyReport,
  WalkTotals,
} from './reports';
import type { ScanSource, ScannedItem } from './scan';
import { forEachItem, Progress, retried, type RateLimiter, type WalkSummary } from './work';

/** Exit codes scripts can rely on. */
export const ExitCode = {
  /** Done, nothing to report. */
  Ok: 0,
  /** Done, with findings: items that do not open (verify, rewrap) or were left as they are. */
  Findings: 1,
  /** Bad usage or configuration: nothing was done. */
  Usage: 2,
  /** The store or key service failed (after retries); the summary says what was done. */
  ServiceFailure: 3,
  /** Interrupted (SIGINT); in-flight items finished, a rerun resumes. */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** What every command works with. */
export interface CommandContext {
  readonly store: TokenStore;
  readonly source: ScanSource;
  readonly keyRing: KeyRing;
  readonly clientId: string;
  readonly dataKeys: { maxAgeMs: number; maxUses: number; maxUnwrapped: number };
  readonly compressAboveBytes: number | false;
  readonly concurrency: number;
  readonly limiter?: RateLimiter;
  readonly signal?: AbortSignal;
  /** Makes the progress reporter of a command. */
  readonly progress: (label: string, detail?: () => string) => Progress;
  /** Epoch milliseconds. */
  readonly now: () => number;
}

/** A command's outcome. */
export interface CommandResult<R extends CommandReport = CommandReport> {
  readonly exitCode: ExitCode;
  /** The JSON document (`--json`) and the source of the human table. */
  readonly report: R;
}

/** Most item failures listed by key in a report (the counts are always complete). */
const MAX_LISTED = 1000;
const SIZE_BUCKETS = [1024, 4096, 16_384, 65_536, 262_144, 409_600] as const;

const nowSeconds = (ctx: CommandContext): number => Math.floor(ctx.now() / 1000);

function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** The format version byte of a blob that starts with the envelope magic, else undefined. */
function formatVersion(blob: Uint8Array): number | undefined {
  return blob.length > 4 && blob[0] === 0x4d && blob[1] === 0x43 && blob[2] === 0x43 && blob[3] === 0x45
    ? blob[4]
    : undefined;
}

function headerOf(blob: Uint8Array): EnvelopeHeader | EnvelopeError {
  try {
    return parseEnvelopeHeader(blob);
  } catch (e) {
    if (e instanceof EnvelopeError) return e;
    throw e;
  }
}

/** The exit code of a walk: a service failure first, then an interrupt, then findings. */
function exitOf(summary: WalkSummary, findings: number): ExitCode {
  if (summary.failure !== undefined) return ExitCode.ServiceFailure;
  if (summary.interrupted) return ExitCode.Interrupted;
  return findings > 0 ? ExitCode.Findings : ExitCode.Ok;
}

/** A failure as a report shows it: its code and message, never its cause's payload. */
export function errorReport(error: unknown): ReportError {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return {
    code: typeof code === 'string' ? code : 'ERROR',
    message: typeof message === 'string' ? message : String(error),
  };
}

/** Walk totals every report of a scan carries. */
function walkReport(summary: WalkSummary, progress: Progress): WalkTotals {
  return {
    ...(summary.failure !== undefined ? { error: errorReport(summary.failure) } : {}),
    items: summary.items,
    skippedKeys: summary.skippedKeys,
    interrupted: summary.interrupted,
    retries: progress.retries,
    seconds: Math.round(progress.elapsedMs()) / 1000,
    itemsPerSecond: Math.round(progress.rate()),
  };
}

async function withTotal(ctx: CommandContext, progress: Progress): Promise<void> {
  progress.total = await ctx.source.estimateCount?.().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------- stats

/** Counts from headers only: nothing is decrypted, no key service is called. */
export async function stats(ctx: CommandContext): Promise<CommandResult<StatsReport>> {
  const now = nowSeconds(ctx);
  const byKeyId: Record<string, number> = {};
  const byKeyRing: Record<string, number> = {};
  const byFormatVersion: Record<string, number> = {};
  const unreadable: Record<string, number> = {};
  const histogram = SIZE_BUCKETS.map((le) => ({ le, count: 0 }));
  const over = { count: 0 };
  let bytes = 0;
  let expired = 0;
  let compressed = 0;
  let min: number | undefined;
  let max = 0;
  const progress = ctx.progress('stats');
  await withTotal(ctx, progress);
  const summary = await forEachItem(ctx.source, { ...ctx, progress }, async (item) => {
    const size = item.blob.length;
    bytes += size;
    min = min === undefined ? size : Math.min(min, size);
    max = Math.max(max, size);
    (histogram.find((b) => size <= b.le) ?? over).count += 1;
    if (item.expiresAt <= now) expired += 1;
    const version = formatVersion(item.blob);
    increment(byFormatVersion, version === undefined ? 'none' : String(version));
    const header = headerOf(item.blob);
    if (header instanceof EnvelopeError) {
      increment(unreadable, header.reason);
      return;
    }
    increment(byKeyId, header.keyId);
    increment(byKeyRing, header.keyRing);
    if (header.compressed) compressed += 1;
  });
  return {
    exitCode: exitOf(summary, 0),
    report: {
      command: 'stats',
      ...walkReport(summary, progress),
      live: summary.items - expired,
      expired,
      bytes: {
        total: bytes,
        min: min ?? 0,
        max,
        mean: summary.items ? Math.round(bytes / summary.items) : 0,
        histogram: [...histogram, { le: null, count: over.count }],
      },
      compressed,
      byKeyId,
      byKeyRing,
      byFormatVersion,
      unreadableHeaders: unreadable,
    },
  };
}

// -------------------------------------------------------------------------------------- opening

/**
 * The partition kinds an item may be sealed for, in the order tried. The cache seals each
 * partition under its kind, and a ring that binds kinds (KMS: the kind is in the encryption
 * context) unwraps a data key only under the kind it was made for; a store key is a hash,
 * so the item does not say which kind it is.
 */
const PARTITION_KINDS: readonly PartitionKind[] = ['obo', 'user', 'app'];

/**
 * An envelope over the deployment's key ring, and what each data key's kinds did so far: a
 * wrong kind costs one refused unwrap, once per data key and kind.
 */
class Opener {
  readonly envelope: Envelope;
  readonly keys: DataKeyCache;
  private readonly kindOfDataKey = new Map<string, PartitionKind>();
  private readonly refusedKinds = new Map<string, Set<PartitionKind>>();
  /** The kind that opened the last data key: a table's partitions are mostly of one kind. */
  private lastKind: PartitionKind = PARTITION_KINDS[0];

  constructor(ctx: Pick<CommandContext, 'keyRing' | 'dataKeys' | 'compressAboveBytes'>) {
    this.keys = new DataKeyCache(ctx.keyRing, ctx.dataKeys);
    this.envelope = new Envelope({ keys: this.keys, compressAboveBytes: ctx.compressAboveBytes });
  }

  /**
   * The kinds to try for `header`'s data key: the one that opened it before (or else the
   * last one to open any) first, and none that the ring refused for it.
   */
  kindsFor(header: EnvelopeHeader): readonly PartitionKind[] {
    const id = dataKeyId(header);
    const first = this.kindOfDataKey.get(id) ?? this.lastKind;
    const refused = this.refusedKinds.get(id);
    return [first, ...PARTITION_KINDS.filter((kind) => kind !== first)].filter((kind) => !refused?.has(kind));
  }

  opened(header: EnvelopeHeader, kind: PartitionKind): void {
    this.kindOfDataKey.set(dataKeyId(header), kind);
    this.lastKind = kind;
  }

  /** The ring could not unwrap `header`'s data key under `kind` (`unknown-key`). */
  refused(header: EnvelopeHeader, kind: PartitionKind): void {
    const id = dataKeyId(header);
    const kinds = this.refusedKinds.get(id) ?? new Set<PartitionKind>();
    this.refusedKinds.set(id, kinds.add(kind));
  }
}

const dataKeyId = (header: EnvelopeHeader): string =>
  `${header.keyId}\n${Buffer.from(header.wrappedKey).toString('base64')}`;

/** Why an item does not open, or its document and the kind it opened under. Transient key-service failures are rethrown. */
type Opened =
  | { doc: CacheDocument; plaintext: Uint8Array; header: EnvelopeHeader; kind: PartitionKind }
  | { failure: string };

/**
 * Opens an item under `kind`, or (unknown) under each partition kind until one unwraps its
 * data key. A refused or disabled key wins over `unknown-key` as the failure reported.
 */
async function openItem(
  opener: Opener,
  item: Pick<ScannedItem, 'key' | 'blob'>,
  progress: Progress,
  kind?: PartitionKind,
): Promise<Opened> {
  const header = headerOf(item.blob);
  if (header instanceof EnvelopeError) return { failure: header.reason };
  let failure: string | undefined;
  for (const candidate of kind ? [kind] : opener.kindsFor(header)) {
    let plaintext: Uint8Array;
    try {
      plaintext = await retried(
        () => opener.envelope.open(item.blob, item.key, { partitionKind: candidate }),
        progress,
        undefined,
      );
    } catch (e) {
      // Another kind's data key, under a ring that binds kinds: try the next kind.
      if (e instanceof EnvelopeError && e.reason === EnvelopeFailure.UnknownKey) {
        opener.refused(header, candidate);
        failure ??= e.reason;
        continue;
      }
      if (e instanceof EnvelopeError) return { failure: e.reason };
      // A disabled key is the item's key whatever the kind: no other kind is tried.
      if (e instanceof KeyServiceError && e.reason === KeyServiceFailure.Disabled) {
        return { failure: `key-${e.reason}` };
      }
      // A denied call may be this kind's grant only: the next kind is tried, and a denial
      // is reported over unknown-key.
      if (e instanceof KeyServiceError && e.reason === KeyServiceFailure.AccessDenied) {
        failure = `key-${e.reason}`;
        continue;
      }
      throw e;
    }
    opener.opened(header, candidate);
    try {
      return {
        doc: parseDocument(Buffer.from(plaintext).toString('utf8')),
        plaintext,
        header,
        kind: candidate,
      };
    } catch {
      return { failure: EnvelopeFailure.BadPlaintext };
    }
  }
  return { failure: failure ?? EnvelopeFailure.UnknownKey };
}

/** Failure counts plus the first keys of each, for the report. */
class Failures {
  readonly counts: Record<string, number> = {};
  readonly keys: Array<{ key: string; reason: string }> = [];
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
  add(key: string, reason: string): void {
    increment(this.counts, reason);
    if (this.keys.length < MAX_LISTED) this.keys.push({ key, reason });
  }
}

// --------------------------------------------------------------------------------------- verify

/** Opens every item; reports those that do not open, by reason. */
export async function verify(ctx: CommandContext): Promise<CommandResult<VerifyReport>> {
  const opener = new Opener(ctx);
  const failures = new Failures();
  let ok = 0;
  let expired = 0;
  const now = nowSeconds(ctx);
  const progress = ctx.progress('verify', () => `${ok} ok, ${failures.total} failed`);
  await withTotal(ctx, progress);
  const summary = await forEachItem(ctx.source, { ...ctx, progress }, async (item) => {
    if (item.expiresAt <= now) expired += 1;
    const opened = await openItem(opener, item, progress);
    if ('failure' in opened) failures.add(item.key, opened.failure);
    else ok += 1;
  });
  return {
    exitCode: exitOf(summary, failures.total),
    report: {
      command: 'verify',
      ...walkReport(summary, progress),
      ok,
      failed: failures.counts,
      failedKeys: failures.keys,
      expired,
    },
  };
}

// -------------------------------------------------------------------------------------- inspect

/** Which partition to inspect. */
export type InspectTarget = { readonly user: string } | { readonly app: string } | { readonly key: string };

/** The partition kind of an inspect target, when it says (a store key does not). */
function kindOf(target: InspectTarget): PartitionKind | undefined {
  return 'user' in target ? 'user' : 'app' in target ? 'app' : undefined;
}

/** The store key of an inspect or purge target. */
export function targetKey(clientId: string, target: InspectTarget): string {
  if ('key' in target) return target.key;
  const partition: Partition =
    'user' in target ? { kind: 'user', homeAccountId: target.user } : { kind: 'app', tenantId: target.app };
  return partitionStoreKey(clientId, partition);
}

const isoOf = (seconds: number): string => new Date(seconds * 1000).toISOString();

/** What may be shown of an entity: names, ids, scopes and times, never a secret. */
function describeEntity(section: string, entity: CacheEntity): EntityView {
  const text = (field: string): string | undefined =>
    typeof entity[field] === 'string' ? entity[field] : undefined;
  const exp = expiresOn(entity);
  const base = {
    homeAccountId: text('home_account_id'),
    environment: text('environment'),
    realm: text('realm'),
  };
  switch (section) {
    case Section.AccessToken:
      return {
        ...base,
        scopes: text('target')?.split(' ').filter(Boolean) ?? [],
        tokenType: text('token_type') ?? 'Bearer',
        expiresOn: exp === undefined ? undefined : isoOf(exp),
        ...(text('userAssertionHash') ? { onBehalfOf: true } : {}),
      };
    case Section.RefreshToken:
      return { ...base, ...(exp === undefined ? {} : { expiresOn: isoOf(exp) }) };
    case Section.Account:
      return { ...base, username: text('username'), authorityType: text('authority_type') };
    case Section.IdToken:
      return base;
    default:
      return { ...(exp === undefined ? {} : { expiresOn: isoOf(exp) }) };
  }
}

/** One partition: header fields, sizes, expiry, entity counts, scopes and expiries. */
export async function inspect(
  ctx: CommandContext,
  target: InspectTarget,
): Promise<CommandResult<InspectReport>> {
  const key = targetKey(ctx.clientId, target);
  const progress = ctx.progress('inspect');
  const item = await retried(() => ctx.store.read(key), progress, ctx.limiter);
  if (!item) {
    return {
      exitCode: ExitCode.Findings,
      report: { command: 'inspect', key, found: false },
    };
  }
  const header = headerOf(item.blob);
  const report: FoundFields = {
    command: 'inspect',
    key,
    found: true,
    version: item.version,
    expiresAt: isoOf(item.expiresAt),
    bytes: item.blob.length,
    header:
      header instanceof EnvelopeError
        ? { unreadable: header.reason }
        : {
            formatVersion: header.version,
            compressed: header.compressed,
            keyRing: header.keyRing,
            keyId: header.keyId,
            wrappedKeyBytes: header.wrappedKey.length,
            headerBytes: header.headerLength,
            bodyBytes: header.bodyLength,
          },
  };
  const opened = await openItem(new Opener(ctx), { key, blob: item.blob }, progress, kindOf(target));
  if ('failure' in opened) {
    return { exitCode: ExitCode.Findings, report: { ...report, opens: false, failure: opened.failure } };
  }
  const sections: Record<string, EntityView[]> = {};
  const counts: Record<string, number> = {};
  for (const [name, section] of Object.entries(opened.doc)) {
    counts[name] = Object.keys(section).length;
    sections[name] = Object.values(section).map((entity) => describeEntity(name, entity));
  }
  return {
    exitCode: ExitCode.Ok,
    report: { ...report, opens: true, plaintextBytes: opened.plaintext.length, entities: counts, sections },
  };
}

// ------------------------------------------------------------------------------- purge and prune

/** Deletes `item` only if it still has the version read; false when it changed meanwhile. */
async function deleteIfUnchanged(
  ctx: CommandContext,
  key: string,
  version: string,
  progress: Progress,
): Promise<boolean> {
  try {
    await retried(() => ctx.store.delete(key, { expectedVersion: version }), progress, ctx.limiter);
    return true;
  } catch (e) {
    if (e instanceof VersionConflictError) return false;
    throw e;
  }
}

/** Whether a document holds anything of the user `homeAccountId`. */
function holdsUser(doc: CacheDocument, homeAccountId: string): boolean {
  return Object.values(doc).some((section) =>
    Object.values(section).some((entity) => entity['home_account_id'] === homeAccountId),
  );
}

/** Options of {@link purge}. */
export interface PurgeOptions {
  readonly homeAccountId: string;
  readonly dryRun: boolean;
  /** Only the user's own partition, without scanning for on-behalf-of partitions. */
  readonly userPartitionOnly: boolean;
}

/**
 * Sign-out everywhere for one user: deletes the user partition and (unless
 * `userPartitionOnly`) every on-behalf-of partition holding the user's tokens. Each delete
 * is conditional on the version just read; a partition changed meanwhile is read again.
 */
export async function purge(ctx: CommandContext, options: PurgeOptions): Promise<CommandResult<PurgeReport>> {
  const userKey = targetKey(ctx.clientId, { user: options.homeAccountId });
  const opener = new Opener(ctx);
  const failures = new Failures();
  const deleted: string[] = [];
  let changedMeanwhile = 0;
  const progress = ctx.progress(
    'purge',
    () => `${deleted.length} ${options.dryRun ? 'to delete' : 'deleted'}`,
  );

  /** Reads the partition again until it is gone, not the user's, or deleted at the version read. */
  const purgeKey = async (
    key: string,
    first: ScannedItem | undefined,
    mustHoldUser: boolean,
  ): Promise<void> => {
    let item = first;
    for (let attempt = 0; attempt < 10; attempt++) {
      item ??= await retried(() => ctx.store.read(key), progress, ctx.limiter).then((read) =>
        read ? { key, ...read } : undefined,
      );
      if (!item) return;
      if (mustHoldUser) {
        const opened = await openItem(opener, item, progress);
        if ('failure' in opened) return failures.add(key, opened.failure);
        if (!holdsUser(opened.doc, options.homeAccountId)) return;
      }
      if (options.dryRun || (await deleteIfUnchanged(ctx, key, item.version, progress))) {
        deleted.push(key);
        return;
      }
      changedMeanwhile += 1;
      item = undefined;
    }
    failures.add(key, 'kept-changing');
  };

  await purgeKey(userKey, undefined, false);
  let summary: WalkSummary = { items: 0, skippedKeys: 0, interrupted: ctx.signal?.aborted ?? false };
  if (!options.userPartitionOnly) {
    await withTotal(ctx, progress);
    const now = nowSeconds(ctx);
    summary = await forEachItem(ctx.source, { ...ctx, progress }, async (item) => {
      if (item.key === userKey || item.expiresAt <= now) return;
      await purgeKey(item.key, item, true);
    });
  }
  const walk = walkReport(summary, progress);
  const rest = {
    deletedKeys: deleted.slice(0, MAX_LISTED),
    changedMeanwhile,
    unreadable: failures.counts,
    unreadableKeys: failures.keys,
  } satisfies Partial<PurgeFields>;
  // One literal per case rather than a computed key, so the type ties the count's name to
  // dryRun; the keys keep the order --json prints them in (so in prune and rewrap).
  return {
    exitCode: exitOf(summary, failures.total),
    report: options.dryRun
      ? { command: 'purge', dryRun: true, userKey, ...walk, wouldDelete: deleted.length, ...rest }
      : { command: 'purge', dryRun: false, userKey, ...walk, deleted: deleted.length, ...rest },
  };
}

/** Deletes expired items, each only if unchanged since the scan read it. */
export async function prune(
  ctx: CommandContext,
  options: { readonly dryRun: boolean },
): Promise<CommandResult<PruneReport>> {
  const now = nowSeconds(ctx);
  let deleted = 0;
  let changedMeanwhile = 0;
  let live = 0;
  const progress = ctx.progress('prune', () => `${deleted} ${options.dryRun ? 'to delete' : 'deleted'}`);
  await withTotal(ctx, progress);
  const summary = await forEachItem(ctx.source, { ...ctx, progress }, async (item) => {
    if (item.expiresAt > now) {
      live += 1;
      return;
    }
    // Rewritten since the scan (e.g. a sign-in brought it back): it is no longer ours to delete.
    if (options.dryRun || (await deleteIfUnchanged(ctx, item.key, item.version, progress))) deleted += 1;
    else changedMeanwhile += 1;
  });
  const walk = walkReport(summary, progress);
  return {
    exitCode: exitOf(summary, 0),
    report: options.dryRun
      ? { command: 'prune', dryRun: true, ...walk, wouldDelete: deleted, changedMeanwhile, live }
      : { command: 'prune', dryRun: false, ...walk, deleted, changedMeanwhile, live },
  };
}

// --------------------------------------------------------------------------------------- rewrap

/** Options of {@link rewrap}. */
export interface RewrapOptions {
  readonly dryRun: boolean;
}

/**
 * Re-encrypts every item under the key ring's current master key. Each write is
 * conditional on the version read; an item changed meanwhile is read again and redone,
 * never overwritten. Items already under the current key are skipped, so a rerun after
 * an interruption resumes where the last one stopped. Items that do not open are reported
 * and left as they are.
 */
export async function rewrap(
  ctx: CommandContext,
  options: RewrapOptions,
): Promise<CommandResult<RewrapReport>> {
  const opener = new Opener(ctx);
  const { envelope, keys } = opener;
  // The current master key, as the ring names it in the envelopes it seals: from a data key
  // of the first kind tried, which then seals that kind's items (the probe takes no use).
  const currentKeyId = await retried(
    () => keys.currentKeyId({ partitionKind: PARTITION_KINDS[0] }),
    ctx.progress('rewrap'),
    undefined,
  );
  const failures = new Failures();
  const fromKeyIds: Record<string, number> = {};
  let rewrapped = 0;
  let alreadyCurrent = 0;
  let redone = 0;
  let gone = 0;
  const progress = ctx.progress(
    options.dryRun ? 'rewrap (dry run)' : 'rewrap',
    () =>
      `${rewrapped} ${options.dryRun ? 'to rewrap' : 'rewrapped'}, ${alreadyCurrent} current, ${failures.total} failed`,
  );
  await withTotal(ctx, progress);

  const rewrapItem = async (first: ScannedItem): Promise<void> => {
    let item: ScannedItem | undefined = first;
    for (let attempt = 0; item; attempt++) {
      if (attempt >= 20) return failures.add(first.key, 'kept-changing');
      const header = headerOf(item.blob);
      if (
        !(header instanceof EnvelopeError) &&
        header.keyRing === ctx.keyRing.name &&
        header.keyId === currentKeyId
      ) {
        alreadyCurrent += 1;
        return;
      }
      const opened = await openItem(opener, item, progress);
      if ('failure' in opened) return failures.add(item.key, opened.failure);
      if (options.dryRun) {
        increment(fromKeyIds, opened.header.keyId);
        rewrapped += 1;
        return;
      }
      const key: string = item.key;
      // Sealed again for the kind it opened under: the cache opens it under its partition's kind.
      const blob: Uint8Array = await retried(
        () => envelope.seal(opened.plaintext, key, { partitionKind: opened.kind }),
        progress,
        undefined,
      );
      const { version, expiresAt } = item;
      try {
        await retried(
          () => ctx.store.write(key, blob, { condition: { expectedVersion: version }, expiresAt }),
          progress,
          ctx.limiter,
        );
        increment(fromKeyIds, opened.header.keyId);
        rewrapped += 1;
        return;
      } catch (e) {
        if (!(e instanceof VersionConflictError)) throw e;
      }
      // Written (or deleted) by someone else since it was read: read it again, redo.
      redone += 1;
      const fresh: StoredItem | undefined = await retried(() => ctx.store.read(key), progress, ctx.limiter);
      item = fresh && { key, ...fresh };
      if (!item) gone += 1;
    }
  };

  const summary = await forEachItem(ctx.source, { ...ctx, progress }, rewrapItem);
  const walk = walkReport(summary, progress);
  const rest = {
    fromKeyIds,
    alreadyCurrent,
    redone,
    gone,
    failed: failures.counts,
    failedKeys: failures.keys,
  } satisfies Partial<RewrapFields>;
  return {
    exitCode: exitOf(summary, failures.total),
    report: options.dryRun
      ? { command: 'rewrap', dryRun: true, currentKeyId, ...walk, wouldRewrap: rewrapped, ...rest }
      : { command: 'rewrap', dryRun: false, currentKeyId, ...walk, rewrapped, ...rest },
  };
}
