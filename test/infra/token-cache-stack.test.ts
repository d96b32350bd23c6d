import { App, Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  FUNCTION_ENV,
  METRICS_ENV,
  PLACEHOLDER_CLIENT_ID,
  PLACEHOLDER_TENANT_ID,
  TOKEN_CACHE_ENV,
  TokenCacheStack,
  createApp,
} from '../../infra';
import { ensureLambdaBundles } from '../support/lambda-bundles';
import { kmsEncryptionContext } from '../../shared/aws/kms-keyring';
import { loadFunctionConfig } from '../../functions/core/config';

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}
interface PolicyResource {
  Properties: { Roles: unknown; PolicyDocument: { Statement: Statement[] } };
}
interface FunctionResource {
  Properties: { Environment: { Variables: Record<string, unknown> }; Role: unknown };
}
const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

/** The logical id `stack` gives construct `c`. */
const logicalId = (stack: TokenCacheStack, c: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(c.node.defaultChild as never);

/** The IAM statements of the policies `template` attaches to the role of `fn`. */
function roleStatements(stack: TokenCacheStack, template: Template, fn: lambda.IFunction): Statement[] {
  const roleId = logicalId(stack, fn.role as iam.Role);
  return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

const TENANT = '11111111-2222-3333-4444-555555555555';
const CLIENT = '66666666-7777-8888-9999-000000000000';
const ISSUER = `https://login.microsoftonline.com/${TENANT}/v2.0`;

describe('TokenCacheStack', () => {
  // The prebuilt bundles are the functions' code (the bundle test runs them); one synth for the whole file.
  let stack: TokenCacheStack;
  let template: Template;
  const id = (c: { node: { defaultChild?: unknown } }): string => logicalId(stack, c);

  beforeAll(async () => {
    await ensureLambdaBundles();
    const app = new App();
    stack = new TokenCacheStack(app, 'Stack', {
      tenantId: TENANT,
      clientId: CLIENT,
      downstreamUrl: 'https://downstream.example/api',
      downstreamScopes: ['api://downstream/read', 'api://downstream/write'],
      daemonDownstreamUrl: 'https://downstream.example/jobs',
      daemonScope: 'api://downstream/.default',
      daemonSchedule: events.Schedule.rate(Duration.minutes(5)),
      apiRequiredScopes: ['access_as_user'],
    });
    template = Template.fromStack(stack);
  });

  function fnResource(fn: lambda.IFunction): FunctionResource {
    const resources = (template.toJSON() as { Resources: Record<string, FunctionResource> }).Resources;
    return resources[id(fn)];
  }
  const statementsOf = (fn: lambda.IFunction): Statement[] => roleStatements(stack, template, fn);

  describe('functions', () => {
    it('run on the latest Node runtime CDK knows, on arm64, from a bundled index.handler', () => {
      const latest = lambda.determineLatestNodeRuntime(stack).name;
      template.resourcePropertiesCountIs(
        'AWS::Lambda::Function',
        { Runtime: latest, Architectures: ['arm64'], Handler: 'index.handler' },
        2,
      );
      expect(latest).toMatch(/^nodejs\d+\.x$/);
    });

    it('run without source maps (they cost a fifth of the import) and log to their own retained log group', () => {
      for (const fn of [stack.webApi, stack.daemon]) {
        const props = fnResource(fn).Properties as FunctionResource['Properties'] & {
          LoggingConfig: { LogGroup: unknown };
        };
        expect(props.Environment.Variables.NODE_OPTIONS).toBeUndefined();
        expect(props.LoggingConfig.LogGroup).toEqual({ Ref: expect.stringMatching(/Logs/) as unknown });
      }
      template.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 30 }, 3);
    });

    it('give the web API its cache, identity, downstream and incoming-token settings', () => {
      expect(fnResource(stack.webApi).Properties.Environment.Variables).toEqual({
        [TOKEN_CACHE_ENV.tableName]: { Ref: id(stack.tokenCache.table) },
        [TOKEN_CACHE_ENV.kmsKeyId]: { 'Fn::GetAtt': [id(stack.tokenCache.key), 'Arn'] },
        [FUNCTION_ENV.clientId]: CLIENT,
        [FUNCTION_ENV.authority]: `https://login.microsoftonline.com/${TENANT}`,
        [FUNCTION_ENV.clientSecretArn]: { Ref: id(stack.clientSecret!) },
        [FUNCTION_ENV.downstreamUrl]: 'https://downstream.example/api',
        [FUNCTION_ENV.downstreamScopes]: 'api://downstream/read api://downstream/write',
        [FUNCTION_ENV.apiAudience]: `api://${CLIENT},${CLIENT}`,
        [FUNCTION_ENV.apiIssuer]: ISSUER,
        [FUNCTION_ENV.apiRequiredScopes]: 'access_as_user',
        [METRICS_ENV.namespace]: 'msal-cloud-cache',
        [METRICS_ENV.service]: 'web-api',
      });
    });

    it('give the daemon its own downstream URL and /.default scope', () => {
      const env = fnResource(stack.daemon).Properties.Environment.Variables;
      expect(env[FUNCTION_ENV.downstreamUrl]).toBe('https://downstream.example/jobs');
      expect(env[FUNCTION_ENV.daemonScope]).toBe('api://downstream/.default');
      expect(env[FUNCTION_ENV.clientSecretArn]).toEqual({ Ref: id(stack.clientSecret!) });
    });

    it.each(['webApi', 'daemon'] as const)(
      "give %s an environment that shared/config.ts accepts, agreeing with the API's first gate",
      (name) => {
        // Deploy-time values for the template's references.
        const values = new Map<string, string>([
          [JSON.stringify({ Ref: id(stack.tokenCache.table) }), 'MsalTokenCache-TokenCacheTable-1A2B3C'],
          [
            JSON.stringify({ 'Fn::GetAtt': [id(stack.tokenCache.key), 'Arn'] }),
            'arn:aws:kms:eu-west-1:123456789012:key/0d9f4c4e-1111-2222-3333-444455556666',
          ],
          [
            JSON.stringify({ Ref: id(stack.clientSecret!) }),
            'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ClientSecret-AbCdEf',
          ],
        ]);
        const env = Object.fromEntries(
          Object.entries(fnResource(stack[name]).Properties.Environment.Variables).map(([k, v]) => {
            const value = typeof v === 'string' ? v : values.get(JSON.stringify(v));
            if (value === undefined) throw new Error(`no deploy-time value for ${k}: ${JSON.stringify(v)}`);
            return [k, value];
          }),
        );
        const config = loadFunctionConfig(env);
        expect(config.store).toEqual({
          kind: 'dynamodb',
          tableName: 'MsalTokenCache-TokenCacheTable-1A2B3C',
        });
        expect(config.keyRing).toMatchObject({
          kind: 'aws-kms',
          keyId: expect.stringMatching(/^arn:aws:kms:/) as unknown,
        });
        expect(config.msal.credential).toMatchObject({ kind: 'secrets-manager' });
        expect(config.msal.clientId).toBe(CLIENT);
        const [authorizer] = Object.values(template.findResources('AWS::ApiGatewayV2::Authorizer'));
        const jwt = (authorizer.Properties as { JwtConfiguration: { Audience: string[]; Issuer: string } })
          .JwtConfiguration;
        expect(config.api.issuers).toEqual([jwt.Issuer]);
        expect(config.api.audiences).toEqual(jwt.Audience);
        const [route] = Object.values(template.findResources('AWS::ApiGatewayV2::Route'));
        expect(config.api.requiredScopes).toEqual(
          (route.Properties as { AuthorizationScopes: string[] }).AuthorizationScopes,
        );
      },
    );
  });

  describe('roles', () => {
    it('are one per function, with no managed policy', () => {
      expect(id(stack.webApi.role as iam.Role)).not.toEqual(id(stack.daemon.role as iam.Role));
      template.resourcePropertiesCountIs(
        'AWS::IAM::Role',
        { ManagedPolicyArns: Match.absent(), AssumeRolePolicyDocument: Match.anyValue() },
        2,
      );
    });

    it.each(['webApi', 'daemon'] as const)(
      '%s may write its own logs, use the cache and read the secret: nothing more',
      (name) => {
        const fn = stack[name];
        const statements = statementsOf(fn);
        const byService = (prefix: string): Statement[] =>
          statements.filter((s) => actionsOf(s).every((a) => a.startsWith(prefix)));
        expect(byService('logs:')).toEqual([
          expect.objectContaining({
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            Resource: { 'Fn::GetAtt': [expect.stringMatching(new RegExp(`^${name}Logs`, 'i')), 'Arn'] },
          }),
        ]);
        expect(byService('dynamodb:')).toEqual([
          expect.objectContaining({
            Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
            Resource: { 'Fn::GetAtt': [id(stack.tokenCache.table), 'Arn'] },
          }),
        ]);
        const kms = byService('kms:');
        expect(kms).toHaveLength(2);
        expect(kms.map((s) => s.Condition)).toEqual([
          {
            StringEquals: {
              'kms:EncryptionContext:purpose': 'msal-token-cache',
              'kms:EncryptionContext:app': CLIENT,
              // Issue 11, point 7: each function's data keys are limited to its partition kind.
              'kms:EncryptionContext:kind': [name === 'webApi' ? 'obo' : 'app'],
            },
          },
          { StringEquals: { 'kms:ViaService': expect.anything() as unknown } },
        ]);
        expect(byService('secretsmanager:')).toEqual([
          expect.objectContaining({
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Resource: { Ref: id(stack.clientSecret!) },
          }),
        ]);
        expect(statements).toHaveLength(5);
      },
    );

    it.each(['webApi', 'daemon'] as const)(
      "%s's key grant requires exactly the encryption context the KMS key ring sends for its kind",
      (name) => {
        const sent = kmsEncryptionContext(CLIENT, name === 'webApi' ? 'obo' : 'app');
        const grant = statementsOf(stack[name]).find((s) => actionsOf(s).includes('kms:GenerateDataKey'));
        const condition = grant?.Condition?.StringEquals;

        expect(condition).toEqual(
          Object.fromEntries(
            Object.entries(sent).map(([key, value]) => [
              `kms:EncryptionContext:${key}`,
              key === 'kind' ? [value] : value,
            ]),
          ),
        );
      },
    );

    it('hold no wildcard action or resource anywhere in the stack', () => {
      const all = Object.values(
        template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>,
      ).flatMap((p) => p.Properties.PolicyDocument.Statement);
      expect(all.length).toBeGreaterThan(0);
      for (const s of all) {
        expect(actionsOf(s).filter((a) => a.includes('*'))).toEqual([]);
        expect(JSON.stringify(s.Resource)).not.toContain('*');
      }
    });
  });

  describe('HTTP API', () => {
    it('puts a JWT authorizer for the Entra tenant and the API audience in front', () => {
      template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 1);
      template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
        AuthorizerType: 'JWT',
        IdentitySource: ['$request.header.Authorization'],
        JwtConfiguration: { Audience: [`api://${CLIENT}`, CLIENT], Issuer: ISSUER },
      });
    });

    it('routes only GET /api/downstream, through the authorizer, to the web API', () => {
      const routes = template.findResources('AWS::ApiGatewayV2::Route');
      expect(Object.values(routes).map((r) => (r.Properties as { RouteKey: string }).RouteKey)).toEqual([
        'GET /api/downstream',
      ]);
      const [authorizerId] = Object.keys(template.findResources('AWS::ApiGatewayV2::Authorizer'));
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        AuthorizationType: 'JWT',
        AuthorizerId: { Ref: authorizerId },
        AuthorizationScopes: ['access_as_user'],
      });
      template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
        IntegrationType: 'AWS_PROXY',
        PayloadFormatVersion: '2.0',
        IntegrationUri: { 'Fn::GetAtt': [id(stack.webApi), 'Arn'] },
      });
    });

    it('outputs the web API URL', () => {
      template.hasOutput('ApiUrl', {
        Value: {
          'Fn::Join': ['', Match.arrayWith(['https://', { Ref: id(stack.httpApi) }, '/api/downstream'])],
        },
      });
    });

    it('logs access without headers and throttles the stage', () => {
      template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
        StageName: '$default',
        AutoDeploy: true,
        DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
        AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      });
      const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
      const format = (stage.Properties as { AccessLogSettings: { Format: string } }).AccessLogSettings.Format;
      expect(format).not.toMatch(/header|authorization/i);
    });
  });

  describe('daemon schedule', () => {
    it('fires the daemon on the configured rate with bounded retries', () => {
      template.resourceCountIs('AWS::Events::Rule', 1);
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(5 minutes)',
        State: 'ENABLED',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [id(stack.daemon), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 600 },
          }),
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        Action: 'lambda:InvokeFunction',
        Principal: 'events.amazonaws.com',
        FunctionName: { 'Fn::GetAtt': [id(stack.daemon), 'Arn'] },
      });
    });
  });

  describe('alarms', () => {
    it.each([
      ['webApi', 'Errors'],
      ['webApi', 'Throttles'],
      ['daemon', 'Errors'],
      ['daemon', 'Throttles'],
    ] as const)('%s %s alarm at the first occurrence', (name, metric) => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: metric,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: id(stack[name]) } }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
    });

    it('watch the API 5xx and the table throttles too', () => {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/ApiGateway',
        MetricName: '5xx',
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Metrics: Match.arrayWith([
          Match.objectLike({
            MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'ThrottledRequests' }) }),
          }),
        ]),
      });
      // 6 on the platform's metrics, 8 on the cache's own EMF metrics (test/infra/metrics-alarms.test.ts).
      template.resourceCountIs('AWS::CloudWatch::Alarm', 14);
    });
  });

  describe('client secret', () => {
    it('lives in Secrets Manager and is passed by ARN, never by value', () => {
      template.resourceCountIs('AWS::SecretsManager::Secret', 1);
      template.hasResourceProperties('AWS::SecretsManager::Secret', {
        SecretString: Match.absent(),
        GenerateSecretString: Match.anyValue(),
      });
      template.hasOutput('ClientSecretArn', { Value: { Ref: id(stack.clientSecret!) } });
    });
  });
});

