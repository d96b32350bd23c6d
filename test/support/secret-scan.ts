/**
 * Secrets are never logged (issue 7, item 5), checked for every test file: jest loads this
 * module through `setupFilesAfterEnv`. It
 * - captures everything the file writes to console, process.stdout and process.stderr,
 *   and every record handed to a CapturingLogger or a JsonLogger (at any level, so a
 *   secret passed to a debug line fails even when the level filters it out);
 * - feeds the file's secret registry (test/support/secret-registry.ts) with every secret
 *   the run produces that the test infrastructure can see: every JWT the local authority
 *   signs (access, id and minted user tokens), every token, refresh token, client secret,
 *   assertion, authorization code and PKCE verifier crossing MSAL's HTTPS network module,
 *   and every data key a DataKeyCache hands out (whatever key ring made it);
 * - in afterAll, fails the file if any registered secret, or its JWT payload or
 *   signature, or a base64 / hex form of a key, appears in what was captured.
 * The observers patch the classes of modules the test file has loaded (checked in a
 * beforeAll that runs before the file's own hooks), so files that never load MSAL or the
 * authority do not pay for loading them. Tests register what the observers cannot see
 * (master keys, a credential's bearer) with `registerSecret`. Output written in the test
 * file's own top-level afterAll, after this hook has run, is not scanned.
 */
import { format } from 'node:util';
import type { HttpsNetworkClient } from '../../shared/cache/http';
import type { DataKeyCache } from '../../shared/crypto/data-key-cache';
import type { DataKey, KeyRing } from '../../shared/crypto/keyring';
import type { LogFields } from '../../shared/observability';
import type { TokenSigner } from '../../local/authority/tokens';
import type { LocalOidcIssuer } from '../../local/oidc-issuer';
import type { AssertionCache } from '../../shared/cache/assertion-cache';
import { registerSecret, secretRegistry, type SecretKind } from './secret-registry';

interface Capture {
  readonly channel: string;
  readonly text: string;
}

const captured: Capture[] = [];
const restore: Array<() => void> = [];

function record(channel: string, text: string): void {
  if (text.length > 0) captured.push({ channel, text });
}

/** Replaces `target[name]` with `wrap(original)` until afterAll. */
function patch<T extends object, K extends keyof T>(
  target: T,
  name: K,
  wrap: (original: T[K]) => T[K],
): void {
  const original = target[name];
  target[name] = wrap(original);
  restore.push(() => {
    target[name] = original;
  });
}

// --- capture -------------------------------------------------------------------------

/**
 * jest's default BufferedConsole keeps every message of the file, read at scan time;
 * its CustomConsole (--verbose) writes through process.stdout, captured below. Only
 * another console (NullConsole under --silent) is wrapped, as wrapping moves the origin
 * jest prints under each console message to this file.
 */
const jestConsole = console as Console & {
  getBuffer?: () => Array<{ type: string; message: string }> | undefined;
};
const consoleKind = jestConsole.constructor.name;
if (consoleKind !== 'BufferedConsole' && consoleKind !== 'CustomConsole') {
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    patch(
      console,
      method,
      (original) =>
        function (this: Console, ...args: unknown[]) {
          record(`console.${method}`, format(...args));
          return original.apply(this, args);
        },
    );
  }
}

function consoleBuffer(): Capture[] {
  if (consoleKind !== 'BufferedConsole') return [];
  return (jestConsole.getBuffer?.() ?? []).map((e) => ({ channel: `console.${e.type}`, text: e.message }));
}

for (const [name, stream] of [
  ['process.stdout', process.stdout],
  ['process.stderr', process.stderr],
] as const) {
  patch(stream, 'write', (original) => {
    return function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      record(name, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    };
  });
}

type KeyRingClass = { prototype: Pick<KeyRing, 'generateDataKey' | 'unwrapDataKey'> };
type LogMethod = (message: string, fields?: LogFields) => void;

/**
 * The exports of a module the test file has loaded, or undefined. The observers below
 * patch only modules already loaded: importing them here would cost every test file
 * (MSAL, the local authority) a second of loading for nothing.
 */
function loaded<T>(path: string): T | undefined {
  return require.cache[require.resolve(path)]?.exports as T | undefined;
}

function captureLoggers(): void {
  const harness = loaded<typeof import('./cache-harness')>('./cache-harness');
  const observability = loaded<typeof import('../../shared/observability')>('../../shared/observability');
  const loggers: Array<[string, object | undefined]> = [
    ['CapturingLogger', harness?.CapturingLogger.prototype],
    ['JsonLogger', observability?.JsonLogger.prototype],
  ];
  for (const [label, proto] of loggers) {
    if (!proto) continue;
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      patch(
        proto as Record<typeof level, LogMethod>,
        level,
        (original) =>
          function (this: unknown, message: string, fields?: LogFields) {
            record(`${label}.${level}`, JSON.stringify({ message, fields }));
            return original.call(this, message, fields);
          },
      );
    }
  }
}

// --- observe secrets -------------------------------------------------------------------

/** Form fields of a token request that carry a secret. */
const requestSecrets: Record<string, SecretKind> = {
  client_secret: 'client-secret',
  client_assertion: 'assertion',
  assertion: 'assertion',
  refresh_token: 'refresh-token',
  code: 'auth-code',
  code_verifier: 'code-verifier',
};
/** Fields of a token response that carry a secret. */
const responseSecrets: Record<string, SecretKind> = {
  access_token: 'access-token',
  refresh_token: 'refresh-token',
  id_token: 'id-token',
};

