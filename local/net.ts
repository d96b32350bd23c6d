/** Small network helpers the local servers and the tests that fault them share. */
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';

/** A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it once this resolves). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The first port of the OS's ephemeral range (Linux: ip_local_port_range), where outgoing connections bind. */
function ephemeralPortsStart(): number {
  try {
    const first = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return Number.isInteger(first) && first > 0 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * The first of `count` consecutive TCP ports on 127.0.0.1 that were free a moment ago, for
 * a server group with fixed port offsets (the local stack). Picked at random from 20,000 up
 * to the OS's ephemeral range, never in it: an outgoing connection of a parallel process
 * cannot take one of them between this check and the listen.
 * @throws Error when 50 random picks found no free run
 */
export async function freePortRun(count: number): Promise<number> {
  const low = 20_000;
  const slots = Math.floor((ephemeralPortsStart() - low) / count);
  if (slots < 1) throw new Error(`no room for ${count} ports between ${low} and the ephemeral range`);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = low + count * Math.floor(Math.random() * slots);
    const free = await Promise.all(Array.from({ length: count }, (_, i) => isFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found below the ephemeral range`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}
