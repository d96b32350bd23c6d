/**
 * DynamoDbStore's lean reads (issue 16, item 3): a hand-written GetItem sent by the
 * client's own signer and handler, taken only while the client's middleware is the SDK's
 * own, and read again through `client.send` on any failure. Against dynalite, through a
 * capturing proxy and the fault proxy, with real SDK clients.
 */
import { Agent, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDbStore, type DynamoDbStoreOptions } from '../../shared/aws/dynamodb-store';
import { StoreUnavailableError } from '../../shared/errors';
import type { StoredItem } from '../../shared/store/store';
import { startLocalDynamo } from '../../local/dynamodb';
import { runStoreContract } from '../contract/store-contract';
import { expectConfigurationError, rejection } from '../support/expect-errors';
import {
  dynamoDbError,
  dynamoDbOperation,
  forward,
  startFaultProxy,
  type ProxyFault,
} from '../support/fault-proxy';
import { startGroup, useDestroyables, useWorld } from '../support/use-world';
import { recordSdkInputs } from '../support/sdk-inputs';

let contractStore: DynamoDbStore | undefined;

// On a client passed in (built from plain config, so its middleware is the SDK's own): lean too.
runStoreContract('dynamodb (lean reads, a client passed in)', async () => {
  const dynamo = await startLocalDynamo();
  const client = new DynamoDBClient(dynamo.clientConfig);
  const clock = { ms: 0 };
  contractStore = new DynamoDbStore({ tableName: dynamo.tableName, client, now: () => clock.ms });
  return {
    store: contractStore,
    clock: { set: (ms: number) => (clock.ms = ms) },
    async teardown() {
      client.destroy();
      await dynamo.stop();
    },
  };
});

describe('the store contract run above', () => {
  it('was read through the lean path, never falling back', () => {
    const counts = contractStore!.readCounts;
    // The first read of a store goes through the SDK (it learns the endpoint from it).
    expect(counts.sdk).toBe(1);
    expect(counts.lean).toBeGreaterThan(20);
    expect(counts.fallbacks).toBe(0);
  });
});

