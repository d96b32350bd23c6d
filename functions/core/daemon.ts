/**
 * The scheduled daemon, independent of the cloud: get an app-only token through the cache
 * (client credentials), call the downstream API with it, log one summary line.
 */
import { cacheLogFields, cacheMetadataOf, type CacheMetadata } from '../../shared/cache/metadata';
import { JsonLogger } from '../../shared/observability';
import { resolveDeps, type DaemonDeps, type DepsSource } from './deps';
import { errorFields } from './safe-log';

const fallbackLogger = new JsonLogger({ level: 'warn', base: { component: 'functions' } });

/** The outcome of one run, also logged as one line. */
export interface DaemonSummary {
  readonly ok: boolean;
  /** Whether the app token came from the cache (no token-endpoint call). */
  readonly tokenFromCache: boolean;
  /** Status of the downstream answer. */
  readonly downstreamStatus: number;
  readonly acquireMs: number;
  readonly downstreamMs: number;
  readonly totalMs: number;
  /** The acquisition's cache metadata (where the token came from, what it cost). */
  readonly cache?: CacheMetadata;
  /**
   * One run per tenant, in order, when the daemon runs for a list of tenants
   * (`DAEMON_TENANTS`); the fields above then sum (ms), all-of (`ok`, `tokenFromCache`)
   * or take the first failing status.
   */
  readonly tenants?: readonly DaemonTenantRun[];
}

/** The run of a multi-tenant daemon in one tenant (its own app partition). */
export interface DaemonTenantRun {
  readonly tenantId: string;
  readonly ok: boolean;
  readonly tokenFromCache: boolean;
  /** 0 when the token could not be acquired. */
  readonly downstreamStatus: number;
  readonly acquireMs: number;
  readonly downstreamMs: number;
  /** Where it failed, when it did. */
  readonly stage?: 'acquire' | 'downstream';
}

/** A failed run; the message is safe to log and the cause is kept. */
export class DaemonRunError extends Error {
  override readonly name = 'DaemonRunError';
  constructor(
    readonly stage: 'startup' | 'acquire' | 'downstream',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Runs the daemon once.
 * @param runId the platform's invocation id, for the log line
 * @throws DaemonRunError so the platform records a failed run (and may retry it)
 */
export async function runDaemon(deps: DepsSource<DaemonDeps>, runId?: string): Promise<DaemonSummary> {
  const started = performance.now();
  let ready: DaemonDeps;
  try {
    ready = await resolveDeps(deps);
  } catch (e) {
    fallbackLogger.error('daemon run failed', { stage: 'startup', runId, ...errorFields(e) });
    throw new DaemonRunError('startup', 'the daemon could not start; its log line names the cause', {
      cause: e,
    });
  }
  if (ready.tenants !== undefined && ready.tenants.length > 0) {
    return runForTenants(ready, ready.tenants, started, runId);
  }
  const { logger } = ready;
  let stage: 'acquire' | 'downstream' = 'acquire';
  try {
    const result = await ready.cache.acquireTokenForApp({ scopes: [ready.appScope] });
    const acquireMs = Math.round(performance.now() - started);
    stage = 'downstream';
    const answer = await ready.downstream.call({
      accessToken: result.accessToken,
      ...(runId ? { requestId: runId } : {}),
    });
    const metadata = cacheMetadataOf(result);
    const line = {
      ok: answer.status >= 200 && answer.status < 300,
      tokenFromCache: result.fromCache,
      downstreamStatus: answer.status,
      acquireMs,
      downstreamMs: Math.round(answer.durationMs),
      totalMs: Math.round(performance.now() - started),
    };
    const fields = { runId, ...line, ...(metadata ? cacheLogFields(metadata) : {}) };
    if (!line.ok) {
      logger.error('daemon run failed', { ...fields, stage });
      throw new DaemonRunError('downstream', `the downstream API answered ${answer.status}`);
    }
    logger.info('daemon run', fields);
    return { ...line, ...(metadata ? { cache: metadata } : {}) };
  } catch (e) {
    if (e instanceof DaemonRunError) throw e;
    logger.error('daemon run failed', {
      runId,
      ok: false,
      stage,
      totalMs: Math.round(performance.now() - started),
      ...errorFields(e),
    });
    throw new DaemonRunError(stage, `the daemon run failed at ${stage}; its log line names the cause`, {
      cause: e,
    });
  }
}

/**
 * One run per tenant, one after the other, each in its own app partition. A failing tenant
 * does not stop the others; the run fails (DaemonRunError at the first failing stage) when any did.
 */
async function runForTenants(
  ready: DaemonDeps,
  tenants: readonly string[],
  started: number,
  runId: string | undefined,
): Promise<DaemonSummary> {
  const { logger } = ready;
  const runs: DaemonTenantRun[] = [];
  for (const tenantId of tenants) {
    const tenantStarted = performance.now();
    let stage: 'acquire' | 'downstream' = 'acquire';
    let acquireMs = 0;
    try {
      const result = await ready.cache.acquireTokenForApp({ scopes: [ready.appScope], tenantId });
      acquireMs = Math.round(performance.now() - tenantStarted);
      stage = 'downstream';
      const answer = await ready.downstream.call({
        accessToken: result.accessToken,
        ...(runId ? { requestId: runId } : {}),
      });
      const metadata = cacheMetadataOf(result);
      const run: DaemonTenantRun = {
        tenantId,
        ok: answer.status >= 200 && answer.status < 300,
        tokenFromCache: result.fromCache,
        downstreamStatus: answer.status,
        acquireMs,
        downstreamMs: Math.round(answer.durationMs),
        ...(answer.status >= 200 && answer.status < 300 ? {} : { stage }),
      };
      runs.push(run);
      const fields = { runId, ...run, ...(metadata ? cacheLogFields(metadata) : {}) };
      if (run.ok) logger.info('daemon run', fields);
      else logger.error('daemon run failed', fields);
    } catch (e) {
      runs.push({
        tenantId,
        ok: false,
        tokenFromCache: false,
        downstreamStatus: 0,
        acquireMs,
        downstreamMs: 0,
        stage,
      });
      logger.error('daemon run failed', { runId, tenantId, ok: false, stage, ...errorFields(e) });
    }
  }
  const failed = runs.filter((r) => !r.ok);
  const summary: DaemonSummary = {
    ok: failed.length === 0,
    tokenFromCache: runs.every((r) => r.tokenFromCache),
    downstreamStatus: (failed[0] ?? runs[runs.length - 1]).downstreamStatus,
    acquireMs: runs.reduce((n, r) => n + r.acquireMs, 0),
    downstreamMs: runs.reduce((n, r) => n + r.downstreamMs, 0),
    totalMs: Math.round(performance.now() - started),
    tenants: runs,
  };
  logger.info('daemon tenants', {
    runId,
    ok: summary.ok,
    tenants: runs.length,
    failedTenants: failed.map((r) => r.tenantId).join(','),
    totalMs: summary.totalMs,
  });
  if (failed.length > 0) {
    const first = failed[0];
    throw new DaemonRunError(
      first.stage ?? 'downstream',
      `the daemon run failed in ${failed.length} of ${runs.length} tenants (first: ${first.tenantId}, at ${first.stage ?? 'downstream'}); its log lines name the causes`,
    );
  }
  return summary;
}
