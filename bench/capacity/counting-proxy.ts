/**
 * An HTTP proxy that counts what passes through it: put in front of dynalite or the local
 * KMS, it counts the requests of each AWS JSON operation (`x-amz-target`), and for
 * DynamoDB tells the cache's partition items from its lease items (`pk` ending in
 * `~lease`). The counts are what the service was asked to do, the way its bill and its
 * throttling see it, independent of the client's own metrics. Loopback only.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LEASE_SUFFIX } from '../../shared/store/store';
import { forward } from '../../test/support/fault-proxy';

/** Requests seen, by operation (`GetItem`, `PutItem`, `Decrypt`, ...), and by operation on lease items. */
export interface ProxyCounts {
  readonly operations: Readonly<Record<string, number>>;
  readonly leaseOperations: Readonly<Record<string, number>>;
}

/** A running counting proxy. */
export interface CountingProxy {
  /** `http://127.0.0.1:<port>`: give it to the client instead of the target. */
  readonly endpoint: string;
  counts(): ProxyCounts;
  reset(): void;
  stop(): Promise<void>;
}

/** The partition key a DynamoDB request names, if any (GetItem/DeleteItem `Key`, PutItem `Item`). */
function pkOf(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as {
      Key?: { pk?: { S?: string } };
      Item?: { pk?: { S?: string } };
    };
    return parsed.Key?.pk?.S ?? parsed.Item?.pk?.S;
  } catch {
    return undefined;
  }
}

/**
 * Starts a proxy to `target` (an http URL) on 127.0.0.1.
 * @example
 * const proxy = await startCountingProxy(dynamo.endpoint);
 * new DynamoDbStore({ tableName, clientConfig: { ...dynamo.clientConfig, endpoint: proxy.endpoint } });
 * proxy.counts().operations.GetItem;
 */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let operations: Record<string, number> = {};
  let leaseOperations: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const targetHeader = String(req.headers['x-amz-target'] ?? '');
      const operation = targetHeader.includes('.') ? targetHeader.split('.').pop()! : `${req.method}`;
      operations[operation] = (operations[operation] ?? 0) + 1;
      if (pkOf(body.toString('utf8'))?.endsWith(LEASE_SUFFIX)) {
        leaseOperations[operation] = (leaseOperations[operation] ?? 0) + 1;
      }
      forward(upstream, agent, req, res, {
        body,
        onError: (e) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ __type: 'ProxyError', message: e.message }));
        },
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ operations: { ...operations }, leaseOperations: { ...leaseOperations } }),
    reset: () => {
      operations = {};
      leaseOperations = {};
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
}
