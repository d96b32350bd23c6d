import {
  claimsChallengeOf,
  decodeClaims,
  insufficientClaimsChallenge,
  InvalidClaimsError,
  MAX_CLAIMS_BYTES,
  parseClaims,
} from '../../../shared/auth/claims';
import { loadCacheConfig } from '../../../shared/config';
import { ConfigurationError } from '../../../shared/errors';

const CANARY = 'canary-claims-value-0123456789';

describe('parseClaims', () => {
  it('returns the value re-serialized', () => {
    expect(
      parseClaims(' { "access_token" : { "acrs" : { "essential" : true, "value" : "c1" } } } ', 'authority'),
    ).toBe('{"access_token":{"acrs":{"essential":true,"value":"c1"}}}');
  });

  it.each([
    ['empty', ''],
    ['not-json', `{"access_token": ${CANARY}`],
    ['not-object', `["${CANARY}"]`],
    ['not-object', '{}'],
    ['too-large', JSON.stringify({ access_token: { x: CANARY.repeat(200) } })],
  ])('refuses %s without echoing the value', (reason, value) => {
    const error = (() => {
      try {
        parseClaims(value, 'request');
      } catch (e) {
        return e;
      }
      throw new Error('expected a throw');
    })();
    expect(error).toBeInstanceOf(InvalidClaimsError);
    expect((error as InvalidClaimsError).reason).toBe(reason);
    expect((error as InvalidClaimsError).code).toBe('INVALID_CLAIMS');
    expect((error as Error).message).not.toContain(CANARY);
  });

  it('accepts exactly MAX_CLAIMS_BYTES', () => {
    const base = '{"a":""}';
    const value = `{"a":"${'x'.repeat(MAX_CLAIMS_BYTES - base.length)}"}`;
    expect(Buffer.byteLength(value)).toBe(MAX_CLAIMS_BYTES);
    expect(parseClaims(value, 'request')).toBe(value);
  });
});

describe('decodeClaims and claimsChallengeOf', () => {
  const claims = '{"access_token":{"nbf":{"essential":true,"value":"1604106651"}}}';
  const b64 = Buffer.from(claims).toString('base64');

  it('reads the CAE challenge a resource sends', () => {
    expect(
      claimsChallengeOf(
        `Bearer realm="", authorization_uri="https://login.windows.net/common/oauth2/authorize", error="insufficient_claims", claims="${b64}"`,
      ),
    ).toEqual({ claims });
  });

  it('finds the Bearer challenge among several and ignores other errors', () => {
    expect(claimsChallengeOf(`Basic realm="x", Bearer error="insufficient_claims", claims="${b64}"`)).toEqual(
      { claims },
    );
    expect(claimsChallengeOf('Bearer error="invalid_token"')).toBeUndefined();
    expect(claimsChallengeOf(undefined)).toBeUndefined();
  });

  it.each([
    ['not-base64', `Bearer error="insufficient_claims", claims="${CANARY}!*"`],
    ['not-json', `Bearer error="insufficient_claims", claims="${Buffer.from(CANARY).toString('base64')}"`],
    ['empty', 'Bearer error="insufficient_claims"'],
    ['malformed', `Bearer error="insufficient_claims", claims="${b64}", claims="${b64}"`],
    ['too-large', `Bearer error="insufficient_claims", claims="${'A'.repeat(20_000)}"`],
  ])('refuses a %s challenge without echoing it', (reason, header) => {
    const result = claimsChallengeOf(header);
    expect(result?.invalid?.reason).toBe(reason);
    expect(result?.invalid?.message).not.toContain(CANARY);
  });

  it('round-trips through the step-up header', () => {
    const header = insufficientClaimsChallenge(claims, 'https://login.microsoftonline.com/contoso/');
    expect(header).toBe(
      `Bearer realm="", authorization_uri="https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize", error="insufficient_claims", claims="${b64}"`,
    );
    expect(claimsChallengeOf(header)).toEqual({ claims });
    expect(decodeClaims(b64, 'downstream')).toBe(claims);
  });
});

describe('MSAL_CLIENT_CAPABILITIES', () => {
  const env = {
    MSAL_CLIENT_ID: '5b1d3e0c-2d6b-4f7e-9a3c-0e1f2a3b4c5d',
    MSAL_AUTHORITY: 'https://login.microsoftonline.com/90bb045f-08cc-4e4a-8ed4-45f406fd29fe',
    MSAL_CLIENT_SECRET: 'a-client-secret-for-this-test',
    TOKEN_CACHE_STORE: 'memory',
    TOKEN_CACHE_LOCAL_MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
  };

  it('is empty by default and reads a comma list, duplicates dropped', () => {
    expect(loadCacheConfig(env).msal.clientCapabilities).toEqual([]);
    expect(
      loadCacheConfig({ ...env, MSAL_CLIENT_CAPABILITIES: 'cp1, cp1,llt' }).msal.clientCapabilities,
    ).toEqual(['cp1', 'llt']);
  });

  it('names the variable for a bad value', () => {
    expect(() => loadCacheConfig({ ...env, MSAL_CLIENT_CAPABILITIES: 'cp1,c p"2' })).toThrow(
      ConfigurationError,
    );
    expect(() => loadCacheConfig({ ...env, MSAL_CLIENT_CAPABILITIES: 'cp1,c p"2' })).toThrow(
      /^MSAL_CLIENT_CAPABILITIES: expected comma-separated client capabilities such as "cp1"/,
    );
  });
});
