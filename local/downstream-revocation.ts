/**
 * Continuous access evaluation at the local downstream API: a resource that learns a user's
 * session was revoked (password reset, account disabled, admin "revoke sessions") rejects
 * that user's tokens at once, even though they are still within their lifetime, and answers
 * with a claims challenge instead of a plain `invalid_token`:
 *
 *   401 WWW-Authenticate: Bearer realm="", authorization_uri="…", error="insufficient_claims",
 *                         claims="<base64 of {"access_token":{"nbf":{"essential":true,"value":"<time>"}}}>"
 *
 * A client that declared `cp1` acquires a new token with those claims and retries. Here a
 * revocation rejects every token of the user this API accepted before it, and any issued
 * before its second; tokens issued after it pass (or none, with `always`, a resource that
 * keeps refusing the user).
 */
import type { JWTPayload } from 'jose';

/** Token ids remembered per user; older tokens are still caught by their `iat`. */
const MAX_TOKEN_IDS_PER_USER = 1000;

/** A revocation of one user's tokens. */
export interface DownstreamRevocation {
  /** The user's object id (`oid`). */
  readonly oid: string;
  /** Refuse every token of the user, also those issued later. @default false */
  readonly always?: boolean;
  /**
   * The `claims` parameter exactly as sent (not base64-encoded here), to test how clients
   * treat a malformed challenge. @default base64 of the CAE `nbf` challenge
   */
  readonly rawClaims?: string;
}

interface Revoked {
  readonly revokedAt: number;
  readonly tokenIds: ReadonlySet<string>;
  readonly always: boolean;
  readonly rawClaims?: string;
}

/** The revocations of one downstream API, and the tokens it accepted (by `uti`, never the token). */
export class RevocationList {
  private readonly revoked = new Map<string, Revoked>();
  private readonly accepted = new Map<string, Set<string>>();

  /** @param authorizationUri where clients sign in again, named in the challenge */
  constructor(private readonly authorizationUri: string) {}

  /** Revokes a user's tokens; returns the revocation time (epoch seconds, the challenge's `nbf`). */
  revoke(revocation: DownstreamRevocation): number {
    const revokedAt = Math.floor(Date.now() / 1000);
    this.revoked.set(revocation.oid, {
      revokedAt,
      tokenIds: new Set(this.accepted.get(revocation.oid) ?? []),
      always: revocation.always ?? false,
      ...(revocation.rawClaims !== undefined ? { rawClaims: revocation.rawClaims } : {}),
    });
    return revokedAt;
  }

  /** Lifts a user's revocation. */
  restore(oid: string): void {
    this.revoked.delete(oid);
  }

  /**
   * The `WWW-Authenticate` challenge to answer a validated token with, or `undefined` to
   * serve it (then it is remembered as accepted).
   */
  check(claims: JWTPayload): string | undefined {
    const oid = typeof claims.oid === 'string' ? claims.oid : undefined;
    const tokenId = typeof claims.uti === 'string' ? claims.uti : undefined;
    if (oid === undefined) return undefined;
    const r = this.revoked.get(oid);
    const iat = typeof claims.iat === 'number' ? claims.iat : 0;
    if (r && (r.always || iat < r.revokedAt || (tokenId !== undefined && r.tokenIds.has(tokenId)))) {
      const claimsParameter =
        r.rawClaims ??
        Buffer.from(
          JSON.stringify({ access_token: { nbf: { essential: true, value: String(r.revokedAt) } } }),
        ).toString('base64');
      return `Bearer realm="", authorization_uri="${this.authorizationUri}", error="insufficient_claims", claims="${claimsParameter}"`;
    }
    if (tokenId !== undefined) {
      const ids = this.accepted.get(oid) ?? new Set<string>();
      ids.add(tokenId);
      // Bounded: a long local run must not grow without end (the oldest ids go first).
      if (ids.size > MAX_TOKEN_IDS_PER_USER) ids.delete(ids.values().next().value as string);
      this.accepted.set(oid, ids);
    }
    return undefined;
  }
}
