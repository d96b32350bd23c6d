/**
 * Item 5 (issue 16 point 4): cold start of each Lambda entry, bundled exactly as the
 * package ships it (`lambdaBundleOptions` of infra/build/bundle.ts: its externals, its
 * slimming plugin, target Node.js 24, no source map), then, in a fresh Node process per
 * run, `require()` of the bundle and the first invocation of `handler`, against the local
 * services (dynalite, KMS, authority) and a loopback downstream stub. Beside it:
 * - `web-api+maps`: the same bundle with a source map, run with `--enable-source-maps` (what
 *   the stack used to ship), for the cost of maps;
 * - `sdk-floor`: a bundle of msal-node's ConfidentialClientApplication and the DynamoDB
 *   client alone (the same options), imported only: what any function that uses them pays.
 * Runs are interleaved across bundles (a slow moment lands on all alike); one unmeasured
 * run per entry first stores the partition, so every measured run is what a new container
 * usually meets: the partition already in the store.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { BuildOptions } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
import type { ColdStartEntry, ColdStartResult } from '../model';
import { Budget, progress } from '../measure';
import { summarize } from '../stats';
import { OBO_SCOPE } from '../variants';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, type World } from '../world';

const ROOT = path.join(__dirname, '..', '..');
const RESULT_MARKER = 'BENCH_RESULT ';

/** What msal-node and the DynamoDB client cost alone: the floor of any such function. */
const SDK_FLOOR_SOURCE = `
export { ConfidentialClientApplication } from '@azure/msal-node';
export { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
`;

/** One bundle the cold-start section measures, built with the shipped options. */
export interface Build {
  readonly id: string;
  readonly label: string;
  readonly options: BuildOptions;
  readonly nodeOptions: string;
  readonly event?: 'http' | 'schedule';
}

/** The bundles the section measures, written under `dir`: the shipped ones and the SDK floor. */
export function coldStartBuilds(dir: string): Build[] {
  const entry = (name: string): string => path.join(ROOT, 'functions', 'aws', `${name}.ts`);
  const out = (id: string): string => path.join(dir, id, 'index.js');
  return [
    {
      id: 'web-api',
      label: 'functions/aws/web-api.ts, as shipped',
      options: lambdaBundleOptions(entry('web-api'), out('web-api')),
      nodeOptions: '',
      event: 'http',
    },
    {
      id: 'web-api+maps',
      label: 'functions/aws/web-api.ts with a source map, --enable-source-maps',
      options: {
        ...lambdaBundleOptions(entry('web-api'), out('web-api-maps')),
        sourcemap: true,
        sourcesContent: false,
      },
      nodeOptions: '--enable-source-maps',
      event: 'http',
    },
    {
      id: 'daemon',
      label: 'functions/aws/daemon.ts, as shipped',
      options: lambdaBundleOptions(entry('daemon'), out('daemon')),
      nodeOptions: '',
      event: 'schedule',
    },
    {
      id: 'sdk-floor',
      label: 'SDK floor: msal-node ConfidentialClientApplication + DynamoDB client alone (import only)',
      options: {
        ...lambdaBundleOptions('', out('sdk-floor')),
        entryPoints: undefined,
        stdin: { contents: SDK_FLOOR_SOURCE, resolveDir: ROOT, loader: 'ts', sourcefile: 'sdk-floor.ts' },
      },
      nodeOptions: '',
    },
  ];
}

/** The shipped options as JSON (plugins by name). */
function describeOptions(options: BuildOptions): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...options };
  delete rest['entryPoints'];
  delete rest['outfile'];
  return { ...rest, plugins: (options.plugins ?? []).map((p) => p.name) };
}

export interface ColdStartOptions {
  readonly world: World;
  readonly runs: number;
  readonly budgetMs: number;
}

/** What the driver prints, one JSON line. */
interface DriverOutput {
  readonly bootMs: number;
  readonly importMs: number;
  readonly firstMs: number;
  /** A second invocation in the same process (warm). */
  readonly secondMs: number;
  readonly status: string;
}

/**
 * Runs in the fresh process (plain JS, so no loader is timed): boot time as Node reports
 * it, then require(), the first invocation and a second one (warm, for comparison); with
 * no event, require() only.
 */
