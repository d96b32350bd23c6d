/**
 * Claims requests and claims challenges (Conditional Access, continuous access evaluation):
 * the `claims` value Entra puts in an `interaction_required` answer, a downstream API puts in
 * `WWW-Authenticate: Bearer error="insufficient_claims", claims="<base64>"`, or a caller
 * passes with a token request. Whoever it comes from, a value is used or passed on only
 * after it is validated here: a JSON object of at most {@link MAX_CLAIMS_BYTES} bytes,
 * re-serialized (what goes out is our own JSON, never the input's bytes), base64-encoded in
 * a header. No dependency: the core imports it.
 */
import { ErrorCode, TokenCacheError } from '../errors';

/**
 * Largest claims value accepted, in bytes of UTF-8 JSON. Entra's challenges are a few
 * hundred bytes (an authentication context, a policy id list, an `nbf`); 4 KiB leaves room
 * and keeps the base64 form well inside any header limit.
 */
export const MAX_CLAIMS_BYTES = 4096;

/** A client capability name (`cp1`), as Entra reads them from `xms_cc`. */
export const CLIENT_CAPABILITY = /^[A-Za-z0-9_-]{1,32}$/;

/** Longest `WWW-Authenticate` value of a downstream API that is parsed at all. */
const MAX_CHALLENGE_HEADER_CHARS = 16 * 1024;

/** Why a claims value was refused. Stable: logged and counted, never the value itself. */
export const InvalidClaimsReason = {
  Empty: 'empty',
  TooLarge: 'too-large',
  NotBase64: 'not-base64',
  NotUtf8: 'not-utf8',
  NotJson: 'not-json',
  NotObject: 'not-object',
  /** The challenge names `claims` twice, or its header does not parse. */
  Malformed: 'malformed',
} as const;
export type InvalidClaimsReason = (typeof InvalidClaimsReason)[keyof typeof InvalidClaimsReason];

/** Where a claims value came from: named in the error, so a log line says whose it was. */
export type ClaimsSource = 'request' | 'authority' | 'downstream';

/** A claims value that is not a bounded JSON object. The message never quotes the value. */
export class InvalidClaimsError extends TokenCacheError {
  override readonly name = 'InvalidClaimsError';
  constructor(
    readonly source: ClaimsSource,
    readonly reason: InvalidClaimsReason,
    message: string,
  ) {
    super(ErrorCode.InvalidClaims, `claims from the ${source}: ${message}`);
  }
}

/**
 * Validates a claims value and returns it re-serialized: `JSON.stringify(JSON.parse(value))`
 * of a non-empty JSON object within {@link MAX_CLAIMS_BYTES}.
 * @throws InvalidClaimsError naming the source and the reason, never the value
 * @example parseClaims('{"access_token":{"acrs":{"essential":true,"value":"c1"}}}', 'authority')
 */
