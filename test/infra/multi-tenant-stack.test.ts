/**
 * The CDK stack of a multi-tenant API (issue 22): the functions on the organizations
 * authority, API_ALLOWED_TENANTS and DAEMON_TENANTS in their environment, and the HTTP
 * API's JWT authorizer only where one issuer can express the allowed tenants.
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FUNCTION_ENV, TokenCacheStack, createApp } from '../../infra';
import { loadFunctionConfig } from '../../functions/core/config';
import { ensureLambdaBundles } from '../support/lambda-bundles';
import { CUSTOMER_TENANT_A as TENANT_A, CUSTOMER_TENANT_B as TENANT_B } from '../support/tenants';

const CLIENT = '66666666-7777-8888-9999-000000000000';

interface FunctionResource {
  Properties: { Environment: { Variables: Record<string, unknown> } };
}

describe('TokenCacheStack, multi-tenant', () => {
  let app: App;
  beforeAll(async () => {
    await ensureLambdaBundles();
  });
  beforeEach(() => {
    app = new App();
  });

  function synth(id: string, props: ConstructorParameters<typeof TokenCacheStack>[2]) {
    const stack = new TokenCacheStack(app, id, {
      clientId: CLIENT,
      apiRequiredScopes: ['access_as_user'],
      ...props,
    });
    const template = Template.fromStack(stack);
    const env = (fn: lambda.IFunction): Record<string, unknown> => {
      const resources = (template.toJSON() as { Resources: Record<string, FunctionResource> }).Resources;
      return resources[stack.getLogicalId(fn.node.defaultChild as never)].Properties.Environment.Variables;
    };
    return { stack, template, env };
  }

  it('with several allowed tenants: no authorizer (the handler validates), the allow-list in the environment', () => {
    const { stack, template, env } = synth('Several', {
      multiTenant: { allowedTenants: [TENANT_A, TENANT_B.toUpperCase()] },
      daemonTenants: [TENANT_A, TENANT_B],
    });

    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'GET /api/downstream',
      AuthorizationType: 'NONE',
    });
    const web = env(stack.webApi);
    expect(web[FUNCTION_ENV.authority]).toBe('https://login.microsoftonline.com/organizations');
    expect(web[FUNCTION_ENV.apiAllowedTenants]).toBe(`${TENANT_A},${TENANT_B}`);
    expect(web).not.toHaveProperty(FUNCTION_ENV.apiIssuer);
    expect(env(stack.daemon)[FUNCTION_ENV.daemonTenants]).toBe(`${TENANT_A},${TENANT_B}`);

    // What the handler makes of it: multi-tenant validation with the same allow-list.
    const config = loadFunctionConfig({
      ...Object.fromEntries(Object.entries(web).filter(([, v]) => typeof v === 'string')),
      MSAL_CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ClientSecret-AbCdEf',
      TOKEN_CACHE_TABLE_NAME: 'table',
      TOKEN_CACHE_KMS_KEY_ID: 'arn:aws:kms:eu-west-1:123456789012:key/0d9f4c4e-1111-2222-3333-444455556666',
    });
    expect(config.api.multiTenant).toEqual({
      authorityHost: 'https://login.microsoftonline.com',
      allowedTenants: [TENANT_A, TENANT_B],
    });
  });

  it('with one allowed tenant: the JWT authorizer checks that tenant’s issuer', () => {
    const { template } = synth('One', { multiTenant: { allowedTenants: [TENANT_A] } });

    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: {
        Audience: [`api://${CLIENT}`, CLIENT],
        Issuer: `https://login.microsoftonline.com/${TENANT_A}/v2.0`,
      },
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Route', { AuthorizationType: 'JWT' });
  });

  it('with any tenant: no authorizer and no API_ALLOWED_TENANTS (the function warns at cold start)', () => {
    const { stack, template, env } = synth('Any', { multiTenant: {} });

    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    expect(env(stack.webApi)).not.toHaveProperty(FUNCTION_ENV.apiAllowedTenants);
  });

  it.each([
    [{ multiTenant: { allowedTenants: ['contoso.com'] } }, /multiTenant.allowedTenants must be tenant ids/],
    [{ multiTenant: {}, tenantId: TENANT_A }, /do not set tenantId or apiIssuer/],
    [{ multiTenant: {}, apiIssuer: 'https://sts.windows.net/x/' }, /do not set tenantId or apiIssuer/],
    [{ daemonTenants: ['common'] }, /daemonTenants must be tenant ids/],
  ])('refuses %j at synth time', (props, message) => {
    expect(
      () => new TokenCacheStack(app, 'Bad', { clientId: CLIENT, apiRequiredScopes: ['x'], ...props }),
    ).toThrow(message);
  });

  it('synthesizes from context (-c multiTenant=true -c allowedTenants=...) and passes cdk-nag', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'multi-tenant-cdk-'));
    try {
      const { app: nagged, stack } = createApp({
        outdir,
        nag: true,
        context: {
          clientId: CLIENT,
          apiRequiredScopes: 'access_as_user',
          multiTenant: 'true',
          allowedTenants: `${TENANT_A},${TENANT_B}`,
        },
      });
      // An unacknowledged finding fails the synth.
      expect(() => nagged.synth()).not.toThrow();
      Template.fromStack(stack).resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
      expect(() =>
        createApp({
          nag: false,
          context: { clientId: CLIENT, apiRequiredScopes: 'x', allowedTenants: TENANT_A },
        }),
      ).toThrow(/allowedTenants needs multiTenant=true/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