function observeSecrets(): void {
  const http = loaded<{ HttpsNetworkClient: typeof HttpsNetworkClient }>('../../shared/cache/http');
  if (http) {
    patch(
      http.HttpsNetworkClient.prototype,
      'sendPostRequestAsync',
      (original) =>
        async function (this: HttpsNetworkClient, url, options) {
          if (typeof options?.body === 'string') {
            const form = new URLSearchParams(options.body);
            for (const [field, kind] of Object.entries(requestSecrets)) registerSecret(kind, form.get(field));
          }
          const response = await original.call(this, url, options);
          const body = response.body as Record<string, unknown> | undefined;
          for (const [field, kind] of Object.entries(responseSecrets)) {
            const value = body?.[field];
            if (typeof value === 'string') registerSecret(kind, value);
          }
          return response;
        } as typeof original,
    );
  }

  const tokens = loaded<{ TokenSigner: typeof TokenSigner }>('../../local/authority/tokens');
  if (tokens) registerWhatItResolves(tokens.TokenSigner.prototype, 'sign', 'signed-jwt');

  // Every client assertion a platform identity issued (STS, managed identity), used or not.
  const assertions = loaded<{ AssertionCache: typeof AssertionCache }>('../../shared/cache/assertion-cache');
  if (assertions) registerWhatItResolves(assertions.AssertionCache.prototype, 'get', 'assertion');
  const issuers = loaded<{ LocalOidcIssuer: typeof LocalOidcIssuer }>('../../local/oidc-issuer');
  if (issuers) registerWhatItResolves(issuers.LocalOidcIssuer.prototype, 'sign', 'assertion');

  // Every data key a key ring makes or unwraps, used directly or through a DataKeyCache.
  const rings = [
    loaded<{ LocalKeyRing: KeyRingClass }>('../../shared/crypto/local-keyring')?.LocalKeyRing,
    loaded<{ KmsKeyRing: KeyRingClass }>('../../shared/aws/kms-keyring')?.KmsKeyRing,
    loaded<{ KeyVaultKeyRing: KeyRingClass }>('../../shared/azure/keyvault-keyring')?.KeyVaultKeyRing,
  ];
  for (const ring of rings) {
    if (!ring) continue;
    registerWhatItResolves(ring.prototype, 'generateDataKey', 'data-key', plaintextOf);
    registerWhatItResolves(ring.prototype, 'unwrapDataKey', 'data-key');
  }

  const keys = loaded<{ DataKeyCache: typeof DataKeyCache }>('../../shared/crypto/data-key-cache');
  if (keys) {
    registerWhatItResolves(keys.DataKeyCache.prototype, 'encryptionKey', 'data-key', plaintextOf);
    registerWhatItResolves(keys.DataKeyCache.prototype, 'decryptionKey', 'data-key');
  }
}

/** The secret in a resolved DataKey: its plaintext (the wrapped form is safe to log). */
const plaintextOf = (key: unknown): Uint8Array => (key as DataKey).plaintext;

/**
 * Patches the async method `name` of `target` so that what it resolves to (or the part
 * `secretOf` picks out of it) is registered as a `kind` secret before the caller sees it.
 */
function registerWhatItResolves<T extends object>(
  target: T,
  name: keyof T & string,
  kind: SecretKind,
  secretOf: (resolved: unknown) => string | Uint8Array = (resolved) => resolved as string | Uint8Array,
): void {
  if (typeof target[name] !== 'function') throw new Error(`secret-scan: ${name} is not a method to observe`);
  patch(
    target as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>,
    name,
    (original) =>
      async function (this: unknown, ...args: unknown[]): Promise<unknown> {
        const resolved = await original.apply(this, args);
        registerSecret(kind, secretOf(resolved));
        return resolved;
      },
  );
}

// The test file has been evaluated (its imports loaded) but none of its hooks has run.
beforeAll(() => {
  captureLoggers();
  observeSecrets();
});

// --- scan ----------------------------------------------------------------------------

/** Scans what was captured so far; a report naming each leak (never its value), or undefined. */
export function secretScanReport(): string | undefined {
  const starts: number[] = [];
  let text = '';
  const all = [...captured, ...consoleBuffer()];
  for (const c of all) {
    starts.push(text.length);
    text += `${c.text}\n`;
  }
  const channelAt = (index: number): string => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return all[lo]?.channel ?? 'unknown';
  };
  const findings = secretRegistry().scan(text, channelAt);
  if (findings.length === 0) return undefined;
  const lines = findings.map((f) => `  - ${f.kind} (${f.form}) in ${f.channel}: …${f.context}…`);
  return `secret scan: ${findings.length} registered secret(s) appeared in captured output:\n${lines.join('\n')}`;
}

afterAll(() => {
  for (const undo of restore.splice(0).reverse()) undo();
  const report = secretScanReport();
  if (process.env.SECRET_SCAN_STATS) {
    // Figures for docs/security.md: SECRET_SCAN_STATS=1 npx jest
    const bytes = [...captured, ...consoleBuffer()].reduce((n, c) => n + c.text.length, 0);
    process.stderr.write(
      `secret scan stats: ${expect.getState().testPath ?? '?'}: ${secretRegistry().size} secret forms, ${bytes} characters captured\n`,
    );
  }
  captured.length = 0;
  if (report) throw new Error(report);
});
