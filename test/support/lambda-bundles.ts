/**
 * The stack deploys the prebuilt handler bundles under dist/lambda; tests that synthesize
 * it build them first, from the current sources, once per test file.
 */
import * as path from 'node:path';
import { bundleLambdas } from '../../infra/build/bundle';

const ROOT = path.resolve(__dirname, '../..');
let built: Promise<Record<string, string>> | undefined;

/** Bundles the Lambda handlers (about a second with esbuild); later calls share the first build. */
export function ensureLambdaBundles(): Promise<Record<string, string>> {
  built ??= bundleLambdas(ROOT);
  return built;
}
