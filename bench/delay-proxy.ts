/**
 * A TCP proxy that delays every chunk, each way, by a fixed time: a network of that
 * one-way latency in front of a loopback server (dynalite), for the delayed-network
 * series. It runs in a process of its own (forked by {@link startDelayProxy}), so its
 * timers are neither on the measured event loop nor behind dynalite's work. Chunks keep
 * their order: every chunk of a direction waits the same time.
 */
import { fork } from 'node:child_process';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/** A running proxy: where to point the client, and how to stop it. */
export interface DelayProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly delayMs: number;
  stop(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort` that delays each chunk by `delayMs`, in a child process. */
export async function startDelayProxy(targetPort: number, delayMs: number): Promise<DelayProxy> {
  if (!(Number.isInteger(targetPort) && targetPort > 0)) {
    throw new RangeError(`targetPort must be a TCP port, got ${targetPort}`);
  }
  if (!(delayMs >= 0)) throw new RangeError(`delayMs must be >= 0, got ${delayMs}`);
  const child = fork(__filename, [String(targetPort), String(delayMs)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`delay proxy exited with ${code} before it listened`)));
    child.once('message', (m: { port?: number }) =>
      m.port ? resolve(m.port) : reject(new Error('delay proxy sent no port')),
    );
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    delayMs,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function pipeDelayed(from: Socket, to: Socket, delayMs: number): void {
  from.on('data', (chunk: Buffer) => {
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, delayMs);
  });
  // The end travels behind the last chunk.
  from.on('end', () => setTimeout(() => to.end(), delayMs));
}

function serve(targetPort: number, delayMs: number): void {
  const server = createServer((client) => {
    client.setNoDelay(true);
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    upstream.setNoDelay(true);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    pipeDelayed(client, upstream, delayMs);
    pipeDelayed(upstream, client, delayMs);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) {
  serve(Number(process.argv[2]), Number(process.argv[3]));
}
