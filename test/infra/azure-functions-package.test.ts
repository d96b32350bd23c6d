/**
 * `npm run package:azure` builds a Functions app; this file loads it the way the Functions
 * host does and invokes it against the local stack. The host's Node.js worker gives the app
 * `@azure/functions-core` (setProgrammingModel, registerFunction) and drives each invocation
 * through the programming model the app registered (getInvocationModel → getArguments →
 * invokeFunction → getResponse, with RPC-shaped requests). A small stand-in for that worker
 * does the same here, in a fresh Node process per instance, with nothing of this repository
 * on the module path.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { packageAzureFunctions } from '../../infra/build/bundle';
import { GrantType } from '../../local/authority';
import { azureCacheEnv, startAzureServices, type AzureServices } from '../support/cloud-services';
import { registerSecret } from '../support/secret-registry';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const CLIENT_ID = 'functions-package-app';
const CLIENT_SECRET = 'functions-package-test-client-secret';
const DOWNSTREAM_AUDIENCE = 'api://downstream';

/** The worker's side of `@azure/functions-core`: what the app registers, kept for the host. */
const CORE_API = `
const host = (globalThis.__functionsHost = { model: undefined, functions: new Map() });
module.exports = {
  setProgrammingModel(model) { host.model = model; },
  getProgrammingModel() { return host.model; },
  registerFunction(metadata, callback) { host.functions.set(metadata.name, { metadata, callback }); return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
  log() {},
};
`;