describe('TokenCacheStack apiRequiredScopes', () => {
  beforeAll(() => ensureLambdaBundles());
  const synth = (apiRequiredScopes: string[] | undefined) => {
    const app = new App();
    return new TokenCacheStack(app, 'Stack', { ...(apiRequiredScopes ? { apiRequiredScopes } : {}) });
  };

  it.each([
    ['absent', undefined],
    ['empty', []],
    ['blank', [' ']],
  ])('fails the synth when %s, naming the parameter and an example', (_name, scopes) => {
    expect(() => synth(scopes)).toThrow(/apiRequiredScopes is required: .*access_as_user/);
  });

  it.each([
    ['a scope with a space', ['two words']],
    ['a comma inside a scope', ['a,b']],
    ['"*" with another scope', ['*', 'access_as_user']],
  ])('fails the synth on %s', (_name, scopes) => {
    expect(() => synth(scopes)).toThrow(/apiRequiredScopes must be scope names/);
  });

  it('passes "*" to the function as the explicit opt-out and leaves the authorizer without scopes', () => {
    const stack = synth(['*']);
    const template = Template.fromStack(stack);

    const cfn = stack.webApi.node.defaultChild as lambda.CfnFunction;
    const env = stack.resolve(cfn.environment) as { variables: Record<string, unknown> };
    expect(env.variables[FUNCTION_ENV.apiRequiredScopes]).toBe('*');
    const [route] = Object.values(template.findResources('AWS::ApiGatewayV2::Route'));
    expect(route.Properties).not.toHaveProperty('AuthorizationScopes');
  });
});

