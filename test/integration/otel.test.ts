/**
 * OpenTelemetry (issue 15, items 2 and 3) with the real msal-node and the local authority:
 * counters and durations reach an in-memory metric exporter under stable names with
 * bounded attributes, one span per acquisition reaches an in-memory span exporter, the
 * Azure composition uses OTel when a meter provider is registered, and no secret appears
 * in any of it. Also: a Powertools Logger accepted as the cache's logger.
 */
import { randomBytes } from 'node:crypto';
import { metrics as otelMetrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import { powertoolsLogger } from '../../shared/aws/powertools';
import { createTokenCacheFromConfig } from '../../shared/azure/from-env';
import { loadCacheConfig } from '../../shared/config';
import { Metric } from '../../shared/observability';
import {
  OTEL_METRIC_PREFIX,
  OTEL_SPAN_NAME,
  openTelemetry,
  otelInstrumentNames,
  otelMeterProviderRegistered,
} from '../../shared/otel';
import { API_CLIENT_ID, API_CLIENT_SECRET, startCacheWorld } from '../support/cache-harness';
import { useWorld } from '../support/use-world';

// `outcome`: the store lease's, a closed set (holder, served, takeover, timeout, unavailable).
const ALLOWED_ATTRIBUTES = new Set(['kind', 'reason', 'source', 'operation', 'outcome']);

function otelWorld() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  return {
    meterProvider,
    tracerProvider,
    spans,
    async collect(): Promise<Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>> {
      await reader.forceFlush();
      const out = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>();
      const all: ResourceMetrics[] = exporter.getMetrics();
      const latest = all[all.length - 1];
      for (const scope of latest?.scopeMetrics ?? []) {
        for (const metric of scope.metrics) {
          out.set(
            metric.descriptor.name,
            metric.dataPoints.map((p) => ({
              attributes: p.attributes,
              value: p.value,
            })),
          );
        }
      }
      return out;
    },
    async stop() {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    },
  };
}

