/** The error checks many suites make: an options validation, a failing key-service call, a rejection. */
import { ConfigurationError, KeyServiceError, StoreUnavailableError } from '../../shared/errors';

/** Expects `build` to throw a ConfigurationError for `setting` whose message starts with the setting's name. */
export function expectConfigurationError(build: () => unknown, setting: string): void {
  let error: unknown;
  try {
    build();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigurationError);
  expect(error).toMatchObject({ setting, code: 'CONFIGURATION' });
  expect((error as Error).message).toMatch(new RegExp(`^${setting}: `));
}

/** Expects `promise` to reject with a KeyServiceError, and returns it for the caller's further checks. */
export async function keyServiceError(promise: Promise<unknown>): Promise<KeyServiceError> {
  const error: unknown = await promise.then(
    () => new Error('expected the call to fail'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeyServiceError);
  return error as KeyServiceError;
}

/** What `promise` rejects with; a promise that resolves fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** What a store call rejects with, as the Error the store suites inspect; a call that succeeds fails the test. */
export async function failureOf(action: Promise<unknown>): Promise<Error> {
  return action.then(
    () => {
      throw new Error('expected the store call to fail, it succeeded');
    },
    (e: unknown) => e as Error,
  );
}

/** Expects the failure of a store read that nothing listened for: unavailable, not throttled, naming ECONNREFUSED. */
export function expectReadRefused(error: Error): void {
  expect(error).toBeInstanceOf(StoreUnavailableError);
  expect(error).toMatchObject({ throttled: false, operation: 'read' });
  expect(error.message).toMatch(/ECONNREFUSED/);
}
