import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { App } from 'aws-cdk-lib';
import { createApp, type TokenCacheStack } from '../../infra';
import { DEFAULT_USER, GrantType, startLocalAuthority, type LocalAuthority } from '../../local/authority';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamodb';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets-manager';
import { startLocalSts, type LocalSts } from '../../local/sts';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { get } from '../support/bad-http-input';
import { awsChildEnv } from '../support/cloud-services';
import { ensureLambdaBundles } from '../support/lambda-bundles';
import { apiGatewayEvent, scheduledEvent } from '../support/lambda-events';

/*
 * The code `cdk synth` deploys is the code that runs: this file builds the bundles the
 * package ships (infra/build/bundle.ts), synthesizes the app, then runs each asset in its
 * own plain Node process (as a Lambda container would, nothing from this repository on
 * its module path; on the Node that runs the suite, 24 in CI) with the environment the
 * template gives the function, pointed at the local stack.
 */

const execFileAsync = promisify(execFile);
const CLIENT_ID = '3c2e7f0a-5d1b-4e8f-9a6c-7b0d1e2f3a4b';
const CLIENT_SECRET = 'bundle-test-client-secret';
const DOWNSTREAM = 'api://downstream';
/** An app with no secret: its credential is the function role's STS web identity token. */
const FEDERATED_CLIENT_ID = '7d1c9e2b-3a4f-4b5c-8d6e-0f1a2b3c4d5e';

interface Bundle {
  dir: string;
  environment: Record<string, unknown>;
}
interface Invocation {
  results: unknown[];
  output: string;
}

