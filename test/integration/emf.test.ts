/**
 * CloudWatch EMF on Lambda (issue 15, items 2 and 3): the sink's lines are in the shape
 * Powertools Metrics writes, honour POWERTOOLS_METRICS_NAMESPACE / POWERTOOLS_SERVICE_NAME,
 * carry only bounded dimensions, and are written before a handler returns; a Lambda-like
 * child process (AWS_LAMBDA_FUNCTION_NAME set, createTokenCacheFromEnv with no metrics
 * option) writes them to stdout from its first invocation on, with values matching each
 * result's metadata, and no secret.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Metrics as PowertoolsMetrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { EmfMetrics, emfEnabled, flushMetrics } from '../../shared/aws/emf';
import type { CacheMetadata } from '../../shared/cache/metadata';
import { ConfigurationError } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { createDaemonHandler } from '../../functions/aws/daemon';
import { createWebApiHandler } from '../../functions/aws/web-api';
import type { DaemonDeps, WebApiDeps } from '../../functions/core/deps';
import { registerSecret, secretRegistry } from '../support/secret-registry';

interface EmfLine {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: Array<{
      Namespace: string;
      Dimensions: string[][];
      Metrics: Array<{ Name: string; Unit: string }>;
    }>;
  };
  [key: string]: unknown;
}

/** The dimension names the library may write: bounded, never a user, tenant-of-user or key. */
// `outcome`: the store lease's (holder, served, takeover, timeout, unavailable), a closed set.
const ALLOWED_DIMENSIONS = new Set(['service', 'kind', 'reason', 'source', 'operation', 'outcome']);
const METRIC_NAMES = new Set<string>(Object.values(Metric));

function capture(): { lines: string[]; write: (line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (line) => lines.push(line) };
}

describe('EmfMetrics', () => {
  it('writes the shape Powertools Metrics writes, with the namespace and service from the environment', () => {
    const env = { POWERTOOLS_METRICS_NAMESPACE: 'orders', POWERTOOLS_SERVICE_NAME: 'orders-api' };
    const ours = capture();
    const sink = new EmfMetrics({ env, write: ours.write, now: () => 1_700_000_000_000 });
    sink.increment(Metric.StoreRead, 1, { kind: 'obo' });
    sink.increment(Metric.StoreRead, 2, { kind: 'obo' });
    sink.flush();

    const theirs = powertoolsLine(env, (m) => {
      m.addDimension('kind', 'obo');
      m.addMetric(Metric.StoreRead, MetricUnit.Count, 3);
    });
    const line = JSON.parse(ours.lines[0]) as EmfLine;
    expect(ours.lines).toHaveLength(1);
    // Same keys, same directive, same values; ours adds the [service] roll-up dimension set.
    expect(Object.keys(line).sort()).toEqual(Object.keys(theirs).sort());
    expect(line._aws.CloudWatchMetrics[0].Namespace).toBe(theirs._aws.CloudWatchMetrics[0].Namespace);
    expect(line._aws.CloudWatchMetrics[0].Metrics).toEqual(theirs._aws.CloudWatchMetrics[0].Metrics);
    expect(line._aws.CloudWatchMetrics[0].Dimensions).toEqual([
      ...theirs._aws.CloudWatchMetrics[0].Dimensions,
      ['service'],
    ]);
    expect(line).toMatchObject({ service: 'orders-api', kind: 'obo', 'store.read': 3 });
    expect(line._aws.Timestamp).toBe(1_700_000_000_000);
  });

  it('defaults the namespace to msal-cloud-cache and the service to Powertools’ service_undefined', () => {
    const out = capture();
    const sink = new EmfMetrics({ env: {}, write: out.write });
    sink.increment(Metric.KeyGenerate);
    sink.flush();
    const line = JSON.parse(out.lines[0]) as EmfLine;
    expect(line._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'msal-cloud-cache',
      Dimensions: [['service']],
    });
    expect(line.service).toBe('service_undefined');
  });

  it('writes one line per set of tags, durations as Milliseconds, and nothing when empty', () => {
    const out = capture();
    const sink = new EmfMetrics({ env: {}, write: out.write });
    sink.flush();
    expect(out.lines).toHaveLength(0);
    sink.increment(Metric.CacheHit, 1, { kind: 'app' });
    sink.increment(Metric.CacheMiss, 1, { kind: 'obo' });
    sink.observe(Metric.AcquireDuration, 12.5, { kind: 'app' });
    sink.observe(Metric.AcquireDuration, 7.25, { kind: 'app' });
    sink.flush();
    const lines = out.lines.map((l) => JSON.parse(l) as EmfLine);
    expect(lines).toHaveLength(2);
    const app = lines.find((l) => l.kind === 'app')!;
    expect(app._aws.CloudWatchMetrics[0].Metrics).toEqual([
      { Name: 'cache.hit', Unit: 'Count' },
      { Name: 'cache.acquire.duration', Unit: 'Milliseconds' },
    ]);
    expect(app['cache.acquire.duration']).toEqual([12.5, 7.25]);
    sink.flush();
    expect(out.lines).toHaveLength(2);
  });

  it('flushMetrics() writes every sink holding records', () => {
    const a = capture();
    const b = capture();
    new EmfMetrics({ env: {}, write: a.write }).increment(Metric.StoreWrite, 1, { kind: 'app' });
    new EmfMetrics({ env: {}, write: b.write }).increment(Metric.StoreWrite, 1, { kind: 'user' });
    flushMetrics();
    expect([a.lines.length, b.lines.length]).toEqual([1, 1]);
  });
});

