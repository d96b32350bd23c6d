import * as fs from 'node:fs';
import * as path from 'node:path';
import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import type { FunctionVariable } from '../../functions/core/config';
import { TokenCacheTable, type TokenCachePartitionKind, type TokenCacheTableProps } from './token-cache';
import { Metric } from '../../shared/observability';
import { DEFAULT_METRICS_NAMESPACE } from '../../shared/aws/emf';

/**
 * The EMF settings each function gets (read by the cache's EMF sink, shared/aws/emf.ts), and
 * the `service` dimension value of each function: the alarms below read exactly these.
 */
export const METRICS_ENV = {
  namespace: 'POWERTOOLS_METRICS_NAMESPACE',
  service: 'POWERTOOLS_SERVICE_NAME',
} as const;
export const METRICS_SERVICE = { webApi: 'web-api', daemon: 'daemon' } as const;
/** The partition kinds (the `kind` dimension): closed set, summed by the alarms. */
const PARTITION_KINDS = ['app', 'obo', 'user'] as const;

/** Environment variables the handlers read besides the cache's own, as `shared/config.ts` names them. */
export const FUNCTION_ENV = {
  /** Entra application (client) id. */
  clientId: 'MSAL_CLIENT_ID',
  /** Authority URL, `https://login.microsoftonline.com/<tenant>`. */
  authority: 'MSAL_AUTHORITY',
  /** ARN of the Secrets Manager secret whose SecretString is the client secret; read once per cold start. */
  clientSecretArn: 'MSAL_CLIENT_SECRET_ARN',
  /** URL the function calls with the token it obtained. */
  downstreamUrl: 'DOWNSTREAM_URL',
  /** Scopes requested on behalf of a caller, space-separated. */
  downstreamScopes: 'DOWNSTREAM_SCOPES',
  /** The daemon's one `/.default` scope. */
  daemonScope: 'DAEMON_SCOPE',
  /** Accepted `aud` of incoming tokens, comma-separated. */
  apiAudience: 'API_AUDIENCE',
  /** Accepted `iss` of incoming tokens. */
  apiIssuer: 'API_ISSUER',
  /** Multi-tenant API: the tenant ids whose tokens are accepted, comma-separated. */
  apiAllowedTenants: 'API_ALLOWED_TENANTS',
  /** The tenants the daemon runs for, comma-separated. */
  daemonTenants: 'DAEMON_TENANTS',
  /** Delegated scopes one of which an incoming token must carry in `scp`, comma-separated, or `*`. */
  apiRequiredScopes: 'API_REQUIRED_SCOPES',
  /** `aws-web-identity` when the stack's credential is `federated`: no secret anywhere. */
  clientAssertionSource: 'MSAL_CLIENT_ASSERTION_SOURCE',
} as const satisfies Record<string, FunctionVariable>;

/** The audience Entra requires of a federated credential's assertion (public cloud). */
export const FEDERATED_AUDIENCE = 'api://AzureADTokenExchange';

/**
 * How the functions prove to Entra that they are the app: a client secret in Secrets
 * Manager, or (no secret anywhere) IAM outbound identity federation, each function role's
 * STS web identity token registered on the app as a federated credential.
 */
export type StackCredential = 'secret' | 'federated';

/** Placeholder tenant used when none is given, so `cdk synth` works offline; replace it to deploy. */
export const PLACEHOLDER_TENANT_ID = '00000000-0000-0000-0000-000000000000';
/** Placeholder application (client) id used when none is given; replace it to deploy. */
export const PLACEHOLDER_CLIENT_ID = '00000000-0000-0000-0000-000000000001';

/** Properties of a {@link TokenCacheStack}. */
export interface TokenCacheStackProps extends StackProps {
  /**
   * Entra tenant id (GUID) of the app registration.
   * @default PLACEHOLDER_TENANT_ID
   */
  readonly tenantId?: string;

  /**
   * Application (client) id of the confidential client the functions run as.
   * @default PLACEHOLDER_CLIENT_ID
   */
  readonly clientId?: string;

  /**
   * Host of the Entra authority.
   * @default 'https://login.microsoftonline.com'
   */
  readonly authorityHost?: string;

