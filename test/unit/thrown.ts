/** The sync-throw check the unit suites share, on the shared `rejection()`. */
import { rejection } from '../support/expect-errors';

/** What `build` throws, which must be an instance of `type`; returning normally fails the test. */
export async function thrownBy<E extends Error>(
  build: () => unknown,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const error = await rejection(Promise.resolve().then(build));
  expect(error).toBeInstanceOf(type);
  return error as E;
}
