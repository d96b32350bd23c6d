/**
 * The registry of every secret a test file produced (tokens, assertions, client secrets,
 * authorization codes, data keys, master keys) and the scanner that looks for them in
 * captured output. It lives on `globalThis`, so each jest test file (one global per
 * file) has its own, fed by the observers in test/support/secret-scan.ts and by tests
 * that make secrets the observers cannot see.
 */

/** What kind of secret a value is; named in a finding, never the value itself. */
export type SecretKind =
  | 'access-token'
  | 'refresh-token'
  | 'id-token'
  | 'assertion'
  | 'signed-jwt'
  | 'client-secret'
  | 'auth-code'
  | 'code-verifier'
  | 'data-key'
  | 'master-key'
  | 'canary';

/** A registered secret; its kind may be refined by a later, more specific registration. */
interface Secret {
  kind: SecretKind;
}

/** One searchable form of a secret (raw, JWT payload, base64 of a key...). */
interface Variant {
  readonly secret: Secret;
  readonly form: string;
  readonly text: string;
}

/** A registered secret found in captured output. */
export interface SecretFinding {
  readonly kind: SecretKind;
  /** Which form matched: `raw`, `jwt-payload`, `jwt-signature`, `base64`, `hex`... */
  readonly form: string;
  /** The capture channel of the first hit (`console.error`, `CapturingLogger`...). */
  readonly channel: string;
  /** Up to 40 characters either side of the hit, the secret replaced by `[SECRET]`. */
  readonly context: string;
}

/**
 * Shorter strings are not registered: they could appear in any log by chance (a test's
 * `'x'` client secret), and no real token, key or secret is that short.
 */
export const MIN_SECRET_LENGTH = 12;

const REGISTRY = Symbol.for('msal-cloud-cache/test/secret-registry');

class SecretRegistry {
  private readonly variants = new Map<string, Variant>();

  add(kind: SecretKind, value: string | Uint8Array): void {
    if (typeof value === 'string') this.addString(kind, value);
    else if (value instanceof Uint8Array && value.length >= 16) this.addBytes(kind, value);
  }

  get size(): number {
    return this.variants.size;
  }

  /** Registered secrets found in `text`: one finding per secret, its first matching form. */
  scan(text: string, channelAt: (index: number) => string): SecretFinding[] {
    const findings: SecretFinding[] = [];
    const found = new Set<Secret>();
    for (const variant of this.variants.values()) {
      if (found.has(variant.secret)) continue;
      const at = text.indexOf(variant.text);
      if (at < 0) continue;
      found.add(variant.secret);
      const before = text.slice(Math.max(0, at - 40), at);
      const after = text.slice(at + variant.text.length, at + variant.text.length + 40);
      findings.push({
        kind: variant.secret.kind,
        form: variant.form,
        channel: channelAt(at),
        context: redactAll(`${before}[SECRET]${after}`, this.variants.values()),
      });
    }
    return findings;
  }

  private addString(kind: SecretKind, value: string): void {
    const text = value.trim();
    if (text.length < MIN_SECRET_LENGTH) return;
    const secret = this.secretOf(kind, text);
    this.put(secret, 'raw', text);
    const encoded = encodeURIComponent(text);
    if (encoded !== text) this.put(secret, 'url-encoded', encoded);
    const segments = text.split('.');
    if (segments.length === 3 && segments.every((s) => /^[A-Za-z0-9_-]*$/.test(s))) {
      // The header segment is shared by every token of a signer: not a secret on its own.
      this.put(secret, 'jwt-payload', segments[1]);
      this.put(secret, 'jwt-signature', segments[2]);
    }
  }

  private addBytes(kind: SecretKind, value: Uint8Array): void {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const base64 = bytes.toString('base64').replace(/=+$/, '');
    // Data keys are seen again on every unwrap: skip the other encodings when known.
    if (this.variants.has(base64)) return;
    const secret = this.secretOf(kind, base64);
    this.put(secret, 'base64', base64);
    this.put(secret, 'base64url', bytes.toString('base64url'));
    this.put(secret, 'hex', bytes.toString('hex'));
    // JSON of a Buffer ({"data":[1,2,...]}) and util.inspect of one (<Buffer 01 02 ...>).
    this.put(secret, 'byte-list', Array.from(bytes).join(','));
    this.put(secret, 'hex-spaced', Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' '));
  }

  /** The secret already registered under its first form, its kind refined; or a new one. */
  private secretOf(kind: SecretKind, firstForm: string): Secret {
    const existing = this.variants.get(firstForm)?.secret;
    if (!existing) return { kind };
    // The authority signs before the response says what the JWT is: keep the specific kind.
    if (existing.kind === 'signed-jwt') existing.kind = kind;
    return existing;
  }

  private put(secret: Secret, form: string, text: string): void {
    if (text.length < MIN_SECRET_LENGTH || this.variants.has(text)) return;
    this.variants.set(text, { secret, form, text });
  }
}

function redactAll(text: string, variants: Iterable<Variant>): string {
  let out = text;
  for (const v of variants) if (out.includes(v.text)) out = out.split(v.text).join('[SECRET]');
  // A partial secret cut at the context edge must not survive either; one line per finding.
  return out.replace(/[A-Za-z0-9+/_=-]{16,}/g, '[…]').replace(/\s*\n\s*/g, ' ⏎ ');
}

/** A fresh registry (the scanner's own tests); test files use {@link secretRegistry}. */
export function createSecretRegistry(): SecretRegistry {
  return new SecretRegistry();
}

/** The registry of the current test file. */
export function secretRegistry(): SecretRegistry {
  const holder = globalThis as unknown as Record<symbol, SecretRegistry | undefined>;
  return (holder[REGISTRY] ??= new SecretRegistry());
}

/** Registers a secret (a token, key or other value that must never be logged). */
export function registerSecret(kind: SecretKind, value: string | Uint8Array | undefined | null): void {
  if (value !== undefined && value !== null) secretRegistry().add(kind, value);
}

export type { SecretRegistry };
