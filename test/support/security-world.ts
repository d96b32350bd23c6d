/**
 * Helpers shared by the security suites (test/security): a cache world whose secrets are
 * registered with the secret scan, opening what a store holds, and reading the log
 * lines and stored tokens the suites assert on.
 */
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import type { KeyRing, PartitionKind } from '../../shared/crypto/keyring';
import { parseDocument, type CacheDocument } from '../../shared/cache/cache-document';
import type { StoredItem, TokenStore } from '../../shared/store/store';
import { GrantType } from '../../local/authority';
import { ErrorCode } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import {
  API_CLIENT_ID,
  API_CLIENT_SECRET,
  DOWNSTREAM_SCOPE,
  startCacheWorld,
  type CacheWorld,
  type CapturingLogger,
} from './cache-harness';
import { registerSecret } from './secret-registry';
import { useWorld } from './use-world';

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

/** A second downstream scope, for a request the cache cannot answer from what it holds. */
export const OTHER_SCOPE = 'api://other-downstream/.default';

/**
 * A {@link startSecureWorld} world for the enclosing scope ({@link useWorld}), with the
 * authority's counters reset before each test (the fault suites count token requests per test).
 */
export function useSecureWorld(): CacheWorld {
  const world = useWorld(startSecureWorld);
  beforeEach(() => {
    world.authority.counters.reset();
  });
  return world;
}

/** Asserts that a store item is still the one read before a fault: same version, same bytes. */
export function expectSameItem(after: StoredItem | undefined, before: StoredItem | undefined): void {
  expect(before).toBeDefined();
  expect(after?.version).toBe(before?.version);
  expect(Buffer.from(after!.blob).equals(Buffer.from(before!.blob))).toBe(true);
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

/** A user whose partition holds one token, written through `store`; `before` is the item stored. */
export async function seededUser(world: CacheWorld, store: TokenStore, oid: string) {
  const assertion = await userAssertion(world, oid);
  const { cache } = world.instance({ store });
  const seeded = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
  const key = cache.storeKeyOf({ kind: 'obo', assertion });
  return { assertion, seeded, key, before: await store.read(key) };
}

/**
 * A request (for {@link OTHER_SCOPE}) through a failing `store`, and what every store fault
 * owes the caller: a fresh token from the authority, the failed read and the write that could
 * not be made counted, and the read logged as a warning with the stable code.
 */
export async function acquireDuringStoreFault(world: CacheWorld, store: TokenStore, assertion: string) {
  world.authority.counters.reset();
  const { cache, metrics, logger } = world.instance({ store });
  const started = performance.now();
  const result = await cache.acquireTokenOnBehalfOf({ assertion, scopes: [OTHER_SCOPE] });
  const ms = performance.now() - started;
  expect(result.fromCache).toBe(false);
  expect(world.authority.counters.token(GrantType.OnBehalfOf)).toBe(1);
  expect(metrics.get(Metric.StoreError, { kind: 'obo', operation: 'read' })).toBe(1);
  expect(metrics.get(Metric.WriteFailed, { kind: 'obo', reason: 'store-unavailable' })).toBe(1);
  expect(metrics.get(Metric.StoreWrite)).toBe(0);
  const [readLine] = linesWithCode(logger, 'warn', ErrorCode.StoreUnavailable);
  expect(readLine?.message).toBe('token cache read failed; acquiring without the cache');
  return { result, ms, readLine, cache, logger };
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
