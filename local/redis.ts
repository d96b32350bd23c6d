/**
 * A real `redis-server` (Debian's package) on a free loopback port, for the Redis store's
 * tests, the local stack and the benchmarks. No persistence by default (`--save ''
 * --appendonly no`); with `persist: true` an append-only file fsynced on every write, so a
 * killed and restarted server keeps what it acknowledged (the restart fault test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { DevCertificate } from './tls';
import { freePort } from './net';

/** Options of {@link startLocalRedis}. */
export interface LocalRedisOptions {
  /** Port on 127.0.0.1. @default a free port */
  readonly port?: number;
  /** Keep data across {@link LocalRedis.kill} and {@link LocalRedis.restart} (AOF, fsync always). @default false */
  readonly persist?: boolean;
  /**
   * Keep the data in this directory (created if missing, kept on stop), across runs: implies
   * `persist`. @default a temporary directory, removed on stop
   */
  readonly dir?: string;
  /** Serve TLS only (`--tls-port`, no plain port) with this certificate; the URL is then `rediss://localhost:<port>`. @default plain TCP */
  readonly tls?: DevCertificate;
  /** Extra `redis-server` arguments, e.g. `['--requirepass', 'x']`. @default [] */
  readonly args?: readonly string[];
  /** How long to wait for the server to answer PING. @default 10000 */
  readonly startTimeoutMs?: number;
}

/** A running local Redis. */
export interface LocalRedis {
  /** `redis://127.0.0.1:<port>`, or `rediss://localhost:<port>` with `tls`. */
  readonly url: string;
  readonly port: number;
  /** Whether the process is running. */
  readonly running: boolean;
  /** Kills the server at once (SIGKILL): an abrupt crash; the port stays reserved for {@link restart}. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and directory (after {@link kill} or {@link stop}). */
  restart(): Promise<void>;
  /** Stops the server and removes its directory (unless `dir` was given); safe to call twice. */
  stop(): Promise<void>;
}

/** The message when the binary is missing: names the package, as CI installs it. */
export const REDIS_SERVER_MISSING =
  "redis-server is not on PATH: install Debian's redis-server package " +
  '(apt-get update && apt-get install -y redis-server); .ci/run does this in CI';

/**
 * Starts `redis-server` and resolves once it answers PING.
 * @throws Error naming the apt package when `redis-server` is not installed
 * @example const redis = await startLocalRedis(); ...; await redis.stop();
 */
export async function startLocalRedis(options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const port = options.port ?? (await freePort());
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'msal-cloud-cache-redis-')));
  if (!ownDir) await mkdir(dir, { recursive: true });
  const persist = options.persist ?? !ownDir;
  const tlsArgs: string[] = [];
  if (options.tls) {
    await writeFile(join(dir, 'tls-cert.pem'), options.tls.cert);
    await writeFile(join(dir, 'tls-key.pem'), options.tls.key, { mode: 0o600 });
    tlsArgs.push(
      '--tls-port',
      String(port),
      '--tls-cert-file',
      join(dir, 'tls-cert.pem'),
      '--tls-key-file',
      join(dir, 'tls-key.pem'),
      '--tls-auth-clients',
      'no',
    );
  }
  const args = [
    '--port',
    options.tls ? '0' : String(port),
    ...tlsArgs,
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    ...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
    ...(options.args ?? []),
  ];
  const timeoutMs = options.startTimeoutMs ?? 10_000;
  let child: ChildProcess | undefined;
  let output = '';

  const launch = async (): Promise<void> => {
    output = '';
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const spawnError = new Promise<never>((_, reject) =>
      started.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new Error(REDIS_SERVER_MISSING, { cause: error }) : error),
      ),
    );
    const exited = new Promise<never>((_, reject) =>
      started.once('exit', (code, signal) =>
        reject(
          new Error(
            `redis-server exited (${signal ?? code}) before answering on port ${port}: ${output.trim()}`,
          ),
        ),
      ),
    );
    await Promise.race([waitForPong(port, timeoutMs, options.tls !== undefined), spawnError, exited]);
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exit = new Promise((resolve) => running.once('exit', resolve));
    running.kill(signal);
    await exit;
  };

  try {
    await launch();
  } catch (error) {
    await halt('SIGKILL');
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw error;
  }

  let stopped = false;
  return {
    url: options.tls ? `rediss://localhost:${port}` : `redis://127.0.0.1:${port}`,
    port,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGKILL');
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await halt('SIGTERM');
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves once `PING` on the port answers `+PONG`; rejects after `timeoutMs`. */
async function waitForPong(port: number, timeoutMs: number, tls: boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pingOnce(port, tls)) return;
    if (Date.now() > deadline) {
      throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function pingOnce(port: number, tls: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    // Readiness only: the certificate is checked by the clients under test, not here.
    const socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG') || answer.startsWith('-NOAUTH'));
    });
  });
}
