/**
 * The reports of the CLI's commands: the `--json` document of each command and the source
 * of its table (shared/cli/render.ts). Each command builds its own type, so a field renamed
 * here fails to compile where it is written and where it is shown. The README's "Operator
 * CLI" section lists the same fields for operators.
 */
import type { ConfigurationProblem } from '../errors';

/** Counts by name: key id, reason, format version, section. */
export type Counts = Readonly<Record<string, number>>;

/** A failure as a report shows it: its code and message, never its cause's payload. */
export interface ReportError {
  readonly code: string;
  readonly message: string;
}

/** The document `--json` prints when a command could not run at all (usage, configuration). */
export interface FailureReport {
  readonly error: ReportError & { readonly problems?: readonly ConfigurationProblem[] };
}

/** Walk totals every report of a scan carries. */
export interface WalkTotals {
  /** The store or key-service failure that stopped the walk (after retries). */
  readonly error?: ReportError;
  /** Items scanned. */
  readonly items: number;
  /** Keys of the store that are not partitions (leases, other item types). */
  readonly skippedKeys: number;
  readonly interrupted: boolean;
  /** Retries of failed store pages and operations. */
  readonly retries: number;
  readonly seconds: number;
  readonly itemsPerSecond: number;
}

/** An item left out of the work, and why. */
export interface KeyFailure {
  readonly key: string;
  readonly reason: string;
}

/** Items that do not open: counts by reason, and the first keys of each. */
export interface ItemFailures {
  readonly failed: Counts;
  readonly failedKeys: readonly KeyFailure[];
}

/**
 * What a changing command changed, under `Done`, or in a dry run would change, under
 * `Would`: `dryRun` says which of the two the report has.
 */
export type Changed<Done extends string, Would extends string> =
  | ({ readonly dryRun: false } & { readonly [K in Done]: number })
  | ({ readonly dryRun: true } & { readonly [K in Would]: number });

/** `stats`: counts from headers only. */
export interface StatsReport extends WalkTotals {
  readonly command: 'stats';
  readonly live: number;
  /** Expired but still present. */
  readonly expired: number;
  readonly bytes: {
    readonly total: number;
    readonly min: number;
    readonly max: number;
    readonly mean: number;
    /** Items of at most `le` bytes; `le: null` is above the largest bucket (400 KiB). */
    readonly histogram: ReadonlyArray<{ readonly le: number | null; readonly count: number }>;
  };
  readonly compressed: number;
  readonly byKeyId: Counts;
  readonly byKeyRing: Counts;
  /** `none` when the envelope magic is missing. */
  readonly byFormatVersion: Counts;
  readonly unreadableHeaders: Counts;
}

/** `verify`: every item opened; those that do not, by reason. */
export interface VerifyReport extends WalkTotals, ItemFailures {
  readonly command: 'verify';
  readonly ok: number;
  readonly expired: number;
}

/** The parts of `rewrap` besides its count. */
export interface RewrapFields extends WalkTotals, ItemFailures {
  readonly command: 'rewrap';
  /** The master key every item is re-encrypted under. */
  readonly currentKeyId: string;
  /** Items rewrapped, by the key id they were under. */
  readonly fromKeyIds: Counts;
  readonly alreadyCurrent: number;
  /** Items changed meanwhile, read again and redone. */
  readonly redone: number;
  /** Items deleted meanwhile. */
  readonly gone: number;
}

/** `rewrap`: items re-encrypted under the current master key (`rewrapped` or `wouldRewrap`). */
export type RewrapReport = RewrapFields & Changed<'rewrapped', 'wouldRewrap'>;

/** The parts of `prune` besides its count. */
export interface PruneFields extends WalkTotals {
  readonly command: 'prune';
  /** Expired items rewritten since the scan: kept. */
  readonly changedMeanwhile: number;
  readonly live: number;
}

/** `prune`: expired items deleted (`deleted` or `wouldDelete`). */
export type PruneReport = PruneFields & Changed<'deleted', 'wouldDelete'>;

/** The parts of `purge` besides its count. */
export interface PurgeFields extends WalkTotals {
  readonly command: 'purge';
  /** The store key of the user's own partition. */
  readonly userKey: string;
  /** The first keys deleted (or to delete). */
  readonly deletedKeys: readonly string[];
  /** Partitions changed meanwhile, read again. */
  readonly changedMeanwhile: number;
  /** Partitions that do not open, so could not be checked for the user. */
  readonly unreadable: Counts;
  readonly unreadableKeys: readonly KeyFailure[];
}

/** `purge`: the user's partitions deleted (`deleted` or `wouldDelete`). */
export type PurgeReport = PurgeFields & Changed<'deleted', 'wouldDelete'>;

/** What `inspect` shows of one entity: names, ids, scopes and times, never a secret. */
export interface EntityView {
  readonly homeAccountId?: string | undefined;
  readonly environment?: string | undefined;
  readonly realm?: string | undefined;
  /** Access tokens. */
  readonly scopes?: readonly string[];
  readonly tokenType?: string;
  /** ISO 8601. */
  readonly expiresOn?: string | undefined;
  /** An access token acquired on behalf of a caller. */
  readonly onBehalfOf?: true;
  /** Accounts. */
  readonly username?: string | undefined;
  readonly authorityType?: string | undefined;
}

/** The envelope header of an inspected item, or why it does not parse. */
export type HeaderView =
  | { readonly unreadable: string }
  | {
      readonly formatVersion: number;
      readonly compressed: boolean;
      readonly keyRing: string;
      readonly keyId: string;
      readonly wrappedKeyBytes: number;
      readonly headerBytes: number;
      readonly bodyBytes: number;
    };

/** The parts of `inspect` of a partition that is present. */
export interface FoundFields {
  readonly command: 'inspect';
  readonly key: string;
  readonly found: true;
  /** The store's version of the item. */
  readonly version: string;
  /** ISO 8601. */
  readonly expiresAt: string;
  readonly bytes: number;
  readonly header: HeaderView;
}

/** `inspect`: one partition, absent, present but not opening, or opened. */
export type InspectReport =
  | { readonly command: 'inspect'; readonly key: string; readonly found: false }
  | (FoundFields & { readonly opens: false; readonly failure: string })
  | (FoundFields & {
      readonly opens: true;
      readonly plaintextBytes: number;
      /** Entities by section. */
      readonly entities: Counts;
      readonly sections: Readonly<Record<string, readonly EntityView[]>>;
    });

/** The report of any command, discriminated by `command`. */
export type CommandReport =
  StatsReport | VerifyReport | RewrapReport | PruneReport | PurgeReport | InspectReport;
