/**
 * A TCP proxy in front of a local server that speaks a binary protocol (redis-server), with
 * the faults a network gives: delay every chunk, stop passing bytes (a partition: the
 * connection stays up and nothing answers), or reset every connection. The client under
 * test talks to the proxy with its real driver, so its timeouts and reconnects are real.
 */
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/** What the proxy does to the bytes. */
export type TcpFault =
  /** Each chunk, either way, waits this long before it is passed on. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Bytes are held, never passed on; connections stay open (a black hole). */
  | { readonly kind: 'hang' }
  /** Every open connection is reset now, and new ones at once. */
  | { readonly kind: 'reset' };

export interface TcpFaultProxy {
  /** `redis://127.0.0.1:<port>` style host and port to give the client. */
  readonly port: number;
  /** Applies a fault; `undefined` heals (held bytes are then dropped with their connections). */
  setFault(fault: TcpFault | undefined): void;
  /** Connections accepted since start. */
  readonly counts: { connections: number };
  stop(): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free loopback port. */
export async function startTcpFaultProxy(targetPort: number): Promise<TcpFaultProxy> {
  let fault: TcpFault | undefined;
  const pairs = new Set<{ client: Socket; upstream: Socket; held: boolean }>();
  const counts = { connections: 0 };

  const pipe = (from: Socket, to: Socket, pair: { held: boolean }): void => {
    from.on('data', (chunk: Buffer) => {
      const current = fault;
      if (current?.kind === 'hang') {
        pair.held = true;
        return;
      }
      if (current?.kind === 'delay') {
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
        }, current.ms);
        return;
      }
      to.write(chunk);
    });
  };

  const server = createServer((client) => {
    counts.connections++;
    if (fault?.kind === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const pair = { client, upstream, held: false };
    pairs.add(pair);
    const close = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    pipe(client, upstream, pair);
    pipe(upstream, client, pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    port,
    counts,
    setFault(next) {
      const previous = fault;
      fault = next;
      if (next?.kind === 'reset') {
        for (const pair of pairs) pair.client.resetAndDestroy();
      }
      // Bytes held by a black hole are gone: the connections they were on cannot go on.
      if (previous?.kind === 'hang' && next?.kind !== 'hang') {
        for (const pair of pairs) if (pair.held) pair.client.resetAndDestroy();
      }
    },
    async stop() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
