/**
 * The local stack behind `npm start`: everything the functions need, on this machine.
 *
 * AWS (default): the Entra-compatible authority (HTTPS), dynalite on disk, a KMS- and a
 * Secrets Manager-compatible server, the downstream API, and a host serving the Lambda
 * web API as an HTTP API plus the daemon on a timer. Azure (`cloud: 'azure'`):
 * cosmosdb-server and a Key Vault-compatible server instead, and the Azure Functions
 * handlers.
 *
 * State that must survive a restart lives under `dataDir` (gitignored): the TLS
 * certificate, the authority's signing keys, the KMS key material and dynalite's files.
 * Ports are fixed (from `portBase`) because token issuers and endpoints name them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createDaemonHandler } from '../functions/aws/daemon';
import { createWebApiHandler } from '../functions/aws/web-api';
import { createDeps as createAwsDeps } from '../functions/aws/deps';
import { lazy } from '../functions/core/deps';
import { CacheVariables, GUID_PATTERN } from '../shared/config';
import { ConfigurationError } from '../shared/errors';
import type { DaemonSummary } from '../functions/core/daemon';
import type { CacheMetadata } from '../shared/cache/metadata';
import { silentLogger, type LogFields, type Logger } from '../shared/observability';
import {
  DEFAULT_AUTHENTICATION_CONTEXT,
  DEFAULT_TENANT_ID,
  startLocalAuthority,
  type LocalAuthority,
} from './authority';
import { startLocalCosmos } from './cosmos';
import { startDownstreamApi } from './downstream';
import { startLocalDynamo } from './dynamodb';
import { startLocalRedis } from './redis';
import {
  apiGatewayAdapter,
  azureFunctionsAdapter,
  startFunctionHost,
  writeJson,
  type FunctionHost,
} from './host';
import { startLocalKeyVault } from './keyvault';
import { startLocalKms, type KeyStoreState } from './kms';
import {
  LOCAL_USER_ASSIGNED_IDENTITY,
  startLocalManagedIdentity,
  type LocalManagedIdentity,
} from './managed-identity';
import { startLocalSecretsManager } from './secrets-manager';
import { startLocalSts, type LocalSts } from './sts';
import { createDevCertificate, type DevCertificate } from './tls';
import type { Timer } from '@azure/functions';
import type { ScheduledEvent } from 'aws-lambda';

/** The web API's app registration in the local authority (development values, not secrets of anything real). */
export const LOCAL_API_CLIENT_ID = '3f6c0a4e-5d2b-4c1e-9a7f-2b8d6e4c1a90';
const LOCAL_API_CLIENT_SECRET = 'local-development-only-secret';
const DOWNSTREAM_AUDIENCE = 'api://downstream';
/** The delegated scope the web API requires of its callers, and the one its minted tokens carry. */
export const LOCAL_API_SCOPE = 'access_as_user';
/**
 * The user a Conditional Access policy covers: an OBO exchange for the downstream API needs
 * her token to carry the authentication context `c1` (`/_local/token?user=carol&acrs=c1`).
 */
export const LOCAL_STEP_UP_USER = 'carol';
const KMS_ALIAS = 'alias/token-cache';

export interface LocalStackOptions {
  /** @default 'aws' */
  readonly cloud?: 'aws' | 'azure';
  /**
   * The store: the cloud's own (dynalite, cosmosdb-server), or `redis`: Debian's redis-server
   * on the store port, its data in `<dataDir>/redis` (append-only file), so a restart keeps it.
   * @default the cloud's own
   */
  readonly store?: 'cloud' | 'redis';

