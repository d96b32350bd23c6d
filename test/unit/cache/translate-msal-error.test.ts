import { AuthError, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { translateMsalError } from '../../../shared/cache/token-cache';
import { InteractionRequiredError, TokenAcquisitionError } from '../../../shared/errors';

describe('translateMsalError', () => {
  it.each([
    ['a 503 status', new ServerError('invalid_request', 'c', 'down', undefined, undefined, 503), true],
    ['a 429 status', new ServerError('invalid_request', 'c', 'slow down', undefined, undefined, 429), true],
    [
      'temporarily_unavailable without a status',
      new ServerError('temporarily_unavailable', 'c', 'later'),
      true,
    ],
    ['server_error without a status', new ServerError('server_error', 'c', 'oops'), true],
    [
      'invalid_grant with a 400 status',
      new ServerError('invalid_grant', 'c', 'no', undefined, undefined, 400),
      false,
    ],
    ['a network error', new AuthError('network_error', 'unreachable'), true],
    ['another client error', new AuthError('invalid_cache', 'bad'), false],
  ])('maps %s to a TokenAcquisitionError with retryable=%s', (_name, error, retryable) => {
    const translated = translateMsalError(error);
    expect(translated).toBeInstanceOf(TokenAcquisitionError);
    expect((translated as TokenAcquisitionError).retryable).toBe(retryable);
    expect((translated as TokenAcquisitionError).cause).toBe(error);
  });

  it('maps interaction required to InteractionRequiredError and passes other errors through', () => {
    expect(
      translateMsalError(new InteractionRequiredAuthError('invalid_grant', 'sign in again')),
    ).toBeInstanceOf(InteractionRequiredError);
    const other = new TypeError('x');
    expect(translateMsalError(other)).toBe(other);
  });
});
