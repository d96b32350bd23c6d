/**
 * An embedded Cosmos DB (@vercel/cosmosdb-server, in this process, in memory) with the
 * token cache container in it. Used by the local stack (`npm start`), the integration and
 * end-to-end tests, and the benchmarks.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { CosmosClient, type Container, type CosmosClientOptions } from '@azure/cosmos';
import { createHttpServer, createHttpsServer } from '@vercel/cosmosdb-server';
import { createDevCertificate } from './tls';

/** The Cosmos DB emulator's well-known account key; cosmosdb-server accepts any key. */
export const LOCAL_COSMOS_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

/** Options of {@link startLocalCosmos}. */
export interface LocalCosmosOptions {
  /** Port on 127.0.0.1. @default 0 (any free port) */
  readonly port?: number;
  /** Serve HTTPS with a fresh self-signed localhost certificate (see `ca`). @default false */
  readonly https?: boolean;
  /** @default 'token-cache' */
  readonly databaseId?: string;
  /** Created with partition key `/pk` and `defaultTtl: -1` (per-item ttl). @default 'tokens' */
  readonly containerId?: string;
}

/** A running local Cosmos DB with its database and container created. */
export interface LocalCosmos {
  /** `http://127.0.0.1:<port>` or `https://localhost:<port>`. */
  readonly endpoint: string;
  /** The account key to use with {@link endpoint}. */
  readonly key: string;
  readonly databaseId: string;
  readonly containerId: string;
  /** The container, from {@link client}. */
  readonly container: Container;
  /** A client for this server; disposed by `stop()`. */
  readonly client: CosmosClient;
  /**
   * Options for building another client for this server (e.g. `CosmosStore`'s
   * `clientOptions`): endpoint discovery off and, over HTTPS, a keep-alive agent that
   * trusts {@link ca}.
   */
  readonly clientOptions: Pick<CosmosClientOptions, 'connectionPolicy' | 'agent'>;
  /** PEM certificate to trust when `https` is on. */
  readonly ca?: string;
  /** Disposes the client, closes the server and its connections; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts cosmosdb-server on 127.0.0.1 and creates the database and container.
 * @example
 * const cosmos = await startLocalCosmos();
 * const store = new CosmosStore({ container: cosmos.container });
 * // ...
 * await cosmos.stop();
 */
export async function startLocalCosmos(options: LocalCosmosOptions = {}): Promise<LocalCosmos> {
  const databaseId = options.databaseId ?? 'token-cache';
  const containerId = options.containerId ?? 'tokens';
  const certificate = options.https ? await createDevCertificate() : undefined;
  const server: http.Server | https.Server = certificate
    ? createHttpsServer({ key: certificate.key, cert: certificate.cert, keepAlive: true })
    : createHttpServer({ keepAlive: true });
  await listen(server, options.port ?? 0);

  const { port } = server.address() as AddressInfo;
  // The certificate names localhost; plain HTTP uses the address itself (no resolver involved).
  const endpoint = certificate ? `https://localhost:${port}` : `http://127.0.0.1:${port}`;
  // Without keep-alive every request pays a new connection (and TLS handshake): ~4x slower.
  // Over plain HTTP the SDK's own default agent (keep-alive) is the only one it allows: with
  // a custom agent it refuses http:// URLs (allowInsecureConnection stays false).
  const agent = certificate ? new https.Agent({ keepAlive: true, ca: certificate.cert }) : undefined;
  const clientOptions = {
    // cosmosdb-server describes no regions; discovery would point the client elsewhere.
    connectionPolicy: { enableEndpointDiscovery: false },
    ...(agent ? { agent } : {}),
  };
  const client = new CosmosClient({ endpoint, key: LOCAL_COSMOS_KEY, ...clientOptions });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      client.dispose();
      agent?.destroy();
      await close(server);
    })());

  try {
    const { database } = await client.databases.createIfNotExists({ id: databaseId });
    const { container } = await database.containers.createIfNotExists({
      id: containerId,
      partitionKey: { paths: ['/pk'] },
      // -1: TTL on, items live until their own `ttl` says otherwise.
      defaultTtl: -1,
    });
    return {
      endpoint,
      key: LOCAL_COSMOS_KEY,
      databaseId,
      containerId,
      container,
      client,
      clientOptions,
      ...(certificate ? { ca: certificate.cert } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw new Error(
      `local Cosmos DB started at ${endpoint} but creating ${databaseId}/${containerId} failed`,
      {
        cause: error,
      },
    );
  }
}

async function listen(server: http.Server | https.Server, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void =>
      reject(
        new Error(`local Cosmos DB could not listen on 127.0.0.1:${port}; choose a free port`, {
          cause: error,
        }),
      );
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function close(server: http.Server | https.Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) =>
    server.close((error?: Error) => (error ? reject(error) : resolve())),
  );
  // Keep-alive sockets of clients that were not disposed would hold close() open.
  server.closeAllConnections();
  await closed;
}
