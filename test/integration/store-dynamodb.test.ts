import {
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  RequestLimitExceeded,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { SizeLimitError, StoreUnavailableError, VersionConflictError } from '../../shared/errors';
import { DynamoDbStore, dynamoDbItemSize, type DynamoDbStoreOptions } from '../../shared/aws/dynamodb-store';
import { leaseItemKey } from '../../shared/store/store';
import { startLocalDynamo } from '../../local/dynamodb';
import { clockedFixture, runStoreContract } from '../contract/store-contract';
import { expectConfigurationError, expectReadRefused, failureOf } from '../support/expect-errors';
import { freePort } from '../../local/net';
import { startSilentServer } from '../support/fault-proxy';
import { useDestroyables, useWorld } from '../support/use-world';
import { recordSdkInputs } from '../support/sdk-inputs';

runStoreContract('dynamodb', async () => {
  const dynamo = await startLocalDynamo();
  return clockedFixture(
    (now) => new DynamoDbStore({ tableName: dynamo.tableName, clientConfig: dynamo.clientConfig, now }),
    dynamo,
  );
});

describe('DynamoDbStore', () => {
  const destroyAfterAll = useDestroyables();
  const dynamo = useWorld(startLocalDynamo);
  let keyCounter = 0;
  const freshKey = (): string => `dynamodb-test.${process.pid}.${++keyCounter}.${Date.now()}`;
  const live = { condition: { mustNotExist: true }, expiresAt: 4_000_000_000 } as const;

  /** A store on the local table (or as configured); destroyed after all tests. */
  function newStore(overrides: Partial<DynamoDbStoreOptions> = {}): DynamoDbStore {
    const store = new DynamoDbStore({
      tableName: dynamo.tableName,
      clientConfig: dynamo.clientConfig,
      ...overrides,
    } as DynamoDbStoreOptions);
    return destroyAfterAll(store);
  }

  describe('constructor', () => {
    const clientConfig = { region: 'us-east-1' };

    it.each([
      ['an empty tableName', { tableName: '', clientConfig }, 'tableName'],
      ['a blank tableName', { tableName: '  ', clientConfig }, 'tableName'],
      ['neither client nor clientConfig', { tableName: 't' }, 'clientConfig'],
      [
        'both client and clientConfig',
        { tableName: 't', clientConfig, client: new DynamoDBClient({}) },
        'client',
      ],
      [
        'timeoutMs with a client',
        { tableName: 't', client: new DynamoDBClient({}), timeoutMs: 100 },
        'timeoutMs',
      ],
      [
        'maxAttempts with a client',
        { tableName: 't', client: new DynamoDBClient({}), maxAttempts: 2 },
        'maxAttempts',
      ],
      ['a zero timeoutMs', { tableName: 't', clientConfig, timeoutMs: 0 }, 'timeoutMs'],
      ['a fractional maxAttempts', { tableName: 't', clientConfig, maxAttempts: 1.5 }, 'maxAttempts'],
      [
        'timeoutMs and a requestHandler of its own',
        { tableName: 't', clientConfig: { ...clientConfig, requestHandler: {} }, timeoutMs: 100 },
        'timeoutMs',
      ],
    ])('rejects %s with a ConfigurationError naming the option', (_case, options, setting) => {
      expectConfigurationError(() => new DynamoDbStore(options as unknown as DynamoDbStoreOptions), setting);
    });

    it('uses a client passed in and leaves it open on destroy', async () => {
      const client = new DynamoDBClient(dynamo.clientConfig);
      const store = new DynamoDbStore({ tableName: dynamo.tableName, client });
      const key = freshKey();

      store.destroy();
      await store.write(key, Uint8Array.of(1, 2, 3), live);

      expect(store.client).toBe(client);
      await expect(store.read(key)).resolves.toMatchObject({ blob: Uint8Array.of(1, 2, 3) });
      client.destroy();
    });
  });

  describe('item layout', () => {
    it('writes { pk: S, v: N, blob: B, expiresAt: N } and nothing else', async () => {
      const store = newStore();
      const key = freshKey();

      const version = await store.write(key, Uint8Array.of(0, 255), live);

      const { Item } = await store.client.send(
        new GetItemCommand({ TableName: dynamo.tableName, Key: { pk: { S: key } }, ConsistentRead: true }),
      );
      expect(Item).toEqual({
        pk: { S: key },
        v: { N: version },
        blob: { B: Uint8Array.of(0, 255) },
        expiresAt: { N: String(live.expiresAt) },
      });
    });

    it('writes a lease as its own item { pk: key~lease, lease: S, until: N ms, expiresAt: N s (the TTL) }', async () => {
      const nowMs = Date.UTC(2031, 0, 15, 12, 0, 0, 250);
      const store = newStore({ now: () => nowMs });
      const key = freshKey();

      await store.acquireLease(key, { owner: 'owner-1', ttlMs: 3000 });

      const { Item } = await store.client.send(
        new GetItemCommand({
          TableName: dynamo.tableName,
          Key: { pk: { S: leaseItemKey(key) } },
          ConsistentRead: true,
        }),
      );
      expect(Item).toEqual({
        pk: { S: `${key}~lease` },
        lease: { S: 'owner-1' },
        until: { N: String(nowMs + 3000) },
        // The table's TTL attribute, rounded up: DynamoDB deletes the lease by itself.
        expiresAt: { N: String(Math.ceil((nowMs + 3000) / 1000)) },
      });
      await expect(store.read(key)).resolves.toBeUndefined();
    });

    it('asks for a strongly consistent read (dynalite is always consistent, so check the request)', async () => {
      const store = newStore();
      const inputs = recordSdkInputs(store.client, 'captureInput');

      await store.read(freshKey());

      expect(inputs).toEqual([expect.objectContaining({ ConsistentRead: true })]);
    });

    it('reports an item it did not write as StoreUnavailableError rather than guessing', async () => {
      const store = newStore();
      const key = freshKey();
      await store.client.send(
        new PutItemCommand({ TableName: dynamo.tableName, Item: { pk: { S: key }, note: { S: 'foreign' } } }),
      );

      const error = await failureOf(store.read(key));

      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect(error.message).toMatch(/delete it/);
    });

    it('treats an expectedVersion it never hands out as a conflict, so a re-read heals it', async () => {
      const store = newStore();
      const key = freshKey();
      await store.write(key, Uint8Array.of(1), live);

      await expect(
        store.write(key, Uint8Array.of(2), {
          condition: { expectedVersion: '"etag-from-cosmos"' },
          expiresAt: 1,
        }),
      ).rejects.toBeInstanceOf(VersionConflictError);
      await expect(store.delete(key, { expectedVersion: '0' })).rejects.toBeInstanceOf(VersionConflictError);
    });
  });

  describe('size check', () => {
    // The overhead of an item without blob bytes, for a 15-digit version as the store writes them.
    const overhead = (key: string): number =>
      dynamoDbItemSize({
        pk: { S: key },
        v: { N: '123456789012345' },
        blob: { B: new Uint8Array(0) },
        expiresAt: { N: String(live.expiresAt) },
      });

    it('accepts the largest item its check allows, and dynalite (counting the service way) agrees', async () => {
      const store = newStore();
      const key = freshKey();
      const blob = new Uint8Array(store.maxItemBytes - overhead(key)).fill(7);

      await store.write(key, blob, live);

      expect((await store.read(key))?.blob.byteLength).toBe(blob.byteLength);
    });

    it('rejects one byte more before calling DynamoDB', async () => {
      const store = newStore();
      const calls = recordSdkInputs(store.client, 'countCalls');
      const key = freshKey();

      const error = await failureOf(
        store.write(key, new Uint8Array(store.maxItemBytes - overhead(key) + 1), live),
      );

      expect(error).toBeInstanceOf(SizeLimitError);
      expect(calls).toHaveLength(0);
    });

    it('counts names, UTF-8 strings, bytes and numbers', () => {
      expect(dynamoDbItemSize({ pk: { S: 'é' }, blob: { B: new Uint8Array(10) }, n: { N: '12345' } })).toBe(
        2 + 2 + 4 + 10 + 1 + (3 + 2),
      );
    });
  });

  describe('throttling', () => {
    /** Makes every attempt fail with `error`, inside the SDK's retry loop, as DynamoDB would. */
    function throttleEveryAttempt(store: DynamoDbStore, error: () => Error): { attempts(): number } {
      let attempts = 0;
      store.client.middlewareStack.add(
        () => async () => {
          attempts++;
          throw error();
        },
        { step: 'deserialize', name: 'injectThrottling', priority: 'low' },
      );
      return { attempts: () => attempts };
    }
    const $metadata = { httpStatusCode: 400 };

    it.each([
      [
        'ProvisionedThroughputExceededException',
        () => new ProvisionedThroughputExceededException({ message: 'slow down', $metadata }),
      ],
      ['ThrottlingException', () => new ThrottlingException({ message: 'slow down', $metadata })],
      ['RequestLimitExceeded', () => new RequestLimitExceeded({ message: 'slow down', $metadata })],
    ])('maps %s to StoreUnavailableError with throttled set and the cause kept', async (name, error) => {
      const store = newStore({ maxAttempts: 1 });
      throttleEveryAttempt(store, error);

      const failure = await failureOf(store.read(freshKey()));

      expect(failure).toBeInstanceOf(StoreUnavailableError);
      expect(failure).toMatchObject({ throttled: true, operation: 'read', store: 'dynamodb' });
      expect(failure.cause).toMatchObject({ name });
      expect(failure.message).toMatch(/on-demand/);
    });

    it('retries a throttled call up to maxAttempts before giving up', async () => {
      const store = newStore({ maxAttempts: 2 });
      const injected = throttleEveryAttempt(
        store,
        () => new ThrottlingException({ message: 'slow down', $metadata }),
      );

      const failure = await failureOf(store.write(freshKey(), Uint8Array.of(1), live));

      expect(failure).toMatchObject({ throttled: true, operation: 'write' });
      expect(injected.attempts()).toBe(2);
    });
  });

  describe('unreachable endpoint', () => {
    it('fails with StoreUnavailableError when nothing listens', async () => {
      const port = await freePort();
      const store = newStore({
        clientConfig: { ...dynamo.clientConfig, endpoint: `http://127.0.0.1:${port}` },
        timeoutMs: 200,
        maxAttempts: 2,
      });

      const failure = await failureOf(store.read(freshKey()));

      // Under jest, Node's own errors come from another realm and the SDK re-wraps them, so
      // the refusal shows in the message rather than as `code` on the cause.
      expectReadRefused(failure);
      expect(failure.cause).toBeDefined();
    });

    describe('when the endpoint accepts connections but never answers', () => {
      const silent = useWorld(startSilentServer);

      it('times out each attempt and fails with StoreUnavailableError instead of hanging', async () => {
        const { port } = silent;
        const store = newStore({
          clientConfig: { ...dynamo.clientConfig, endpoint: `http://127.0.0.1:${port}` },
          timeoutMs: 150,
          maxAttempts: 2,
        });

        const failure = await failureOf(store.write(freshKey(), Uint8Array.of(1), live));

        expect(failure).toBeInstanceOf(StoreUnavailableError);
        expect(failure.cause).toMatchObject({ name: 'TimeoutError' });
        expect(failure.message).toMatch(/within the timeout of 150 ms after 2 attempt/);
      });
    });
  });
});
