/**
 * An embedded DynamoDB (dynalite, in this process) with the token cache table in it. Used
 * by the local stack (`npm start`, on disk so a restart keeps the cache), the integration
 * and end-to-end tests, and the benchmarks (in memory).
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';

/** The subset of dynalite's options used here (dynalite ships no type declarations). */
interface DynaliteOptions {
  /** How long a new table stays CREATING. */
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  /** LevelDB directory; in memory when absent. */
  path?: string;
}

// dynalite has no .d.ts; load it untyped once and give it the one signature used here.
const dynalite = createRequire(__filename)('dynalite') as (options: DynaliteOptions) => Server;

/** Options of {@link startLocalDynamo}. */
export interface LocalDynamoOptions {
  /** Port on 127.0.0.1. @default 0 (any free port) */
  readonly port?: number;
  /** Directory for on-disk persistence (created if missing). @default in memory */
  readonly path?: string;
  /** Table to create (hash key `pk`, type S) unless it exists. @default 'token-cache' */
  readonly tableName?: string;
}

/** A running local DynamoDB. */
export interface LocalDynamo {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** The table that exists and is ACTIVE. */
  readonly tableName: string;
  /** Config for a DynamoDBClient: region, this endpoint, static fake credentials. */
  readonly clientConfig: DynamoDBClientConfig;
  /** Closes the server and its open connections, and the database; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts dynalite on 127.0.0.1 and creates the table if missing.
 * @example
 * const dynamo = await startLocalDynamo({ path: '.local-data/dynamodb' });
 * const store = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
 * // ...
 * await dynamo.stop();
 */
export async function startLocalDynamo(options: LocalDynamoOptions = {}): Promise<LocalDynamo> {
  const tableName = options.tableName ?? 'token-cache';
  if (options.path !== undefined) await mkdir(options.path, { recursive: true });
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(options.path === undefined ? {} : { path: options.path }),
  });
  await listen(server, options.port ?? 0);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= close(server));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const clientConfig: DynamoDBClientConfig = {
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  };

  try {
    await ensureTable(clientConfig, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, tableName, clientConfig, stop };
}

async function listen(server: Server, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void =>
      reject(
        new Error(`local DynamoDB could not listen on 127.0.0.1:${port}; choose a free port`, {
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

async function close(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve, reject) => {
    // dynalite's close also closes its LevelDB once in-flight requests finish.
    server.close((error?: Error) => (error ? reject(error) : resolve()));
  });
  // Keep-alive sockets of clients that were not destroyed would hold close() open.
  server.closeAllConnections();
  await closed;
}

/** Creates the table (pk S, on demand) unless it exists, then waits until it is ACTIVE. */
async function ensureTable(clientConfig: DynamoDBClientConfig, tableName: string): Promise<void> {
  const client = new DynamoDBClient(clientConfig);
  try {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (error) {
      // Persisted from an earlier run: fine if its key is the one the store expects.
      if ((error as { name?: unknown }).name !== 'ResourceInUseException') throw error;
    }
    // createTableMs 0 still flips CREATING -> ACTIVE on a timer; a few polls suffice.
    for (let attempt = 0; ; attempt++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      const hashKey = Table?.KeySchema?.find((k) => k.KeyType === 'HASH')?.AttributeName;
      if (hashKey !== 'pk' || (Table?.KeySchema?.length ?? 0) !== 1) {
        throw new Error(
          `local DynamoDB table '${tableName}' exists with key ${JSON.stringify(Table?.KeySchema)}, ` +
            `but the store needs a single hash key 'pk'; delete the data directory or choose another tableName`,
        );
      }
      if (Table?.TableStatus === 'ACTIVE') return;
      if (attempt >= 200) throw new Error(`local DynamoDB table '${tableName}' did not become ACTIVE`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    client.destroy();
  }
}