/** A GetItem (or other request) as it reached the server. */
interface Captured {
  readonly operation: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A proxy that records every request before passing it on unchanged. */
async function startCapturingProxy(target: string): Promise<{
  endpoint: string;
  requests: Captured[];
  stop(): Promise<void>;
}> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const requests: Captured[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ operation: dynamoDbOperation(req), headers: req.headers, body: body.toString('utf8') });
      forward(upstream, agent, req, res, { body });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    async stop() {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** dynalite, a capturing proxy and a fault proxy in front of it. */
const startLeanRig = () =>
  startGroup(async (own) => {
    const dynamo = own(await startLocalDynamo());
    const capture = own(await startCapturingProxy(dynamo.endpoint));
    return { dynamo, capture, faults: own(await startFaultProxy(dynamo.endpoint)) };
  });

describe('DynamoDbStore lean reads', () => {
  const destroyAfterAll = useDestroyables();
  const rig = useWorld(startLeanRig);
  let keyCounter = 0;
  const freshKey = (): string => `lean-test.${process.pid}.${++keyCounter}`;
  const live = { condition: { mustNotExist: true }, expiresAt: 4_000_000_000 } as const;

  function newStore(
    overrides: Partial<DynamoDbStoreOptions> = {},
    endpoint = rig.dynamo.endpoint,
  ): DynamoDbStore {
    const store = new DynamoDbStore({
      tableName: rig.dynamo.tableName,
      ...overrides,
      clientConfig: { ...rig.dynamo.clientConfig, endpoint, ...overrides.clientConfig },
    } as DynamoDbStoreOptions);
    return destroyAfterAll(store);
  }

  /** A store whose first (learning) SDK read is done, so its next read is lean. */
  async function warmStore(
    overrides: Partial<DynamoDbStoreOptions> = {},
    endpoint?: string,
  ): Promise<DynamoDbStore> {
    const store = newStore(overrides, endpoint);
    await store.read(freshKey());
    expect(store.readCounts).toEqual({ lean: 0, sdk: 1, fallbacks: 0 });
    return store;
  }

  afterEach(() => rig.faults.setFault(undefined));

  describe('by default', () => {
    it('reads lean after the first read, with the same body the SDK sends (ConsistentRead true)', async () => {
      const store = newStore({}, rig.capture.endpoint);
      const key = freshKey();
      const from = rig.capture.requests.length;

      await store.read(key);
      await store.read(key);

      expect(store.readCounts).toEqual({ lean: 1, sdk: 1, fallbacks: 0 });
      const [sdk, lean] = rig.capture.requests.slice(from);
      expect(sdk?.operation).toBe('GetItem');
      expect(lean?.operation).toBe('GetItem');
      expect(lean?.body).toBe(sdk?.body);
      expect(JSON.parse(lean?.body ?? '')).toEqual({
        TableName: rig.dynamo.tableName,
        Key: { pk: { S: key } },
        ConsistentRead: true,
      });
      expect(lean?.headers).toMatchObject({
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.GetItem',
        'user-agent': sdk?.headers['user-agent'],
        authorization: expect.stringMatching(
          /^AWS4-HMAC-SHA256 Credential=local\/\d{8}\/us-east-1\/dynamodb\//,
        ) as string,
      });
      // The SDK's per-attempt bookkeeping headers are not copied from the learned request.
      expect(lean?.headers['amz-sdk-invocation-id']).toBeUndefined();
    });

    /** A lean store and an SDK-path store on one clock, and an item written with `expiresAt`. */
    async function bothPaths(expiresAt: number) {
      const nowMs = 2_000_000_000;
      const lean = await warmStore({ now: () => nowMs });
      const sdk = newStore({ now: () => nowMs, leanReads: false });
      const key = freshKey();
      const version = await sdk.write(key, Uint8Array.of(0, 1, 254, 255), {
        condition: { mustNotExist: true },
        expiresAt,
      });
      return { viaLean: await lean.read(key), viaSdk: await sdk.read(key), version, lean };
    }

    it('returns the same blob, version and expiresAt as the SDK path for a present item', async () => {
      const { viaLean, viaSdk, version, lean } = await bothPaths(4_000_000_000);

      expect(lean.readCounts.lean).toBe(1);
      expect(viaLean).toEqual({ blob: Uint8Array.of(0, 1, 254, 255), version, expiresAt: 4_000_000_000 });
      expect(viaLean).toEqual(viaSdk);
    });

    it('returns undefined for an expired item, as the SDK path does', async () => {
      const { viaLean, viaSdk, lean } = await bothPaths(1_999_999);

      expect(lean.readCounts.lean).toBe(1);
      expect(viaLean).toBeUndefined();
      expect(viaSdk).toBeUndefined();
    });

    it('returns undefined for an absent key and for a lease item, as the SDK path does', async () => {
      const lean = await warmStore();
      const key = freshKey();
      await lean.acquireLease(key, { owner: 'owner-1', ttlMs: 60_000 });

      await expect(lean.read(freshKey())).resolves.toBeUndefined();
      await expect(lean.read(`${key}~lease`)).resolves.toBeUndefined();
      expect(lean.readCounts).toEqual({ lean: 2, sdk: 1, fallbacks: 0 });
    });

    it('reports an item it did not write as StoreUnavailableError, as the SDK path does', async () => {
      const lean = await warmStore();
      const key = freshKey();
      await lean.client.send(
        new PutItemCommand({
          TableName: rig.dynamo.tableName,
          Item: { pk: { S: key }, note: { S: 'foreign' } },
        }),
      );

      const error = await rejection(lean.read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/delete it/);
      expect(lean.readCounts.lean).toBe(1);
    });

    it('signs each lean read with the credentials the provider hands out now (rotation)', async () => {
      let accessKeyId = 'ROTATED-KEY-1';
      // An expiry within the SDK's refresh window makes its memoized provider ask again each time.
      const credentials = async () => ({
        accessKeyId,
        secretAccessKey: 'local',
        expiration: new Date(Date.now() + 60_000),
      });
      const store = await warmStore({ clientConfig: { credentials } }, rig.capture.endpoint);
      const lastAuthorization = (): string | undefined => rig.capture.requests.at(-1)?.headers.authorization;

      await store.read(freshKey());
      expect(lastAuthorization()).toMatch(/Credential=ROTATED-KEY-1\//);
      accessKeyId = 'ROTATED-KEY-2';
      await store.read(freshKey());

      expect(lastAuthorization()).toMatch(/Credential=ROTATED-KEY-2\//);
      expect(store.readCounts).toEqual({ lean: 2, sdk: 1, fallbacks: 0 });
    });
  });

  describe('through client.send instead', () => {
    it('when middleware is added after the store was built, and lean again once it is removed', async () => {
      const store = await warmStore();
      const seen = recordSdkInputs(store.client, 'tracing');

      await store.read(freshKey());
      expect(store.readCounts).toEqual({ lean: 0, sdk: 2, fallbacks: 0 });
      expect(seen).toHaveLength(1);

      store.client.middlewareStack.remove('tracing');
      await store.read(freshKey());
      expect(store.readCounts).toEqual({ lean: 1, sdk: 2, fallbacks: 0 });
    });

    it('when a client passed in already has middleware of its own', async () => {
      const client = new DynamoDBClient(rig.dynamo.clientConfig);
      client.middlewareStack.add((next) => (args) => next(args), { step: 'build', name: 'customHeader' });
      const store = new DynamoDbStore({ tableName: rig.dynamo.tableName, client });

      await store.read(freshKey());
      await store.read(freshKey());

      expect(store.readCounts).toEqual({ lean: 0, sdk: 2, fallbacks: 0 });
      client.destroy();
    });

    it('with leanReads: false', async () => {
      const store = newStore({ leanReads: false });

      await store.read(freshKey());
      await store.read(freshKey());

      expect(store.readCounts).toEqual({ lean: 0, sdk: 2, fallbacks: 0 });
    });

    it('rejects a leanReads that is not a boolean, naming it', () => {
      expectConfigurationError(() => newStore({ leanReads: 'yes' as unknown as boolean }), 'leanReads');
    });
  });

  describe('faults: the failed lean attempt is read again by the SDK', () => {
    const faultCases: ReadonlyArray<[string, ProxyFault]> = [
      [
        'throttling (400 ProvisionedThroughputExceededException)',
        dynamoDbError(400, 'ProvisionedThroughputExceededException', 'Rate of requests exceeds'),
      ],
      ['500', dynamoDbError(500, 'InternalServerError', 'Internal Server Error')],
      ['a connection reset', { kind: 'reset' }],
      ['a timeout', { kind: 'hang' }],
      [
        'a garbled 200 body',
        {
          kind: 'respond',
          status: 200,
          headers: { 'content-type': 'application/x-amz-json-1.0' },
          body: '{"Item":{"v":',
        },
      ],
      [
        'a 200 body that fails its CRC32',
        {
          kind: 'respond',
          status: 200,
          headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-crc32': '1' },
          body: '{}',
        },
      ],
    ];
    const options = { timeoutMs: 200, maxAttempts: 2 };

    it.each(faultCases)(
      '%s once: the SDK read returns the stored item, nothing lost',
      async (_case, fault) => {
        const store = await warmStore(options, rig.faults.endpoint);
        const key = freshKey();
        const version = await store.write(key, Uint8Array.of(9, 8, 7), live);
        let faulted = 0;
        rig.faults.setFault(fault, (req) => dynamoDbOperation(req) === 'GetItem' && faulted++ === 0);

        const item = await store.read(key);

        expect(faulted).toBeGreaterThanOrEqual(1);
        expect(item).toEqual<StoredItem>({
          blob: Uint8Array.of(9, 8, 7),
          version,
          expiresAt: live.expiresAt,
        });
        expect(store.readCounts).toEqual({ lean: 0, sdk: 2, fallbacks: 1 });
      },
    );

    it.each(faultCases.slice(0, 5))(
      '%s every time: the same error as the SDK path, and the item kept',
      async (_case, fault) => {
        const lean = await warmStore(options, rig.faults.endpoint);
        const sdk = newStore({ ...options, leanReads: false }, rig.faults.endpoint);
        const key = freshKey();
        const version = await lean.write(key, Uint8Array.of(1), live);
        rig.faults.setFault(fault, (req) => dynamoDbOperation(req) === 'GetItem');

        const viaLean = await rejection(lean.read(key));
        const viaSdk = await rejection(sdk.read(key));

        expect(lean.readCounts).toEqual({ lean: 0, sdk: 2, fallbacks: 1 });
        expect(viaLean).toBeInstanceOf(StoreUnavailableError);
        expect(viaLean).toMatchObject({
          name: (viaSdk as Error).name,
          throttled: (viaSdk as StoreUnavailableError).throttled,
          operation: 'read',
        });
        expect(((viaLean as Error).cause as Error).name).toBe(((viaSdk as Error).cause as Error).name);
        // The message differs only in the request ids and the like the SDK puts in it.
        const shape = (e: unknown): string => (e as Error).message.replace(/[0-9A-Z]{20,}/g, '<id>');
        expect(shape(viaLean)).toBe(shape(viaSdk));
        rig.faults.setFault(undefined);
        await expect(lean.read(key)).resolves.toMatchObject({ version, blob: Uint8Array.of(1) });
      },
    );
  });
});
