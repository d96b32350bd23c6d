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
}

/** A failed run; the message is safe to log and the cause is kept. */
export class DaemonRunError extends Error {
  override readonly name = 'DaemonRunError';
  constructor(
    readonly stage: 'startup' | 'acquire' | 'downstream',
    message: string,
    options?: { cause?: unknown },
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
