/**
 * The tables the CLI prints without --json: one pinned table per command (and per dry run),
 * row for row, from reports built as their types.
 */
import { renderReport } from '../../../shared/cli/render';
import type { CommandReport, InspectReport, WalkTotals } from '../../../shared/cli/reports';

const USER_KEY = 'Ic0ul6UgkW8C8xiKouA-AUuOL1y2OonuCnKrljwBtUU';
const OTHER_KEY = '70oMuvPNIYEojw4nHiKnm94dcoUWEPJ55e6QUxaKHgc';
const environment = 'login.microsoftonline.com';

/** A table as the terminal shows it, written from the line after the opening backtick. */
const shown = (lines: TemplateStringsArray, ...values: string[]): string =>
  String.raw({ raw: lines }, ...values).slice(1);

/** A walk that went through, over two keys that are not partitions. */
const walk: WalkTotals = {
  items: 12_345,
  skippedKeys: 2,
  interrupted: false,
  retries: 0,
  seconds: 1.5,
  itemsPerSecond: 8230,
};

/** A walk stopped by the store after retries, and interrupted. */
const stopped: WalkTotals = {
  error: { code: 'STORE_UNAVAILABLE', message: 'dynamodb: read failed (throttled)' },
  items: 300,
  skippedKeys: 0,
  interrupted: true,
  retries: 3,
  seconds: 0.25,
  itemsPerSecond: 1200,
};

const rewrap = {
  command: 'rewrap',
  currentKeyId: 'local-2',
  ...walk,
  fromKeyIds: { 'local-1': 12_300 },
  alreadyCurrent: 40,
  redone: 2,
  gone: 1,
  failed: {},
  failedKeys: [],
} as const;

/** The rewrap table, with its count row (`rewrapped` or `would rewrap`). */
const rewrapTable = (count: string): string => shown`
items scanned              12,345
other keys skipped         2
time                       1.5 s (8,230 items/s)
current key id             local-2
${count}
from key id                    12,300  local-1
already current            40
changed meanwhile, redone  2
deleted meanwhile          1
left as they are           (none)`;

/** A partition that is present (inspect). */
const found = {
  command: 'inspect',
  key: USER_KEY,
  found: true,
  version: '7',
  expiresAt: '2027-01-16T08:00:00.000Z',
  bytes: 1422,
} as const;

