import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { TokenCacheStack, type TokenCacheStackProps } from './token-cache-stack';

/** Context keys the app reads (`-c key=value` or cdk.json); lists are space- or comma-separated. */
export const APP_CONTEXT_KEYS = [
  'stackName',
  'tenantId',
  'clientId',
  'authorityHost',
  'apiAudiences',
  'apiIssuer',
  'apiRequiredScopes',
  'downstreamUrl',
  'downstreamScopes',
  'daemonDownstreamUrl',
  'daemonScope',
  'credential',
  'webIdentityIssuer',
] as const;

/**
 * The deployable app: one {@link TokenCacheStack} configured from context, checked by
 * cdk-nag's AwsSolutions pack (an unacknowledged finding fails the synth).
 * @example createApp({ context: { tenantId: '<guid>', clientId: '<guid>' } })
 */
export function createApp(props: AppProps = {}): { app: App; stack: TokenCacheStack } {
  const app = new App(props);
  const context = (key: (typeof APP_CONTEXT_KEYS)[number]): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    if (typeof value === 'string') return value === '' ? undefined : value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (value === undefined || value === null) return undefined;
    throw new Error(`Context key ${key} must be a string, got ${JSON.stringify(value)}`);
  };
  const list = (key: (typeof APP_CONTEXT_KEYS)[number]): string[] | undefined =>
    context(key)
      ?.split(/[\s,]+/)
      .filter((s) => s !== '');

  const stackProps: TokenCacheStackProps = {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
    tenantId: context('tenantId'),
    clientId: context('clientId'),
    authorityHost: context('authorityHost'),
    apiAudiences: list('apiAudiences'),
    apiIssuer: context('apiIssuer'),
    apiRequiredScopes: list('apiRequiredScopes'),
    downstreamUrl: context('downstreamUrl'),
    downstreamScopes: list('downstreamScopes'),
    daemonDownstreamUrl: context('daemonDownstreamUrl'),
    daemonScope: context('daemonScope'),
    credential: context('credential') as TokenCacheStackProps['credential'],
    webIdentityIssuer: context('webIdentityIssuer'),
  };
  const stack = new TokenCacheStack(app, context('stackName') ?? 'MsalTokenCache', stackProps);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