/** Loads the app from its package.json `main`, then runs the invocations given as JSON. */
const HOST = `
const Module = require('node:module');
const path = require('node:path');
const core = require('./functions-core.cjs');
// As the worker does: the app's require('@azure/functions-core') gets the worker's module.
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === '@azure/functions-core' ? core : load.call(this, request, ...rest);
};
const app = process.argv[2];
const pkg = require(path.join(app, 'package.json'));
require(path.join(app, pkg.main));
const host = globalThis.__functionsHost;
(async () => {
  const results = [];
  for (const [i, call] of JSON.parse(process.argv[3]).entries()) {
    const fn = host.functions.get(call.function);
    if (!fn) throw new Error('not registered: ' + call.function + ' (have ' + [...host.functions.keys()] + ')');
    const trigger = Object.entries(fn.metadata.bindings).find(([, b]) => /trigger$/i.test(b.type))[0];
    const invocation = host.model.getInvocationModel({
      invocationId: 'invocation-' + i,
      metadata: { name: call.function, bindings: fn.metadata.bindings },
      request: { invocationId: 'invocation-' + i, inputData: [{ name: trigger, data: call.data }], triggerMetadata: {} },
      log() {},
    });
    const { context, inputs } = await invocation.getArguments();
    const result = await invocation.invokeFunction(context, inputs, fn.callback);
    const response = await invocation.getResponse(context, result);
    const http = response.returnValue && response.returnValue.http;
    results.push(http
      ? { status: Number(http.statusCode), body: Buffer.from(http.body.bytes).toString('utf8') }
      : { value: result });
  }
  console.log(JSON.stringify({ registered: [...host.functions.keys()].sort(), programmingModel: host.model.name, results }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface HostRun {
  registered: string[];
  programmingModel: string;
  results: { status?: number; body?: string; value?: unknown }[];
}

describe('the Azure Functions package (npm run package:azure)', () => {
  let built: { dir: string; zip: string };
  let work: string;
  let appDir: string;
  let services: AzureServices | undefined;
  let env: Record<string, string>;

  beforeAll(async () => {
    built = await packageAzureFunctions(ROOT);
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'functions-host-'));
    // The deployed app as the host sees it, beside the worker's core module.
    appDir = path.join(work, 'site', 'wwwroot');
    fs.cpSync(built.dir, appDir, { recursive: true });
    fs.mkdirSync(path.join(work, 'worker'));
    fs.writeFileSync(path.join(work, 'worker', 'functions-core.cjs'), CORE_API);
    fs.writeFileSync(path.join(work, 'worker', 'host.cjs'), HOST);

    services = await startAzureServices({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      downstreamAudience: DOWNSTREAM_AUDIENCE,
    });
    const { authority, cosmos, vault, downstream } = services;
    fs.writeFileSync(path.join(work, 'ca.pem'), services.certificate.cert);
    env = {
      PATH: process.env.PATH ?? '',
      MSAL_CLIENT_ID: CLIENT_ID,
      MSAL_AUTHORITY: authority.authority(),
      MSAL_KNOWN_AUTHORITIES: authority.host,
      MSAL_CLIENT_SECRET: CLIENT_SECRET,
      EXTRA_CA_FILE: path.join(work, 'ca.pem'),
      ...(await azureCacheEnv(cosmos, vault, 'functions-package')),
      DOWNSTREAM_URL: downstream.url,
      DOWNSTREAM_SCOPES: `${DOWNSTREAM_AUDIENCE}/.default`,
      API_REQUIRED_SCOPES: 'access_as_user',
      LOG_LEVEL: 'warn',
    };
  }, 120_000);

  afterAll(async () => {
    await services?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** One Function App instance: a new worker process that loads the app and runs `calls`. */
  async function instance(calls: unknown[]): Promise<HostRun> {
    const { stdout } = await execFileAsync(
      process.execPath,
      [path.join(work, 'worker', 'host.cjs'), appDir, JSON.stringify(calls)],
      { cwd: path.join(work, 'worker'), env, timeout: 60_000 },
    );
    return JSON.parse(stdout) as HostRun;
  }

  const httpCall = (route: string, headers: Record<string, string> = {}) => ({
    function: route === '/healthz' ? 'healthz' : 'web-api',
    data: {
      http: { method: 'GET', url: `https://app.azurewebsites.net${route}`, headers, query: {}, params: {} },
    },
  });
  const timerCall = () => ({
    function: 'daemon',
    data: { json: JSON.stringify({ isPastDue: false, schedule: { adjustForDST: false } }) },
  });

  it('is a folder and a zip of host.json, a package.json whose main is the one bundle', () => {
    expect(fs.readdirSync(built.dir).sort()).toEqual(['host.json', 'index.js', 'package.json']);
    const pkg = JSON.parse(fs.readFileSync(path.join(built.dir, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe('index.js');
    const host = JSON.parse(fs.readFileSync(path.join(built.dir, 'host.json'), 'utf8')) as {
      extensions: { http: { routePrefix: string } };
    };
    expect(host.extensions.http.routePrefix).toBe('');
    const zip = fs.readFileSync(built.zip);
    expect(zip.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
    for (const name of ['host.json', 'index.js', 'package.json'])
      expect(zip.includes(Buffer.from(name))).toBe(true);
    // The Azure SDKs inside, no AWS SDK.
    const code = fs.readFileSync(path.join(built.dir, 'index.js'), 'utf8');
    expect({ aws: code.includes('DynamoDB_20120810') || code.includes('@aws-sdk/') }).toEqual({ aws: false });
  });

  it('registers the web API, health and daemon functions with the host, and serves a caller from two instances', async () => {
    const { authority } = services!;
    const token = await authority.mintUserToken({ audience: CLIENT_ID });
    registerSecret('assertion', token);
    authority.counters.reset();

    const first = await instance([
      httpCall('/healthz'),
      httpCall('/api/downstream', { authorization: `Bearer ${token}` }),
    ]);
    const second = await instance([
      httpCall('/api/downstream', { authorization: `Bearer ${token}` }),
      httpCall('/api/downstream'),
    ]);

    expect(first.registered).toEqual(['daemon', 'healthz', 'web-api']);
    expect(first.programmingModel).toBe('@azure/functions');
    const [health, served] = first.results;
    expect(health.status).toBe(200);
    expect(served.status).toBe(200);
    expect(JSON.parse(served.body!)).toMatchObject({ fromCache: false });
    const [again, anonymous] = second.results;
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body!)).toMatchObject({ fromCache: true });
    expect(anonymous.status).toBe(401);
    expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
  }, 120_000);

  it("runs the daemon on the host's timer trigger", async () => {
    const run = await instance([timerCall()]);

    expect(run.results).toEqual([
      { value: expect.objectContaining({ ok: true, downstreamStatus: 200 }) as unknown },
    ]);
  }, 60_000);
});
