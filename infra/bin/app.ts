import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { TokenCacheStack, type TokenCacheStackProps } from '../lib/token-cache-stack';

/**
 * The CDK app: `npx cdk synth` (offline, placeholders) or, to deploy,
 * `npx cdk deploy -c tenantId=<guid> -c clientId=<guid>` plus any of the optional context keys below.
 */
const app = new App();

/** A context value as a string, or undefined when not given. */
function context(key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (typeof value === 'string') return value === '' ? undefined : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === undefined || value === null) return undefined;
  throw new Error(`Context key ${key} must be a string, got ${JSON.stringify(value)}`);
}
/** A space- or comma-separated context list. */
function contextList(key: string): string[] | undefined {
  return context(key)
    ?.split(/[\s,]+/)
    .filter((s) => s !== '');
}

const props: TokenCacheStackProps = {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  tenantId: context('tenantId'),
  clientId: context('clientId'),
  authorityHost: context('authorityHost'),
  apiAudience: context('apiAudience'),
  apiRequiredScopes: contextList('apiRequiredScopes'),
  downstreamUrl: context('downstreamUrl'),
  downstreamScopes: contextList('downstreamScopes'),
  daemonDownstreamUrl: context('daemonDownstreamUrl'),
  daemonScopes: contextList('daemonScopes'),
};
new TokenCacheStack(app, context('stackName') ?? 'MsalTokenCache', props);

// Unacknowledged AwsSolutions findings fail the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