describe('emfEnabled', () => {
  it.each([
    [{ AWS_LAMBDA_FUNCTION_NAME: 'fn' }, true],
    [{}, false],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'fn', POWERTOOLS_METRICS_DISABLED: 'true' }, false],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'fn', TOKEN_CACHE_METRICS: 'off' }, false],
    [{ TOKEN_CACHE_METRICS: 'emf' }, true],
    [{ AWS_LAMBDA_FUNCTION_NAME: 'fn', TOKEN_CACHE_METRICS: 'auto' }, true],
  ])('%j -> %s', (env, expected) => {
    expect(emfEnabled(env)).toBe(expected);
  });

  it('names TOKEN_CACHE_METRICS when it is not auto, emf or off', () => {
    expect(() => emfEnabled({ TOKEN_CACHE_METRICS: 'statsd' })).toThrow(ConfigurationError);
    expect(() => emfEnabled({ TOKEN_CACHE_METRICS: 'statsd' })).toThrow(
      /TOKEN_CACHE_METRICS.*auto, emf or off/,
    );
  });
});

describe('the Lambda handlers flush EMF before they return', () => {
  const result = { accessToken: 'not-a-real-token-emf-handler', fromCache: true } as never;
  const downstream = { call: async () => ({ status: 200, body: {}, durationMs: 1 }) };
  const logger = { debug() {}, info() {}, warn() {}, error() {} };

  it('the daemon', async () => {
    const out = capture();
    const sink = new EmfMetrics({ env: {}, write: out.write });
    const deps: DaemonDeps = {
      cache: {
        acquireTokenForApp: async () => {
          sink.increment(Metric.CacheHit, 1, { kind: 'app' });
          return result;
        },
      },
      downstream: downstream as never,
      appScope: 'api://downstream/.default',
      logger,
    };
    await createDaemonHandler(deps)({} as never);
    expect(out.lines.map((l) => (JSON.parse(l) as EmfLine)['cache.hit'])).toEqual([1]);
  });

  it('the web API, even when the request fails', async () => {
    const out = capture();
    const sink = new EmfMetrics({ env: {}, write: out.write });
    const deps: WebApiDeps = {
      cache: { acquireTokenOnBehalfOf: async () => result },
      validator: {
        validate: async () => {
          sink.increment(Metric.StoreError, 1, { kind: 'obo', operation: 'read' });
          throw new Error('validator down');
        },
      },
      downstream: downstream as never,
      scopes: ['api://downstream/.default'],
      logger,
    };
    const response = await createWebApiHandler(deps)({
      rawPath: '/api/downstream',
      headers: { authorization: 'Bearer x' },
      requestContext: { http: { method: 'GET' } },
    } as never);
    expect(response.statusCode).toBe(500);
    expect(out.lines.map((l) => (JSON.parse(l) as EmfLine)['store.error'])).toEqual([1]);
  });
});

