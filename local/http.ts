/**
 * The HTTP plumbing every local server shares (authority, Key Vault, KMS, downstream, STS,
 * managed identity): a JSON answer with its length, a bounded request body, listening on a
 * port and closing. Each server keeps only its own routes and error shapes.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';

/** Writes `body` as JSON with its length; `headers` are added and may replace the content type. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    ...headers,
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Reads a request body of at most `limit` bytes. A larger one rejects with what `tooLarge`
 * makes of the size read so far (each server answers in its own error shape), and the rest
 * is not read.
 */
export async function readBody(
  req: IncomingMessage,
  limit: number,
  tooLarge: (size: number) => Error = (size) => new Error(`request body of ${size}+ bytes is over ${limit}`),
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(size);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Listens on `host:port` (0: any free port) and resolves to the port bound; a failure to bind rejects. */
export function listen(server: Server, port: number, host = 'localhost'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Closes `server`, dropping its open (keep-alive) connections so that close does not wait on them. */
export function stopServer(server: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
