import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import { createDownstreamClient } from '../../../../functions/core/downstream';

describe('createDownstreamClient', () => {
  let server: Server;
  let url: string;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  /** Resolves once the server has seen every connection close. */
  const allClosed = async (): Promise<void> => {
    for (let i = 0; i < 100 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
  };

  describe.each(['destroy', 'close'] as const)('%s', (verb) => {
    it('closes the kept-alive socket, and a later call still works', async () => {
      const client = createDownstreamClient({ url });
      const first = await client.call({ accessToken: 'not-a-real-token' });
      expect(first.status).toBe(200);
      expect(sockets.size).toBe(1);

      client[verb]();
      await allClosed();

      expect(sockets.size).toBe(0);
      const again = await client.call({ accessToken: 'not-a-real-token' });
      expect(again.status).toBe(200);
      client.destroy();
      await allClosed();
    });
  });

  it('close is the deprecated name of destroy', () => {
    const client = createDownstreamClient({ url });

    expect(client.close).toBe(client.destroy);
  });
});