  /**
   * How the functions authenticate to the authority: `federated` presents the local STS's
   * (AWS) or managed identity's (Azure) token as a federated credential, no secret
   * anywhere; `secret` uses a client secret (from the local Secrets Manager on AWS).
   * @default 'federated'
   */
  readonly credential?: 'federated' | 'secret';
  /** Where state that survives a restart is kept. @default '.local-data' */
  readonly dataDir?: string;
  /** First of eight consecutive ports (host, authority, store, key service, downstream, secrets, STS, managed identity). @default 4000 */
  readonly portBase?: number;
  /** Daemon period in milliseconds; 0 never fires it on a timer. @default 30_000 */
  readonly daemonIntervalMs?: number;
  /** One line per request and daemon run. @default nothing */
  readonly print?: (line: string) => void;
  /** The functions' own logger. @default silent (the per-request lines say what happened) */
  readonly functionLogger?: Logger;
  /**
   * Run the web API multi-tenant: MSAL_AUTHORITY on `organizations`, API_ALLOWED_TENANTS and
   * DAEMON_TENANTS = {@link LOCAL_TENANTS}; `mintUserToken(user, tenant)` mints for either.
   * AWS flavour only. @default false
   */
  readonly multiTenant?: boolean;
}

/** The stack's ports, as offsets from `portBase`. */
const PORT_OFFSETS = {
  host: 0,
  authority: 1,
  store: 2,
  keys: 3,
  downstream: 4,
  secrets: 5,
  sts: 6,
  identity: 7,
} as const;

/** How many consecutive ports from `portBase` the stack listens on. */
export const LOCAL_STACK_PORT_COUNT = Object.keys(PORT_OFFSETS).length;

/** The tenants of a multi-tenant local stack: the authority's default tenant and a second one. */
export const LOCAL_TENANTS = [DEFAULT_TENANT_ID, 'b5a1c0de-2f3e-4d5c-8b7a-69584736a2b1'] as const;

/**
 * One request's cost, as printed: from that request's own cache metadata (the handler's
 * log line, the daemon's summary), so it is right however many requests run at once.
 */
export interface RequestReport {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** `hit`, `miss`, or `-` when no token was acquired. */
  readonly cache: 'hit' | 'miss' | '-';
  /** Where the token came from (`l1`, `store`, `authority`), when one was acquired. */
  readonly source?: string;
  /** Why the stored partition did not serve it (`absent`, `expired`, `rejected`, ...), on a miss. */
  readonly reason?: string;
  readonly storeReads: number;
  readonly storeWrites: number;
  readonly keyServiceCalls: number;
  readonly tokenEndpointCalls: number;
  readonly durationMs: number;
}

export interface LocalStack {
  readonly cloud: 'aws' | 'azure';
  readonly store: 'cloud' | 'redis';
  readonly credential: 'federated' | 'secret';
  /** `http://localhost:PORT`: the web API. */
  readonly url: string;
  readonly authority: LocalAuthority;
  /**
   * The cache's settings for a library user's own process against this stack (development
   * values: the local app registration, its secret, the CA to trust, the local services).
   */
  readonly libraryEnv: Readonly<Record<string, string>>;
  /**
   * A user access token for the web API (what a client app would send), of `tenantId`
   * (@default the authority's), with `acrs` authentication contexts (a step-up sign-in).
   */
  mintUserToken(user?: string, tenantId?: string, acrs?: readonly string[]): Promise<string>;
  /** The object id the stack gives a user name (what `POST /_admin/revoke` of the downstream API takes). */
  userOid(user: string): string;
  /** The downstream API's URL (`/_admin/revoke` is next to it). */
  readonly downstreamUrl: string;
  /** Whether the web API runs multi-tenant. */
  readonly multiTenant: boolean;
  /** Runs the daemon once now. */
  runDaemon(): Promise<DaemonSummary>;
  /** Every request served so far. */
  readonly requests: readonly RequestReport[];
  stop(): Promise<void>;
}

