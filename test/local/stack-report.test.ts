/**
 * The local stack's per-request line (issues 10 point 6 and 15): each line reports that
 * request's own cache outcome and calls, from its own cache metadata, so it stays right
 * when requests run at once (it used to print deltas of process-wide counters: 25
 * concurrent requests each showed `store r25/w18 … token-endpoint 25`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortRun } from '../../local/net';
import {
  LOCAL_STACK_PORT_COUNT,
  startLocalStack,
  type LocalStack,
  type RequestReport,
} from '../../local/stack';

describe.each(['aws', 'azure'] as const)('local stack (%s) request lines under concurrency', (cloud) => {
  let stack: LocalStack;
  let dataDir: string;
  const printed: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'local-stack-report-'));
    stack = await startLocalStack({
      cloud,
      dataDir,
      portBase: await freePortRun(LOCAL_STACK_PORT_COUNT),
      daemonIntervalMs: 0,
      print: (line) => printed.push(line),
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = async (token: string): Promise<number> =>
    (await fetch(`${stack.url}/api/downstream`, { headers: { authorization: `Bearer ${token}` } })).status;

  /** The reports of the requests served from index `from` on. */
  const since = (from: number): RequestReport[] => stack.requests.slice(from);

  /** Every status is 200 and each of the 25 reports since `from` matches `shape`; returns them. */
  const expect25Lines = (
    statuses: number[],
    from: number,
    shape: Partial<RequestReport>,
  ): RequestReport[] => {
    expect(statuses.every((s) => s === 200)).toBe(true);
    const lines = since(from);
    expect(lines).toHaveLength(25);
    for (const line of lines) expect(line).toMatchObject(shape);
    return lines;
  };

  it('shows a MISS then 25 concurrent HITs, each with its own zero token-endpoint calls', async () => {
    const token = await stack.mintUserToken('concurrent-hit');
    const start = stack.requests.length;
    expect(await call(token)).toBe(200);
    const [first] = since(start);
    expect(first).toMatchObject({
      cache: 'miss',
      source: 'authority',
      reason: 'absent',
      tokenEndpointCalls: 1,
      storeWrites: 1,
    });

    const before = stack.requests.length;
    const tokensBefore = stack.authority.counters.token();
    const statuses = await Promise.all(Array.from({ length: 25 }, () => call(token)));

    expect25Lines(statuses, before, {
      cache: 'hit',
      source: 'l1',
      storeReads: 0,
      storeWrites: 0,
      tokenEndpointCalls: 0,
    });
    expect(stack.authority.counters.token()).toBe(tokensBefore);
    expect(printed.slice(-25).every((l) => /cache\s+HIT \(l1\).* token-endpoint 0 /.test(l))).toBe(true);
  });

  it('shows 25 concurrent MISSes of 25 callers each with its own one token call and one write', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 25 }, (_, i) => stack.mintUserToken(`concurrent-miss-${i}`)),
    );
    const before = stack.requests.length;
    const tokensBefore = stack.authority.counters.token();

    const statuses = await Promise.all(tokens.map((t) => call(t)));

    const lines = expect25Lines(statuses, before, {
      cache: 'miss',
      reason: 'absent',
      storeReads: 1,
      storeWrites: 1,
      tokenEndpointCalls: 1,
    });
    expect(lines.reduce((n, l) => n + l.tokenEndpointCalls, 0)).toBe(
      stack.authority.counters.token() - tokensBefore,
    );
  });

  it('reports the daemon run from its own metadata', async () => {
    const before = stack.requests.length;
    await stack.runDaemon();
    await stack.runDaemon();
    const [first, second] = since(before);
    expect(first).toMatchObject({ method: 'TIMER', cache: 'miss', tokenEndpointCalls: 1 });
    expect(second).toMatchObject({ method: 'TIMER', cache: 'hit', tokenEndpointCalls: 0, storeReads: 0 });
  });
});
