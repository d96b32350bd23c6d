/**
 * The stack's alarms on the cache's own metrics (issue 15, item 4) read exactly what the
 * EMF sink writes: the namespace and service each function is given, the metric names and
 * dimension sets of the lines EmfMetrics produces for the records the cache makes.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { METRICS_ENV, METRICS_SERVICE, TokenCacheStack } from '../../infra';
import { EmfMetrics } from '../../shared/aws/emf';
import { Metric } from '../../shared/observability';
import { ensureLambdaBundles } from '../support/lambda-bundles';

interface AlarmMetric {
  Namespace: string;
  MetricName: string;
  Dimensions: Array<{ Name: string; Value: string }>;
}
interface AlarmProps {
  AlarmName?: string;
  AlarmDescription: string;
  Namespace?: string;
  MetricName?: string;
  Dimensions?: Array<{ Name: string; Value: string }>;
  Metrics?: Array<{ Id: string; Expression?: string; MetricStat?: { Metric: AlarmMetric } }>;
}

/** A CloudWatch metric's identity: namespace, name and its dimensions, sorted. */
const identity = (namespace: string, name: string, dims: Record<string, string>): string =>
  `${namespace}|${name}|${Object.keys(dims)
    .sort()
    .map((k) => `${k}=${dims[k]}`)
    .join(',')}`;

/** The metrics CloudWatch extracts from EMF lines (one per metric per dimension set). */
function extracted(lines: string[]): Set<string> {
  const out = new Set<string>();
  for (const raw of lines) {
    const line = JSON.parse(raw) as {
      _aws: {
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string }>;
        }>;
      };
    } & Record<string, unknown>;
    for (const directive of line._aws.CloudWatchMetrics) {
      for (const set of directive.Dimensions) {
        const dims = Object.fromEntries(set.map((d) => [d, String(line[d])]));
        for (const m of directive.Metrics) out.add(identity(directive.Namespace, m.Name, dims));
      }
    }
  }
  return out;
}

describe('TokenCacheStack alarms on the cache metrics', () => {
  type Fn = { Properties: { Environment?: { Variables?: Record<string, string> } } };
  let functions: Fn[];
  let alarms: AlarmProps[];
  let cacheAlarms: AlarmProps[];

  beforeAll(async () => {
    await ensureLambdaBundles();
    const app = new App();
    const stack = new TokenCacheStack(app, 'Stack', {
      apiRequiredScopes: ['access_as_user'],
      metricsNamespace: 'tc-test',
      tokenRequestAlarmThreshold: 50,
    });
    const template = Template.fromStack(stack);
    functions = Object.values(template.findResources('AWS::Lambda::Function')) as Fn[];
    alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (r) => (r as { Properties: AlarmProps }).Properties,
    );
    cacheAlarms = alarms.filter(
      (a) =>
        a.Namespace === 'tc-test' || a.Metrics?.some((m) => m.MetricStat?.Metric.Namespace === 'tc-test'),
    );
  });

  /** What a function's EMF sink writes for the records behind the alarms, with that function's environment. */
  function emfOf(service: string): Set<string> {
    const fn = functions.find((f) => f.Properties.Environment?.Variables?.[METRICS_ENV.service] === service);
    expect(fn).toBeDefined();
    const lines: string[] = [];
    const sink = new EmfMetrics({ env: fn!.Properties.Environment!.Variables!, write: (l) => lines.push(l) });
    for (const kind of ['app', 'obo', 'user']) {
      // As the session's events sink (shared/cache/session/events.ts) and token-cache.ts record them.
      sink.increment(Metric.WriteFailed, 1, { kind, reason: 'conflict-retries-exhausted' });
      sink.increment(Metric.WriteFailed, 1, { kind, reason: 'store-unavailable' });
      sink.increment(Metric.EnvelopeRejected, 1, { kind, reason: 'authentication-failed' });
      sink.increment(Metric.StoreError, 1, { kind, operation: 'read' });
      sink.increment(Metric.TokenRequest, 1, { kind });
    }
    sink.flush();
    return extracted(lines);
  }

  it('gives each function the namespace and its service name', () => {
    for (const service of Object.values(METRICS_SERVICE)) {
      const fn = functions.find(
        (f) => f.Properties.Environment?.Variables?.[METRICS_ENV.service] === service,
      );
      expect(fn?.Properties.Environment?.Variables?.[METRICS_ENV.namespace]).toBe('tc-test');
    }
  });

  it('has the four alarms per function: conflict retries, envelope rejections, store unavailable, token-call rate', () => {
    expect(cacheAlarms).toHaveLength(8);
    const tokenRate = cacheAlarms.filter((a) => a.MetricName === Metric.TokenRequest);
    expect(tokenRate).toHaveLength(2);
    expect(tokenRate.every((a) => (a as { Threshold?: number }).Threshold === 50)).toBe(true);
  });

  it.each(Object.entries(METRICS_SERVICE))(
    'reads only metrics the %s function’s EMF lines produce',
    (_id, service) => {
      const produced = emfOf(service);
      const mine = cacheAlarms.filter((a) =>
        [
          ...(a.Dimensions ?? []),
          ...(a.Metrics ?? []).flatMap((m) => m.MetricStat?.Metric.Dimensions ?? []),
        ].some((d) => d.Name === 'service' && d.Value === service),
      );
      expect(mine).toHaveLength(4);
      for (const alarm of mine) {
        const read: string[] = alarm.MetricName
          ? [
              identity(
                alarm.Namespace!,
                alarm.MetricName,
                Object.fromEntries(alarm.Dimensions!.map((d) => [d.Name, d.Value])),
              ),
            ]
          : alarm
              .Metrics!.filter((m) => m.MetricStat)
              .map((m) =>
                identity(
                  m.MetricStat!.Metric.Namespace,
                  m.MetricStat!.Metric.MetricName,
                  Object.fromEntries(m.MetricStat!.Metric.Dimensions.map((d) => [d.Name, d.Value])),
                ),
              );
        expect(read.length).toBeGreaterThan(0);
        for (const metric of read) expect(produced).toContain(metric);
      }
    },
  );
});
