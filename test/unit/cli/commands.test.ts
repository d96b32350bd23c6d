/**
 * The operator CLI over a MemoryStore: every command through `main` (as the bin runs it,
 * with injected streams and room), on a population the library wrote.
 */
import { randomBytes } from 'node:crypto';
import { DataKeyCache } from '../../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../../shared/crypto/envelope';
import { LocalKeyRing } from '../../../shared/crypto/local-keyring';
import { StoreUnavailableError } from '../../../shared/errors';
import { localKeyRing } from '../../../shared/runtime';
import { MemoryStore } from '../../../shared/store/memory';
import type { StoredItem, TokenStore, WriteOptions } from '../../../shared/store/store';
import { main, type CliIo } from '../../../shared/cli/main';
import { MemoryScanSource } from '../../../shared/cli/memory-scan';
import type { ScanOptions, ScanPage, ScanSource } from '../../../shared/cli/scan';
import { GrantType } from '../../../local/authority';
import { startCacheWorld, type CacheWorld } from '../../support/cache-harness';
import {
  libraryTemplates,
  memoryWriter,
  populate,
  servePopulation,
  type CliReport,
  type Member,
  type Templates,
} from '../../support/cli-population';
import { registerSecret, secretRegistry } from '../../support/secret-registry';

const COUNT = 400;
const EXPIRED = 10;

