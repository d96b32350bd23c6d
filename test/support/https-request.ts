/** One HTTPS request, read to the end: the raw-wire helper the tests share (local emulators, token minting). */
import { request, type RequestOptions } from 'node:https';

export interface HttpsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The whole response body as UTF-8 text. */
  readonly text: string;
}

/** Sends `body` (if any) to `url` with `options` and resolves with the status, headers and body text. */
export function httpsRequest(url: string, options: RequestOptions, body?: string): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}
