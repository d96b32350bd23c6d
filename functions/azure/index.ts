/**
 * `msal-cloud-cache/azure/functions`: the ready Azure Functions (v4 programming model)
 * handlers. Register them from your app's main module:
 * @example
 * import { registerDaemon, registerWebApi } from 'msal-cloud-cache/azure/functions';
 * registerWebApi(); // GET /api/downstream and /healthz (host.json routePrefix "")
 * registerDaemon(); // every 15 minutes
 * Needs `@azure/functions` besides the peers of `msal-cloud-cache/azure`.
 */
import '../../shared/azure/peers';
import './peers';

export { createWebApiHandler, registerWebApi, type AzureWebApiHandler } from './web-api';
export { createDaemonHandler, registerDaemon, DAEMON_SCHEDULE, type AzureDaemonHandler } from './daemon';
export { createDeps, processDeps } from './deps';
export * from '../core/exports';
