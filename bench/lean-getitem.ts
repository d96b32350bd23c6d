/**
 * A leaner store read (issue 16, item 3), measured: the CPU and wall time of one GetItem
 * of the same item (a cache partition's 2,367-byte `B` blob) through
 *   store      DynamoDbStore.read as shipped (its own DynamoDBClient): lean reads, a
 *              hand-written GetItem through the client's own signer and handler;
 *   store-sdk  the same store with `leanReads: false` (client.send(GetItemCommand));
 *   cached-mw  store-sdk with `cacheMiddleware: true` (the client resolves its
 *              middleware stack once instead of per command);
 *   no-acct    cached-mw plus `accountIdEndpointMode: 'disabled'` (no account-id endpoint
 *              parameter resolution);
 *   sdk-raw    DynamoDBClient.send(GetItemCommand) directly, default settings (the floor
 *              bench/run.ts uses);
 *   sigv4      a GetItem signed with @smithy/signature-v4 and sent with node's http over a
 *              kept-alive agent, JSON parsed by hand: what the SDK's machinery costs;
 *   unsigned   sigv4 without the signature: what is left (HTTP and JSON).
 * dynalite runs in a child process (bench/servers.ts), so its CPU is not counted here.
 * Interleaved shuffled blocks; CPU per request from process.cpuUsage over each block.
 *
 *   npx tsx bench/lean-getitem.ts [rounds=30] [block=100]
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { DynamoDBClient, GetItemCommand, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { DynamoDbStore } from '../shared/aws/dynamodb-store';
import { shuffled, summarize } from './stats';
import { startWorld } from './world';

const BLOB_BYTES = 2367;
const KEY = 'lean-getitem.partition';

/** node:crypto as the signer's hash (the SDK's own @smithy/hash-node does the same). */
class NodeSha256 {
  private readonly hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

function bytes(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

interface Reader {
  readonly id: string;
  read(): Promise<number>;
  close(): void;
}

/** A GetItem over node's http with a kept-alive agent; signed with SigV4 unless `sign` is false. */
function rawReader(
  id: string,
  config: DynamoDBClientConfig,
  endpointUrl: string,
  tableName: string,
  sign: boolean,
): Reader {
  const endpoint = new URL(endpointUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const credentials = config.credentials as { accessKeyId: string; secretAccessKey: string };
  const signer = new SignatureV4({
    credentials,
    region: String(config.region),
    service: 'dynamodb',
    sha256: NodeSha256,
  });
  const body = JSON.stringify({ TableName: tableName, Key: { pk: { S: KEY } }, ConsistentRead: true });
  return {
    id,
    async read() {
      let headers: Record<string, string> = {
        host: endpoint.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': 'DynamoDB_20120810.GetItem',
        'content-length': String(Buffer.byteLength(body)),
      };
      if (!sign) {
        // dynalite wants an Authorization header but never checks it: a constant one.
        headers.authorization =
          'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00';
        headers['x-amz-date'] = '20260101T000000Z';
      } else {
        const signed = await signer.sign({
          method: 'POST',
          protocol: endpoint.protocol,
          hostname: endpoint.hostname,
          port: Number(endpoint.port),
          path: '/',
          query: {},
          headers,
          body,
        });
        headers = signed.headers;
      }
      const text = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          { agent, method: 'POST', hostname: endpoint.hostname, port: endpoint.port, path: '/', headers },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              res.statusCode === 200
                ? resolve(Buffer.concat(chunks).toString('utf8'))
                : reject(
                    new Error(
                      `GetItem: HTTP ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 200)}`,
                    ),
                  ),
            );
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      const item = (JSON.parse(text) as { Item?: { blob?: { B?: string } } }).Item;
      return Buffer.from(item?.blob?.B ?? '', 'base64').byteLength;
    },
    close: () => agent.destroy(),
  };
}

function storeReader(
  id: string,
  config: DynamoDBClientConfig,
  tableName: string,
  leanReads: boolean,
): Reader {
  const store = new DynamoDbStore({ tableName, clientConfig: config, leanReads });
  return {
    id,
    read: async () => (await store.read(KEY))?.blob.byteLength ?? 0,
    close: () => {
      // A lean store that fell back to the SDK would be measuring the wrong thing.
      const { lean, fallbacks } = store.readCounts;
      if (leanReads && (lean === 0 || fallbacks > 0)) {
        console.error(`${id}: ${lean} lean reads, ${fallbacks} fallbacks to the SDK`);
        process.exitCode = 1;
      }
      store.destroy();
    },
  };
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 30);
  const block = Number(process.argv[3] ?? 100);
  const world = await startWorld();
  const readers: Reader[] = [];
  try {
    const tableName = world.info.dynamo.tableName;
    const config = world.dynamoConfig;
    const writer = new DynamoDbStore({ tableName, clientConfig: config });
    const blob = new Uint8Array(BLOB_BYTES).map((_, i) => (i * 131) % 251);
    await writer.delete(KEY);
    await writer.write(KEY, blob, {
      condition: { mustNotExist: true },
      expiresAt: Math.floor(Date.now() / 1000) + 86_400,
    });
    writer.destroy();

    const sdk = new DynamoDBClient(config);
    readers.push(
      storeReader('store', config, tableName, true),
      storeReader('store-sdk', config, tableName, false),
      storeReader('cached-mw', { ...config, cacheMiddleware: true }, tableName, false),
      storeReader(
        'no-acct',
        { ...config, cacheMiddleware: true, accountIdEndpointMode: 'disabled' },
        tableName,
        false,
      ),
      {
        id: 'sdk-raw',
        read: async () => {
          const { Item } = await sdk.send(
            new GetItemCommand({ TableName: tableName, Key: { pk: { S: KEY } }, ConsistentRead: true }),
          );
          return Item?.['blob']?.B?.byteLength ?? 0;
        },
        close: () => sdk.destroy(),
      },
      rawReader('sigv4', config, world.info.dynamo.endpoint, tableName, true),
      rawReader('unsigned', config, world.info.dynamo.endpoint, tableName, false),
    );
    const wall = new Map<string, number[]>(readers.map((r) => [r.id, []]));
    const cpu = new Map<string, number[]>(readers.map((r) => [r.id, []]));
    for (const r of readers) {
      for (let i = 0; i < 50; i++) {
        if ((await r.read()) !== BLOB_BYTES) throw new Error(`${r.id} read the wrong blob`);
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const r of shuffled(readers, round + 7)) {
        const started = process.cpuUsage();
        for (let i = 0; i < block; i++) {
          const t = performance.now();
          await r.read();
          wall.get(r.id)!.push((performance.now() - t) * 1000);
        }
        const used = process.cpuUsage(started);
        cpu.get(r.id)!.push((used.user + used.system) / block);
      }
    }
    const base = summarize(cpu.get('sdk-raw')!).p50;
    const baseWall = summarize(wall.get('sdk-raw')!).p50;
    console.log(`lean GetItem: ${rounds} rounds x ${block} reads per reader, node ${process.version}`);
    console.log('reader      CPU/read p50 µs  vs sdk-raw wall p50 µs  vs sdk-raw wall p95 µs');
    for (const r of readers) {
      const c = summarize(cpu.get(r.id)!);
      const w = summarize(wall.get(r.id)!);
      console.log(
        `${r.id.padEnd(12)}${c.p50.toFixed(0).padStart(15)}${(c.p50 / base).toFixed(2).padStart(9)}x` +
          `${w.p50.toFixed(0).padStart(13)}${(w.p50 / baseWall).toFixed(2).padStart(9)}x${w.p95.toFixed(0).padStart(14)}`,
      );
    }
  } finally {
    for (const r of readers) r.close();
    await world.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
