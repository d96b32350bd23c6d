/**
 * `msal-cloud-cache capacity` (issue 19): the model's figures for the flags given, as JSON
 * and as a table; bad flags are a usage error naming the flag.
 */
import { main } from '../../../shared/cli/main';
import { DEFAULT_INPUT, estimateCapacity, withInput } from '../../../shared/capacity/model';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    env: {},
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

describe('msal-cloud-cache capacity', () => {
  it('prints the model for the flags as JSON, needing no store or environment', async () => {
    const { code, out } = await run([
      'capacity',
      '--rps',
      '5000',
      '--obo-callers',
      '20000',
      '--l1',
      'off',
      '--json',
    ]);
    const expected = estimateCapacity(
      withInput(DEFAULT_INPUT, { requestsPerSecond: 5000, callers: { obo: 20_000 }, l1: { enabled: false } }),
    );

    expect(code).toBe(0);
    const report = JSON.parse(out) as typeof expected;
    expect(report.store.reads).toBeCloseTo(expected.store.reads, 6);
    expect(report.tokenCalls.total).toBeCloseTo(expected.tokenCalls.total, 6);
    expect(report.keyService.calls).toBeCloseTo(expected.keyService.calls, 6);
    expect(report.input.l1.enabled).toBe(false);
  });

  it('prints a table by default', async () => {
    const { code, out } = await run(['capacity', '--store', 'cosmos', '--key-service', 'keyvault']);
    expect(code).toBe(0);
    expect(out).toMatch(/store reads\/s/);
    expect(out).toMatch(/store cosmos, key service keyvault/);
    expect(out).toMatch(/per million requests/);
  });

  it.each([
    [['--rps', 'abc'], /--rps expects a number, got "abc"/],
    [['--l1', 'maybe'], /--l1 expects on or off/],
    [['--store', 'mysql'], /--store expects dynamodb or cosmos/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--app-share', '0.5', '--obo-share', '0.2'], /mix/],
  ])('exits 2 on %p and says why', async (flags, message) => {
    const { code, err } = await run(['capacity', ...flags]);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });

  it('--json errors are JSON too, naming the setting', async () => {
    const { code, out } = await run(['capacity', '--rps=-3', '--json']);
    expect(code).toBe(2);
    const report = JSON.parse(out) as { error: { problems: Array<{ setting: string }> } };
    expect(report.error.problems.map((p) => p.setting)).toContain('requestsPerSecond');
  });
});
