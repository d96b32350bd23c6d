/**
 * Item 5: cold start of each Lambda entry. Bundles it as the CDK stack does
 * (infra/lib/token-cache-stack.ts: esbuild --bundle --platform=node --target=node24
 * --format=cjs --minify --sourcemap --sources-content=false, nothing external), then, in a
 * fresh Node process per run with the stack's `NODE_OPTIONS=--enable-source-maps`,
 * times `require()` of the bundle and the first invocation of `handler`, against the
 * local services (dynalite, KMS, authority) and a loopback downstream stub.
 *
 * The first run meets an empty cache partition (token call, data key, write); the later
 * runs are what a new container usually meets: the partition already in the store.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { ColdStartEntry, ColdStartResult } from '../model';
import { Budget, progress } from '../measure';
import { summarize } from '../stats';
import { OBO_SCOPE } from '../variants';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, type World } from '../world';

const ROOT = path.join(__dirname, '..', '..');
const RESULT_MARKER = 'BENCH_RESULT ';

/** The stack's bundling, as esbuild build options. */
export const STACK_ESBUILD = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  minify: true,
  sourcemap: true,
  sourcesContent: false,
  external: [] as string[],
} as const;

const ENTRIES = [
  { entry: 'functions/aws/web-api.ts', event: 'http' },
  { entry: 'functions/aws/daemon.ts', event: 'schedule' },
] as const;

/** Azure SDK packages that shared/runtime.ts imports for its Azure backends. */
const AZURE_SDKS = ['@azure/cosmos', '@azure/identity', '@azure/keyvault-keys'];

interface Build {
  readonly entry: string;
  readonly event: 'http' | 'schedule';
  readonly label: string;
  readonly stubAzure?: boolean;
}

/** An esbuild plugin that replaces whole packages by an empty module. */
function stubPlugin(packages: readonly string[]): import('esbuild').Plugin {
  const filter = new RegExp(`^(${packages.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})(/.*)?$`);
  return {
    name: 'stub-packages',
    setup(build) {
      build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stub' }));
      build.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
        contents: 'module.exports = {};',
        loader: 'js',
      }));
    },
  };
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
 * it, then require(), the first invocation and a second one (warm, for comparison).
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
(async () => {
  const first = await mod.handler(JSON.parse(eventJson), context);
  const t2 = performance.now();
  await mod.handler(JSON.parse(eventJson), context);
  const t3 = performance.now();
  report({ firstMs: t2 - t1, secondMs: t3 - t2, status: describe(first) });
})().catch((e) => report({ firstMs: performance.now() - t1, secondMs: 0, status: 'threw ' + (e && e.name) }));
`;

export async function runColdStart(options: ColdStartOptions): Promise<ColdStartResult> {
  const present = ENTRIES.filter((e) => existsSync(path.join(ROOT, e.entry)));
  if (present.length === 0) {
    return {
      esbuild: STACK_ESBUILD,
      entries: [],
      note: `not measured: ${ENTRIES.map((e) => e.entry).join(' and ')} do not exist in this checkout yet`,
    };
  }
  const esbuild = await import('esbuild');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-cold-'));
  const downstream = await startDownstream();
  const budget = new Budget(options.budgetMs);
  const entries: ColdStartEntry[] = [];
  try {
    const caFile = path.join(dir, 'authority-ca.pem');
    await writeFile(caFile, options.world.info.authority.ca);
    const env = functionEnvironment(options.world, caFile, downstream.url);
    const [assertion] = await options.world.mint(['bench-cold-start-user'], BENCH_CLIENT_ID);
    const builds: Build[] = ENTRIES.flatMap(({ entry, event }) => [
      { entry, event, label: entry },
      // What a per-cloud composition root would ship: the AWS function without the Azure SDKs
      // that shared/runtime.ts imports statically (never called on AWS).
      ...(event === 'http'
        ? [{ entry, event, label: `${entry}, Azure SDKs stubbed out`, stubAzure: true }]
        : []),
    ]);
    for (const build of builds) {
      if (!existsSync(path.join(ROOT, build.entry))) {
        entries.push({
          entry: build.label,
          bundleBytes: 0,
          bundleGzipBytes: 0,
          sourceMapBytes: 0,
          note: 'entry missing',
        });
        continue;
      }
      const outfile = path.join(dir, `b${entries.length}`, 'index.js');
      progress(`cold start: bundling ${build.label}`);
      await esbuild.build({
        ...STACK_ESBUILD,
        entryPoints: [path.join(ROOT, build.entry)],
        outfile,
        logLevel: 'silent',
        ...(build.stubAzure ? { plugins: [stubPlugin(AZURE_SDKS)] } : {}),
      });
      const code = await readFile(outfile);
      const map = await stat(`${outfile}.map`);
      const eventJson = JSON.stringify(build.event === 'http' ? httpEvent(assertion) : scheduleEvent());
      const runs: DriverOutput[] = [];
      for (let i = 0; i < options.runs && (i < 2 || !budget.over()); i++) {
        runs.push(await drive(outfile, eventJson, env));
      }
      const noMaps: DriverOutput[] = [];
      for (let i = 0; i < 2 && !budget.over(); i++) {
        noMaps.push(await drive(outfile, eventJson, { ...env, NODE_OPTIONS: '' }));
      }
      // BENCH_COLD_PROFILE=<dir>: one more run under the CPU profiler, for finding what the time is.
      const profileDir = process.env['BENCH_COLD_PROFILE'];
      if (profileDir) await drive(outfile, eventJson, env, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
      const statuses = [...new Set(runs.map((r) => r.status))].join(', ');
      const warm = runs.slice(1);
      entries.push({
        entry: build.label,
        bundleBytes: code.byteLength,
        bundleGzipBytes: gzipSync(code).byteLength,
        sourceMapBytes: map.size,
        ...(warm.length ? { importMs: summarize(warm.map((r) => r.importMs)) } : {}),
        ...(warm.length ? { firstRequestMs: summarize(warm.map((r) => r.firstMs)) } : {}),
        ...(warm.length ? { secondRequestMs: summarize(warm.map((r) => r.secondMs)) } : {}),
        ...(noMaps.length ? { importNoSourceMapsMs: summarize(noMaps.map((r) => r.importMs)) } : {}),
        note:
          `${runs.length} fresh processes; node boot p50 ${summarize(runs.map((r) => r.bootMs)).p50.toFixed(0)} ms; ` +
          `run 1 (empty partition): import ${runs[0].importMs.toFixed(0)} ms, first request ${runs[0].firstMs.toFixed(0)} ms; ` +
          `responses: ${statuses}`,
      });
      progress(
        `cold start: ${build.label}: ${(code.byteLength / 1024).toFixed(0)} KiB, ${entries.at(-1)!.note}`,
      );
    }
  } finally {
    await new Promise<void>((resolve) => downstream.server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
  return { esbuild: STACK_ESBUILD, entries };
}

/** The configuration a deployed function gets, pointed at the local services. */
function functionEnvironment(world: World, caFile: string, downstreamUrl: string): NodeJS.ProcessEnv {
  const { info } = world;
  return {
    PATH: process.env['PATH'],
    NODE_OPTIONS: '--enable-source-maps',
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
