/** local/net.ts: the port helpers the local servers and the stack's tests use. */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { freePortRun } from '../../local/net';

const listen = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });

describe('freePortRun', () => {
  it('returns the first of count free ports, from 20,000 and below the ephemeral range', async () => {
    const ephemeral = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );

    const base = await freePortRun(8);

    expect(base).toBeGreaterThanOrEqual(20_000);
    expect(base + 8).toBeLessThanOrEqual(ephemeral);
    expect((base - 20_000) % 8).toBe(0);
    const servers = await Promise.all(Array.from({ length: 8 }, (_, i) => listen(base + i)));
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });
});
