/** Human-readable tables of the command reports (the `--json` document is the report itself). */

/** The fields of the reports that the tables show (see shared/cli/commands.ts). */
interface View {
  command?: string;
  items?: number;
  skippedKeys?: number;
  seconds?: number;
  itemsPerSecond?: number;
  retries?: number;
  interrupted?: boolean;
  live?: number;
  expired?: number;
  bytes?: {
    total: number;
    mean: number;
    max: number;
    histogram: Array<{ le: number | null; count: number }>;
  };
  compressed?: number;
  byKeyId?: Record<string, number>;
  byKeyRing?: Record<string, number>;
  byFormatVersion?: Record<string, number>;
  unreadableHeaders?: Record<string, number>;
  ok?: number;
  failed?: Record<string, number>;
  currentKeyId?: string;
  dryRun?: boolean;
  rewrapped?: number;
  wouldRewrap?: number;
  fromKeyIds?: Record<string, number>;
  alreadyCurrent?: number;
  redone?: number;
  gone?: number;
  deleted?: number;
  wouldDelete?: number;
  changedMeanwhile?: number;
  userKey?: string;
  deletedKeys?: string[];
  unreadable?: Record<string, number>;
  key?: string;
  found?: boolean;
  version?: string;
  expiresAt?: string;
  header?: Record<string, unknown>;
  opens?: boolean;
  failure?: string;
  plaintextBytes?: number;
  entities?: Record<string, number>;
  sections?: Record<string, Array<Record<string, unknown>>>;
}

type Row = readonly [string, string];

function table(rows: readonly Row[]): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

const n = (value: unknown): string =>
  typeof value === 'number' ? value.toLocaleString('en-US') : String(value);

function counts(title: string, record: unknown): Row[] {
  const entries = Object.entries((record ?? {}) as Record<string, number>).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return [[title, '(none)']];
  return entries.map(([key, count], i) => [i === 0 ? title : '', `${n(count).padStart(10)}  ${key}`] as Row);
}

function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

function walk(report: View): Row[] {
  return [
    ['items scanned', n(report.items)],
    ...(report.skippedKeys ? [['other keys skipped', n(report.skippedKeys)] as Row] : []),
    ['time', `${String(report.seconds)} s (${n(report.itemsPerSecond)} items/s)`],
    ...(report.retries ? [['retries', n(report.retries)] as Row] : []),
    ...(report.interrupted ? [['interrupted', 'yes: rerun the same command to resume'] as Row] : []),
  ];
}

/** The report as aligned rows for a terminal. */
export function renderReport(report: Record<string, unknown>): string {
  const r = report as View;
  switch (r.command) {
    case 'stats':
      return table([
        ...walk(r),
        ['live', n(r.live)],
        ['expired (still present)', n(r.expired)],
        ['bytes', `${bytes(r.bytes!.total)} total, mean ${bytes(r.bytes!.mean)}, max ${bytes(r.bytes!.max)}`],
        ...r.bytes!.histogram.map(
          (b, i) =>
            [
              i === 0 ? 'size histogram' : '',
              `${n(b.count).padStart(10)}  ${b.le === null ? '> 400 KiB' : `<= ${bytes(b.le)}`}`,
            ] as Row,
        ),
        ['compressed', n(r.compressed)],
        ...counts('by key id', r.byKeyId),
        ...counts('by key ring', r.byKeyRing),
        ...counts('by format version', r.byFormatVersion),
        ...(Object.keys(r.unreadableHeaders ?? {}).length
          ? counts('unreadable headers', r.unreadableHeaders)
          : []),
      ]);
    case 'verify':
      return table([
        ...walk(r),
        ['ok', n(r.ok)],
        ...counts('failed', r.failed),
        ['expired (still present)', n(r.expired)],
      ]);
    case 'rewrap':
      return table([
        ...walk(r),
        ['current key id', String(r.currentKeyId)],
        [r.dryRun ? 'would rewrap' : 'rewrapped', n(r.dryRun ? r.wouldRewrap : r.rewrapped)],
        ...counts('from key id', r.fromKeyIds),
        ['already current', n(r.alreadyCurrent)],
        ['changed meanwhile, redone', n(r.redone)],
        ['deleted meanwhile', n(r.gone)],
        ...counts('left as they are', r.failed),
      ]);
    case 'prune':
      return table([
        ...walk(r),
        [r.dryRun ? 'would delete (expired)' : 'deleted (expired)', n(r.dryRun ? r.wouldDelete : r.deleted)],
        ['changed meanwhile, kept', n(r.changedMeanwhile)],
        ['live', n(r.live)],
      ]);
    case 'purge':
      return table([
        ['user partition', String(r.userKey)],
        ...walk(r),
        [r.dryRun ? 'would delete' : 'deleted', n(r.dryRun ? r.wouldDelete : r.deleted)],
        ...(r.deletedKeys ?? []).map((k, i) => [i === 0 ? 'partitions' : '', k] as Row),
        ['changed meanwhile, re-read', n(r.changedMeanwhile)],
        ...(Object.keys(r.unreadable ?? {}).length ? counts('unreadable (not checked)', r.unreadable) : []),
      ]);
    case 'inspect': {
      if (!r.found)
        return table([
          ['key', String(r.key)],
          ['found', 'no (absent or expired)'],
        ]);
      const rows: Row[] = [
        ['key', String(r.key)],
        ['version', String(r.version)],
        ['expires', String(r.expiresAt)],
        ['bytes', n(r.bytes)],
        ...Object.entries(r.header ?? {}).map(([k, v]) => [`header.${k}`, String(v)] as Row),
      ];
      if (!r.opens) return table([...rows, ['opens', `no (${String(r.failure)})`]]);
      rows.push(['plaintext bytes', n(r.plaintextBytes)]);
      for (const [name, count] of Object.entries(r.entities ?? {})) rows.push([name, n(count)]);
      for (const [name, entities] of Object.entries(
        r.sections as Record<string, Array<Record<string, unknown>>>,
      )) {
        for (const entity of entities) {
          const parts = Object.entries(entity)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(' ') : String(v)}`);
          rows.push([`  ${name}`, parts.join('  ')]);
        }
      }
      return table(rows);
    }
    default:
      return JSON.stringify(report, null, 2);
  }
}