describe('renderReport', () => {
  it.each<{ title: string; report: CommandReport; table: string }>([
    {
      title: 'stats: the walk, sizes with their histogram, counts by key id, ring and format, largest first',
      report: {
        command: 'stats',
        ...walk,
        live: 12_000,
        expired: 345,
        bytes: {
          total: 5_500_000,
          min: 310,
          max: 420_000,
          mean: 445,
          histogram: [
            { le: 1024, count: 12_000 },
            { le: 4096, count: 300 },
            { le: 16_384, count: 40 },
            { le: 65_536, count: 4 },
            { le: 262_144, count: 0 },
            { le: 409_600, count: 0 },
            { le: null, count: 1 },
          ],
        },
        compressed: 11_000,
        byKeyId: { 'local-1': 120, 'local-2': 12_224 },
        byKeyRing: { local: 12_344 },
        byFormatVersion: { '1': 12_344, none: 1 },
        unreadableHeaders: { malformed: 1 },
      },
      table: shown`
items scanned            12,345
other keys skipped       2
time                     1.5 s (8,230 items/s)
live                     12,000
expired (still present)  345
bytes                    5.2 MiB total, mean 445 B, max 410.2 KiB
size histogram               12,000  <= 1.0 KiB
                                300  <= 4.0 KiB
                                 40  <= 16.0 KiB
                                  4  <= 64.0 KiB
                                  0  <= 256.0 KiB
                                  0  <= 400.0 KiB
                                  1  > 400 KiB
compressed               11,000
by key id                    12,224  local-2
                                120  local-1
by key ring                  12,344  local
by format version            12,344  1
                                  1  none
unreadable headers                1  malformed`,
    },
    {
      title: 'verify: retries and the interruption of a stopped walk, then the failures by reason',
      report: {
        command: 'verify',
        ...stopped,
        ok: 298,
        failed: { malformed: 1, 'authentication-failed': 1 },
        failedKeys: [
          { key: USER_KEY, reason: 'malformed' },
          { key: OTHER_KEY, reason: 'authentication-failed' },
        ],
        expired: 7,
      },
      table: shown`
items scanned            300
time                     0.25 s (1,200 items/s)
retries                  3
interrupted              yes: rerun the same command to resume
ok                       298
failed                            1  malformed
                                  1  authentication-failed
expired (still present)  7`,
    },
    {
      title: 'rewrap: what was rewrapped, from which key ids, and what was left',
      report: { ...rewrap, dryRun: false, rewrapped: 12_300 },
      table: rewrapTable('rewrapped                  12,300'),
    },
    {
      title: 'rewrap --dry-run: what would be rewrapped',
      report: { ...rewrap, dryRun: true, wouldRewrap: 12_300 },
      table: rewrapTable('would rewrap               12,300'),
    },
    {
      title: 'prune: the expired items deleted and those kept because they changed',
      report: { command: 'prune', dryRun: false, ...walk, deleted: 344, changedMeanwhile: 1, live: 12_000 },
      table: shown`
items scanned            12,345
other keys skipped       2
time                     1.5 s (8,230 items/s)
deleted (expired)        344
changed meanwhile, kept  1
live                     12,000`,
    },
    {
      title: 'prune --dry-run: the expired items it would delete',
      report: { command: 'prune', dryRun: true, ...stopped, wouldDelete: 345, changedMeanwhile: 0, live: 9 },
      table: shown`
items scanned            300
time                     0.25 s (1,200 items/s)
retries                  3
interrupted              yes: rerun the same command to resume
would delete (expired)   345
changed meanwhile, kept  0
live                     9`,
    },
    {
      title: 'purge: the user partition, every partition deleted, and those it could not check',
      report: {
        command: 'purge',
        dryRun: false,
        userKey: USER_KEY,
        ...walk,
        deleted: 2,
        deletedKeys: [USER_KEY, OTHER_KEY],
        changedMeanwhile: 1,
        unreadable: { 'authentication-failed': 1 },
        unreadableKeys: [{ key: 'G'.repeat(43), reason: 'authentication-failed' }],
      },
      table: shown`
user partition              ${USER_KEY}
items scanned               12,345
other keys skipped          2
time                        1.5 s (8,230 items/s)
deleted                     2
partitions                  ${USER_KEY}
                            ${OTHER_KEY}
changed meanwhile, re-read  1
unreadable (not checked)             1  authentication-failed`,
    },
    {
      title: 'purge --dry-run: what it would delete, with no rows for empty lists',
      report: {
        command: 'purge',
        dryRun: true,
        userKey: USER_KEY,
        ...stopped,
        wouldDelete: 0,
        deletedKeys: [],
        changedMeanwhile: 0,
        unreadable: {},
        unreadableKeys: [],
      },
      table: shown`
user partition              ${USER_KEY}
items scanned               300
time                        0.25 s (1,200 items/s)
retries                     3
interrupted                 yes: rerun the same command to resume
would delete                0
changed meanwhile, re-read  0`,
    },
    {
      title: 'inspect: the header, entity counts and each entity without its undefined fields',
      report: {
        ...found,
        header: {
          formatVersion: 1,
          compressed: true,
          keyRing: 'local',
          keyId: 'local-1',
          wrappedKeyBytes: 60,
          headerBytes: 111,
          bodyBytes: 1311,
        },
        opens: true,
        plaintextBytes: 2079,
        entities: { AccessToken: 2, RefreshToken: 1, Account: 1 },
        sections: {
          AccessToken: [
            {
              homeAccountId: 'oid-1.tid-1',
              environment,
              realm: 'tid-1',
              scopes: ['User.Read', 'openid'],
              tokenType: 'Bearer',
              expiresOn: '2027-01-15T09:00:00.000Z',
              onBehalfOf: true,
            },
            {
              homeAccountId: 'oid-1.tid-1',
              scopes: ['Mail.Read'],
              tokenType: 'Bearer',
              expiresOn: undefined,
            },
          ],
          RefreshToken: [{ homeAccountId: 'oid-1.tid-1', environment, realm: 'tid-1' }],
          Account: [{ homeAccountId: 'oid-1.tid-1', username: 'ada@contoso.test', authorityType: 'MSSTS' }],
        },
      },
      table: shown`
key                     ${USER_KEY}
version                 7
expires                 2027-01-16T08:00:00.000Z
bytes                   1,422
header.formatVersion    1
header.compressed       true
header.keyRing          local
header.keyId            local-1
header.wrappedKeyBytes  60
header.headerBytes      111
header.bodyBytes        1311
plaintext bytes         2,079
AccessToken             2
RefreshToken            1
Account                 1
  AccessToken           homeAccountId=oid-1.tid-1  environment=${environment}  realm=tid-1  scopes=User.Read openid  tokenType=Bearer  expiresOn=2027-01-15T09:00:00.000Z  onBehalfOf=true
  AccessToken           homeAccountId=oid-1.tid-1  scopes=Mail.Read  tokenType=Bearer
  RefreshToken          homeAccountId=oid-1.tid-1  environment=${environment}  realm=tid-1
  Account               homeAccountId=oid-1.tid-1  username=ada@contoso.test  authorityType=MSSTS`,
    },
    {
      title: 'inspect: an absent partition as not found',
      report: { command: 'inspect', key: 'A'.repeat(43), found: false },
      table: shown`
key    ${'A'.repeat(43)}
found  no (absent or expired)`,
    },
  ])('$title', ({ report, table }) => {
    const printed = renderReport(report);

    expect(printed).toBe(table);
  });

  it('inspect: shows why a partition does not open, after its unreadable header', () => {
    const report: InspectReport = {
      ...found,
      header: { unreadable: 'malformed' },
      opens: false,
      failure: 'malformed',
    };

    const printed = renderReport(report).split('\n');

    // The rows before the header are those of an opened partition (above), aligned the same.
    expect(printed.slice(4)).toEqual(['header.unreadable  malformed', 'opens              no (malformed)']);
    expect(printed[0]).toBe(`key                ${USER_KEY}`);
  });

  it('throws on a report of no command it knows (the union is exhaustive)', () => {
    const report = { command: 'frobnicate' } as unknown as CommandReport;

    expect(() => renderReport(report)).toThrow(/no table for the report {"command":"frobnicate"}/);
  });
});