describe('msal-cloud-cache CLI (MemoryStore)', () => {
  let world: CacheWorld;
  let templates: Templates;
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  registerSecret('master-key', Buffer.from(oldKey, 'base64'));
  registerSecret('master-key', Buffer.from(newKey, 'base64'));
  const oldRing = (): LocalKeyRing => new LocalKeyRing({ masterKey: oldKey, keyId: 'local-1' });
  const baseEnv = {
    MSAL_CLIENT_ID: '6f1c7a2e-3b54-4d7e-9c1a-0e2f4b6d8a10',
    TOKEN_CACHE_STORE: 'dynamodb',
    TOKEN_CACHE_TABLE_NAME: 'unused-by-the-injected-room',
    TOKEN_CACHE_KEY_RING: 'local',
    TOKEN_CACHE_LOCAL_MASTER_KEY: oldKey,
  };
  const rotatedEnv = {
    ...baseEnv,
    TOKEN_CACHE_LOCAL_MASTER_KEY: newKey,
    TOKEN_CACHE_LOCAL_KEY_ID: 'local-2',
    TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: `local-1:${oldKey}`,
  };

  beforeAll(async () => {
    world = await startCacheWorld();
    templates = await libraryTemplates(world);
    for (const json of [templates.app.json, templates.obo.json, templates.user.json]) {
      for (const section of Object.values(
        JSON.parse(json) as Record<string, Record<string, { secret?: string }>>,
      )) {
        for (const entity of Object.values(section)) registerSecret('access-token', entity.secret);
      }
    }
  });
  afterAll(async () => {
    await world.stop();
  });

  /** A fresh store with the population (and one foreign key a scan must skip). */
  async function populated(count = COUNT): Promise<{ store: MemoryStore; members: Member[] }> {
    const store = new MemoryStore();
    const members = await populate(memoryWriter(store), {
      templates,
      keyRing: oldRing(),
      count,
      expired: EXPIRED,
      appShare: 0.1,
    });
    await store.write('lease:not-a-partition', Uint8Array.of(1, 2, 3), {
      condition: { mustNotExist: true },
      expiresAt: 4_000_000_000,
    });
    return { store, members };
  }

  interface Run {
    code: number;
    stdout: string;
    stderr: string;
    json: CliReport;
  }

  async function cli(
    argv: string[],
    store: TokenStore & { entries?: MemoryStore['entries'] },
    options: { env?: Record<string, string>; source?: ScanSource; io?: Partial<CliIo> } = {},
  ): Promise<Run> {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, {
      env: options.env ?? baseEnv,
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      openRoom: (config) => ({
        store,
        source: options.source ?? new MemoryScanSource(store as MemoryStore, { pageSize: 50 }),
        keyRing: localKeyRing(config)!,
        destroy: async () => undefined,
      }),
      ...options.io,
    });
    const json = (argv.includes('--json') ? JSON.parse(stdout) : {}) as CliReport;
    const findings = secretRegistry().scan(stdout + stderr, () => 'cli output');
    if (findings.length > 0) throw new Error(`the CLI printed a secret: ${JSON.stringify(findings)}`);
    return { code, stdout, stderr, json };
  }

  /** Flips one byte of an item's ciphertext, keeping its version. */
  async function tamper(store: MemoryStore, key: string, at: (blob: Uint8Array) => number): Promise<void> {
    const item = (await store.read(key))!;
    const blob = Uint8Array.from(item.blob);
    blob[at(blob)] ^= 0xff;
    await store.write(key, blob, { condition: { expectedVersion: item.version }, expiresAt: item.expiresAt });
  }

  describe('stats', () => {
    it('counts items, bytes, expired and key ids from headers, skipping keys that are not partitions', async () => {
      const { store } = await populated();
      const { code, json, stdout } = await cli(['stats', '--json'], store);
      expect(code).toBe(0);
      expect(json.items).toBe(COUNT);
      expect(json.skippedKeys).toBe(1);
      expect(json.expired).toBe(EXPIRED);
      expect(json.live).toBe(COUNT - EXPIRED);
      expect(json.byKeyId).toEqual({ 'local-1': COUNT });
      expect(json.byKeyRing).toEqual({ local: COUNT });
      expect(json.byFormatVersion).toEqual({ '1': COUNT });
      expect(json.bytes.total).toBeGreaterThan(COUNT * 100);
      expect(json.bytes.histogram.reduce((n, b) => n + b.count, 0)).toBe(COUNT);
      expect(stdout.trim().startsWith('{')).toBe(true);
    });

    it('prints a table by default', async () => {
      const { store } = await populated(20);
      const { code, stdout } = await cli(['stats'], store);
      expect(code).toBe(0);
      expect(stdout).toMatch(/by key id\s+20\s+local-1/);
    });
  });

  describe('verify', () => {
    it('opens every item and reports those that do not, by reason, with exit code 1', async () => {
      const { store, members } = await populated();
      const [a, b, c] = members.filter((m) => m.kind === 'user');
      await tamper(store, a.key, (blob) => blob.length - 1); // the GCM tag
      await tamper(store, b.key, () => 0); // the magic
      // Another partition's blob under this key: AES-GCM binds the partition key.
      const other = (await store.read(members[0].key))!;
      const victim = (await store.read(c.key))!;
      await store.write(c.key, other.blob, {
        condition: { expectedVersion: victim.version },
        expiresAt: victim.expiresAt,
      });
      const { code, json } = await cli(['verify', '--json'], store);
      expect(code).toBe(1);
      expect(json.ok).toBe(COUNT - 3);
      expect(json.failed).toEqual({ 'authentication-failed': 2, malformed: 1 });
      expect(json.failedKeys.map((f) => f.key).sort()).toEqual([a.key, b.key, c.key].sort());
    });

    it('exits 0 when every item opens', async () => {
      const { store } = await populated(30);
      const { code, json } = await cli(['verify', '--json'], store);
      expect([code, json.ok, json.failed]).toEqual([0, 30, {}]);
    });
  });

  describe('inspect', () => {
    it('shows header, entities, scopes and expiries of a user partition, never a token', async () => {
      const { store, members } = await populated(30);
      const user = members.find((m) => m.kind === 'user') as Extract<Member, { kind: 'user' }>;
      const { code, json, stdout } = await cli(['inspect', '--user', user.homeAccountId, '--json'], store);
      expect(code).toBe(0);
      expect(json.key).toBe(user.key);
      expect(json.header).toMatchObject({ keyRing: 'local', keyId: 'local-1', formatVersion: 1 });
      expect(json.entities).toMatchObject({ AccessToken: 1, RefreshToken: 1, Account: 1, IdToken: 1 });
      expect(json.sections.AccessToken[0].scopes).toEqual(expect.arrayContaining(['User.Read']));
      expect(Date.parse(json.sections.AccessToken[0].expiresOn ?? '')).toBeGreaterThan(Date.now());
      expect(stdout).not.toMatch(/"secret"|eyJ/);
    });

    it('finds an app partition by tenant id and reports an absent one with exit code 1', async () => {
      const { store, members } = await populated(30);
      const app = members.find((m) => m.kind === 'app') as Extract<Member, { kind: 'app' }>;
      const found = await cli(['inspect', '--app', app.tenantId, '--json'], store);
      expect([found.code, found.json.key, found.json.opens]).toEqual([0, app.key, true]);
      const absent = await cli(['inspect', '--key', 'A'.repeat(43), '--json'], store);
      expect([absent.code, absent.json.found]).toEqual([1, false]);
    });
  });

  describe('purge', () => {
    it('deletes the user partition and every OBO partition holding the user', async () => {
      const { store, members } = await populated();
      const user = members.find((m) => m.kind === 'user') as Extract<Member, { kind: 'user' }>;
      const dry = await cli(['purge', '--user', user.homeAccountId, '--dry-run', '--json'], store);
      expect([dry.code, dry.json.wouldDelete]).toEqual([0, 1]);
      expect(await store.read(user.key)).toBeDefined();
      const done = await cli(['purge', '--user', user.homeAccountId, '--yes', '--json'], store);
      expect([done.code, done.json.deleted, done.json.deletedKeys]).toEqual([0, 1, [user.key]]);
      expect(await store.read(user.key)).toBeUndefined();

      // Every OBO copy is the same caller (the template's user): signing them out takes them all.
      const obo = JSON.parse(templates.obo.json) as { Account?: Record<string, { home_account_id: string }> };
      const oboUser = Object.values(obo.Account ?? {})[0]?.home_account_id ?? '';
      const oboKeys = members.filter((m) => m.kind === 'obo').map((m) => m.key);
      const live = new Set(oboKeys.slice(0, oboKeys.length));
      const result = await cli(['purge', '--user', oboUser, '--yes', '--json'], store);
      expect(result.code).toBe(0);
      const stillThere = await Promise.all([...live].map((k) => store.read(k)));
      expect(stillThere.filter(Boolean)).toHaveLength(0);
      expect(result.json.deleted).toBeGreaterThanOrEqual(oboKeys.length - EXPIRED);
    });

    it('asks before deleting, and refuses without a terminal or --yes', async () => {
      const { store, members } = await populated(30);
      const user = members.find((m) => m.kind === 'user') as Extract<Member, { kind: 'user' }>;
      const refused = await cli(['purge', '--user', user.homeAccountId], store);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--yes/);
      const declined = await cli(['purge', '--user', user.homeAccountId], store, {
        io: { ask: async () => 'n' },
      });
      expect(declined.code).toBe(2);
      expect(await store.read(user.key)).toBeDefined();
    });
  });

  describe('prune', () => {
    it('deletes expired items only, and never one changed since the scan', async () => {
      const { store, members } = await populated();
      const expiredKeys = members.slice(-EXPIRED).map((m) => m.key);
      // A sign-in brings one expired partition back between the scan and the delete.
      const revived = expiredKeys[0];
      const racing: TokenStore = {
        name: 'memory',
        maxItemBytes: store.maxItemBytes,
        read: (key) => store.read(key),
        write: (key, blob, options) => store.write(key, blob, options),
        async delete(key, options) {
          if (key === revived) {
            const current = [...store.entries()].find((e) => e.key === key)!;
            await store.write(key, current.blob, {
              condition: { expectedVersion: current.version },
              expiresAt: Math.floor(Date.now() / 1000) + 3600,
            });
          }
          return store.delete(key, options);
        },
      };
      const dry = await cli(['prune', '--dry-run', '--json'], store);
      expect(dry.json.wouldDelete).toBe(EXPIRED);
      const { code, json } = await cli(['prune', '--yes', '--json'], racing, {
        source: new MemoryScanSource(store, { pageSize: 50 }),
      });
      expect(code).toBe(0);
      expect([json.deleted, json.changedMeanwhile, json.live]).toEqual([EXPIRED - 1, 1, COUNT - EXPIRED]);
      expect(await store.read(revived)).toBeDefined();
      expect(store.size).toBe(COUNT - EXPIRED + 1 + 1); // the live ones, the revived one, the lease
    });
  });

  describe('rewrap', () => {
    it('re-encrypts every item under the current key; the library then serves them all with no token call', async () => {
      const { store, members } = await populated();
      const tampered = members.find((m) => m.kind === 'obo')!;
      await tamper(store, tampered.key, (blob) => blob.length - 1);
      const dry = await cli(['rewrap', '--dry-run', '--json'], store, { env: rotatedEnv });
      expect([dry.code, dry.json.wouldRewrap, dry.json.currentKeyId]).toEqual([1, COUNT - 1, 'local-2']);

      const { code, json } = await cli(['rewrap', '--yes', '--json'], store, { env: rotatedEnv });
      expect(code).toBe(1);
      expect(json.rewrapped).toBe(COUNT - 1);
      expect(json.fromKeyIds).toEqual({ 'local-1': COUNT - 1 });
      expect(json.failed).toEqual({ 'authentication-failed': 1 });
      expect(json.failedKeys).toEqual([{ key: tampered.key, reason: 'authentication-failed' }]);
      const stats = await cli(['stats', '--json'], store, { env: rotatedEnv });
      expect(stats.json.byKeyId).toEqual({ 'local-2': COUNT - 1, 'local-1': 1 });

      // The tampered item was left exactly as it was.
      expect(parseEnvelopeHeader((await store.read(tampered.key))!.blob).keyId).toBe('local-1');

      // Only the new master key: the library opens every rewrapped item, with no token call.
      world.authority.counters.reset();
      const { cache } = world.instance({
        store,
        keyRing: new LocalKeyRing({ masterKey: newKey, keyId: 'local-2' }),
      });
      const live = members.slice(0, -EXPIRED).filter((m) => m.key !== tampered.key);
      expect(await servePopulation(cache, live)).toBe(live.length);
      expect(world.authority.counters.token()).toBe(0);
      expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(0);
    });

    it('redoes an item a concurrent writer changed, never overwriting the writer', async () => {
      const { store, members } = await populated(50);
      const target = members.find((m) => m.kind === 'user')!;
      const writerEnvelope = new Envelope({ keys: new DataKeyCache(oldRing()) });
      const writerJson = JSON.stringify({
        ...JSON.parse(templates.user.json),
        Marker: { m: { by: 'writer' } },
      });
      let raced = false;
      const racing: TokenStore = {
        name: 'memory',
        maxItemBytes: store.maxItemBytes,
        read: (key): Promise<StoredItem | undefined> => store.read(key),
        async write(key: string, blob: Uint8Array, options: WriteOptions) {
          if (key === target.key && !raced) {
            raced = true;
            const current = (await store.read(key))!;
            // The library writing the partition (still under the old key) just before the rewrap.
            await store.write(key, await writerEnvelope.seal(Buffer.from(writerJson), key), {
              condition: { expectedVersion: current.version },
              expiresAt: current.expiresAt,
            });
          }
          return store.write(key, blob, options);
        },
        delete: (key, options) => store.delete(key, options),
      };
      const { code, json } = await cli(['rewrap', '--yes', '--json'], racing, {
        env: rotatedEnv,
        source: new MemoryScanSource(store, { pageSize: 50 }),
      });
      expect([code, json.rewrapped, json.redone]).toEqual([0, 50, 1]);
      const item = (await store.read(target.key))!;
      expect(parseEnvelopeHeader(item.blob).keyId).toBe('local-2');
      const envelope = new Envelope({
        keys: new DataKeyCache(new LocalKeyRing({ masterKey: newKey, keyId: 'local-2' })),
      });
      expect(Buffer.from(await envelope.open(item.blob, target.key)).toString('utf8')).toBe(writerJson);
    });

    it('stops after the items in flight when interrupted (exit 130), and a rerun resumes', async () => {
      const { store } = await populated();
      const controller = new AbortController();
      let writes = 0;
      const counting: TokenStore = {
        name: 'memory',
        maxItemBytes: store.maxItemBytes,
        read: (key) => store.read(key),
        async write(key, blob, options) {
          if (++writes === 100) controller.abort();
          return store.write(key, blob, options);
        },
        delete: (key, options) => store.delete(key, options),
      };
      const first = await cli(['rewrap', '--yes', '--json', '--concurrency', '8'], counting, {
        env: rotatedEnv,
        source: new MemoryScanSource(store, { pageSize: 50 }),
        io: { signal: controller.signal },
      });
      expect(first.code).toBe(130);
      expect(first.json.interrupted).toBe(true);
      expect(first.json.rewrapped).toBeGreaterThanOrEqual(100);
      expect(first.json.rewrapped).toBeLessThan(100 + 8);
      const second = await cli(['rewrap', '--yes', '--json'], store, { env: rotatedEnv });
      expect(second.code).toBe(0);
      expect(second.json.alreadyCurrent).toBe(first.json.rewrapped);
      expect(second.json.rewrapped + second.json.alreadyCurrent).toBe(COUNT);
      const stats = await cli(['stats', '--json'], store, { env: rotatedEnv });
      expect(stats.json.byKeyId).toEqual({ 'local-2': COUNT });
    });
  });

  describe('faults', () => {
    /** A scan that fails `failures` times on its second page, then recovers. */
    function flakySource(store: MemoryStore, failures: number): ScanSource {
      const inner = new MemoryScanSource(store, { pageSize: 50 });
      return {
        name: 'memory',
        async *scan(options: ScanOptions = {}): AsyncGenerator<ScanPage> {
          let page = 0;
          for await (const p of inner.scan(options)) {
            if (++page === 2) {
              for (let i = 0; i < failures; i++) {
                options.onRetry?.(new StoreUnavailableError('memory', 'read', 'throttled'), i + 1, 0);
                if (i >= 2)
                  throw new StoreUnavailableError('memory', 'read', 'throttled', { throttled: true });
              }
            }
            yield p;
          }
        },
      };
    }

    it('reports a store that keeps failing mid-scan with exit code 3 and a summary of what was done', async () => {
      const { store } = await populated(200);
      const { code, json, stderr } = await cli(['verify', '--json'], store, {
        source: flakySource(store, 5),
      });
      expect(code).toBe(3);
      expect(json.error.code).toBe('STORE_UNAVAILABLE');
      expect(json.ok).toBe(50);
      expect(stderr).toMatch(/Rerun the same command to resume/);
    });

    it('retries a throttled page with backoff and goes on', async () => {
      const { store } = await populated(200);
      const { code, json } = await cli(['verify', '--json'], store, { source: flakySource(store, 2) });
      expect([code, json.ok, json.retries]).toEqual([0, 200, 2]);
    });

    it('shows progress with the rate on stderr with --progress', async () => {
      const { store } = await populated(60);
      const { stderr } = await cli(['verify', '--progress'], store);
      expect(stderr).toMatch(/^verify: 60\/61 items, [\d,]+\/s, 60 ok, 0 failed$/m);
    });

    it('paces store operations with --max-rps', async () => {
      const { store } = await populated(50);
      const started = performance.now();
      const { code, json } = await cli(['prune', '--yes', '--json', '--max-rps', '100'], store);
      expect([code, json.deleted]).toEqual([0, EXPIRED]);
      // Ten deletes at 100 per second: at least 90 ms between the first and the last.
      expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    });

    it('names every variable at fault (exit 2), in JSON too', async () => {
      const { store } = await populated(5);
      const { code, json, stderr } = await cli(['stats', '--json'], store, {
        env: { TOKEN_CACHE_KEY_RING: 'local' },
      });
      expect(code).toBe(2);
      const settings = (json.error.problems ?? []).map((p) => p.setting);
      expect(settings).toEqual(
        expect.arrayContaining(['MSAL_CLIENT_ID', 'TOKEN_CACHE_STORE', 'TOKEN_CACHE_LOCAL_MASTER_KEY']),
      );
      expect(settings).not.toContain('MSAL_AUTHORITY');
      expect(stderr).toMatch(/TOKEN_CACHE_STORE/);
    });

    it.each([
      [['frobnicate'], /unknown command/],
      [['inspect'], /exactly one of --user, --app or --key/],
      [['purge'], /purge needs --user/],
      [['stats', '--concurrency', '0'], /--concurrency/],
      [['stats', '--bogus'], /bogus/],
      [[], /no command/],
    ])('refuses %j with exit code 2', async (argv, message) => {
      const { store } = await populated(5);
      const { code, stderr } = await cli(argv, store);
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
    });

    it('prints usage with --help', async () => {
      const { store } = await populated(1);
      const { code, stdout } = await cli(['--help'], store);
      expect(code).toBe(0);
      expect(stdout).toMatch(/Exit codes: 0 ok, 1 findings/);
    });
  });
});