const DRIVER = `
const { performance } = require('node:perf_hooks');
const bootMs = performance.now();
const [bundle, eventJson] = process.argv.slice(1);
const t0 = performance.now();
const mod = require(bundle);
const t1 = performance.now();
const context = {
  awsRequestId: 'bench-cold-start', functionName: 'bench', functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench', memoryLimitInMB: '512',
  logGroupName: '/aws/lambda/bench', logStreamName: 'bench', callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30000, done() {}, fail() {}, succeed() {},
};
const describe = (r) => r && typeof r === 'object'
  ? ('statusCode' in r ? 'HTTP ' + r.statusCode : 'ok=' + r.ok + (r.tokenFromCache === undefined ? '' : ' fromCache=' + r.tokenFromCache))
  : typeof r;
const report = (fields) => { process.stdout.write('BENCH_RESULT ' + JSON.stringify({ bootMs, importMs: t1 - t0, ...fields }) + '\\n'); process.exit(0); };
if (eventJson === '-') report({ firstMs: 0, secondMs: 0, status: typeof mod.ConfidentialClientApplication === 'function' ? 'imported' : 'missing exports' });
else (async () => {
  const first = await mod.handler(JSON.parse(eventJson), context);
  const t2 = performance.now();
  await mod.handler(JSON.parse(eventJson), context);
  const t3 = performance.now();
  report({ firstMs: t2 - t1, secondMs: t3 - t2, status: describe(first) });
})().catch((e) => report({ firstMs: performance.now() - t1, secondMs: 0, status: 'threw ' + (e && e.name) }));
`;

