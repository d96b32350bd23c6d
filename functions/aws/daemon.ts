/**
 * Lambda handler of the daemon, fired by an EventBridge schedule. It only hands the run
 * to the shared core; a failed run throws, so Lambda records an error.
 */
import type { ScheduledEvent } from 'aws-lambda';
import { runDaemon, type DaemonSummary } from '../core/daemon';
import type { DaemonDeps, DepsSource } from '../core/deps';
import { flushMetrics } from '../../shared/aws/emf';
import { processDeps, type LambdaHandler } from './deps';

/** An EventBridge scheduled-event handler returning the run's summary. */
export type DaemonHandler = LambdaHandler<ScheduledEvent, DaemonSummary>;

/**
 * Builds a handler over its own dependencies (tests build several, as separate containers).
 * @default the process-wide dependencies from process.env, built at the first invocation
 */
export function createDaemonHandler(deps: DepsSource<DaemonDeps> = processDeps): DaemonHandler {
  return async (event, context) => {
    try {
      return await runDaemon(deps, context?.awsRequestId ?? event.id);
    } finally {
      // EMF lines must be written before the invocation ends: Lambda may freeze the process after.
      flushMetrics();
    }
  };
}

/** The Lambda entry point (`handler` in the function configuration). */
export const handler: DaemonHandler = createDaemonHandler();
