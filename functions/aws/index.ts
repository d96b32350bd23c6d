/**
 * `msal-cloud-cache/aws/handlers`: the ready Lambda handlers (API Gateway HTTP API payload
 * 2.0, EventBridge schedule) over the process-wide dependencies from the environment.
 * @example
 * // web-api.ts of your own function
 * export { webApiHandler as handler } from 'msal-cloud-cache/aws/handlers';
 */
import '../../shared/aws/peers';

export { createWebApiHandler, handler as webApiHandler, type WebApiHandler } from './web-api';
export { createDaemonHandler, handler as daemonHandler, type DaemonHandler } from './daemon';
export { createDeps, processDeps, type LambdaHandler } from './deps';
export * from '../core/exports';
