/**
 * Claims challenges from anyone are never echoed raw (issue 21, "Bad input"): malformed,
 * oversized or non-JSON claims from Entra (a Conditional Access rule's raw challenge), from
 * the downstream API (a revocation's raw claims parameter) and from a library caller are
 * refused without their text reaching a body, a header or a log line; a downstream that
 * keeps answering 401 causes one retry, not a loop. Each malformed value holds a canary
 * registered with the secret scan (test/support/secret-scan.ts), which fails this file if
 * any output of the run holds it.
 */
import { GrantType } from '../../local/authority';
import { InvalidClaimsError } from '../../shared/auth/claims';
import {
  ALICE,
  CAROL,
  DOWNSTREAM_AUDIENCE,
  DOWNSTREAM_SCOPE,
  startCaeWorld,
  type CaeWorld,
} from '../support/cae-world';
import { registerSecret } from '../support/secret-registry';

const CANARY = 'claims-canary-5f0c1d2e3a4b5c6d7e8f';

let world: CaeWorld;

beforeAll(async () => {
  world = await startCaeWorld();
  registerSecret('canary', CANARY);
});

afterAll(async () => {
  await world.stop();
});

afterEach(() => {
  world.authority.setConditionalAccess([{ users: [CAROL], resources: [DOWNSTREAM_AUDIENCE] }]);
  world.downstream.restore(ALICE);
});

const malformed: Array<[string, string]> = [
  ['not JSON', `{"access_token": ${CANARY}`],
  ['a JSON string', JSON.stringify(CANARY)],
  ['an array', JSON.stringify([CANARY])],
  ['oversized', JSON.stringify({ access_token: { acrs: { essential: true, value: CANARY.repeat(200) } } })],
  ['header-breaking', `{"a":"${CANARY}"}\r\nSet-Cookie: x=1`],
];

function visible(
  answer: { status: number; headers: Readonly<Record<string, string>>; body: string },
  text: string,
) {
  return `${answer.body}\n${JSON.stringify(answer.headers)}\n${text}`;
}

describe('claims from Entra', () => {
  it.each(malformed)(
    'a challenge that is %s gets the plain interaction_required answer, never echoed',
    async (_n, raw) => {
      world.authority.setConditionalAccess([
        { users: [CAROL], resources: [DOWNSTREAM_AUDIENCE], rawChallenge: raw },
      ]);
      const container = world.container();

      const answer = await container.call(await world.userToken(CAROL), 'aws');

      expect(answer.status).toBe(403);
      expect((JSON.parse(answer.body) as { error: { code: string } }).error.code).toBe(
        'interaction_required',
      );
      expect(answer.headers['www-authenticate']).toBeUndefined();
      expect(visible(answer, container.logger.text())).not.toContain(CANARY);
    },
  );
});

describe('claims from the downstream API', () => {
  it.each([
    ...malformed.map(([n, raw]) => [n, Buffer.from(raw).toString('base64')] as [string, string]),
    ['not base64', `${CANARY}!!`],
  ])('a challenge that is %s is not retried on and never echoed', async (_n, rawClaims) => {
    const token = await world.userToken(ALICE);
    const container = world.container();
    expect((await container.call(token)).status).toBe(200);
    world.downstream.revoke({ oid: ALICE, rawClaims });
    const since = world.downstream.calls().length;
    const calls = world.authority.counters.token(GrantType.OnBehalfOf);

    const answer = await container.call(token, 'azure');

    expect(answer.status).toBe(502);
    expect((JSON.parse(answer.body) as { error: { code: string } }).error.code).toBe('downstream_error');
    expect(world.downstream.calls().length - since).toBe(1);
    expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(calls);
    expect(
      container.logger.lines.filter((l) => l.message === 'request').at(-1)?.fields?.claimsRejected,
    ).toEqual(expect.any(String));
    expect(visible(answer, container.logger.text())).not.toContain(CANARY);
  });

  it('a downstream that keeps refusing gets one retry, not a loop', async () => {
    const token = await world.userToken(ALICE);
    const container = world.container();
    expect((await container.call(token)).status).toBe(200);
    world.downstream.revoke({ oid: ALICE, always: true });
    const since = world.downstream.calls().length;

    const answers = [await container.call(token), await container.call(token)];

    expect(answers.map((a) => a.status)).toEqual([502, 502]);
    expect(world.downstream.calls().length - since).toBe(4);
  });
});

describe('claims from a library caller', () => {
  it.each(malformed)('%s is refused with InvalidClaimsError before any token request', async (_n, raw) => {
    const calls = world.authority.counters.token();
    const assertion = await world.userToken(ALICE);
    const cache = world.container().cache;
    // Validated before anything runs: thrown like the other argument checks.
    const error = await (async () =>
      cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE], claims: raw }))().catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(InvalidClaimsError);
    expect((error as Error).message).not.toContain(CANARY);
    expect(world.authority.counters.token()).toBe(calls);
  });
});
