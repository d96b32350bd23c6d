/**
 * CloudWatch Embedded Metric Format on Lambda: the cache's counters and durations written
 * to stdout as EMF JSON lines, in the shape Powertools Metrics writes (`_aws.Timestamp`,
 * `CloudWatchMetrics[{Namespace, Dimensions, Metrics}]`, then the dimension and metric
 * values at the top level), honouring `POWERTOOLS_METRICS_NAMESPACE` and
 * `POWERTOOLS_SERVICE_NAME`. Lambda's log pipeline turns each line into metrics: no SDK,
 * no network call, no added latency.
 *
 * Written here rather than through a Powertools `Metrics` instance: the cache records
 * many dimension sets per request (kind, reason, source), which Powertools can only emit
 * one `singleMetric()` line at a time, and the library would then pull Powertools into
 * every bundle (see the README for the measured bundle delta).
 */
import type { Environment } from '../config';
import { ConfigurationError } from '../errors';
import type { MetricName, Metrics } from '../observability';

/** Namespace used when neither the option nor `POWERTOOLS_METRICS_NAMESPACE` is set. */
export const DEFAULT_METRICS_NAMESPACE = 'msal-cloud-cache';
/** Service used when neither the option nor `POWERTOOLS_SERVICE_NAME` is set (Powertools' own default). */
export const DEFAULT_SERVICE_NAME = 'service_undefined';
/** EMF allows at most 100 values per metric per line. */
const MAX_VALUES = 100;

/** Options of {@link EmfMetrics}. */
export interface EmfMetricsOptions {
  /** @default env.POWERTOOLS_METRICS_NAMESPACE, else `msal-cloud-cache` */
  readonly namespace?: string;
  /** The `service` dimension on every metric. @default env.POWERTOOLS_SERVICE_NAME, else `service_undefined` */
  readonly serviceName?: string;
  /** @default process.env */
  readonly env?: Environment;
  /** Where each EMF line goes. @default process.stdout (not console.log: Lambda would prefix the line) */
  readonly write?: (line: string) => void;
  /** Clock for `_aws.Timestamp`. @default Date.now */
  readonly now?: () => number;
}

/** Sinks holding records not yet written, for {@link flushMetrics} (removed when flushed). */
const pending = new Set<EmfMetrics>();

interface Group {
  readonly tags: Readonly<Record<string, string>>;
  readonly counts: Map<string, number>;
  readonly values: Map<string, number[]>;
}

/**
 * A {@link Metrics} sink writing CloudWatch EMF. Records are kept in memory and written by
 * {@link EmfMetrics.flush}: call it before the handler returns (the handlers of
 * `msal-cloud-cache/aws/handlers` do; with your own handler call {@link flushMetrics}).
 * Each set of tags becomes one line with two dimension sets, `[service, ...tags]` and
 * `[service]`, so alarms can read the total without listing every kind and reason.
 * @example
 * const metrics = new EmfMetrics({ namespace: 'my-app', serviceName: 'orders-api' });
 * const cache = await createTokenCacheFromEnv({ metrics });
 * export const handler = async (event) => { try { ... } finally { metrics.flush(); } };
 */
export class EmfMetrics implements Metrics {
  readonly namespace: string;
  readonly serviceName: string;
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  private readonly groups = new Map<string, Group>();

  constructor(options: EmfMetricsOptions = {}) {
    const env = options.env ?? process.env;
    this.namespace =
      options.namespace ?? nonEmpty(env.POWERTOOLS_METRICS_NAMESPACE) ?? DEFAULT_METRICS_NAMESPACE;
    this.serviceName = options.serviceName ?? nonEmpty(env.POWERTOOLS_SERVICE_NAME) ?? DEFAULT_SERVICE_NAME;
    this.write = options.write ?? ((line) => void process.stdout.write(`${line}\n`));
    this.now = options.now ?? Date.now;
  }

  increment(name: MetricName, value = 1, tags?: Record<string, string>): void {
    const counts = this.group(tags).counts;
    counts.set(name, (counts.get(name) ?? 0) + value);
  }

