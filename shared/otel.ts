/**
 * OpenTelemetry sinks: the cache's counters and durations as OTel instruments and one span
 * per acquisition, through `@opentelemetry/api` alone (an optional peer, loaded when
 * {@link openTelemetry} is first called, never by importing the core). Any OTel backend
 * works; on Azure, `@azure/monitor-opentelemetry` sends them to Application Insights
 * (`customMetrics`, `dependencies`).
 */
import type { Attributes, Counter, Histogram, MeterProvider, TracerProvider } from '@opentelemetry/api';
import type { CacheMetadata } from './cache/metadata';
import { Metric, type MetricName, type Metrics } from './observability';
import { peerError } from './peers';

/** Instrumentation scope (meter and tracer name). */
export const OTEL_SCOPE = 'msal-cloud-cache';
/** Prefix of every instrument name: `msal_cloud_cache.store.read`, ... */
export const OTEL_METRIC_PREFIX = 'msal_cloud_cache.';
/** Name of the span recorded per acquisition. */
export const OTEL_SPAN_NAME = 'msal-cloud-cache acquire';

type OtelApi = typeof import('@opentelemetry/api');

function api(): OtelApi {
  try {
    // Loaded on first use, inside its own try, so a bundle without OpenTelemetry still builds.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('@opentelemetry/api') as OtelApi;
  } catch (e) {
    throw peerError('msal-cloud-cache', 'OpenTelemetry metrics and spans', '@opentelemetry/api', e);
  }
}

/** Options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** @default the globally registered meter provider */
  readonly meterProvider?: MeterProvider;
  /** @default the globally registered tracer provider */
  readonly tracerProvider?: TracerProvider;
  /** Record one span per acquisition. @default true */
  readonly spans?: boolean;
}

/** What {@link openTelemetry} returns: pass both to `createTokenCache` (or a composition). */
export interface OpenTelemetrySinks {
  readonly metrics: Metrics;
  readonly onResult: (metadata: CacheMetadata) => void;
}

/**
 * Metrics and spans through the OpenTelemetry API.
 * @throws ConfigurationError naming `@opentelemetry/api` when it is not installed
 * @example
 * const otel = openTelemetry();
 * const cache = createTokenCache({ ...options, metrics: otel.metrics, onResult: otel.onResult });
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): OpenTelemetrySinks {
  const otel = api();
  const meter = (options.meterProvider ?? otel.metrics.getMeterProvider()).getMeter(OTEL_SCOPE);
  const counters = new Map<string, Counter>();
  const histograms = new Map<string, Histogram>();
  const metrics: Metrics = {
    increment(name: MetricName, value = 1, tags?: Record<string, string>) {
      let counter = counters.get(name);
      if (!counter) {
        counter = meter.createCounter(OTEL_METRIC_PREFIX + name, { unit: '{event}' });
        counters.set(name, counter);
      }
      counter.add(value, tags);
    },
    observe(name: MetricName, value: number, tags?: Record<string, string>) {
      let histogram = histograms.get(name);
      if (!histogram) {
        histogram = meter.createHistogram(OTEL_METRIC_PREFIX + name, { unit: 'ms' });
        histograms.set(name, histogram);
      }
      histogram.record(value, tags);
    },
  };
  const tracer = (options.tracerProvider ?? otel.trace.getTracerProvider()).getTracer(OTEL_SCOPE);
  const spans = options.spans ?? true;
  const onResult = (m: CacheMetadata): void => {
    if (!spans) return;
    const end = Date.now();
    // Recorded when the acquisition ends, as a child of the caller's active span.
    const span = tracer.startSpan(OTEL_SPAN_NAME, {
      kind: otel.SpanKind.INTERNAL,
      startTime: end - m.timings.totalMs,
      attributes: spanAttributes(m),
    });
    if (m.write === 'failed')
      span.setStatus({
        code: otel.SpanStatusCode.ERROR,
        message: `write failed: ${m.writeFailReason ?? ''}`,
      });
    span.end(end);
  };
  return { metrics, onResult };
}

/** Span attributes of an acquisition: kinds, reasons, counts and durations only. */
export function spanAttributes(m: CacheMetadata): Attributes {
  const a: Attributes = {
    'msal_cloud_cache.partition': m.partition,
    'msal_cloud_cache.token_source': m.tokenSource,
    'msal_cloud_cache.loaded_from': m.loadedFrom,
    'msal_cloud_cache.write': m.write,
    'msal_cloud_cache.conflicts': m.conflicts,
    'msal_cloud_cache.store_reads': m.storeReads,
    'msal_cloud_cache.store_writes': m.storeWrites,
    'msal_cloud_cache.key_service_calls': m.keyServiceCalls,
    'msal_cloud_cache.token_requests': m.tokenRequests,
  };
  if (m.storeUnusedReason) a['msal_cloud_cache.reason'] = m.storeUnusedReason;
  if (m.rejectReason) a['msal_cloud_cache.reject_reason'] = m.rejectReason;
  if (m.writeFailReason) a['msal_cloud_cache.write_fail_reason'] = m.writeFailReason;
  for (const [k, v] of Object.entries(m.timings)) {
    if (typeof v === 'number')
      a[`msal_cloud_cache.${k.replace(/Ms$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_ms`] = v;
  }
  return a;
}

/**
 * Whether an OpenTelemetry meter provider is registered globally (e.g. by
 * `useAzureMonitor()` or the OTel Node SDK). False when `@opentelemetry/api` is absent.
 */
export function otelMeterProviderRegistered(): boolean {
  let otel: OtelApi;
  try {
    otel = api();
  } catch {
    return false;
  }
  // The no-op provider hands out the one no-op meter.
  return otel.metrics.getMeterProvider().getMeter(OTEL_SCOPE) !== otel.createNoopMeter();
}

/** The metric names the OTel sink creates, for documentation and tests. */
export const otelInstrumentNames: readonly string[] = Object.values(Metric).map(
  (n) => OTEL_METRIC_PREFIX + n,
);