describe('a Lambda-like process (AWS_LAMBDA_FUNCTION_NAME set, createTokenCacheFromEnv defaults)', () => {
  let invocations: EmfLine[][];
  let metadata: CacheMetadata[];
  let stdout: string;
  let tokenLine: string;

  beforeAll(async () => {
    const child = await run(join(__dirname, 'fixtures', 'emf-lambda.ts'), {
      AWS_LAMBDA_FUNCTION_NAME: 'token-cache-web-api',
      POWERTOOLS_METRICS_NAMESPACE: 'msal-cloud-cache-test',
      POWERTOOLS_SERVICE_NAME: 'web-api',
    });
    expect(child.code).toBe(0);
    stdout = child.stdout;
    for (const line of child.stderr.split('\n')) {
      if (line.startsWith('TOKEN ')) {
        registerSecret('access-token', line.slice(6));
        tokenLine = line;
      }
    }
    registerSecret('client-secret', 'emf-fixture-client-secret');
    metadata = child.stderr
      .split('\n')
      .filter((l) => l.startsWith('META '))
      .map((l) => JSON.parse(l.slice(5)) as CacheMetadata);
    invocations = [];
    let current: EmfLine[] = [];
    for (const line of stdout.split('\n').filter(Boolean)) {
      if (/^END \d+$/.test(line)) {
        invocations.push(current);
        current = [];
      } else current.push(JSON.parse(line) as EmfLine);
    }
  }, 60_000);

  /** Sum of a metric over an invocation's lines, optionally with these dimension values. */
  function total(lines: EmfLine[], name: string, dims: Record<string, string> = {}): number {
    return lines
      .filter((l) => Object.entries(dims).every(([k, v]) => l[k] === v))
      .reduce((n, l) => n + (typeof l[name] === 'number' ? l[name] : 0), 0);
  }

  it('writes nothing but EMF lines (and the fixture’s markers) to stdout, for each invocation', () => {
    expect(invocations).toHaveLength(2);
    expect(metadata.map((m) => m.tokenSource)).toEqual(['authority', 'l1']);
    expect(invocations[0].length).toBeGreaterThan(0);
    expect(invocations[1].length).toBeGreaterThan(0);
  });

  it('uses the configured namespace and service, known metric names and bounded dimensions only', () => {
    for (const line of invocations.flat()) {
      const directive = line._aws.CloudWatchMetrics[0];
      expect(directive.Namespace).toBe('msal-cloud-cache-test');
      expect(line.service).toBe('web-api');
      for (const set of directive.Dimensions) {
        expect(set[0]).toBe('service');
        for (const d of set) expect(ALLOWED_DIMENSIONS.has(d)).toBe(true);
      }
      for (const m of directive.Metrics) expect(METRIC_NAMES.has(m.Name)).toBe(true);
      // The dimension values are from closed sets.
      if (line.kind !== undefined) expect(['app', 'obo', 'user']).toContain(line.kind);
      if (line.source !== undefined) expect(['l1', 'store', 'authority']).toContain(line.source);
      if (line.outcome !== undefined) {
        expect(['holder', 'served', 'takeover', 'timeout', 'unavailable']).toContain(line.outcome);
      }
    }
  });

  it('loses nothing on the cold start: the first invocation carries the init and the miss', () => {
    const [first, second] = invocations;
    const [miss, hit] = metadata;
    expect(total(first, Metric.MetadataFetch)).toBeGreaterThanOrEqual(1);
    expect(total(first, Metric.CacheMiss, { kind: 'app' })).toBe(1);
    expect(total(first, Metric.TokenRequest)).toBe(miss.tokenRequests);
    expect(total(first, Metric.StoreRead)).toBe(miss.storeReads);
    expect(total(first, Metric.StoreWrite)).toBe(miss.storeWrites);
    expect(total(first, Metric.KeyGenerate)).toBe(miss.keyServiceCalls);
    expect(total(first, Metric.TokenSource, { source: 'authority', reason: 'absent' })).toBe(1);
    expect(total(second, Metric.CacheHit, { kind: 'app' })).toBe(1);
    expect(total(second, Metric.L1Hit)).toBe(1);
    expect(total(second, Metric.TokenRequest)).toBe(hit.tokenRequests);
    expect(total(second, Metric.StoreRead)).toBe(0);
    expect(total(second, Metric.TokenSource, { source: 'l1' })).toBe(1);
    const durations = first.find((l) => l[Metric.AcquireDuration] !== undefined)!;
    expect(durations[Metric.AcquireDuration]).toBeCloseTo(miss.timings.totalMs, 1);
  });

  it('writes no secret', () => {
    expect(secretRegistry().scan(stdout, () => 'child stdout')).toEqual([]);
    // The scan would see the child's tokens: they are registered.
    expect(secretRegistry().scan(`${stdout}\n${tokenLine}`, () => 'probe').length).toBeGreaterThan(0);
    expect(stdout).not.toContain('emf-fixture-client-secret');
  });
});

/** What Powertools Metrics writes for one metric (its own Console on process.stdout). */
function powertoolsLine(env: Record<string, string>, record: (m: PowertoolsMetrics) => void): EmfLine {
  const written: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = (chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  };
  try {
    const metrics = new PowertoolsMetrics({
      namespace: env.POWERTOOLS_METRICS_NAMESPACE,
      serviceName: env.POWERTOOLS_SERVICE_NAME,
    });
    record(metrics);
    metrics.publishStoredMetrics();
  } finally {
    process.stdout.write = original;
  }
  const json = written
    .join('')
    .split('\n')
    .find((l) => l.startsWith('{'));
  return JSON.parse(json!) as EmfLine;
}

function run(
  script: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: join(__dirname, '..', '..'),
      env: { PATH: process.env.PATH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