  observe(name: MetricName, value: number, tags?: Record<string, string>): void {
    const group = this.group(tags);
    const values = group.values.get(name) ?? [];
    values.push(Math.round(value * 1000) / 1000);
    group.values.set(name, values);
    if (values.length >= MAX_VALUES) this.flush();
  }

  /** Writes every record kept since the last flush (one line per set of tags) and forgets them. */
  flush(): void {
    pending.delete(this);
    if (this.groups.size === 0) return;
    const timestamp = this.now();
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const group of groups) {
      const tagNames = Object.keys(group.tags);
      const metrics = [
        ...[...group.counts.keys()].map((Name) => ({ Name, Unit: 'Count' })),
        ...[...group.values.keys()].map((Name) => ({ Name, Unit: 'Milliseconds' })),
      ];
      const line = {
        _aws: {
          Timestamp: timestamp,
          CloudWatchMetrics: [
            {
              Namespace: this.namespace,
              Dimensions: tagNames.length > 0 ? [['service', ...tagNames], ['service']] : [['service']],
              Metrics: metrics,
            },
          ],
        },
        service: this.serviceName,
        ...group.tags,
        ...Object.fromEntries(group.counts),
        ...Object.fromEntries([...group.values].map(([k, v]) => [k, v.length === 1 ? v[0] : v])),
      };
      this.write(JSON.stringify(line));
    }
  }

  private group(tags: Record<string, string> | undefined): Group {
    const names = tags ? Object.keys(tags).sort() : [];
    // `service` is ours; a tag of that name would shadow it.
    const clean: Record<string, string> = {};
    for (const k of names) if (k !== 'service' && tags![k] !== undefined) clean[k] = String(tags![k]);
    const key = JSON.stringify(clean);
    let group = this.groups.get(key);
    if (!group) {
      group = { tags: clean, counts: new Map(), values: new Map() };
      this.groups.set(key, group);
      pending.add(this);
    }
    return group;
  }
}

let processMetrics: EmfMetrics | undefined;

/**
 * The process-wide EMF sink the Lambda composition uses by default (one per process: EMF
 * goes to the one stdout). Created on first use.
 */
export function lambdaMetrics(options: EmfMetricsOptions = {}): EmfMetrics {
  processMetrics ??= new EmfMetrics(options);
  return processMetrics;
}

/**
 * Writes the records of every {@link EmfMetrics} sink that holds some (the default one and
 * any passed as `metrics`). Call it before a Lambda handler returns when you use
 * `createTokenCacheFromEnv()` in your own handler; a no-op when there is nothing to write.
 */
export function flushMetrics(): void {
  for (const sink of [...pending]) sink.flush();
}

/** How `TOKEN_CACHE_METRICS` is read. */
export type MetricsSetting = 'auto' | 'emf' | 'off';

/**
 * Whether the Lambda composition writes EMF by default: `TOKEN_CACHE_METRICS=emf` always,
 * `off` never; otherwise (`auto`, unset) when running on Lambda (`AWS_LAMBDA_FUNCTION_NAME`
 * set) and `POWERTOOLS_METRICS_DISABLED` is not `true`.
 * @throws ConfigurationError naming `TOKEN_CACHE_METRICS` when it holds anything else
 */
export function emfEnabled(env: Environment): boolean {
  const setting = (nonEmpty(env.TOKEN_CACHE_METRICS) ?? 'auto').toLowerCase();
  if (setting !== 'auto' && setting !== 'emf' && setting !== 'off') {
    throw new ConfigurationError(
      'TOKEN_CACHE_METRICS',
      `expected auto, emf or off, got ${JSON.stringify(setting)}`,
    );
  }
  if (setting === 'off') return false;
  if (setting === 'emf') return true;
  return (
    nonEmpty(env.AWS_LAMBDA_FUNCTION_NAME) !== undefined &&
    (env.POWERTOOLS_METRICS_DISABLED ?? '').toLowerCase() !== 'true'
  );
}

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value.trim() : undefined;
}
