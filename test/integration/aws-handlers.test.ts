import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { createDaemonHandler } from '../../functions/aws/daemon';
import { createWebApiHandler } from '../../functions/aws/web-api';
import { DaemonRunError } from '../../functions/core/daemon';
import { createDeps } from '../../functions/aws/deps';
import { startLocalAuthority } from '../../local/authority';
import { startDownstreamApi } from '../../local/downstream';
import { startLocalDynamo } from '../../local/dynamodb';
import { startLocalKms } from '../../local/kms';
import { startLocalSecretsManager } from '../../local/secrets-manager';
import { post } from '../support/bad-http-input';
import { CapturingLogger } from '../support/cache-harness';
import { describeHandlerCases, handlerEnv, handlerWorld } from '../support/handler-cases';
import { DOWNSTREAM_AUDIENCE, InstanceBuilder, parse } from '../support/handler-cases';
import type { HandlerInstance, HandlerResponse, HandlerWorld } from '../support/handler-cases';
import { apiGatewayEvent, scheduledEvent } from '../support/lambda-events';
import { registerSecret } from '../support/secret-registry';

const CLIENT_ID = '2d7c9e41-8b3a-4f6d-a1e5-9c0b7d3f2e18';
const CLIENT_SECRET = 'aws-handler-test-client-secret';

/**
 * The local authority, the AWS services (DynamoDB, KMS, Secrets Manager) and the downstream
 * API, with the authority's CA written to `caFile`; `stop()` stops them all and removes the file.
 */
async function startAwsServices() {
  const authority = await startLocalAuthority({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
  });
  const [dynamo, kms, secrets] = await Promise.all([
    startLocalDynamo(),
    startLocalKms(),
    startLocalSecretsManager(),
  ]);
  const downstream = await startDownstreamApi({ authority, audience: DOWNSTREAM_AUDIENCE });
  const dir = mkdtempSync(join(tmpdir(), 'aws-handlers-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, authority.ca);
  return {
    authority,
    dynamo,
    kms,
    secrets,
    downstream,
    caFile,
    async stop() {
      await Promise.all([downstream.stop(), secrets.stop(), kms.stop(), dynamo.stop(), authority.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('AWS handlers', () => {
  let services: Awaited<ReturnType<typeof startAwsServices>>;
  let env: Record<string, string>;
  let world: HandlerWorld;
  const instances = new InstanceBuilder();
  const savedEnv: Record<string, string | undefined> = {};

  /** A separately constructed Lambda container: its own config, cache, clients and logger. */
  function container(overrides: Record<string, string | undefined> = {}) {
    const logger = new CapturingLogger();
    const deps = instances.deps(() => createDeps({ env: { ...env, ...overrides }, logger }));
    return { webApi: createWebApiHandler(deps), daemon: createDaemonHandler(deps), logger };
  }

  /** A payload-2.0 result as the shared cases read it. */
  function response(result: APIGatewayProxyStructuredResultV2): HandlerResponse {
    return {
      status: result.statusCode ?? 0,
      headers: Object.fromEntries(Object.entries(result.headers ?? {}).map(([k, v]) => [k, String(v)])),
      body: result.body ?? '',
    };
  }

  /** The container behind the shared cases: a request id is Lambda's `awsRequestId`. */
  function instance(overrides?: Record<string, string | undefined>): HandlerInstance {
    const { webApi, daemon, logger } = container(overrides);
    return {
      logger,
      web: async (request, requestId) => {
        const result = await webApi(
          apiGatewayEvent(request),
          requestId ? { awsRequestId: requestId } : undefined,
        );
        return response(result);
      },
      daemon: (runId) => daemon(scheduledEvent(), runId ? { awsRequestId: runId } : undefined),
    };
  }

  beforeAll(async () => {
    // Lambda's role gives the SDK credentials through the environment; so do these.
    for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) savedEnv[name] = process.env[name];
    process.env.AWS_ACCESS_KEY_ID = 'AKIDLOCALTEST';
    process.env.AWS_SECRET_ACCESS_KEY = 'local-test-credentials';

    services = await startAwsServices();
    const { authority, dynamo, kms, secrets, downstream } = services;
    const key = await kms.createKey({ alias: 'alias/token-cache' });
    const secretArn = await secrets.createSecret('web-api/client-secret', CLIENT_SECRET);
    registerSecret('client-secret', CLIENT_SECRET);
    const app = { authority, downstream, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET };
    env = {
      ...handlerEnv(app, services.caFile),
      MSAL_CLIENT_SECRET_ARN: secretArn,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
      AWS_REGION: kms.region,
      TOKEN_CACHE_TABLE_NAME: dynamo.tableName,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      TOKEN_CACHE_KMS_KEY_ID: key.arn,
      AWS_ENDPOINT_URL_KMS: kms.endpoint,
    };
    world = await handlerWorld(app, {
      instance,
      keyCalls: () => kms.counters.calls('GenerateDataKey') + kms.counters.calls('Decrypt'),
      keyGenerates: () => kms.counters.calls('GenerateDataKey'),
      secretReads: () => secrets.counters.calls('GetSecretValue'),
      coldStartTokenCalls: 0,
      coldStartSecretReads: 1,
    });
  });

  afterAll(async () => {
    await instances.close();
    await services.stop();
    for (const [name, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  describeHandlerCases(() => world);

  describe('API Gateway', () => {
    it('decodes a base64 body and strips a named stage from the path', async () => {
      const { webApi } = container();
      const event = apiGatewayEvent(post(world.tokens.valid, '{"greeting":"grüezi ☃"}'), {
        stage: 'prod',
        base64: true,
      });

      const result = await webApi(event);

      expect(result.statusCode).toBe(200);
      expect(parse(response(result))).toMatchObject({ data: { received: { greeting: 'grüezi ☃' } } });
    });
  });

  describe('daemon on EventBridge', () => {
    it('fails the run at startup when the configuration is invalid', async () => {
      const { daemon } = container({ TOKEN_CACHE_KMS_KEY_ID: undefined });
      const stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);

      try {
        const error = await daemon(scheduledEvent()).then(
          () => undefined,
          (e: unknown) => e,
        );

        expect(error).toBeInstanceOf(DaemonRunError);
        expect((error as DaemonRunError).stage).toBe('startup');
        expect(stderr.mock.calls.map((a) => String(a[0])).join('\n')).toContain('TOKEN_CACHE_KEY_RING');
      } finally {
        stderr.mockRestore();
      }
    });
  });
});
