/**
 * The secret scan itself (test/support/secret-scan.ts, run for every test file): the
 * forms it recognises, and, in a child jest, that a file logging secrets fails while a
 * file producing the same secrets and logging safely passes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { createSecretRegistry, MIN_SECRET_LENGTH } from '../support/secret-registry';

const ROOT = resolve(__dirname, '../..');

/** A JWT-shaped string with a random payload and signature. */
function fakeJwt(): string {
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ oid: randomBytes(8).toString('hex') })).toString('base64url');
  return `${header}.${payload}.${randomBytes(64).toString('base64url')}`;
}

const channel = () => 'test';

describe('secret registry', () => {
  it.each([
    ['the raw token', (jwt: string) => `token=${jwt}`],
    ['the JWT payload segment', (jwt: string) => `claims: ${jwt.split('.')[1]}`],
    ['the JWT signature segment', (jwt: string) => `sig ${jwt.split('.')[2]}!`],
  ])('finds %s', (_name, leak) => {
    const registry = createSecretRegistry();
    const jwt = fakeJwt();
    registry.add('access-token', jwt);

    const findings = registry.scan(`before ${leak(jwt)} after`, channel);

    expect(findings).toHaveLength(1);
    expect(findings[0].kind).toBe('access-token');
  });

  it('finds a URL-encoded secret', () => {
    const registry = createSecretRegistry();
    const secret = `${randomBytes(12).toString('base64')}+/=`;
    registry.add('client-secret', secret);

    expect(registry.scan(`body client_secret=${encodeURIComponent(secret)}`, channel)).toHaveLength(1);
  });

  it.each([
    ['base64', (key: Buffer) => key.toString('base64')],
    ['base64url', (key: Buffer) => key.toString('base64url')],
    ['hex', (key: Buffer) => key.toString('hex')],
    ['JSON of a Buffer', (key: Buffer) => JSON.stringify(key)],
    ['util.inspect of a Buffer', (key: Buffer) => inspect(key)],
  ])('finds a data key written as %s', (_name, encode) => {
    const registry = createSecretRegistry();
    const key = randomBytes(32);
    registry.add('data-key', new Uint8Array(key));

    const findings = registry.scan(`key: ${encode(key)}`, channel);

    expect(findings.map((f) => f.kind)).toEqual(['data-key']);
  });

  it('reports one finding per secret, naming the channel, never the value', () => {
    const registry = createSecretRegistry();
    const jwt = fakeJwt();
    registry.add('refresh-token', jwt);
    const text = `first ${jwt} then ${jwt.split('.')[1]}`;

    const findings = registry.scan(text, (at) => (at < 6 ? 'start' : 'console.error'));

    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: 'refresh-token', form: 'raw', channel: 'console.error' });
    expect(findings[0].context).toContain('[SECRET]');
    expect(findings[0].context).not.toContain(jwt.split('.')[1]);
    expect(findings[0].context).not.toContain(jwt.split('.')[2]);
  });

  it('keeps the specific kind when a signed JWT is later seen as an access token', () => {
    const registry = createSecretRegistry();
    const jwt = fakeJwt();
    registry.add('signed-jwt', jwt);
    registry.add('access-token', jwt);

    expect(registry.scan(jwt, channel).map((f) => f.kind)).toEqual(['access-token']);
  });

  it(`ignores values shorter than ${MIN_SECRET_LENGTH} characters and text without secrets`, () => {
    const registry = createSecretRegistry();
    registry.add('client-secret', 'x'.repeat(MIN_SECRET_LENGTH - 1));
    registry.add('access-token', fakeJwt());

    expect(registry.scan(`client secret ${'x'.repeat(40)}; token ${fakeJwt()}`, channel)).toEqual([]);
  });
});

interface JestJsonResult {
  readonly testResults: ReadonlyArray<{ name: string; status: string; message: string }>;
}

describe('secret scan in a child jest run', () => {
  let results: JestJsonResult['testResults'];
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secret-scan-'));
    const outputFile = join(dir, 'results.json');
    await new Promise<void>((done) => {
      execFile(
        process.execPath,
        [
          join(ROOT, 'node_modules/jest/bin/jest.js'),
          '--rootDir',
          ROOT,
          '--testMatch',
          '<rootDir>/test/security/fixtures/*.fixture.ts',
          '--json',
          '--outputFile',
          outputFile,
        ],
        { cwd: ROOT, env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 16 * 1024 * 1024 },
        // The leaky file fails by design, so the child exits 1: the results file tells.
        () => done(),
      );
    });
    results = (JSON.parse(await readFile(outputFile, 'utf8')) as JestJsonResult).testResults;
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const resultOf = (file: string) => results.find((r) => r.name.endsWith(file));

  it('fails a file that logs a token, an assertion, a data key and a client secret, naming each', () => {
    const leaky = resultOf('leaky.fixture.ts');

    expect(leaky?.status).toBe('failed');
    expect(leaky?.message).toContain('secret scan: 4 registered secret(s) appeared in captured output');
    expect(leaky?.message).toMatch(/access-token \(raw\) in console\.log/);
    expect(leaky?.message).toMatch(/assertion \(jwt-payload\) in CapturingLogger\.warn/);
    expect(leaky?.message).toMatch(/data-key \(base64\) in process\.stderr/);
    expect(leaky?.message).toMatch(/client-secret \(raw\) in JsonLogger\.debug/);
  });

  it('never quotes a secret in its report', () => {
    const report = resultOf('leaky.fixture.ts')?.message ?? '';
    const start = report.indexOf('secret scan:');

    expect(start).toBeGreaterThanOrEqual(0);
    const findings = report.slice(start, report.indexOf('\n\n', start));
    expect(findings).not.toMatch(/[A-Za-z0-9+/_=-]{16,}/);
    expect(findings).not.toContain('local-web-api-secret');
  });

  it('passes a file that produces the same secrets but logs only ids, hashes and lengths', () => {
    expect(resultOf('clean.fixture.ts')?.status).toBe('passed');
  });
});
