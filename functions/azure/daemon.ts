/**
 * Azure Functions (v4 programming model) timer handler of the daemon. It only hands the
 * run to the shared core; a failed run throws, so the host records a failed invocation.
 */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { runDaemon, type DaemonSummary } from '../core/daemon';
import type { DaemonDeps, DepsSource } from '../core/deps';
import { processDeps } from './deps';

/** A timer-triggered handler returning the run's summary. */
export type AzureDaemonHandler = (timer: Timer, context: InvocationContext) => Promise<DaemonSummary>;

/**
 * Builds a handler over its own dependencies (tests build several, as separate instances).
 * @default the process-wide dependencies from process.env, built at the first invocation
 */
export function createDaemonHandler(deps: DepsSource<DaemonDeps> = processDeps): AzureDaemonHandler {
  return (_timer, context) => runDaemon(deps, context.invocationId);
}

/** Every 15 minutes, like the AWS schedule (NCRONTAB: second minute hour day month weekday). */
export const DAEMON_SCHEDULE = '0 */15 * * * *';

/**
 * Registers the daemon's timer with the Functions host (call it from the app's main
 * module; functions/azure/app.ts does).
 * @default the process-wide dependencies from process.env, every {@link DAEMON_SCHEDULE}
 */
export function registerDaemon(
  deps: DepsSource<DaemonDeps> = processDeps,
  schedule: string = DAEMON_SCHEDULE,
): AzureDaemonHandler {
  const handler = createDaemonHandler(deps);
  app.timer('daemon', { schedule, handler });
  return handler;
}
