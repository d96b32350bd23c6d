/**
 * The handlers' dependencies on AWS: the cache from msal-cloud-cache/aws (DynamoDB, KMS).
 */
import type { Context } from 'aws-lambda';
import { createTokenCacheFromConfig } from '../../shared/aws';
import { createFunctionDeps, lazy, type FunctionDeps, type FunctionDepsOptions } from '../core/deps';

/**
 * Builds the dependencies of both handlers from the environment, with this cloud's cache.
 * @throws ConfigurationError listing every variable at fault
 */
export function createDeps(options: Omit<FunctionDepsOptions, 'createCache'> = {}): Promise<FunctionDeps> {
  return createFunctionDeps({ ...options, createCache: createTokenCacheFromConfig });
}

/** The process-wide dependencies from `process.env`, built at the first invocation. */
export const processDeps: () => Promise<FunctionDeps> = lazy(() => createDeps());

/** A Lambda handler of `E` answering `R`; the context is optional so a local host can call it too. */
export type LambdaHandler<E, R> = (event: E, context?: Pick<Context, 'awsRequestId'>) => Promise<R>;
