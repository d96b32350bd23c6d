/**
 * `npm start` as a user runs it: the local stack in a child process, called over HTTP,
 * stopped with Ctrl-C (SIGINT) and started again on the same data folder. The caller's
 * token and the daemon's token must come from the cache after the restart, on dynalite and
 * with `--store redis` on redis-server.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePortRun } from '../../local/net';
import { LOCAL_STACK_PORT_COUNT } from '../../local/stack';

const ROOT = resolve(__dirname, '../..');

interface RunningStack {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  output(): string;
  /** Resolves when a line matching `pattern` has been printed (after `from` characters). */
  waitFor(pattern: RegExp, from?: number): Promise<string>;
  /** Ctrl-C; resolves with the exit code. */
  interrupt(): Promise<number | null>;
}

function startStack(
  portBase: number,
  dataDir: string,
  extraArgs: readonly string[] = [],
): Promise<RunningStack> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'local/start.ts',
      '--port-base',
      String(portBase),
      '--daemon-interval',
      '1',
      '--data-dir',
      dataDir,
      ...extraArgs,
    ],
    { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } },
  );
  let text = '';
  const waiters: Array<() => void> = [];
  const onData = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const w of waiters.splice(0)) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const stack: RunningStack = {
    child,
    url: `http://localhost:${portBase}`,
    output: () => text,
    waitFor(pattern, from = 0) {
      return new Promise((resolveLine, reject) => {
        const check = () => {
          const match = text
            .slice(from)
            .split('\n')
            .find((line) => pattern.test(line));
          if (match !== undefined) resolveLine(match);
          else if (child.exitCode !== null) reject(new Error(`the stack exited:\n${text}`));
          else waiters.push(check);
        };
        void exited.then(() => waiters.push(check) && check());
        check();
      });
    },
    interrupt() {
      child.kill('SIGINT');
      return exited;
    },
  };
  return stack.waitFor(/local stack \(aws(, redis)?\) is up/).then(() => stack);
}

async function callApi(url: string, token: string) {
  const response = await fetch(`${url}/api/downstream`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as { fromCache?: boolean } };
}

describe('npm start (the local stack, AWS flavour)', () => {
  let dataDir: string;
  let stack: RunningStack | undefined;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'mcc-stack-'));
  });
  afterAll(async () => {
    if (stack && stack.child.exitCode === null) await stack.interrupt();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.each([
    ['dynalite', []],
    ['redis-server (--store redis)', ['--store', 'redis']],
  ])(
    'serves from the cache across a restart: %s',
    async (_store, extraArgs) => {
      const portBase = await freePortRun(LOCAL_STACK_PORT_COUNT);
      const dir = mkdtempSync(join(dataDir, 'run-'));
      stack = await startStack(portBase, dir, extraArgs);
      const token = await (await fetch(`${stack.url}/_local/token?user=restart`)).text();

      const first = await callApi(stack.url, token);
      const second = await callApi(stack.url, token);
      await stack.waitFor(/TIMER\s+daemon\s+200\s+cache MISS/);
      expect(first).toMatchObject({ status: 200, body: { fromCache: false } });
      expect(second).toMatchObject({ status: 200, body: { fromCache: true } });
      expect(await stack.interrupt()).toBe(0);

      stack = await startStack(portBase, dir, extraArgs);
      const mark = stack.output().length;
      const afterRestart = await callApi(stack.url, token);
      const line = await stack.waitFor(/GET\s+\/api\/downstream/, mark);
      const daemonLine = await stack.waitFor(/TIMER\s+daemon/, mark);

      expect(afterRestart).toMatchObject({ status: 200, body: { fromCache: true } });
      expect(line).toMatch(/cache\s+HIT .* token-endpoint 0 /);
      expect(daemonLine).toMatch(/cache\s+HIT .* token-endpoint 0 /);
      expect(stack.output()).not.toContain(token);
      expect(await stack.interrupt()).toBe(0);
    },
    180_000,
  );
});