export async function runColdStart(options: ColdStartOptions): Promise<ColdStartResult> {
  const esbuild = await import('esbuild');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-cold-'));
  const downstream = await startDownstream();
  const budget = new Budget(options.budgetMs);
  const all = coldStartBuilds(dir);
  const shipped = describeOptions(all[0].options);
  try {
    const present = all.filter((b) => {
      const entries = b.options.entryPoints;
      const first = Array.isArray(entries) ? entries[0] : undefined;
      return typeof first !== 'string' || existsSync(first);
    });
    const caFile = path.join(dir, 'authority-ca.pem');
    await writeFile(caFile, options.world.info.authority.ca);
    const env = functionEnvironment(options.world, caFile, downstream.url);
    const [assertion] = await options.world.mint(['bench-cold-start-user'], BENCH_CLIENT_ID);
    const eventOf = (b: Build): string =>
      b.event === undefined
        ? '-'
        : JSON.stringify(b.event === 'http' ? httpEvent(assertion) : scheduleEvent());
    const built = new Map<string, { outfile: string; code: Buffer; mapBytes: number }>();
    for (const b of present) {
      progress(`cold start: bundling ${b.label}`);
      await esbuild.build({ ...b.options, logLevel: 'silent' });
      const outfile = String(b.options.outfile);
      const code = await readFile(outfile);
      const mapBytes = existsSync(`${outfile}.map`) ? (await stat(`${outfile}.map`)).size : 0;
      built.set(b.id, { outfile, code, mapBytes });
    }
    // One unmeasured run per event kind stores the partition (token call, data key, write).
    const priming = new Map<string, DriverOutput>();
    for (const b of present.filter((x) => x.id === 'web-api' || x.id === 'daemon')) {
      priming.set(
        b.id,
        await drive(built.get(b.id)!.outfile, eventOf(b), { ...env, NODE_OPTIONS: b.nodeOptions }),
      );
    }
    const runs = new Map<string, DriverOutput[]>(present.map((b) => [b.id, []]));
    for (let i = 0; i < options.runs && (i < 2 || !budget.over()); i++) {
      for (const b of present) {
        runs
          .get(b.id)!
          .push(await drive(built.get(b.id)!.outfile, eventOf(b), { ...env, NODE_OPTIONS: b.nodeOptions }));
      }
    }
    // BENCH_COLD_PROFILE=<dir>: one more run of the shipped web API under the CPU profiler.
    const profileDir = process.env['BENCH_COLD_PROFILE'];
    const web = present.find((b) => b.id === 'web-api');
    if (profileDir && web) {
      await drive(built.get(web.id)!.outfile, eventOf(web), env, [
        '--cpu-prof',
        `--cpu-prof-dir=${profileDir}`,
      ]);
    }
    const entries: ColdStartEntry[] = present.map((b) => {
      const { code, mapBytes } = built.get(b.id)!;
      const r = runs.get(b.id)!;
      const statuses = [...new Set(r.map((x) => x.status))].join(', ');
      const first = priming.get(b.id);
      const invoked = b.event !== undefined;
      return {
        id: b.id,
        entry: b.label,
        bundleBytes: code.byteLength,
        bundleGzipBytes: gzipSync(code).byteLength,
        sourceMapBytes: mapBytes,
        nodeOptions: b.nodeOptions,
        ...(r.length ? { importMs: summarize(r.map((x) => x.importMs)) } : {}),
        ...(r.length && invoked ? { firstRequestMs: summarize(r.map((x) => x.firstMs)) } : {}),
        ...(r.length && invoked ? { secondRequestMs: summarize(r.map((x) => x.secondMs)) } : {}),
        note:
          `${r.length} fresh processes; node boot p50 ${summarize(r.map((x) => x.bootMs)).p50.toFixed(0)} ms; ` +
          (first
            ? `unmeasured first run (empty partition): import ${first.importMs.toFixed(0)} ms, first request ${first.firstMs.toFixed(0)} ms; `
            : '') +
          `responses: ${statuses}`,
      };
    });
    for (const e of entries) {
      progress(
        `cold start: ${e.id}: ${(e.bundleBytes / 1024).toFixed(0)} KiB, import p50 ${e.importMs?.p50.toFixed(0) ?? '-'} ms; ${e.note}`,
      );
    }
    const webImport = entries.find((e) => e.id === 'web-api')?.importMs?.p50;
    const floorImport = entries.find((e) => e.id === 'sdk-floor')?.importMs?.p50;
    return {
      esbuild: shipped,
      entries,
      ...(webImport !== undefined && floorImport ? { importVsSdkFloor: webImport / floorImport } : {}),
      ...(present.length < all.length
        ? {
            note: `not built (entry missing): ${all
              .filter((b) => !present.includes(b))
              .map((b) => b.id)
              .join(', ')}`,
          }
        : {}),
    };
  } finally {
    await new Promise<void>((resolve) => downstream.server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** The configuration a deployed function gets, pointed at the local services. */
function functionEnvironment(world: World, caFile: string, downstreamUrl: string): NodeJS.ProcessEnv {
  const { info } = world;
  return {
    PATH: process.env['PATH'],
    NODE_OPTIONS: '',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    MSAL_CLIENT_ID: BENCH_CLIENT_ID,
    MSAL_AUTHORITY: info.authority.authority,
    MSAL_KNOWN_AUTHORITIES: info.authority.host,
    MSAL_CLIENT_SECRET: BENCH_CLIENT_SECRET,
    EXTRA_CA_FILE: caFile,
    TOKEN_CACHE_TABLE_NAME: info.dynamo.tableName,
    AWS_ENDPOINT_URL_DYNAMODB: info.dynamo.endpoint,
    TOKEN_CACHE_KMS_KEY_ID: info.kms.keyArn,
    AWS_ENDPOINT_URL_KMS: info.kms.endpoint,
    DOWNSTREAM_URL: downstreamUrl,
    DOWNSTREAM_SCOPES: OBO_SCOPE,
    // The local authority's user tokens carry this scope by default.
    API_REQUIRED_SCOPES: 'access_as_user',
    LOG_LEVEL: 'silent',
  };
}

function drive(
  bundle: string,
  eventJson: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: readonly string[] = [],
): Promise<DriverOutput> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...nodeArgs, '-e', DRIVER, bundle, eventJson],
      { env, timeout: 60_000, maxBuffer: 1024 * 1024 },
      (error, stdout) => {
        const line = stdout
          .split('\n')
          .find((l) => l.startsWith(RESULT_MARKER))
          ?.slice(RESULT_MARKER.length);
        if (!line) {
          reject(new Error(`cold-start driver printed no result (${error?.message ?? 'no error'})`));
          return;
        }
        resolve(JSON.parse(line) as DriverOutput);
      },
    );
  });
}

/** An HTTP API (payload 2.0) event for GET /api/downstream with the caller's bearer token. */
function httpEvent(assertion: string): Record<string, unknown> {
  return {
    version: '2.0',
    routeKey: 'GET /api/downstream',
    rawPath: '/api/downstream',
    rawQueryString: '',
    headers: { authorization: `Bearer ${assertion}`, accept: 'application/json', host: 'bench.local' },
    requestContext: {
      accountId: '000000000000',
      apiId: 'bench',
      domainName: 'bench.local',
      domainPrefix: 'bench',
      http: {
        method: 'GET',
        path: '/api/downstream',
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'bench',
      },
      requestId: 'bench-cold-start',
      routeKey: 'GET /api/downstream',
      stage: '$default',
      time: new Date().toUTCString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
}

/** An EventBridge scheduled event, as the daemon's rule sends it. */
function scheduleEvent(): Record<string, unknown> {
  return {
    version: '0',
    id: 'bench-cold-start',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:rule/bench'],
    detail: {},
  };
}

/** A downstream API stub on loopback: 200 with a small JSON body for anything. */
async function startDownstream(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/data` };
}
