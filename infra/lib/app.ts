import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { ConfigurationError } from '../../shared/errors';
import { peerError } from '../../shared/peers';
import { TokenCacheStack, type TokenCacheStackProps } from './token-cache-stack';

/** Options of {@link createApp}. */
export interface CreateAppOptions extends AppProps {
  /**
   * Check the app with cdk-nag's AwsSolutions pack (an unacknowledged finding fails the
   * synth). `true` requires cdk-nag; `false` skips it.
   * @default true when the cdk-nag package is installed, else false
   */
  readonly nag?: boolean;
}

/** Context keys the app reads (`-c key=value` or cdk.json); lists are space- or comma-separated. */
export const APP_CONTEXT_KEYS = [
  'stackName',
  'tenantId',
  'clientId',
  'authorityHost',
  'apiAudiences',
  'apiIssuer',
  'apiRequiredScopes',
  'multiTenant',
  'allowedTenants',
  'daemonTenants',
  'downstreamUrl',
  'downstreamScopes',
  'daemonDownstreamUrl',
  'daemonScope',
  'credential',
  'webIdentityIssuer',
] as const;

/**
 * The deployable app: one {@link TokenCacheStack} configured from context, checked by
 * cdk-nag's AwsSolutions pack when cdk-nag is installed (an unacknowledged finding fails the synth).
 * @example createApp({ context: { tenantId: '<guid>', clientId: '<guid>', apiRequiredScopes: 'access_as_user' } })
 */
export function createApp(options: CreateAppOptions = {}): { app: App; stack: TokenCacheStack } {
  const { nag, ...props } = options;
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
    ...multiTenantProps(context('multiTenant'), list('allowedTenants')),
    daemonTenants: list('daemonTenants'),
    downstreamUrl: context('downstreamUrl'),
    downstreamScopes: list('downstreamScopes'),
    daemonDownstreamUrl: context('daemonDownstreamUrl'),
    daemonScope: context('daemonScope'),
    credential: context('credential') as TokenCacheStackProps['credential'],
    webIdentityIssuer: context('webIdentityIssuer'),
  };
  const stack = new TokenCacheStack(app, context('stackName') ?? 'MsalTokenCache', stackProps);
  const checks = nag === false ? undefined : loadCdkNag(nag === true);
  if (checks) Validations.of(app).addPlugins(new checks.AwsSolutionsChecks(app));
  return { app, stack };
}

/** `-c multiTenant=true [-c allowedTenants=<guid>,<guid>]`; `allowedTenants` alone is refused. */
function multiTenantProps(
  flag: string | undefined,
  allowedTenants: string[] | undefined,
): Pick<TokenCacheStackProps, 'multiTenant'> {
  if (flag === undefined && allowedTenants === undefined) return {};
  if (flag !== 'true') {
    throw new Error(
      `Context key allowedTenants needs multiTenant=true; multiTenant must be "true" or unset, got ${JSON.stringify(flag ?? '')}`,
    );
  }
  return { multiTenant: allowedTenants ? { allowedTenants } : {} };
}

/** cdk-nag, or `undefined` when it is not installed and not required. */
function loadCdkNag(required: boolean): typeof import('cdk-nag') | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('cdk-nag') as typeof import('cdk-nag');
  } catch (e) {
    const error = peerError('msal-cloud-cache/infra', 'createApp({ nag: true })', 'cdk-nag', e);
    if (required || !(error instanceof ConfigurationError)) throw error;
    return undefined;
  }
}
