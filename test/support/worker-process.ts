/**
 * Real OS processes as cache instances, for the cross-process suites (test/security):
 * a worker script forked with `node --import tsx`, spoken to over IPC, and the stores
 * (dynalite, cosmosdb-server, redis-server) they share with the test. The worker's half
 * is test/security/workers/cache-worker.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalRedis } from '../../local/redis';
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import { RedisStore } from '../../shared/redis';
import type { TokenStore } from '../../shared/store/store';
import { API_CLIENT_ID, API_CLIENT_SECRET, CapturingLogger, type CacheWorld } from './cache-harness';
import type { CacheWorkerReport, CacheWorkerSetup, WorkerStoreSetup } from './cache-worker';

const ROOT = resolve(__dirname, '../..');

/** The setup for workers on `rig`'s store, the world's authority and the web API's app registration. */
export function cacheWorkerSetup(world: CacheWorld, rig: StoreRig): CacheWorkerSetup {
  return {
    type: 'setup',
    store: rig.setup,
    authority: world.authority.authority(),
    authorityHost: world.authority.host,
    ca: world.authority.ca,
    clientId: API_CLIENT_ID,
    clientSecret: API_CLIENT_SECRET,
    masterKey: world.masterKey.toString('base64'),
  };
}

/**
 * Ends the workers and replays their log records through this process's logger (so the
 * secret scan sees them); returns their summed counters and error records.
 */
export async function finishWorkers(
  workers: ReadonlyArray<{
    send(message: { readonly type: 'finish' }): void;
    next(type: 'finished'): Promise<Extract<CacheWorkerReport, { type: 'finished' }>>;
  }>,
): Promise<{ total(metric: string): number; errors: unknown[] }> {
  for (const w of workers) w.send({ type: 'finish' });
  const finished = await Promise.all(workers.map((w) => w.next('finished')));
  const logger = new CapturingLogger();
  for (const f of finished) {
    for (const l of f.logs) logger[l.level](l.message, l.fields);
  }
  return {
    total: (metric) => finished.reduce((n, f) => n + (f.metrics[metric] ?? 0), 0),
    errors: logger.lines.filter((l) => l.level === 'error'),
  };
}

/** A worker process and a way to wait for its next message. */
export class WorkerProcess<In, Out extends { readonly type: string }> {
  private readonly inbox: Out[] = [];
  private waiting: ((m: Out | { type: 'exit'; message: string }) => void) | undefined;
  private stderr = '';
  private exited: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: Out) => this.deliver(m));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    child.on('exit', (code, signal) => {
      this.exited = `worker exited with code ${String(code)} signal ${String(signal)}: ${this.stderr.slice(-2000)}`;
      this.waiting?.({ type: 'exit', message: this.exited });
    });
  }

  /** Forks `script` (a path relative to the project root). */
  static start<In, Out extends { readonly type: string }>(script: string): WorkerProcess<In, Out> {
    return new WorkerProcess<In, Out>(
      fork(resolve(ROOT, script), [], {
        cwd: ROOT,
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      }),
    );
  }

  send(message: In): void {
    this.child.send(message as object);
  }

  /** The next message, which must be of `type`. */
  async next<T extends Out['type']>(type: T): Promise<Extract<Out, { type: T }>> {
    const message =
      this.inbox.shift() ??
      (this.exited !== undefined
        ? { type: 'exit' as const, message: this.exited }
        : await new Promise<Out | { type: 'exit'; message: string }>((done) => (this.waiting = done)));
    if (message.type !== type) {
      throw new Error(`expected ${type} from a worker, got ${JSON.stringify(message)}`);
    }
    return message as Extract<Out, { type: T }>;
  }

  /** Kills the process (SIGKILL: no cleanup, no goodbye, as a crashed instance) and waits for its exit. */
  async killHard(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill('SIGKILL');
    await gone;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill();
  }

  private deliver(message: Out): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(message);
    else this.inbox.push(message);
  }
}

/** A store server the test and its workers share. */
export interface StoreRig {
  readonly store: TokenStore;
  readonly setup: WorkerStoreSetup;
  stop(): Promise<void>;
}

/** dynalite, with a store on it for the test's own reads. */
export async function dynamoRig(): Promise<StoreRig> {
  const dynamo: LocalDynamo = await startLocalDynamo();
  const store = new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig });
  return {
    store,
    setup: { kind: 'dynamodb', endpoint: dynamo.endpoint, tableName: dynamo.tableName },
    async stop() {
      store.destroy();
      await dynamo.stop();
    },
  };
}

/** cosmosdb-server, with a store on it for the test's own reads. */
export async function cosmosRig(): Promise<StoreRig> {
  const cosmos: LocalCosmos = await startLocalCosmos();
  return {
    store: new CosmosStore({ container: cosmos.container }),
    setup: {
      kind: 'cosmos',
      endpoint: cosmos.endpoint,
      key: cosmos.key,
      databaseId: cosmos.databaseId,
      containerId: cosmos.containerId,
    },
    stop: () => cosmos.stop(),
  };
}

/** redis-server, with a store on it for the test's own reads. */
export async function redisRig(): Promise<StoreRig> {
  const redis = await startLocalRedis();
  const store = new RedisStore({ clientOptions: { url: redis.url } });
  return {
    store,
    setup: { kind: 'redis', url: redis.url },
    async stop() {
      store.destroy();
      await redis.stop();
    },
  };
}

/**
 * An empty list for the workers a suite starts, killed in the enclosing scope's afterAll.
 * Call it before `useWorld(startRig)`: afterAll hooks run in the order declared, so the
 * workers end before their store server stops.
 */
export function killedAfterAll<W extends { kill(): void }>(): W[] {
  const workers: W[] = [];
  afterAll(() => {
    for (const w of workers) w.kill();
  });
  return workers;
}