export function parseClaims(value: unknown, source: ClaimsSource): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidClaimsError(source, InvalidClaimsReason.Empty, 'expected a JSON object, got nothing');
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_CLAIMS_BYTES) {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.TooLarge,
      `expected at most ${MAX_CLAIMS_BYTES} bytes, got ${bytes}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.NotJson,
      'expected a JSON object, got text that does not parse',
    );
  }
  if (
    parsed === null ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    Object.keys(parsed).length === 0
  ) {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.NotObject,
      `expected a non-empty JSON object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed === 'object' ? 'an empty object' : typeof parsed}`,
    );
  }
  const json = JSON.stringify(parsed);
  // Re-serializing can grow a value (escaped lone surrogates): bound what goes out too.
  if (Buffer.byteLength(json, 'utf8') > MAX_CLAIMS_BYTES) {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.TooLarge,
      `expected at most ${MAX_CLAIMS_BYTES} bytes of JSON`,
    );
  }
  return json;
}

/** The base64 form of validated claims, for a `WWW-Authenticate` `claims` parameter. */
export function encodeClaims(json: string): string {
  return Buffer.from(json, 'utf8').toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+)$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes the base64 (or base64url) `claims` parameter of a challenge and validates it.
 * @throws InvalidClaimsError naming the source and the reason, never the value
 */
export function decodeClaims(base64: unknown, source: ClaimsSource): string {
  if (typeof base64 !== 'string' || base64 === '') {
    throw new InvalidClaimsError(source, InvalidClaimsReason.Empty, 'expected base64 JSON, got nothing');
  }
  // 4 base64 characters carry 3 bytes: anything longer cannot decode within the bound.
  if (base64.length > Math.ceil(MAX_CLAIMS_BYTES / 3) * 4) {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.TooLarge,
      `expected at most ${MAX_CLAIMS_BYTES} bytes, got ${base64.length} base64 characters`,
    );
  }
  if (!BASE64.test(base64)) {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.NotBase64,
      'expected base64, got other characters',
    );
  }
  let text: string;
  try {
    text = utf8.decode(
      Buffer.from(base64, base64.includes('-') || base64.includes('_') ? 'base64url' : 'base64'),
    );
  } catch {
    throw new InvalidClaimsError(
      source,
      InvalidClaimsReason.NotUtf8,
      'expected UTF-8 JSON inside the base64',
    );
  }
  return parseClaims(text, source);
}

/** A downstream API's claims challenge: the claims it asks for, or why they were refused. */
export type ClaimsChallenge =
  | { readonly claims: string; readonly invalid?: never }
  | { readonly invalid: InvalidClaimsError; readonly claims?: never };

/**
 * The claims challenge in a `WWW-Authenticate` header, if it holds a Bearer challenge with
 * `error="insufficient_claims"` (CAE: the token was revoked or lacks a claim):
 * `{ claims }` validated, `{ invalid }` when its claims are unusable, `undefined` when
 * there is no such challenge.
 * @example
 * claimsChallengeOf('Bearer realm="", error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnt9fQ=="')
 */
export function claimsChallengeOf(
  header: string | readonly string[] | undefined,
): ClaimsChallenge | undefined {
  const text = typeof header === 'string' ? header : header?.join(', ');
  if (!text) return undefined;
  if (text.length > MAX_CHALLENGE_HEADER_CHARS) {
    return /insufficient_claims/i.test(text)
      ? {
          invalid: new InvalidClaimsError(
            'downstream',
            InvalidClaimsReason.TooLarge,
            `the WWW-Authenticate header is longer than ${MAX_CHALLENGE_HEADER_CHARS} characters`,
          ),
        }
      : undefined;
  }
  const challenges = parseChallenges(text);
  const bearer = challenges.find(
    (c) => c.scheme === 'bearer' && c.params.get('error')?.toLowerCase() === 'insufficient_claims',
  );
  if (!bearer) {
    // A header we could not parse that still says insufficient_claims: refused, not ignored.
    return /insufficient_claims/i.test(text) &&
      !challenges.some((c) => c.scheme === 'bearer' && c.params.has('error'))
      ? {
          invalid: new InvalidClaimsError(
            'downstream',
            InvalidClaimsReason.Malformed,
            'the WWW-Authenticate header does not parse',
          ),
        }
      : undefined;
  }
  if (bearer.duplicates.has('claims')) {
    return {
      invalid: new InvalidClaimsError(
        'downstream',
        InvalidClaimsReason.Malformed,
        'the challenge names claims twice',
      ),
    };
  }
  try {
    return { claims: decodeClaims(bearer.params.get('claims'), 'downstream') };
  } catch (e) {
    if (e instanceof InvalidClaimsError) return { invalid: e };
    throw e;
  }
}

/**
 * The `WWW-Authenticate` value that asks a client to step up: the shape Entra's client
 * libraries (MSAL's claims-challenge helpers, Microsoft.Identity.Web) parse.
 * @param claimsJson validated claims ({@link parseClaims})
 * @param authority the authority the client signs in at, e.g. `https://login.microsoftonline.com/<tenant>`
 */
export function insufficientClaimsChallenge(claimsJson: string, authority?: string): string {
  const params = ['realm=""'];
  if (authority) {
    // URL serialization percent-encodes quotes and backslashes: safe inside a quoted-string.
    const uri = new URL(`${authority.replace(/\/+$/, '')}/oauth2/v2.0/authorize`).href;
    params.push(`authorization_uri="${uri}"`);
  }
  params.push('error="insufficient_claims"', `claims="${encodeClaims(claimsJson)}"`);
  return `Bearer ${params.join(', ')}`;
}

interface Challenge {
  readonly scheme: string;
  readonly params: Map<string, string>;
  readonly duplicates: Set<string>;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]+/y;

/**
 * RFC 9110 section 11.6.1 challenges: `scheme` followed by comma-separated `name=value`
 * parameters (token or quoted-string), challenges separated by commas. Stops at the first
 * thing that does not parse and returns what came before it.
 */
function parseChallenges(input: string): Challenge[] {
  const out: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const skipSpace = () => {
    while (i < input.length && (input[i] === ' ' || input[i] === '\t')) i++;
  };
  const token = (): string | undefined => {
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(input);
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  while (i < input.length) {
    skipSpace();
    if (input[i] === ',') {
      i++;
      continue;
    }
    const name = token();
    if (name === undefined) return out;
    skipSpace();
    if (input[i] !== '=') {
      current = { scheme: name.toLowerCase(), params: new Map(), duplicates: new Set() };
      out.push(current);
      continue;
    }
    if (!current) return out;
    i++;
    skipSpace();
    let value = '';
    if (input[i] === '"') {
      i++;
      let closed = false;
      while (i < input.length) {
        const c = input[i++];
        if (c === '\\' && i < input.length) value += input[i++];
        else if (c === '"') {
          closed = true;
          break;
        } else value += c;
      }
      if (!closed) return out;
    } else {
      const v = token();
      if (v === undefined) return out;
      value = v;
      // token68-style trailing padding ("abc==") belongs to the value.
      while (input[i] === '=') value += input[i++];
    }
    const key = name.toLowerCase();
    if (current.params.has(key)) current.duplicates.add(key);
    else current.params.set(key, value);
  }
  return out;
}
