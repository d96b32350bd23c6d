/**
 * A ready test world for the token cache: the local authority, a shared store, a local
 * key ring and a factory of separately constructed TokenCache instances ("containers").
 */
import { randomBytes } from 'node:crypto';
import { HttpsNetworkClient } from '../../shared/cache/http';
import type { CachedAuthenticationResult } from '../../shared/cache/metadata';
import { createTokenCache } from '../../shared/cache/token-cache';
import type { TokenCache, TokenCacheOptions } from '../../shared/cache/types';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import type { KeyRing } from '../../shared/crypto/keyring';
import { CounterMetrics, type LogFields, type Logger } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import { startLocalAuthority, type LocalAuthority } from '../../local/authority';

export const API_CLIENT_ID = '6f1c7a2e-3b54-4d7e-9c1a-0e2f4b6d8a10';
export const API_CLIENT_SECRET = 'local-web-api-secret';
export const DOWNSTREAM_SCOPE = 'api://downstream/.default';
/** Where the tests' web app receives its authorization codes. */
export const REDIRECT_URI = 'https://app.example/callback';
/** The scopes the tests' users sign in for. */
export const USER_SCOPES: readonly string[] = ['User.Read'];

/**
 * Signs the user `oid` in through `cache`: an authorization code from `world`'s authority,
 * redeemed with acquireTokenByCode (the user partition's first write).
 */
export function signIn(
  world: Pick<CacheWorld, 'authority'>,
  cache: TokenCache,
  oid: string,
): Promise<CachedAuthenticationResult> {
  const code = world.authority.issueAuthCode({
    clientId: API_CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scopes: ['openid', 'profile', 'offline_access', ...USER_SCOPES],
    user: { oid, preferredUsername: `${oid}@example.com` },
  });
  return cache.acquireTokenByCode({ code, scopes: [...USER_SCOPES], redirectUri: REDIRECT_URI });
}

/** A logger that keeps every line, so tests can assert on and scan them. */
export class CapturingLogger implements Logger {
  readonly lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  debug(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', message, fields });
  }
  info(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', message, fields });
  }
  /** Everything logged, as one string. */
  text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

export interface CacheWorld {
  readonly authority: LocalAuthority;
  readonly store: MemoryStore;
  readonly masterKey: Buffer;
  readonly network: HttpsNetworkClient;
  /** A new, separately constructed cache (its own L1, data-key cache and metrics). */
  instance(overrides?: Partial<TokenCacheOptions>): {
    cache: TokenCache;
    metrics: CounterMetrics;
    logger: CapturingLogger;
  };
  stop(): Promise<void>;
}

/** Starts the authority and builds the world; call `stop()` in afterAll. */
export async function startCacheWorld(options: { store?: MemoryStore } = {}): Promise<CacheWorld> {
  const authority = await startLocalAuthority({
    clients: [{ clientId: API_CLIENT_ID, clientSecret: API_CLIENT_SECRET }],
  });
  const store = options.store ?? new MemoryStore();
  const masterKey = randomBytes(32);
  const network = new HttpsNetworkClient({ ca: authority.ca });
  return {
    authority,
    store,
    masterKey,
    network,
    instance(overrides = {}) {
      const metrics = new CounterMetrics();
      const logger = new CapturingLogger();
      const keyRing: KeyRing = new LocalKeyRing({ masterKey });
      const cache = createTokenCache({
        msal: {
          clientId: API_CLIENT_ID,
          authority: authority.authority(),
          clientSecret: API_CLIENT_SECRET,
          knownAuthorities: [authority.host],
          networkClient: network,
        },
        store: store,
        keyRing,
        l1: false,
        metrics,
        logger,
        ...overrides,
      });
      return { cache, metrics, logger };
    },
    async stop() {
      network.destroy();
      await authority.stop();
    },
  };
}
