/**
 * Helpers shared by the security suites (test/security): a cache world whose secrets are
 * registered with the secret scan, opening what a store holds, and reading the log
 * lines and stored tokens the suites assert on.
 */
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import type { KeyRing, PartitionKind } from '../../shared/crypto/keyring';
import { parseDocument, type CacheDocument } from '../../shared/cache/cache-document';
import type { TokenStore } from '../../shared/store/store';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  startCacheWorld,
  type CacheWorld,
  type CapturingLogger,
} from './cache-harness';
import { registerSecret } from './secret-registry';

/** A second app registration, for blobs swapped between apps. */
export const OTHER_APP = {
  clientId: '0b7d3c1e-9a2f-4e61-8d5c-3f1a2b4c6d80',
  clientSecret: 'local-other-app-secret',
} as const;

/** {@link startCacheWorld} with the world's master key and client secrets registered as secrets. */
export async function startSecureWorld(): Promise<CacheWorld> {
  const world = await startCacheWorld();
  world.authority.registerClient(OTHER_APP);
  registerSecret('master-key', world.masterKey);
  registerSecret('client-secret', API_CLIENT_SECRET);
  registerSecret('client-secret', OTHER_APP.clientSecret);
  return world;
}

/** An incoming access token for the web API, as a caller would present it (the OBO assertion). */
export function userAssertion(world: CacheWorld, oid: string, expiresInSeconds = 3600): Promise<string> {
  return world.authority.mintUserToken({
    audience: API_CLIENT_ID,
    oid,
    preferredUsername: `${oid}@example.com`,
    expiresInSeconds,
  });
}

/**
 * The MSAL document a store holds under `key`, opened with `keyRing` as a partition of
 * `kind` (the KMS ring binds data keys to it); undefined when absent.
 */
export async function storedDocument(
  store: TokenStore,
  key: string,
  keyRing: KeyRing,
  kind: PartitionKind = 'obo',
): Promise<CacheDocument | undefined> {
  const item = await store.read(key);
  if (!item) return undefined;
  const envelope = new Envelope({ keys: new DataKeyCache(keyRing) });
  return parseDocument(
    Buffer.from(await envelope.open(item.blob, key, { partitionKind: kind })).toString('utf8'),
  );
}

/** The access tokens (their `secret` fields) in a document. */
export function accessTokensIn(doc: CacheDocument | undefined): string[] {
  return Object.values(doc?.['AccessToken'] ?? {}).map((e) => String(e['secret']));
}

/** Log lines of a level whose `code` field is `code`. */
export function linesWithCode(logger: CapturingLogger, level: string, code: string) {
  return logger.lines.filter((l) => l.level === level && l.fields?.['code'] === code);
}

/** A store that passes everything through and counts writes and deletes (to prove none happened). */
export class CountingStore implements TokenStore {
  readonly name: string;
  readonly maxItemBytes: number;
  writes = 0;
  deletes = 0;
  constructor(private readonly inner: TokenStore) {
    this.name = inner.name;
    this.maxItemBytes = inner.maxItemBytes;
  }
  read(key: string) {
    return this.inner.read(key);
  }
  write(...args: Parameters<TokenStore['write']>) {
    this.writes++;
    return this.inner.write(...args);
  }
  delete(...args: Parameters<TokenStore['delete']>) {
    this.deletes++;
    return this.inner.delete(...args);
  }
}