describe('createApp', () => {
  beforeAll(() => ensureLambdaBundles());

  it('fails without the apiRequiredScopes context key, naming it', () => {
    expect(() => createApp({ context: {} })).toThrow(/apiRequiredScopes is required/);
  });

  it('reads the stack parameters from context, with placeholders when none are given', () => {
    const read = (context: Record<string, string>): Record<string, unknown> => {
      const { stack } = createApp({ context: { apiRequiredScopes: 'access_as_user', ...context } });
      const cfn = stack.webApi.node.defaultChild as lambda.CfnFunction;
      const env = stack.resolve(cfn.environment) as { variables: Record<string, unknown> };
      return env.variables;
    };
    expect(read({})).toMatchObject({
      [FUNCTION_ENV.clientId]: PLACEHOLDER_CLIENT_ID,
      [FUNCTION_ENV.authority]: `https://login.microsoftonline.com/${PLACEHOLDER_TENANT_ID}`,
    });
    expect(
      read({
        tenantId: TENANT,
        clientId: CLIENT,
        downstreamScopes: 'a/x,b/y',
        apiRequiredScopes: 'Data.Read Data.Write',
      }),
    ).toMatchObject({
      [FUNCTION_ENV.apiRequiredScopes]: 'Data.Read,Data.Write',
      [FUNCTION_ENV.clientId]: CLIENT,
      [FUNCTION_ENV.authority]: `https://login.microsoftonline.com/${TENANT}`,
      [FUNCTION_ENV.downstreamScopes]: 'a/x b/y',
    });
  });
});