describe('OpenTelemetry sinks', () => {
  const world = useWorld(startCacheWorld);

  it('counts, times and traces each acquisition under stable names with bounded attributes', async () => {
    const otel = otelWorld();
    const sinks = openTelemetry({ meterProvider: otel.meterProvider, tracerProvider: otel.tracerProvider });
    const { cache, logger } = world.instance({ metrics: sinks.metrics, onResult: sinks.onResult });
    const scopes = ['api://otel/.default'];

    const miss = await cache.acquireTokenForApp({ scopes });
    const hit = await cache.acquireTokenForApp({ scopes });
    const collected = await otel.collect();
    const finished = otel.spans.getFinishedSpans();
    // Everything exported goes through a captured logger: the file's secret scan covers it.
    logger.info('exported', {
      metrics: JSON.stringify([...collected]),
      spans: JSON.stringify(finished.map((s) => ({ name: s.name, attributes: s.attributes }))),
    });

    const point = (name: string, attrs: Record<string, string>) =>
      collected
        .get(OTEL_METRIC_PREFIX + name)
        ?.find((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v))?.value;
    expect(point(Metric.CacheMiss, { kind: 'app' })).toBe(1);
    expect(point(Metric.CacheHit, { kind: 'app' })).toBe(1);
    expect(point(Metric.TokenRequest, { kind: 'app' })).toBe(miss.cache.tokenRequests);
    expect(point(Metric.StoreRead, { kind: 'app' })).toBe(miss.cache.storeReads + hit.cache.storeReads);
    expect(point(Metric.TokenSource, { kind: 'app', source: 'authority', reason: 'absent' })).toBe(1);
    expect(point(Metric.TokenSource, { kind: 'app', source: 'store' })).toBe(1);
    const durations = collected.get(OTEL_METRIC_PREFIX + Metric.AcquireDuration)!;
    expect(durations.map((d) => (d.value as { count: number }).count).reduce((a, b) => a + b, 0)).toBe(2);
    for (const [name, points] of collected) {
      expect(otelInstrumentNames).toContain(name);
      for (const p of points)
        for (const k of Object.keys(p.attributes)) expect(ALLOWED_ATTRIBUTES.has(k)).toBe(true);
    }

    expect(finished.map((s) => s.name)).toEqual([OTEL_SPAN_NAME, OTEL_SPAN_NAME]);
    expect(finished[0].attributes).toMatchObject({
      'msal_cloud_cache.partition': 'app',
      'msal_cloud_cache.token_source': 'authority',
      'msal_cloud_cache.reason': 'absent',
      'msal_cloud_cache.token_requests': 1,
      'msal_cloud_cache.write': 'written',
    });
    expect(finished[1].attributes).toMatchObject({ 'msal_cloud_cache.token_source': 'store' });
    expect(finished[0].attributes['msal_cloud_cache.token_call_ms']).toBeGreaterThan(0);
    const text = JSON.stringify(finished.map((s) => s.attributes));
    expect(text).not.toContain(miss.accessToken);
    expect(text).not.toContain(cache.storeKeyOf({ kind: 'app', tenantId: world.authority.tenantId }));
    await otel.stop();
  });

  it('knows whether a meter provider is registered globally', async () => {
    expect(otelMeterProviderRegistered()).toBe(false);
    const otel = otelWorld();
    otelMetrics.setGlobalMeterProvider(otel.meterProvider);
    try {
      expect(otelMeterProviderRegistered()).toBe(true);
    } finally {
      otelMetrics.disable();
      await otel.stop();
    }
    expect(otelMeterProviderRegistered()).toBe(false);
  });

  it('the Azure composition sends its metrics to the registered meter provider', async () => {
    const otel = otelWorld();
    otelMetrics.setGlobalMeterProvider(otel.meterProvider);
    try {
      const config = loadCacheConfig({
        MSAL_CLIENT_ID: API_CLIENT_ID,
        MSAL_AUTHORITY: world.authority.authority(),
        MSAL_KNOWN_AUTHORITIES: world.authority.host,
        MSAL_CLIENT_SECRET: API_CLIENT_SECRET,
        TOKEN_CACHE_STORE: 'memory',
        TOKEN_CACHE_KEY_RING: 'local',
        TOKEN_CACHE_LOCAL_MASTER_KEY: randomBytes(32).toString('base64'),
        LOG_LEVEL: 'error',
      });
      const cache = await createTokenCacheFromConfig(config, { ca: [world.authority.ca] });
      await cache.acquireTokenForApp({ scopes: ['api://otel-azure/.default'] });
      const collected = await otel.collect();
      expect(collected.get(OTEL_METRIC_PREFIX + Metric.CacheMiss)?.[0]?.value).toBe(1);
    } finally {
      otelMetrics.disable();
      await otel.stop();
    }
  });
});

describe('powertoolsLogger', () => {
  it('writes the cache’s records through a Powertools Logger, with their fields and without undefined ones', () => {
    const written: string[] = [];
    // Powertools writes warn and error records to stderr, the others to stdout.
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const keep = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    process.stdout.write = keep;
    process.stderr.write = keep;
    try {
      const logger = powertoolsLogger(new PowertoolsLogger({ serviceName: 'orders-api', logLevel: 'DEBUG' }));
      logger.warn('token cache read failed', {
        partition: 'obo',
        code: 'STORE_UNAVAILABLE',
        detail: undefined,
      });
      logger.info('request');
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
    const lines = written
      .join('')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'WARN',
      message: 'token cache read failed',
      service: 'orders-api',
      partition: 'obo',
      code: 'STORE_UNAVAILABLE',
    });
    expect(lines[0]).not.toHaveProperty('detail');
    expect(lines[1]).toMatchObject({ level: 'INFO', message: 'request' });
  });
});
