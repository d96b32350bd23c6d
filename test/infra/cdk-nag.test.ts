import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { TokenCacheTable, createApp } from '../../infra';
import { ensureLambdaBundles } from '../support/lambda-bundles';

interface Finding {
  rule: string;
  path: string;
}
interface Report {
  pluginReports: {
    pluginName: string;
    violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[];
  }[];
}

/** Synthesizes `app` and returns every finding its validation plugins reported (acknowledged ones are not reported). */
function synthFindings(app: App): Finding[] {
  const reportPath = path.join(app.outdir, 'validation-report.json');
  let synthError: Error | undefined;
  try {
    app.synth();
  } catch (error) {
    // A finding interrupts the synth after writing the report; anything else is a real error.
    synthError = error instanceof Error ? error : new Error(String(error));
  }
  if (!fs.existsSync(reportPath)) throw synthError ?? new Error(`no validation report at ${reportPath}`);
  const report = JSON.parse(fs.readFileSync(reportPath, 'utf8')) as Report;
  const findings = report.pluginReports.flatMap((r) =>
    r.violations.flatMap((v) =>
      v.violatingConstructs.map((c) => ({ rule: v.ruleName, path: c.constructPath })),
    ),
  );
  if (synthError !== undefined && findings.length === 0) throw synthError;
  return findings;
}

/** Every acknowledgement recorded in the tree, with the reason given for it. */
function acknowledgements(root: IConstruct): { id: string; reason: string; path: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          id,
          reason,
          path: c.node.path,
        })),
      ),
  );
}

const tmp = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `cdk-nag-${name}-`));

describe('cdk-nag AwsSolutions', () => {
  // Nag reads the templates, not the code; the stack still needs its prebuilt bundles to exist.
  const context = { apiRequiredScopes: 'access_as_user' };
  beforeAll(() => ensureLambdaBundles());

  describe('the deployable app', () => {
    let app: App;
    let findings: Finding[];
    beforeAll(() => {
      app = createApp({ outdir: tmp('app'), context }).app;
      findings = synthFindings(app);
    });

    it('has no unacknowledged finding', () => {
      expect(findings).toEqual([]);
    });

    it('gives every acknowledgement a reason a reviewer can check', () => {
      const acks = acknowledgements(app);
      expect(acks.length).toBeGreaterThan(0);
      for (const ack of acks) {
        expect(ack.id).toMatch(/AwsSolutions-/);
        expect(ack.reason.length).toBeGreaterThan(60);
      }
    });
  });

  describe('the TokenCacheTable construct on its own', () => {
    it('has no finding and needs no acknowledgement', () => {
      const app = new App({ outdir: tmp('construct'), context });
      const stack = new Stack(app, 'CacheOnly');
      new TokenCacheTable(stack, 'Cache').grantReadWrite(
        new iam.Role(stack, 'User', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') }),
      );
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      expect(synthFindings(app)).toEqual([]);
      expect(acknowledgements(app)).toEqual([]);
    });

    it('reports a wildcard grant (the check is live, not silenced)', () => {
      const app = new App({ outdir: tmp('control'), context });
      const stack = new Stack(app, 'Control');
      const role = new iam.Role(stack, 'User', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      });
      new TokenCacheTable(stack, 'Cache').grantReadWrite(role);
      role.addToPolicy(new iam.PolicyStatement({ actions: ['dynamodb:*'], resources: ['*'] }));
      Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
      expect(synthFindings(app)).toEqual(
        expect.arrayContaining([expect.objectContaining({ rule: 'AwsSolutions-IAM5[Action::dynamodb:*]' })]),
      );
    });
  });
});