  /**
   * Audiences the JWT authorizer and the web API accept.
   * @default - [`api://<clientId>`, `<clientId>`], the App ID URI (v1 tokens) and the client id (v2 tokens)
   */
  readonly apiAudiences?: string[];

  /**
   * The one issuer the JWT authorizer (and the web API) accept. The default is the v2
   * issuer: set `api.requestedAccessTokenVersion` to 2 in the API's app manifest, or pass
   * `https://sts.windows.net/<tenant>/` for v1 tokens.
   * @default - `<authorityHost>/<tenantId>/v2.0`
   */
  readonly apiIssuer?: string;

  /**
   * A multi-tenant API: one app registration, callers from many tenants. The functions run
   * on `<authorityHost>/organizations`; the web API checks each token's `iss` against the
   * issuer of its own `tid`, refuses tenants outside `allowedTenants` (API_ALLOWED_TENANTS),
   * and exchanges OBO in the caller's tenant. An HTTP API JWT authorizer takes exactly one
   * issuer and cannot express `https://<host>/{tid}/v2.0`: with exactly one allowed tenant
   * it checks that tenant's v2 issuer; with none or several the route has NO authorizer and
   * the handler alone validates (as it always does, before any token request). Not with
   * `tenantId` or `apiIssuer`.
   * @default - single-tenant: only `tenantId`'s tokens
   */
  readonly multiTenant?: {
    /** Tenant ids (GUIDs) whose tokens are accepted. @default [] (any tenant: the function warns at cold start) */
    readonly allowedTenants?: string[];
  };

  /**
   * Tenant ids (GUIDs) the daemon runs for, each with its own app partition (DAEMON_TENANTS).
   * @default - the authority's tenant only
   */
  readonly daemonTenants?: string[];

  /**
   * Delegated scopes (`scp`) one of which a caller's token must carry, checked by the JWT
   * authorizer and again by the web API (which also refuses app-only and ID tokens).
   * Required: synth fails without it. `['*']` accepts any delegated scope (not recommended;
   * the function logs a warning at cold start).
   * @example ['access_as_user']
   */
  readonly apiRequiredScopes?: string[];

  /**
   * Downstream URL the web API calls on behalf of the caller.
   * @default 'https://graph.microsoft.com/v1.0/me'
   */
  readonly downstreamUrl?: string;

  /**
   * Delegated scopes the web API requests on behalf of the caller.
   * @default ['https://graph.microsoft.com/User.Read']
   */
  readonly downstreamScopes?: string[];

  /**
   * Downstream URL the daemon calls with its app-only token.
   * @default 'https://graph.microsoft.com/v1.0/organization'
   */
  readonly daemonDownstreamUrl?: string;

  /**
   * The `/.default` scope of the daemon's app-only token.
   * @default - derived by the function from the first downstream scope, e.g. `https://graph.microsoft.com/.default`
   */
  readonly daemonScope?: string;

  /**
   * When the daemon runs.
   * @default events.Schedule.rate(Duration.minutes(15))
   */
  readonly daemonSchedule?: events.Schedule;

  /**
   * Retention of the functions' and the API's logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Where the alarms notify.
   * @default - alarms change state without notifying anyone
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * CloudWatch namespace of the cache's EMF metrics (`POWERTOOLS_METRICS_NAMESPACE` of both functions).
   * @default 'msal-cloud-cache'
   */
  readonly metricsNamespace?: string;

  /**
   * Token-endpoint requests per function per 5 minutes above which the token-call-rate
   * alarm fires (a cache that stopped serving, or a caller flood; Entra throttles per app).
   * @default 600
   */
  readonly tokenRequestAlarmThreshold?: number;

  /**
   * How the functions authenticate to Entra. `federated` needs, once per AWS account,
   * `aws iam enable-outbound-web-identity-federation`, and a federated credential per
   * function role on the Entra app (infra/README.md, "No secret: federated credential").
   * @default 'secret' (deploys without an account-wide IAM change; see infra/README.md for why)
   */
  readonly credential?: StackCredential;

  /**
   * The account's STS token issuer, `https://<id>.tokens.sts.global.api.aws`
   * (`aws iam get-outbound-web-identity-federation-info --query IssuerIdentifier`), only
   * to print it among the outputs. @default - the output says how to look it up
   */
  readonly webIdentityIssuer?: string;