describe('TokenCacheStack with the federated credential (-c credential=federated)', () => {
  let stack: TokenCacheStack;
  let template: Template;
  const id = (c: { node: { defaultChild?: unknown } }): string => logicalId(stack, c);
  const STS_ISSUER = 'https://0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9.tokens.sts.global.api.aws';

  beforeAll(async () => {
    await ensureLambdaBundles();
    ({ stack } = createApp({
      context: {
        tenantId: TENANT,
        clientId: CLIENT,
        apiRequiredScopes: 'access_as_user',
        credential: 'federated',
        webIdentityIssuer: STS_ISSUER,
      },
    }));
    template = Template.fromStack(stack);
  });

  const statementsOf = (fn: lambda.IFunction): Statement[] => roleStatements(stack, template, fn);

  it('creates no Secrets Manager secret and grants no secretsmanager action', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(stack.clientSecret).toBeUndefined();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('secretsmanager:');
    expect(Object.keys(template.findOutputs('ClientSecretArn'))).toEqual([]);
  });

  it.each(['webApi', 'daemon'] as const)(
    'lets %s get an STS web identity token for the Entra audience only',
    (name) => {
      const sts = statementsOf(stack[name]).filter((s) => actionsOf(s).some((a) => a.startsWith('sts:')));
      expect(sts).toEqual([
        {
          Effect: 'Allow',
          Action: 'sts:GetWebIdentityToken',
          Resource: '*',
          Condition: {
            'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': ['api://AzureADTokenExchange'] },
            Null: { 'sts:IdentityTokenAudience': 'false' },
          },
        },
      ]);
    },
  );

  it.each(['webApi', 'daemon'] as const)(
    'gives %s an environment with the assertion source and no secret, that the config accepts',
    (name) => {
      const cfn = stack[name].node.defaultChild as lambda.CfnFunction;
      const vars = (stack.resolve(cfn.environment) as { variables: Record<string, unknown> }).variables;
      expect(vars[FUNCTION_ENV.clientAssertionSource]).toBe('aws-web-identity');
      expect(vars[FUNCTION_ENV.clientSecretArn]).toBeUndefined();
      // Lambda sets AWS_REGION itself; the table and key are deploy-time references.
      const env = Object.fromEntries(
        Object.entries(vars).map(([k, v]) => [k, typeof v === 'string' ? v : 'deploy-time-value']),
      );
      const config = loadFunctionConfig({
        ...env,
        AWS_REGION: 'eu-west-1',
        [TOKEN_CACHE_ENV.tableName]: 'MsalTokenCache-TokenCacheTable-1A2B3C',
        [TOKEN_CACHE_ENV.kmsKeyId]:
          'arn:aws:kms:eu-west-1:123456789012:key/0d9f4c4e-1111-2222-3333-444455556666',
      });
      expect(config.msal.credential).toEqual({ kind: 'aws-web-identity', durationSeconds: 900 });
    },
  );

  it('outputs the issuer, audience and each role ARN to register as federated credentials', () => {
    template.hasOutput('FederatedIssuer', { Value: STS_ISSUER });
    template.hasOutput('FederatedAudience', { Value: 'api://AzureADTokenExchange' });
    template.hasOutput('WebApiFederatedSubject', {
      Value: { 'Fn::GetAtt': [id(stack.webApi.role as iam.Role), 'Arn'] },
    });
    template.hasOutput('DaemonFederatedSubject', {
      Value: { 'Fn::GetAtt': [id(stack.daemon.role as iam.Role), 'Arn'] },
    });
  });

  it('says how to look the issuer up when it is not given, and refuses a secret with it', () => {
    const app = new App();
    const bare = new TokenCacheStack(app, 'Bare', {
      credential: 'federated',
      apiRequiredScopes: ['access_as_user'],
    });
    Template.fromStack(bare).hasOutput('FederatedIssuer', {
      Value: Match.stringLikeRegexp('get-outbound-web-identity-federation-info'),
    });
    expect(() =>
      createApp({ context: { credential: 'password', apiRequiredScopes: 'access_as_user' } }),
    ).toThrow(/credential must be "secret" or "federated", got "password"/);
  });

  it('passes cdk-nag with a reason for the one wildcard resource', () => {
    // createApp adds the AwsSolutions checks: an unacknowledged finding fails the synth.
    expect(() => (stack.node.root as App).synth({ force: true })).not.toThrow();
  });
});
