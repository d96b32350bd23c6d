/** What both clouds' handler entry points share: the handlers' configuration and dependency types. */
export {
  FunctionVariables,
  HandlerVariables,
  loadFunctionConfig,
  type FunctionConfig,
  type FunctionVariable,
  type HandlerConfig,
} from './config';
export type { DaemonDeps, DepsSource, FunctionDeps, FunctionDepsOptions, WebApiDeps } from './deps';
export type { DaemonSummary } from './daemon';
