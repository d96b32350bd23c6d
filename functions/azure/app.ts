/**
 * The Functions app's main module (`main` of the deployed package.json): registers the web
 * API's routes and the daemon's timer, both over the process-wide dependencies.
 */
import { registerDaemon } from './daemon';
import { registerWebApi } from './web-api';

registerWebApi();
registerDaemon();