  /**
   * An existing secret holding the client secret as its plain string value (`credential: 'secret'`).
   * @default - a new secret with a generated placeholder value; put the real client secret in after deploying
   */
  readonly clientSecret?: secretsmanager.ISecret;

  /**
   * Properties of the token cache (table and key).
   * @default - {@link TokenCacheTable} defaults, with `clientId` set to this stack's client id
   */
  readonly tokenCache?: TokenCacheTableProps;

  /**
   * Steady-state requests per second the HTTP API stage accepts; `burst` is twice this.
   * @default 50
   */
  readonly apiRateLimit?: number;

  /**
   * Root of the msal-cloud-cache package, holding the prebuilt handlers in `dist/lambda`.
   * @default - the nearest directory above this file that holds a package.json
   */
  readonly projectRoot?: string;
}

/**
 * The AWS deployment: the token cache, the web API (HTTP API with a JWT authorizer,
 * `GET /api/downstream`) and the scheduled daemon, each on its own least-privilege role,
 * with the client secret in Secrets Manager, log retention and alarms.
 */
export class TokenCacheStack extends Stack {
  /** The token cache the functions share. */
  public readonly tokenCache: TokenCacheTable;
  /** The OBO web API function. */
  public readonly webApi: lambda.Function;
  /** The client-credentials daemon function. */
  public readonly daemon: lambda.Function;
  /** The HTTP API in front of the web API. */
  public readonly httpApi: apigwv2.HttpApi;
  /** The API's `$default` stage; its URL plus `api/downstream` is the web API. */
  public readonly httpStage: apigwv2.HttpStage;
  /** The secret holding the client secret; `undefined` with the `federated` credential. */
  public readonly clientSecret: secretsmanager.ISecret | undefined;
  /** How the functions authenticate to Entra. */
  public readonly credential: StackCredential;
  /** The rule that fires the daemon. */
  public readonly daemonRule: events.Rule;
  /** CloudWatch namespace of the cache's EMF metrics. */
  public readonly metricsNamespace: string;

