/**
 * An HTTP proxy in front of a local store server (dynalite, cosmosdb-server) that fails on
 * demand the way a network or a cloud service does: refuse the connection, never answer,
 * or answer with the service's own error (throttling, 503). The store under test talks to
 * the proxy through its real SDK client, so timeouts, retries and error mapping are the
 * real ones.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

/** What the proxy does with a request the fault matches. */
export type ProxyFault =
  /** Drops the connection without an answer (a refused or reset connection). */
  | { readonly kind: 'reset' }
  /** Never answers (a slow or partitioned service); the client's timeout decides. */
  | { readonly kind: 'hang' }
  /** Answers with this status, headers and body (the service's own error). */
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body: string;
    };

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: give this to the client instead of the target. */
  readonly endpoint: string;
  /** Fails the requests `match` selects (all by default); `undefined` heals. */
  setFault(fault: ProxyFault | undefined, match?: (req: IncomingMessage) => boolean): void;
  /** Requests forwarded to the target, and requests the fault answered. */
  readonly counts: { forwarded: number; faulted: number };
  stop(): Promise<void>;
}

/** DynamoDB's JSON error body, as the SDK parses it into a named exception. */
export function dynamoDbError(status: number, type: string, message: string): ProxyFault {
  return {
    kind: 'respond',
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }),
  };
}

/** Cosmos DB's error answer (with its substatus), asking the SDK to retry at once. */
export function cosmosError(status: number, substatus?: number): ProxyFault {
  return {
    kind: 'respond',
    status,
    headers: {
      'content-type': 'application/json',
      'x-ms-retry-after-ms': '1',
      ...(substatus === undefined ? {} : { 'x-ms-substatus': String(substatus) }),
    },
    body: JSON.stringify({ code: String(status), message: 'injected by the test proxy' }),
  };
}

/** Whether a request is for a Cosmos DB item (`/docs`), not for account or container metadata. */
export function cosmosItemRequest(req: IncomingMessage): boolean {
  return req.url?.includes('/docs') === true;
}

/** The DynamoDB operation of a request (`GetItem`, `PutItem`...). */
export function dynamoDbOperation(req: IncomingMessage): string {
  const target = req.headers['x-amz-target'];
  return typeof target === 'string' ? target.slice(target.indexOf('.') + 1) : '';
}

/**
 * Sends `req` on to `upstream` through `agent` and pipes the answer back. `body` is the
 * request body when the caller has read it already; a failed upstream call ends in
 * `onError` (by default the client's connection is dropped).
 */
export function forward(
  upstream: URL,
  agent: Agent,
  req: IncomingMessage,
  res: ServerResponse,
  options: { body?: Buffer; onError?: (error: Error) => void } = {},
): void {
  const out = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: upstream.host },
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  out.on('error', options.onError ?? (() => res.destroy()));
  if (options.body) out.end(options.body);
  else req.pipe(out);
}

/** Starts a proxy to `target` (`http://host:port`) on 127.0.0.1. */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  const counts = { forwarded: 0, faulted: 0 };
  let fault: { spec: ProxyFault; match: (req: IncomingMessage) => boolean } | undefined;

  const pass = (req: IncomingMessage, res: ServerResponse): void => {
    counts.forwarded++;
    forward(upstream, agent, req, res);
  };

  const server = createServer((req, res) => {
    const active = fault;
    if (!active || !active.match(req)) {
      pass(req, res);
      return;
    }
    counts.faulted++;
    // Drain the body first so the client is not stuck writing it.
    req.resume();
    req.on('end', () => {
      switch (active.spec.kind) {
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          hanging.add(res);
          return;
        case 'respond':
          res.writeHead(active.spec.status, {
            ...active.spec.headers,
            'content-length': Buffer.byteLength(active.spec.body),
          });
          res.end(active.spec.body);
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    setFault(spec, match = () => true) {
      fault = spec && { spec, match };
    },
    async stop() {
      for (const res of hanging) res.destroy();
      for (const socket of sockets) socket.destroy();
      agent.destroy();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}

/** A TCP server that accepts connections and never answers (a partitioned or stuck service). */
export interface SilentServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts a {@link SilentServer} on 127.0.0.1. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
