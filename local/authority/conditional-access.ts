/**
 * Conditional Access and continuous access evaluation at the local authority.
 *
 * - A {@link ConditionalAccessRule} protects resources for chosen users: an on-behalf-of
 *   request for such a resource is answered `interaction_required` (AADSTS50076) with a
 *   claims challenge for an authentication context (`acrs`), until the incoming assertion
 *   carries it, as Entra does when a policy requires MFA or a compliant device. The client
 *   then signs in again with those claims (locally: `mintUserToken({ acrs: ['c1'] })`).
 * - The `claims` parameter of a token request is read as Entra reads it: `xms_cc` with `cp1`
 *   (the client handles claims challenges) gets CAE tokens, long-lived and carrying
 *   `xms_cc`; an `acrs` asked for (a resource's challenge) must be in the assertion too; an
 *   `nbf` asked for (a CAE revocation) is met by any token issued now.
 */
import type { JWTPayload } from 'jose';

/** A Conditional Access policy for some users and resources. */
export interface ConditionalAccessRule {
  /** Object ids of the users it applies to. */
  readonly users: readonly string[];
  /** Resources it protects: the `aud` of the token asked for (e.g. `api://downstream`). */
  readonly resources: readonly string[];
  /** The authentication context the incoming token must carry in `acrs`. @default 'c1' */
  readonly authenticationContext?: string;
  /**
   * The raw `claims` text sent in the error instead of the challenge for the context, to
   * test how clients treat a malformed one. @default the JSON challenge for the context
   */
  readonly rawChallenge?: string;
}

/** Default authentication context: Entra names them c1..c99. */
export const DEFAULT_AUTHENTICATION_CONTEXT = 'c1';

/** Lifetime of a CAE token (client capability `cp1`): Entra issues them for 20 to 28 hours. */
export const CAE_TOKEN_LIFETIME_SECONDS = 28 * 3600;

/** What a token request's `claims` parameter asks for. */
export interface RequestedClaims {
  /** The client declared `cp1`: it handles claims challenges, so it gets CAE tokens. */
  readonly cae: boolean;
  /** Authentication contexts the access token must carry (a resource's step-up challenge). */
  readonly acrs: readonly string[];
}

/** The claims challenge for an authentication context, as Entra writes it. */
export function acrsChallenge(context: string): string {
  return JSON.stringify({ access_token: { acrs: { essential: true, value: context } } });
}

/**
 * Reads the `claims` parameter (JSON, msal-node merges `xms_cc` into it).
 * @returns undefined when the parameter is not a JSON object (Entra refuses it)
 */
export function readClaimsParameter(raw: string | null): RequestedClaims | undefined {
  if (raw === null || raw === '') return { cae: false, acrs: [] };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const accessToken = isRecord(value.access_token) ? value.access_token : {};
  const xmsCc = isRecord(accessToken.xms_cc) ? accessToken.xms_cc : {};
  const acrs = isRecord(accessToken.acrs) ? accessToken.acrs : {};
  return {
    cae: stringsOf(xmsCc.values).includes('cp1'),
    acrs: [...stringsOf(acrs.values), ...stringsOf(acrs.value)],
  };
}

/** The policies of the directory, evaluated on each on-behalf-of request. */
export class ConditionalAccess {
  private rules: readonly ConditionalAccessRule[] = [];

  /** Replaces every rule. */
  set(rules: readonly ConditionalAccessRule[]): void {
    this.rules = [...rules];
  }

  /**
   * The claims challenge (raw text for the error's `claims`) an on-behalf-of exchange for
   * `resource` must answer with, or undefined when the assertion satisfies every rule and
   * every authentication context the request asked for.
   */
  challenge(
    assertion: JWTPayload,
    resource: string,
    requested: RequestedClaims,
  ): { readonly claims: string; readonly contexts: readonly string[] } | undefined {
    const carried = new Set(stringsOf(assertion.acrs));
    for (const rule of this.rules) {
      if (typeof assertion.oid !== 'string' || !rule.users.includes(assertion.oid)) continue;
      if (!rule.resources.includes(resource)) continue;
      const context = rule.authenticationContext ?? DEFAULT_AUTHENTICATION_CONTEXT;
      if (!carried.has(context))
        return { claims: rule.rawChallenge ?? acrsChallenge(context), contexts: [context] };
    }
    const missing = requested.acrs.find((c) => !carried.has(c));
    return missing === undefined ? undefined : { claims: acrsChallenge(missing), contexts: [missing] };
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