  constructor(scope: Construct, id: string, props: TokenCacheStackProps = {}) {
    super(scope, id, props);
    this.metricsNamespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const multiTenant = checkMultiTenant(props);
    const tenantId = multiTenant ? 'organizations' : (props.tenantId ?? PLACEHOLDER_TENANT_ID);
    const clientId = props.clientId ?? PLACEHOLDER_CLIENT_ID;
    const authorityHost = (props.authorityHost ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
    const authority = `${authorityHost}/${tenantId}`;
    // Multi-tenant: the authorizer can hold one tenant's issuer at most (see `multiTenant`).
    const issuer = multiTenant
      ? multiTenant.length === 1
        ? `${authorityHost}/${multiTenant[0]}/v2.0`
        : undefined
      : (props.apiIssuer ?? `${authority}/v2.0`);
    const daemonTenants = checkTenantIds('daemonTenants', props.daemonTenants ?? []);
    const audiences = props.apiAudiences ?? [`api://${clientId}`, clientId];
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const root = props.projectRoot ?? findProjectRoot(__dirname);
    const requiredScopes = checkRequiredScopes(props.apiRequiredScopes);

    this.tokenCache = new TokenCacheTable(this, 'TokenCache', { clientId, ...props.tokenCache });

    this.credential = props.credential ?? 'secret';
    if (this.credential !== 'secret' && this.credential !== 'federated') {
      throw new Error(`credential must be "secret" or "federated", got ${JSON.stringify(this.credential)}`);
    }
    if (this.credential === 'federated' && props.clientSecret) {
      throw new Error('clientSecret is for credential "secret"; the federated credential needs no secret');
    }
    if (this.credential === 'federated') {
      this.clientSecret = undefined;
    } else if (props.clientSecret) {
      this.clientSecret = props.clientSecret;
    } else {
      const secret = new secretsmanager.Secret(this, 'ClientSecret', {
        description: `Client secret of Entra app ${clientId}; replace the generated placeholder after deploying`,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'The value is a client secret issued by Entra ID; a Lambda rotator would need Graph permission to add ' +
          'credentials to the app registration. It is rotated in Entra ID and put here with put-secret-value ' +
          '(see infra/README.md); a certificate credential avoids the shared secret altogether.',
      });
      this.clientSecret = secret;
    }

    const common = {
      tokenCache: this.tokenCache,
      clientSecret: this.clientSecret,
      logRetention,
      root,
    };
    // Both functions load the same configuration, so both get every required variable.
    const environment: Record<string, string> = {
      [FUNCTION_ENV.clientId]: clientId,
      [FUNCTION_ENV.authority]: authority,
      ...(this.clientSecret
        ? { [FUNCTION_ENV.clientSecretArn]: this.clientSecret.secretArn }
        : { [FUNCTION_ENV.clientAssertionSource]: 'aws-web-identity' }),
      [FUNCTION_ENV.downstreamScopes]: (
        props.downstreamScopes ?? ['https://graph.microsoft.com/User.Read']
      ).join(' '),
      [FUNCTION_ENV.apiAudience]: audiences.join(','),
      ...(multiTenant
        ? multiTenant.length > 0
          ? { [FUNCTION_ENV.apiAllowedTenants]: multiTenant.join(',') }
          : {}
        : { [FUNCTION_ENV.apiIssuer]: issuer ?? '' }),
      [FUNCTION_ENV.apiRequiredScopes]: requiredScopes.join(','),
    };
    this.webApi = this.cacheFunction('WebApi', {
      ...common,
      entry: 'web-api',
      // The web API reads and writes only OBO partitions: its role opens no app partition.
      partitionKinds: ['obo'],
      description: 'Validates the caller, gets a downstream token on behalf of the caller, calls downstream',
      timeout: Duration.seconds(10),
      environment: {
        ...environment,
        [FUNCTION_ENV.downstreamUrl]: props.downstreamUrl ?? 'https://graph.microsoft.com/v1.0/me',
        [METRICS_ENV.namespace]: this.metricsNamespace,
        [METRICS_ENV.service]: METRICS_SERVICE.webApi,
      },
    });
    this.daemon = this.cacheFunction('Daemon', {
      ...common,
      entry: 'daemon',
      // The daemon holds only app partitions: its role opens no caller's OBO partition.
      partitionKinds: ['app'],
      description: 'Gets an app token (client credentials) and calls downstream on a schedule',
      timeout: Duration.seconds(30),
      environment: {
        ...environment,
        [FUNCTION_ENV.downstreamUrl]:
          props.daemonDownstreamUrl ?? 'https://graph.microsoft.com/v1.0/organization',
        ...(props.daemonScope ? { [FUNCTION_ENV.daemonScope]: props.daemonScope } : {}),
        ...(daemonTenants.length > 0 ? { [FUNCTION_ENV.daemonTenants]: daemonTenants.join(',') } : {}),
        [METRICS_ENV.namespace]: this.metricsNamespace,
        [METRICS_ENV.service]: METRICS_SERVICE.daemon,
      },
    });

    [this.httpApi, this.httpStage] = this.webApiGateway(
      issuer,
      audiences,
      requiredScopes,
      props,
      logRetention,
    );

    this.daemonRule = new events.Rule(this, 'DaemonSchedule', {
      description: 'Runs the token-cache daemon',
      schedule: props.daemonSchedule ?? events.Schedule.rate(Duration.minutes(15)),
      // A missed run is repaired by the next one; retrying for hours would only pile up.
      targets: [
        new targets.LambdaFunction(this.daemon, { retryAttempts: 2, maxEventAge: Duration.minutes(10) }),
      ],
    });

    this.addAlarms(props.alarmTopic, props.tokenRequestAlarmThreshold ?? 600);
    new CfnOutput(this, 'ApiUrl', { value: `${this.httpStage.url}api/downstream` });
    if (this.clientSecret) {
      new CfnOutput(this, 'ClientSecretArn', { value: this.clientSecret.secretArn });
    } else {
      this.federatedOutputs(props.webIdentityIssuer);
    }
    new CfnOutput(this, 'TableName', { value: this.tokenCache.table.tableName });
    new CfnOutput(this, 'KeyArn', { value: this.tokenCache.key.keyArn });
  }

  /** What to register on the Entra app: one federated credential per function role. */
  private federatedOutputs(issuer: string | undefined): void {
    new CfnOutput(this, 'FederatedIssuer', {
      description: "The federated credentials' issuer: this account's STS token issuer",
      value:
        issuer ?? 'aws iam get-outbound-web-identity-federation-info --query IssuerIdentifier --output text',
    });
    new CfnOutput(this, 'FederatedAudience', { value: FEDERATED_AUDIENCE });
    new CfnOutput(this, 'WebApiFederatedSubject', {
      description: "Subject of the web API's federated credential (its role ARN)",
      value: this.webApi.role!.roleArn,
    });
    new CfnOutput(this, 'DaemonFederatedSubject', {
      description: "Subject of the daemon's federated credential (its role ARN)",
      value: this.daemon.role!.roleArn,
    });
  }

  /** One function on its own role: its log group, the cache, and its client credential, nothing else. */
  private cacheFunction(
    id: string,
    options: {
      entry: keyof typeof LAMBDA_BUNDLES;
      description: string;
      timeout: Duration;
      environment: Record<string, string>;
      tokenCache: TokenCacheTable;
      clientSecret: secretsmanager.ISecret | undefined;
      logRetention: logs.RetentionDays;
      root: string;
      partitionKinds: readonly TokenCachePartitionKind[];
    },
  ): lambda.Function {
    const logGroup = new logs.LogGroup(this, `${id}Logs`, { retention: options.logRetention });
    // An own role instead of the default one: AWSLambdaBasicExecutionRole may write to any log group.
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${id} function`,
    });
    logGroup.grantWrite(role);
    const fn = new lambda.Function(this, id, {
      code: lambda.Code.fromAsset(lambdaBundle(options.root, options.entry)),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 512,
      timeout: options.timeout,
      description: options.description,
      role,
      logGroup,
      environment: options.environment,
    });
    options.tokenCache.bindTo(fn, { partitionKinds: options.partitionKinds });
    if (options.clientSecret) {
      options.clientSecret.grantRead(fn);
    } else {
      // The web identity token for Entra, and for no other audience.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: ['sts:GetWebIdentityToken'],
          resources: ['*'],
          conditions: {
            'ForAllValues:StringEquals': { 'sts:IdentityTokenAudience': [FEDERATED_AUDIENCE] },
            // ForAllValues alone also matches a request without the key.
            Null: { 'sts:IdentityTokenAudience': 'false' },
          },
        }),
      );
      Validations.of(role).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'sts:GetWebIdentityToken has no resource type (IAM accepts only "*"); the statement is bound by its ' +
          'sts:IdentityTokenAudience condition to the Entra token exchange audience.',
      });
    }
    return fn;
  }

  private webApiGateway(
    issuer: string | undefined,
    audiences: string[],
    requiredScopes: readonly string[],
    props: TokenCacheStackProps,
    logRetention: logs.RetentionDays,
  ): [apigwv2.HttpApi, apigwv2.HttpStage] {
    const api = new apigwv2.HttpApi(this, 'HttpApi', {
      description: 'Token-cache web API',
      createDefaultStage: false,
    });
    const accessLogs = new logs.LogGroup(this, 'HttpApiAccessLogs', { retention: logRetention });
    const rateLimit = props.apiRateLimit ?? 50;
    const stage = api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit, burstLimit: rateLimit * 2 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        // No headers and no query string: an Authorization header must never reach a log.
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            authorizerError: '$context.authorizer.error',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    const integration = new HttpLambdaIntegration('WebApiIntegration', this.webApi);
    if (issuer === undefined) {
      // Multi-tenant without a single allowed tenant: no JWT authorizer can express the
      // issuer of each token's own tenant, so the handler is the only gate (it always checks).
      const routes = api.addRoutes({
        path: '/api/downstream',
        methods: [apigwv2.HttpMethod.GET],
        integration,
      });
      for (const route of routes) {
        Validations.of(route).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason:
            'Multi-tenant API: an HTTP API JWT authorizer takes one issuer and cannot check the issuer of each ' +
            "token's own tenant; the web API handler validates every token (signature, audience, the issuer of " +
            'its tid, the tenant allow-list, scopes) before any token request, and answers 401/403 itself.',
        });
      }
      return [api, stage];
    }
    api.addRoutes({
      path: '/api/downstream',
      methods: [apigwv2.HttpMethod.GET],
      integration,
      authorizer: new HttpJwtAuthorizer('EntraJwtAuthorizer', issuer, { jwtAudience: audiences }),
      ...(requiredScopes.includes('*') ? {} : { authorizationScopes: [...requiredScopes] }),
    });
    return [api, stage];
  }

  /** Alarms on the cache's own EMF metrics (shared/aws/emf.ts), per function. */
  private cacheMetricAlarms(period: Duration, tokenRequestThreshold: number): cloudwatch.Alarm[] {
    const ns = this.metricsNamespace;
    const common = {
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    };
    const alarms: cloudwatch.Alarm[] = [];
    for (const [id, service] of [
      ['WebApi', METRICS_SERVICE.webApi],
      ['Daemon', METRICS_SERVICE.daemon],
    ] as const) {
      alarms.push(
        cacheMetricWithReason(
          ns,
          service,
          Metric.WriteFailed,
          'conflict-retries-exhausted',
          period,
        ).createAlarm(this, `${id}ConflictRetriesExhaustedAlarm`, {
          ...common,
          alarmDescription: `${id}: token cache writes gave up after the bounded conflict retries (tokens kept in the request, not stored)`,
          threshold: 1,
        }),
        cacheMetric(ns, service, Metric.EnvelopeRejected, period).createAlarm(
          this,
          `${id}EnvelopeRejectedAlarm`,
          {
            ...common,
            alarmDescription: `${id}: stored token caches failed to open or authenticate (tampering, a foreign key ring, a lost master key); see the reason dimension`,
            threshold: 1,
          },
        ),
        new cloudwatch.MathExpression({
          expression: 'FILL(reads, 0) + FILL(writes, 0)',
          usingMetrics: {
            reads: cacheMetric(ns, service, Metric.StoreError, period),
            writes: cacheMetricWithReason(ns, service, Metric.WriteFailed, 'store-unavailable', period),
          },
          period,
          label: 'store unavailable (reads + writes)',
        }).createAlarm(this, `${id}StoreUnavailableAlarm`, {
          ...common,
          alarmDescription: `${id}: the token cache table could not be read or written (requests fell back to the authority)`,
          threshold: 5,
        }),
        cacheMetric(ns, service, Metric.TokenRequest, period).createAlarm(
          this,
          `${id}TokenRequestRateAlarm`,
          {
            ...common,
            alarmDescription: `${id}: token-endpoint requests above ${tokenRequestThreshold} per 5 minutes (the cache is not serving, or a flood of new callers)`,
            threshold: tokenRequestThreshold,
          },
        ),
      );
    }
    return alarms;
  }

  private addAlarms(topic: sns.ITopic | undefined, tokenRequestThreshold: number): void {
    const period = Duration.minutes(5);
    const alarms: cloudwatch.Alarm[] = [];
    alarms.push(...this.cacheMetricAlarms(period, tokenRequestThreshold));
    for (const [id, fn] of [
      ['WebApi', this.webApi],
      ['Daemon', this.daemon],
    ] as const) {
      alarms.push(
        fn.metricErrors({ period, statistic: 'Sum' }).createAlarm(this, `${id}ErrorsAlarm`, {
          alarmDescription: `${id} function invocations failed`,
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
        fn.metricThrottles({ period, statistic: 'Sum' }).createAlarm(this, `${id}ThrottlesAlarm`, {
          alarmDescription: `${id} function invocations were throttled`,
          threshold: 1,
          evaluationPeriods: 1,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    alarms.push(
      this.httpApi.metricServerError({ period, statistic: 'Sum' }).createAlarm(this, 'HttpApi5xxAlarm', {
        alarmDescription: 'The web API answered 5xx (downstream, authority or cache failures)',
        threshold: 5,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
      new cloudwatch.Alarm(this, 'TableThrottlesAlarm', {
        alarmDescription: 'The token cache table throttled reads or writes',
        metric: this.tokenCache.table.metricThrottledRequestsForOperations({
          operations: [
            dynamodb.Operation.GET_ITEM,
            dynamodb.Operation.PUT_ITEM,
            dynamodb.Operation.DELETE_ITEM,
          ],
          period,
        }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );
    if (topic) {
      const action = new cloudwatchActions.SnsAction(topic);
      for (const alarm of alarms) alarm.addAlarmAction(action);
    }
  }
}

/** `apiRequiredScopes`, checked: the web API must never exchange a token that names no scope of it. */
function checkRequiredScopes(scopes: readonly string[] | undefined): readonly string[] {
  const list = (scopes ?? []).map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) {
    throw new Error(
      "TokenCacheStack: apiRequiredScopes is required: the delegated scope(s) a caller's token must carry, " +
        'e.g. ["access_as_user"] (context: -c apiRequiredScopes=access_as_user); ["*"] accepts any delegated scope',
    );
  }
  const bad = list.find((s) => !/^[\x21-\x7e]+$/.test(s) || s.includes(','));
  if (bad !== undefined || (list.includes('*') && list.length > 1)) {
    throw new Error(
      `TokenCacheStack: apiRequiredScopes must be scope names without spaces or commas, or "*" alone; got ${JSON.stringify(list)}`,
    );
  }
  return list;
}

/**
 * The cache's own EMF metrics of one function, as CloudWatch extracts them: `[service]`
 * totals, or `[service, kind, reason]` for one reason (summed over the partition kinds).
 */
export function cacheMetric(
  namespace: string,
  service: string,
  name: (typeof Metric)[keyof typeof Metric],
  period: Duration,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace,
    metricName: name,
    dimensionsMap: { service },
    period,
    statistic: 'Sum',
  });
}

/** The sum over partition kinds of a metric with one `reason`, as a math expression. */
export function cacheMetricWithReason(
  namespace: string,
  service: string,
  name: (typeof Metric)[keyof typeof Metric],
  reason: string,
  period: Duration,
): cloudwatch.MathExpression {
  const usingMetrics: Record<string, cloudwatch.IMetric> = {};
  for (const kind of PARTITION_KINDS) {
    usingMetrics[kind] = new cloudwatch.Metric({
      namespace,
      metricName: name,
      dimensionsMap: { service, kind, reason },
      period,
      statistic: 'Sum',
    });
  }
  return new cloudwatch.MathExpression({
    expression: PARTITION_KINDS.map((k) => `FILL(${k}, 0)`).join(' + '),
    usingMetrics,
    period,
    label: `${name} (${reason})`,
  });
}

/** The nearest directory at or above `start` that holds a package.json. */
/** The Lambda bundles `npm run build` writes (infra/build/bundle.ts), under the package root. */
export const LAMBDA_BUNDLES = {
  'web-api': 'dist/lambda/web-api',
  daemon: 'dist/lambda/daemon',
} as const;

/**
 * The folder of a prebuilt handler bundle: in this repo after `npm run build`, in an
 * installed package as shipped.
 * @throws Error saying how to build it when it is missing
 */
export function lambdaBundle(root: string, name: keyof typeof LAMBDA_BUNDLES): string {
  const dir = path.join(root, LAMBDA_BUNDLES[name]);
  if (!fs.existsSync(path.join(dir, 'index.js'))) {
    throw new Error(
      `The ${name} Lambda bundle is missing: expected ${path.join(dir, 'index.js')}. In the msal-cloud-cache repository run \`npm run build\`; an installed package ships it (reinstall msal-cloud-cache if it is gone).`,
    );
  }
  return dir;
}

/** The nearest directory at or above `start` holding a package.json (this package's root). */
export function findProjectRoot(start: string): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`No package.json at or above ${start}`);
  }
}

const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Tenant ids, checked at synth time. */
function checkTenantIds(prop: string, tenants: readonly string[]): string[] {
  const bad = tenants.filter((t) => !TENANT_ID.test(t));
  if (bad.length > 0) throw new Error(`${prop} must be tenant ids (GUIDs), got ${JSON.stringify(bad)}`);
  return [...new Set(tenants.map((t) => t.toLowerCase()))];
}

/** The allowed tenants of a multi-tenant stack ([] for any), or `undefined` when single-tenant. */
function checkMultiTenant(props: TokenCacheStackProps): string[] | undefined {
  if (props.multiTenant === undefined) return undefined;
  if (props.tenantId !== undefined || props.apiIssuer !== undefined) {
    throw new Error(
      'multiTenant runs on the organizations authority and checks each token against its own tenant: do not set tenantId or apiIssuer with it',
    );
  }
  return checkTenantIds('multiTenant.allowedTenants', props.multiTenant.allowedTenants ?? []);
}
