/**
 * Contention across processes (issue 7, item 3): several Node processes, each a separately
 * built TokenCache (test/security/workers/contention-worker.ts), acquire app tokens on one
 * shared partition at once, round after round, against dynalite, cosmosdb-server and
 * redis-server. No
 * token may be lost: every token any worker received is in the stored blob at the end.
 * The conflict rate is measured and reported.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { startLocalCosmos, type LocalCosmos } from '../../local/cosmos';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalRedis } from '../../local/redis';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { Metric } from '../../shared/observability';
import { RedisStore } from '../../shared/redis';
import { CosmosStore } from '../../shared/azure/cosmos-store';
import { DynamoDbStore } from '../../shared/aws/dynamodb-store';
import type { TokenStore } from '../../shared/store/store';
import { API_CLIENT_ID, API_CLIENT_SECRET, CapturingLogger, type CacheWorld } from '../support/cache-harness';
import { accessTokensIn, startSecureWorld, storedDocument } from '../support/security-world';
import type { Acquired, ParentMessage, WorkerMessage, WorkerSetup } from './workers/contention-worker';

const WORKERS = 4;
const ROUNDS = 4;
/** Acquisitions each worker starts at once in a round. */
const PER_ROUND = 3;
const ROOT = resolve(__dirname, '../..');
const WORKER = resolve(__dirname, 'workers/contention-worker.ts');

let world: CacheWorld;

beforeAll(async () => {
  world = await startSecureWorld();
});
afterAll(async () => {
  await world.stop();
});

/** A worker process and a way to wait for its next message. */
class Worker {
  private readonly inbox: WorkerMessage[] = [];
  private waiting: ((m: WorkerMessage) => void) | undefined;
  private stderr = '';
  private exited: string | undefined;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (m: WorkerMessage) => this.deliver(m));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString('utf8');
    });
    child.on('exit', (code) => {
      this.exited = `worker exited with code ${String(code)}: ${this.stderr.slice(-2000)}`;
      this.waiting?.({ type: 'error', message: this.exited });
    });
  }

  static start(): Worker {
    return new Worker(
      fork(WORKER, [], {
        cwd: ROOT,
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      }),
    );
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  /** The next message, which must be of `type`. */
  async next<T extends WorkerMessage['type']>(type: T): Promise<Extract<WorkerMessage, { type: T }>> {
    const message =
      this.inbox.shift() ??
      (this.exited !== undefined
        ? { type: 'error' as const, message: this.exited }
        : await new Promise<WorkerMessage>((done) => (this.waiting = done)));
    if (message.type !== type) {
      throw new Error(`expected ${type} from a worker, got ${JSON.stringify(message)}`);
    }
    return message as Extract<WorkerMessage, { type: T }>;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }

  private deliver(message: WorkerMessage): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(message);
    else this.inbox.push(message);
  }
}

interface Rig {
  readonly store: TokenStore;
  readonly setup: WorkerSetup['store'];
  stop(): Promise<void>;
}

async function dynamoRig(): Promise<Rig> {
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

async function cosmosRig(): Promise<Rig> {
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

async function redisRig(): Promise<Rig> {
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

describe.each([
  ['DynamoDB (dynalite)', dynamoRig],
  ['Cosmos DB (cosmosdb-server)', cosmosRig],
  ['Redis (redis-server)', redisRig],
])('contention across processes: %s', (name, startRig) => {
  let rig: Rig;
  const workers: Worker[] = [];

  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    for (const w of workers) w.kill();
    await rig.stop();
  });

  it(`${WORKERS} processes x ${ROUNDS} rounds x ${PER_ROUND} concurrent acquisitions on one partition lose no token`, async () => {
    const tenantId = world.authority.tenantId;
    const setup: WorkerSetup = {
      type: 'setup',
      store: rig.setup,
      authority: world.authority.authority(),
      authorityHost: world.authority.host,
      ca: world.authority.ca,
      clientId: API_CLIENT_ID,
      clientSecret: API_CLIENT_SECRET,
      masterKey: world.masterKey.toString('base64'),
    };
    for (let i = 0; i < WORKERS; i++) workers.push(Worker.start());
    for (const w of workers) w.send(setup);
    await Promise.all(workers.map((w) => w.next('ready')));

    const acquired: Acquired[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      workers.forEach((w, i) =>
        w.send({
          type: 'round',
          round,
          scopes: Array.from(
            { length: PER_ROUND },
            (_, j) => `api://${rig.setup.kind}-w${i}-r${round}-${j}/.default`,
          ),
        }),
      );
      for (const done of await Promise.all(workers.map((w) => w.next('round-done')))) {
        acquired.push(...done.acquired);
      }
    }
    for (const w of workers) w.send({ type: 'finish' });
    const finished = await Promise.all(workers.map((w) => w.next('finished')));

    // The workers' log records go through the secret scan like this file's own.
    const logger = new CapturingLogger();
    for (const f of finished) {
      for (const l of f.logs) logger[l.level as 'debug' | 'info' | 'warn' | 'error'](l.message, l.fields);
    }

    const total = (metric: string) => finished.reduce((n, f) => n + (f.metrics[metric] ?? 0), 0);
    const writes = total(Metric.StoreWrite);
    const conflicts = total(Metric.StoreConflict);
    const failed = total(Metric.WriteFailed);
    const key = storeKeyOfApp(tenantId);
    const stored = accessTokensIn(
      await storedDocument(rig.store, key, new LocalKeyRing({ masterKey: world.masterKey })),
    ).map((t) => createHash('sha256').update(t).digest('hex'));

    const missing = acquired.filter((a) => !stored.includes(a.tokenHash));
    console.log(
      `contention ${name}: ${WORKERS} processes x ${ROUNDS} rounds x ${PER_ROUND} at once = ${acquired.length} tokens; ` +
        `${writes} writes, ${conflicts} conflicts (conflict rate ${((100 * conflicts) / (writes + conflicts)).toFixed(1)}% ` +
        `of write attempts, ${(conflicts / acquired.length).toFixed(2)} per token), ${failed} failed writes, ${missing.length} tokens lost`,
    );
    expect(acquired).toHaveLength(WORKERS * ROUNDS * PER_ROUND);
    expect(acquired.every((a) => !a.fromCache)).toBe(true);
    expect(missing).toEqual([]);
    expect(new Set(stored).size).toBe(acquired.length);
    expect(failed).toBe(0);
    // Contention really happened across processes: some writes lost the race and merged.
    expect(conflicts).toBeGreaterThan(0);
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  }, 120_000);
});

function storeKeyOfApp(tenantId: string): string {
  return world.instance().cache.storeKeyOf({ kind: 'app', tenantId });
}