/** Starts the local stack. */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const cloud = options.cloud ?? 'aws';
  const storeKind = options.store ?? 'cloud';
  const dataDir = resolve(options.dataDir ?? '.local-data');
  const base = options.portBase ?? 4000;
  const port = Object.fromEntries(
    Object.entries(PORT_OFFSETS).map(([name, offset]) => [name, base + offset]),
  ) as Record<keyof typeof PORT_OFFSETS, number>;
  const credential = options.credential ?? 'federated';
  const multiTenant = options.multiTenant ?? false;
  if (multiTenant && cloud !== 'aws') {
    // The Azure composition's Key Vault credential takes MSAL_AUTHORITY's tenant, `organizations` here.
    throw new ConfigurationError(
      'LocalStackOptions.multiTenant',
      'the multi-tenant local stack runs the AWS flavour only',
    );
  }
  const print = options.print ?? (() => {});
  mkdirSync(dataDir, { recursive: true });
  const stoppers: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => {});
  };

  try {
    const certificate = await loadOrCreateCertificate(dataDir);
    const caFile = join(dataDir, 'dev-ca.pem');
    writeFileSync(caFile, certificate.cert);

    // The platform identity of the functions: its token is their client assertion.
    let sts: LocalSts | undefined;
    let identity: LocalManagedIdentity | undefined;
    if (credential === 'federated' && cloud === 'aws') {
      sts = await startLocalSts({ port: port.sts });
      stoppers.push(() => sts!.stop());
    } else if (credential === 'federated') {
      identity = await startLocalManagedIdentity({ port: port.identity });
      stoppers.push(() => identity!.stop());
    }
    const keysFile = join(dataDir, 'authority-signing-keys.json');
    const authority = await startLocalAuthority({
      port: port.authority,
      certificate,
      clients: [
        credential === 'secret'
          ? { clientId: LOCAL_API_CLIENT_ID, clientSecret: LOCAL_API_CLIENT_SECRET }
          : {
              clientId: LOCAL_API_CLIENT_ID,
              federatedCredentials: [
                sts
                  ? { name: 'local-lambda-role', issuer: sts.issuer, subject: sts.subject }
                  : {
                      name: 'local-function-app',
                      issuer: identity!.issuer,
                      subject: LOCAL_USER_ASSIGNED_IDENTITY.principalId,
                    },
              ],
            },
      ],
      ...(existsSync(keysFile) ? { signingKeys: readJson<Record<string, unknown>[]>(keysFile) } : {}),
      // Conditional Access for one user: the downstream API needs a step-up (authentication context c1).
      conditionalAccess: [
        {
          users: [userOid(LOCAL_STEP_UP_USER)],
          resources: [DOWNSTREAM_AUDIENCE],
          authenticationContext: DEFAULT_AUTHENTICATION_CONTEXT,
        },
      ],
    });
    stoppers.push(() => authority.stop());
    writeFileSync(keysFile, JSON.stringify(authority.exportSigningKeys()), { mode: 0o600 });

    const downstream = await startDownstreamApi({
      authority,
      audience: DOWNSTREAM_AUDIENCE,
      port: port.downstream,
      ...(multiTenant ? { tenants: LOCAL_TENANTS } : {}),
    });
    stoppers.push(() => downstream.stop());

    // The AWS SDK and @azure/identity read these from the process; local values only.
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

    const env: Record<string, string> = {
      MSAL_CLIENT_ID: LOCAL_API_CLIENT_ID,
      MSAL_AUTHORITY: authority.authority(multiTenant ? 'organizations' : undefined),
      ...(multiTenant
        ? { API_ALLOWED_TENANTS: LOCAL_TENANTS.join(','), DAEMON_TENANTS: LOCAL_TENANTS.join(',') }
        : {}),
      MSAL_KNOWN_AUTHORITIES: authority.host,
      // The functions handle claims challenges: the authority issues them CAE tokens.
      MSAL_CLIENT_CAPABILITIES: 'cp1',
      EXTRA_CA_FILE: caFile,
      DOWNSTREAM_URL: downstream.url,
      DOWNSTREAM_SCOPES: `${DOWNSTREAM_AUDIENCE}/.default`,
      API_REQUIRED_SCOPES: LOCAL_API_SCOPE,
      LOG_LEVEL: 'warn',
    };

    if (cloud === 'aws') {
      if (storeKind === 'cloud') {
        const dynamo = await startLocalDynamo({ port: port.store, path: join(dataDir, 'dynamodb') });
        stoppers.push(() => dynamo.stop());
        Object.assign(env, {
          TOKEN_CACHE_TABLE_NAME: dynamo.tableName,
          AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        });
      }
      const kmsFile = join(dataDir, 'kms-state.json');
      const kms = await startLocalKms({
        port: port.keys,
        ...(existsSync(kmsFile) ? { state: readJson<KeyStoreState>(kmsFile) } : {}),
      });
      stoppers.push(() => kms.stop());
      if (!existsSync(kmsFile))
        await kms.createKey({ alias: KMS_ALIAS, description: 'msal-cloud-cache local' });
      writeFileSync(kmsFile, JSON.stringify(kms.exportState()), { mode: 0o600 });
      if (sts) {
        Object.assign(env, {
          MSAL_CLIENT_ASSERTION_SOURCE: 'aws-web-identity',
          AWS_ENDPOINT_URL_STS: sts.endpoint,
        });
      } else {
        const secrets = await startLocalSecretsManager({ port: port.secrets });
        stoppers.push(() => secrets.stop());
        const secretArn = await secrets.createSecret(
          'msal-cloud-cache/client-secret',
          LOCAL_API_CLIENT_SECRET,
        );
        Object.assign(env, {
          MSAL_CLIENT_SECRET_ARN: secretArn,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.endpoint,
        });
      }
      Object.assign(env, {
        AWS_REGION: kms.region,
        TOKEN_CACHE_KMS_KEY_ID: KMS_ALIAS,
        AWS_ENDPOINT_URL_KMS: kms.endpoint,
      });
    } else {
      if (storeKind === 'cloud') {
        const cosmos = await startLocalCosmos({ port: port.store });
        stoppers.push(() => cosmos.stop());
        Object.assign(env, {
          TOKEN_CACHE_COSMOS_ENDPOINT: cosmos.endpoint,
          TOKEN_CACHE_COSMOS_DATABASE: cosmos.databaseId,
          TOKEN_CACHE_COSMOS_CONTAINER: cosmos.containerId,
          TOKEN_CACHE_COSMOS_KEY: cosmos.key,
        });
      }
      const vault = await startLocalKeyVault({
        port: port.keys,
        certificate,
        tenantId: authority.tenantId,
        authorityUrl: authority.url,
      });
      stoppers.push(() => vault.stop());
      const key = await vault.createKey('token-cache');
      const signingKey = await vault.createKey('token-cache-sign', { kty: 'EC' });
      if (identity) {
        // As App Service sets them for the Function App's process.
        Object.assign(process.env, identity.env);
        Object.assign(env, {
          MSAL_CLIENT_ASSERTION_SOURCE: 'azure-managed-identity',
          MSAL_MANAGED_IDENTITY_CLIENT_ID: LOCAL_USER_ASSIGNED_IDENTITY.clientId,
        });
      } else {
        env.MSAL_CLIENT_SECRET = LOCAL_API_CLIENT_SECRET;
      }
      Object.assign(env, {
        TOKEN_CACHE_KEYVAULT_KEY_ID: `${vault.vaultUrl}/keys/${key.name}`,
        TOKEN_CACHE_KEYVAULT_SIGNING_KEY_ID: `${vault.vaultUrl}/keys/${signingKey.name}`,
        TOKEN_CACHE_AZURE_CREDENTIAL: 'app',
      });
    }

    if (storeKind === 'redis') {
      const redis = await startLocalRedis({ port: port.store, dir: join(dataDir, 'redis') });
      stoppers.push(() => redis.stop());
      Object.assign(env, { TOKEN_CACHE_STORE: 'redis', TOKEN_CACHE_REDIS_URL: redis.url });
      // Registers the Redis store with the cloud compositions, as a function of your own would.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('../shared/redis');
    }

    // Two functions, two sets of dependencies: as two Lambdas or two Function Apps would have.
    // The web API's per-request line (one per requestId, with its cache metadata) is kept
    // until the host prints it; every line still goes to the configured logger.
    const requestLines = new Map<string, LogFields>();
    const logger = keepRequestLines(options.functionLogger ?? silentLogger, requestLines);
    // The Azure modules load the Azure SDKs: only for the Azure flavour.
    const azure = cloud === 'azure' ? loadAzure() : undefined;
    const createDeps = azure?.createDeps ?? createAwsDeps;
    const webDeps = lazy(() => createDeps({ env, logger }));
    const daemonDeps = lazy(() => createDeps({ env, logger }));

    const requests: RequestReport[] = [];

    const webAdapter = azure
      ? azureFunctionsAdapter(azure.createWebApiHandler(webDeps))
      : apiGatewayAdapter(createWebApiHandler(webDeps));
    const mintUserToken = (user = 'alice', tenantId?: string, acrs?: readonly string[]) =>
      authority.mintUserToken({
        ...(tenantId !== undefined ? { tenantId } : {}),
        ...(acrs?.length ? { acrs, amr: ['pwd', 'mfa'] } : {}),
        audience: `api://${LOCAL_API_CLIENT_ID}`,
        oid: userOid(user),
        preferredUsername: `${user}@contoso.example`,
        name: user,
        scopes: [`api://${LOCAL_API_CLIENT_ID}/${LOCAL_API_SCOPE}`],
      });

    const host: FunctionHost = await startFunctionHost({
      port: port.host,
      adapter: async (request) => {
        const started = performance.now();
        const response = await webAdapter(request);
        const requestId = response.headers['x-request-id'] ?? '';
        const logged = requestLines.get(requestId);
        requestLines.delete(requestId);
        const line: RequestReport = {
          method: request.raw.method ?? 'GET',
          path: request.url.pathname,
          status: response.status,
          ...reportOfFields(logged),
          durationMs: performance.now() - started,
        };
        requests.push(line);
        print(formatReport(line));
        return response;
      },
      localRoutes: {
        // Development only: what a client app would have obtained from Entra ID for its user.
        '/_local/token': async (req, res) => {
          const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
          const user = query.get('user') ?? 'alice';
          const tenant = query.get('tenant') ?? undefined;
          const acrs = query.get('acrs') ?? undefined;
          if (!/^[a-z0-9._-]{1,64}$/i.test(user)) {
            writeJson(res, 400, {
              error: { code: 'BAD_USER', message: 'user: letters, digits, . _ - only' },
            });
            return;
          }
          if (tenant !== undefined && !GUID_PATTERN.test(tenant)) {
            writeJson(res, 400, { error: { code: 'BAD_TENANT', message: 'tenant: a tenant id (GUID)' } });
            return;
          }
          if (acrs !== undefined && !/^c([1-9]|[1-9][0-9])$/.test(acrs)) {
            writeJson(res, 400, {
              error: { code: 'BAD_ACRS', message: 'acrs: an authentication context, c1 to c99' },
            });
            return;
          }
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(await mintUserToken(user, tenant, acrs !== undefined ? [acrs] : undefined));
        },
      },
    });
    stoppers.push(() => host.stop());

    const awsDaemon = createDaemonHandler(daemonDeps);
    const azureDaemon = azure?.createDaemonHandler(daemonDeps);
    const runDaemon = async (): Promise<DaemonSummary> => {
      const started = performance.now();
      const summary =
        azure && azureDaemon
          ? await azureDaemon(
              timerInfo(),
              new azure.InvocationContext({ functionName: 'daemon', logHandler: () => {} }),
            )
          : await awsDaemon(scheduledEvent());
      const line: RequestReport = {
        method: 'TIMER',
        path: 'daemon',
        status: summary.downstreamStatus,
        ...reportOfMetadata(summary.cache),
        durationMs: performance.now() - started,
      };
      requests.push(line);
      print(formatReport(line));
      return summary;
    };
    const interval = options.daemonIntervalMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    if (interval > 0) {
      const tick = () => {
        runDaemon()
          .catch((e: unknown) => print(`daemon run failed: ${e instanceof Error ? e.message : String(e)}`))
          .finally(() => {
            timer = setTimeout(tick, interval);
          });
      };
      timer = setTimeout(tick, Math.min(interval, 2000));
      stoppers.push(async () => clearTimeout(timer));
    }

    return {
      cloud,
      store: storeKind,
      credential,
      multiTenant,
      url: host.url,
      authority,
      libraryEnv: Object.fromEntries(
        Object.entries(env).filter(
          (e): e is [string, string] =>
            typeof e[1] === 'string' && (CacheVariables as readonly string[]).includes(e[0]),
        ),
      ),
      mintUserToken,
      userOid,
      downstreamUrl: downstream.url,
      runDaemon,
      requests,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

/** One line per request: what it cost. */
export function formatReport(r: RequestReport): string {
  const cache = r.cache === '-' ? '   -' : r.cache.toUpperCase().padStart(4);
  const from = r.source ? ` (${r.source}${r.reason ? `: ${r.reason}` : ''})` : '';
  return (
    `${r.method.padEnd(6)} ${r.path.padEnd(16)} ${String(r.status)}  cache ${cache}${from}  ` +
    `store r${r.storeReads}/w${r.storeWrites}  key-service ${r.keyServiceCalls}  ` +
    `token-endpoint ${r.tokenEndpointCalls}  ${r.durationMs.toFixed(0)} ms`
  );
}

type ReportCounts = Omit<RequestReport, 'method' | 'path' | 'status' | 'durationMs'>;

const NO_TOKEN: ReportCounts = {
  cache: '-',
  storeReads: 0,
  storeWrites: 0,
  keyServiceCalls: 0,
  tokenEndpointCalls: 0,
};

/** A report from one acquisition's metadata. */
function reportOfMetadata(m: CacheMetadata | undefined): ReportCounts {
  if (!m) return NO_TOKEN;
  return {
    cache: m.tokenSource === 'authority' ? 'miss' : 'hit',
    source: m.tokenSource,
    ...(m.storeUnusedReason ? { reason: m.storeUnusedReason } : {}),
    storeReads: m.storeReads,
    storeWrites: m.storeWrites,
    keyServiceCalls: m.keyServiceCalls,
    tokenEndpointCalls: m.tokenRequests,
  };
}

/** A report from the web API's request line (the fields of cacheLogFields). */
function reportOfFields(f: LogFields | undefined): ReportCounts {
  if (!f || typeof f.cacheSource !== 'string') return NO_TOKEN;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    cache: f.cacheSource === 'authority' ? 'miss' : 'hit',
    source: f.cacheSource,
    ...(typeof f.cacheReason === 'string' ? { reason: f.cacheReason } : {}),
    storeReads: n(f.storeReads),
    storeWrites: n(f.storeWrites),
    keyServiceCalls: n(f.keyServiceCalls),
    tokenEndpointCalls: n(f.tokenRequests),
  };
}

/** Passes every record on, keeping the web API's `request` lines by requestId. */
function keepRequestLines(inner: Logger, lines: Map<string, LogFields>): Logger {
  return {
    debug: (message, fields) => inner.debug(message, fields),
    info: (message, fields) => {
      if (message === 'request' && typeof fields?.requestId === 'string') lines.set(fields.requestId, fields);
      inner.info(message, fields);
    },
    warn: (message, fields) => inner.warn(message, fields),
    error: (message, fields) => inner.error(message, fields),
  };
}

async function loadOrCreateCertificate(dataDir: string): Promise<DevCertificate> {
  const certFile = join(dataDir, 'tls-cert.pem');
  const keyFile = join(dataDir, 'tls-key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  }
  const certificate = await createDevCertificate();
  writeFileSync(certFile, certificate.cert);
  writeFileSync(keyFile, certificate.key, { mode: 0o600 });
  return certificate;
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** A stable, GUID-shaped object id per user name. */
function userOid(user: string): string {
  const hex = Buffer.from(user.padEnd(16, '.').slice(0, 16)).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function scheduledEvent(): ScheduledEvent {
  return {
    version: '0',
    id: crypto.randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '000000000000',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:000000000000:rule/msal-cloud-cache-daemon'],
    detail: {},
  };
}

function timerInfo(): Timer {
  const now = new Date().toISOString();
  return {
    isPastDue: false,
    schedule: { adjustForDST: false },
    scheduleStatus: { last: now, next: now, lastUpdated: now },
  };
}

/** The Azure handlers and composition, loaded only for the Azure flavour (an AWS run loads no Azure SDK). */
function loadAzure() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const web = require('../functions/azure/web-api') as typeof import('../functions/azure/web-api');
  const daemon = require('../functions/azure/daemon') as typeof import('../functions/azure/daemon');
  const deps = require('../functions/azure/deps') as typeof import('../functions/azure/deps');
  const functions = require('@azure/functions') as typeof import('@azure/functions');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return {
    createWebApiHandler: web.createWebApiHandler,
    createDaemonHandler: daemon.createDaemonHandler,
    createDeps: deps.createDeps,
    InvocationContext: functions.InvocationContext,
  };
}