/** A downstream API that answers with the token claims it was called with. */
async function startDownstream(): Promise<{ url: string; calls: string[]; stop(): Promise<void> }> {
  const calls: string[] = [];
  const server = http.createServer((req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const payload = token?.split('.')[1];
    const claims = payload
      ? (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>)
      : {};
    calls.push(String(claims.aud));
    res.writeHead(claims.aud === DOWNSTREAM ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ aud: claims.aud, oid: claims.oid ?? null, roles: claims.roles ?? null }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}/data`,
    calls,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An API Gateway HTTP API (payload 2.0) event for `GET /api/downstream`. */
function httpEvent(authorization?: string): APIGatewayProxyEventV2 {
  return apiGatewayEvent(get(authorization ? { authorization } : {}));
}

/** `base` with `overrides` applied; an undefined value removes the variable. */
function withOverrides(
  base: Record<string, string>,
  overrides: Record<string, string | undefined>,
): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

describe('Lambda bundles from cdk synth', () => {
  let authority: LocalAuthority;
  let dynamo: LocalDynamo;
  let kms: LocalKms;
  let secrets: LocalSecretsManager;
  let sts: LocalSts;
  let downstream: Awaited<ReturnType<typeof startDownstream>>;
  let work: string;
  let stack: TokenCacheStack;
  let bundles: { webApi: Bundle; daemon: Bundle };
  let env: (bundle: Bundle) => Record<string, string>;

  beforeAll(async () => {
    await ensureLambdaBundles();
    authority = await startLocalAuthority({
      clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
    });
    dynamo = await startLocalDynamo();
    kms = await startLocalKms();
    secrets = await startLocalSecretsManager();
    sts = await startLocalSts();
    authority.registerClient({
      clientId: FEDERATED_CLIENT_ID,
      federatedCredentials: [{ name: 'lambda-role', issuer: sts.issuer, subject: sts.subject }],
    });
    downstream = await startDownstream();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-bundles-'));

    // The app as deployed, configured for the local authority through the same context keys.
    let app: App;
    ({ app, stack } = createApp({
      outdir: path.join(work, 'cdk.out'),
      context: {
        tenantId: authority.tenantId,
        clientId: CLIENT_ID,
        authorityHost: authority.url,
        downstreamUrl: downstream.url,
        daemonDownstreamUrl: downstream.url,
        downstreamScopes: `${DOWNSTREAM}/Data.Read`,
        apiRequiredScopes: 'access_as_user',
      },
    }));
    const assembly = app.synth();
    const artifact = assembly.getStackArtifact(stack.artifactId);
    const template = artifact.template as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const assets = JSON.parse(
      fs.readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
    ) as {
      files: Record<string, { source: { path: string } }>;
    };
    const bundleOf = (fn: typeof stack.webApi): Bundle => {
      const props = template.Resources[stack.getLogicalId(fn.node.defaultChild as never)].Properties as {
        Code: { S3Key: string };
        Environment: { Variables: Record<string, unknown> };
      };
      const hash = props.Code.S3Key.replace(/\.zip$/, '');
      return {
        dir: path.join(assembly.directory, assets.files[hash].source.path),
        environment: props.Environment.Variables,
      };
    };
    bundles = { webApi: bundleOf(stack.webApi), daemon: bundleOf(stack.daemon) };

    const caFile = path.join(work, 'authority-ca.pem');
    fs.writeFileSync(caFile, authority.ca);
    const { arn: keyArn } = await kms.createKey({ description: 'bundle test' });
    const secretArn = await secrets.createSecret('bundle-test/client-secret', CLIENT_SECRET);
    // Deploy-time values of the template's references, and the local endpoints.
    const refs = new Map<string, string>([
      [
        JSON.stringify({ Ref: stack.getLogicalId(stack.tokenCache.table.node.defaultChild as never) }),
        dynamo.tableName,
      ],
      [
        JSON.stringify({
          'Fn::GetAtt': [stack.getLogicalId(stack.tokenCache.key.node.defaultChild as never), 'Arn'],
        }),
        keyArn,
      ],
      [
        JSON.stringify({ Ref: stack.getLogicalId(stack.clientSecret!.node.defaultChild as never) }),
        secretArn,
      ],
    ]);
    env = (bundle) => ({
      ...awsChildEnv({ dynamo, kms, secrets }),
      MSAL_KNOWN_AUTHORITIES: authority.host,
      EXTRA_CA_FILE: caFile,
      ...Object.fromEntries(
        Object.entries(bundle.environment).map(([k, v]) => {
          const value = typeof v === 'string' ? v : refs.get(JSON.stringify(v));
          if (value === undefined) throw new Error(`no local value for ${k}: ${JSON.stringify(v)}`);
          return [k, value];
        }),
      ),
    });
  }, 240_000);

  afterAll(async () => {
    await Promise.all([
      authority?.stop(),
      dynamo?.stop(),
      kms?.stop(),
      secrets?.stop(),
      sts?.stop(),
      downstream?.stop(),
    ]);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Runs `events` through the bundle's `handler` in one new Node process: one cold container. */
  async function invoke(
    bundle: Bundle,
    events: unknown[],
    overrides: Record<string, string | undefined> = {},
  ): Promise<Invocation> {
    const resultFile = path.join(work, `result-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
    const runner = [
      'const { handler } = require(process.argv[1]);',
      '(async () => {',
      '  const results = [];',
      '  for (const [i, event] of JSON.parse(process.argv[2]).entries()) results.push(await handler(event, { awsRequestId: `invocation-${i}` }));',
      "  require('node:fs').writeFileSync(process.argv[3], JSON.stringify(results));",
      '})().catch((error) => { console.error(error); process.exit(1); });',
    ].join('\n');
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ['-e', runner, path.join(bundle.dir, 'index.js'), JSON.stringify(events), resultFile],
      { cwd: bundle.dir, env: withOverrides(env(bundle), overrides), timeout: 60_000 },
    );
    return { results: JSON.parse(fs.readFileSync(resultFile, 'utf8')) as unknown[], output: stdout + stderr };
  }

  describe('the artifacts', () => {
    it.each(['webApi', 'daemon'] as const)(
      '%s is one minified file without a source map, the AWS SDK inside, no Azure SDK',
      (name) => {
        const code = fs.readFileSync(path.join(bundles[name].dir, 'index.js'), 'utf8');
        expect(fs.readdirSync(bundles[name].dir).sort()).toEqual(['index.js']);
        // Minified: long lines (only template literals keep their newlines).
        expect(Math.round(code.length / code.split('\n').length)).toBeGreaterThan(1000);
        // Booleans, not the code: a failure must not print a 1 MB bundle.
        expect(/sourceMappingURL=/.test(code)).toBe(false);
        expect(/require\(["']@aws-sdk\/client-/.test(code)).toBe(false);
        for (const wireName of ['DynamoDB_20120810', 'TrentService', 'secretsmanager']) {
          expect({ wireName, bundled: code.includes(wireName) }).toEqual({ wireName, bundled: true });
        }
        // Slimmed (infra/build/bundle.ts): under the web API's 700 KiB goal, without semver,
        // the event-stream codec or the HTTP/2 handler (loading node:http2 pulls in assert and
        // http2's internals at import), and with only the commands the code sends.
        expect(code.length / 1024).toBeLessThanOrEqual(700);
        for (const absent of [
          'satisfies(process.version',
          'EventStreamCodec',
          'BatchExecuteStatement',
          'DescribeContributorInsights',
          'ReplicateKey',
          'node:http2',
        ]) {
          expect({ absent, present: code.includes(absent) }).toEqual({ absent, present: false });
        }
        // Nothing of the Azure SDKs, bundled or required: the AWS room never imports them.
        for (const azure of [
          '@azure/cosmos',
          '@azure/identity',
          '@azure/keyvault-keys',
          'documents.azure.com',
        ]) {
          expect({ azure, present: code.includes(azure) }).toEqual({ azure, present: false });
        }
      },
    );
  });

  describe('the web API bundle', () => {
    it('serves the caller on behalf of them, and a second container reuses the cached token', async () => {
      const token = await authority.mintUserToken({ audience: CLIENT_ID, scopes: ['access_as_user'] });
      authority.counters.reset();

      const first = await invoke(bundles.webApi, [httpEvent(`Bearer ${token}`), httpEvent()]);
      const [ok, unauthorized] = first.results as {
        statusCode: number;
        body: string;
        headers: Record<string, string>;
      }[];
      expect(ok.statusCode).toBe(200);
      expect(JSON.parse(ok.body)).toMatchObject({
        data: { aud: DOWNSTREAM, oid: DEFAULT_USER.oid },
        fromCache: false,
      });
      expect(unauthorized.statusCode).toBe(401);
      expect(Object.keys(unauthorized.headers).map((h) => h.toLowerCase())).toContain('www-authenticate');
      expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(1);

      const second = await invoke(bundles.webApi, [httpEvent(`Bearer ${token}`)]);
      const [again] = second.results as { statusCode: number; body: string }[];
      expect(again.statusCode).toBe(200);
      expect(JSON.parse(again.body)).toMatchObject({ data: { aud: DOWNSTREAM }, fromCache: true });
      // The second container found the token in DynamoDB, sealed under the KMS key.
      expect(authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
      expect(kms.counters.calls('GenerateDataKey')).toBeGreaterThanOrEqual(1);
      expect(kms.counters.calls('Decrypt')).toBeGreaterThanOrEqual(1);
      expect(secrets.counters.calls('GetSecretValue')).toBe(2); // once per cold start

      for (const output of [first.output, second.output]) {
        expect(output).not.toContain(token);
        expect(output).not.toContain(token.split('.')[2]);
        expect(output).not.toContain(CLIENT_SECRET);
      }
    }, 120_000);
  });

  describe('the daemon bundle', () => {
    it('gets an app token and calls downstream on a scheduled event; the next container reuses it', async () => {
      authority.counters.reset();
      const before = downstream.calls.length;
      const first = await invoke(bundles.daemon, [scheduledEvent()]);
      expect(first.results).toEqual([
        expect.objectContaining({ ok: true, tokenFromCache: false, downstreamStatus: 200 }),
      ]);
      expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);

      const second = await invoke(bundles.daemon, [scheduledEvent()]);
      expect(second.results).toEqual([expect.objectContaining({ ok: true, tokenFromCache: true })]);
      expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);
      expect(downstream.calls.slice(before)).toEqual([DOWNSTREAM, DOWNSTREAM]);
      for (const output of [first.output, second.output]) expect(output).not.toContain(CLIENT_SECRET);
    }, 120_000);

    it('with a federated credential (no secret), gets its assertion from STS through the bundled client', async () => {
      authority.counters.reset();
      const before = sts.calls();
      const federated = {
        MSAL_CLIENT_ID: FEDERATED_CLIENT_ID,
        MSAL_CLIENT_SECRET_ARN: undefined,
        MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
        AWS_ENDPOINT_URL_STS: sts.endpoint,
      };
      const first = await invoke(bundles.daemon, [scheduledEvent()], federated);
      expect(first.results).toEqual([
        expect.objectContaining({ ok: true, tokenFromCache: false, downstreamStatus: 200 }),
      ]);
      expect(authority.counters.token(GrantType.ClientCredentials)).toBe(1);
      expect(sts.calls()).toBe(before + 1);
    }, 120_000);
  });
});
