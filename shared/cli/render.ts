/** Human-readable tables of the command reports (the `--json` document is the report itself). */
import type { CommandReport, Counts, WalkTotals } from './reports';

type Row = readonly [string, string];

function table(rows: readonly Row[]): string {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

const n = (value: number): string => value.toLocaleString('en-US');

function counts(title: string, record: Counts): Row[] {
  const entries = Object.entries(record).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return [[title, '(none)']];
  return entries.map(([key, count], i) => [i === 0 ? title : '', `${n(count).padStart(10)}  ${key}`] as Row);
}

function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

function walk(report: WalkTotals): Row[] {
  return [
    ['items scanned', n(report.items)],
    ...(report.skippedKeys ? [['other keys skipped', n(report.skippedKeys)] as Row] : []),
    ['time', `${String(report.seconds)} s (${n(report.itemsPerSecond)} items/s)`],
    ...(report.retries ? [['retries', n(report.retries)] as Row] : []),
    ...(report.interrupted ? [['interrupted', 'yes: rerun the same command to resume'] as Row] : []),
  ];
}

/** The report as aligned rows for a terminal. */
export function renderReport(report: CommandReport): string {
  switch (report.command) {
    case 'stats':
      return table([
        ...walk(report),
        ['live', n(report.live)],
        ['expired (still present)', n(report.expired)],
        [
          'bytes',
          `${bytes(report.bytes.total)} total, mean ${bytes(report.bytes.mean)}, max ${bytes(report.bytes.max)}`,
        ],
        ...report.bytes.histogram.map(
          (b, i) =>
            [
              i === 0 ? 'size histogram' : '',
              `${n(b.count).padStart(10)}  ${b.le === null ? '> 400 KiB' : `<= ${bytes(b.le)}`}`,
            ] as Row,
        ),
        ['compressed', n(report.compressed)],
        ...counts('by key id', report.byKeyId),
        ...counts('by key ring', report.byKeyRing),
        ...counts('by format version', report.byFormatVersion),
        ...(Object.keys(report.unreadableHeaders).length
          ? counts('unreadable headers', report.unreadableHeaders)
          : []),
      ]);
    case 'verify':
      return table([
        ...walk(report),
        ['ok', n(report.ok)],
        ...counts('failed', report.failed),
        ['expired (still present)', n(report.expired)],
      ]);
    case 'rewrap':
      return table([
        ...walk(report),
        ['current key id', report.currentKeyId],
        report.dryRun ? ['would rewrap', n(report.wouldRewrap)] : ['rewrapped', n(report.rewrapped)],
        ...counts('from key id', report.fromKeyIds),
        ['already current', n(report.alreadyCurrent)],
        ['changed meanwhile, redone', n(report.redone)],
        ['deleted meanwhile', n(report.gone)],
        ...counts('left as they are', report.failed),
      ]);
    case 'prune':
      return table([
        ...walk(report),
        report.dryRun
          ? ['would delete (expired)', n(report.wouldDelete)]
          : ['deleted (expired)', n(report.deleted)],
        ['changed meanwhile, kept', n(report.changedMeanwhile)],
        ['live', n(report.live)],
      ]);
    case 'purge':
      return table([
        ['user partition', report.userKey],
        ...walk(report),
        report.dryRun ? ['would delete', n(report.wouldDelete)] : ['deleted', n(report.deleted)],
        ...report.deletedKeys.map((k, i) => [i === 0 ? 'partitions' : '', k] as Row),
        ['changed meanwhile, re-read', n(report.changedMeanwhile)],
        ...(Object.keys(report.unreadable).length
          ? counts('unreadable (not checked)', report.unreadable)
          : []),
      ]);
    case 'inspect': {
      if (!report.found)
        return table([
          ['key', report.key],
          ['found', 'no (absent or expired)'],
        ]);
      const rows: Row[] = [
        ['key', report.key],
        ['version', report.version],
        ['expires', report.expiresAt],
        ['bytes', n(report.bytes)],
        ...Object.entries(report.header).map(([k, v]) => [`header.${k}`, String(v)] as Row),
      ];
      if (!report.opens) return table([...rows, ['opens', `no (${report.failure})`]]);
      rows.push(['plaintext bytes', n(report.plaintextBytes)]);
      for (const [name, count] of Object.entries(report.entities)) rows.push([name, n(count)]);
      for (const [name, entities] of Object.entries(report.sections)) {
        for (const entity of entities) {
          const fields: Array<[string, unknown]> = Object.entries(entity);
          const parts = fields
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(' ') : String(v)}`);
          rows.push([`  ${name}`, parts.join('  ')]);
        }
      }
      return table(rows);
    }
    default: {
      const unexpected: never = report;
      throw new TypeError(`no table for the report ${JSON.stringify(unexpected)}`);
    }
  }
}
