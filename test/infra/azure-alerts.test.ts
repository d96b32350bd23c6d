/**
 * The ARM template's Azure Monitor alerts on the cache's metrics (issue 15, item 4): one
 * scheduled query rule each for conflict-retry exhaustion, envelope rejections, store
 * unavailable and the token-call rate, over Application Insights `customMetrics`, reading
 * exactly the instrument names and attributes the OTel sink (shared/otel.ts) writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metric } from '../../shared/observability';
import { OTEL_METRIC_PREFIX, otelInstrumentNames } from '../../shared/otel';

interface Rule {
  type: string;
  name: string;
  properties: {
    enabled: string;
    scopes: string[];
    evaluationFrequency: string;
    windowSize: string;
    criteria: { allOf: Array<{ query: string; threshold: number | string; metricMeasureColumn: string }> };
  };
}

const template = JSON.parse(
  readFileSync(join(__dirname, '..', '..', 'infra', 'azure', 'azuredeploy.json'), 'utf8'),
) as { resources: Rule[]; parameters: Record<string, { defaultValue?: unknown }> };
const rules = template.resources.filter((r) => r.type === 'Microsoft.Insights/scheduledQueryRules');
const ALLOWED_ATTRIBUTES = new Set(['kind', 'reason', 'source', 'operation']);

describe('infra/azure/azuredeploy.json cache alerts', () => {
  it('has one rule per alarm of the CDK stack, over the template’s Application Insights', () => {
    expect(rules.map((r) => r.name.replace(/.*-cache-/, '').replace(/'.*$/, '')).sort()).toEqual([
      'conflict-retries-exhausted',
      'envelope-rejected',
      'store-unavailable',
      'token-request-rate',
    ]);
    for (const rule of rules) {
      expect(rule.properties.scopes).toEqual([
        "[resourceId('Microsoft.Insights/components', variables('appInsightsName'))]",
      ]);
      expect(rule.properties.enabled).toBe("[parameters('cacheMetricAlerts')]");
      expect([rule.properties.evaluationFrequency, rule.properties.windowSize]).toEqual(['PT5M', 'PT5M']);
    }
    expect(template.parameters.cacheMetricAlerts.defaultValue).toBe(true);
  });

  it('reads only instrument names and attributes the OTel sink writes', () => {
    for (const rule of rules) {
      const { query, metricMeasureColumn } = rule.properties.criteria.allOf[0];
      expect(query.startsWith('customMetrics ')).toBe(true);
      expect(query).toContain(`summarize ${metricMeasureColumn} = sum(valueSum)`);
      const names = [...query.matchAll(/name == '([^']+)'/g)].map((m) => m[1]);
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) expect(otelInstrumentNames).toContain(name);
      for (const [, attribute] of query.matchAll(/customDimensions\.([a-z]+)/g)) {
        expect(ALLOWED_ATTRIBUTES.has(attribute)).toBe(true);
      }
    }
    const queries = rules.map((r) => r.properties.criteria.allOf[0].query).join('\n');
    for (const metric of [
      Metric.WriteFailed,
      Metric.EnvelopeRejected,
      Metric.StoreError,
      Metric.TokenRequest,
    ]) {
      expect(queries).toContain(`'${OTEL_METRIC_PREFIX}${metric}'`);
    }
  });

  it('takes the token-call threshold from a parameter', () => {
    const rate = rules.find((r) => r.name.includes('token-request-rate'))!;
    expect(rate.properties.criteria.allOf[0].threshold).toBe("[parameters('tokenRequestAlertThreshold')]");
  });
});
