/**
 * Log fields for an error that cannot leak a secret: its name, stable code and a message
 * with anything token-shaped removed. Stacks are never logged: they add nothing a
 * requestId and a code do not, and a library's message might quote what it was given.
 */
import type { LogFields } from '../../shared/observability';

const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g;
/**
 * Long runs of base64/hex-like characters: secrets, keys, assertions of any format. `/`
 * splits runs so URL paths survive; GUIDs (tenant, client, correlation ids) are kept.
 */
const OPAQUE_RUN = /[A-Za-z0-9+=_~.-]{32,}/g;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_MESSAGE = 300;

/** Removes token-shaped substrings and bounds the length. */
export function redact(text: string): string {
  const clean = text
    .replace(JWT_LIKE, '[redacted]')
    .replace(OPAQUE_RUN, (run) => (GUID.test(run) ? run : '[redacted]'));
  return clean.length > MAX_MESSAGE ? `${clean.slice(0, MAX_MESSAGE)}...` : clean;
}

/** `errorName`, `errorCode` and a redacted `errorMessage` of `e` (and the name of its cause). */
export function errorFields(e: unknown): LogFields {
  if (!(e instanceof Error)) return { errorName: typeof e };
  const code = (e as { code?: unknown }).code;
  const cause = (e as { cause?: unknown }).cause;
  return {
    errorName: e.name,
    ...(typeof code === 'string' || typeof code === 'number' ? { errorCode: String(code) } : {}),
    errorMessage: redact(e.message),
    ...(cause instanceof Error ? { causeName: cause.name } : {}),
  };
}
