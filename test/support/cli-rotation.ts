/**
 * What the operator CLI suites on each store share (test/integration/cli-*.test.ts): a key
 * rotation from `local-1` to `local-2` with its two environments, a CLI run whose output
 * goes through the secret scan, library writers racing a rewrap, and the closing check
 * that the library serves every live item after it with no token call.
 */
import { randomBytes } from 'node:crypto';
import type { Envelope } from '../../shared/crypto/envelope';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import { StoreUnavailableError, VersionConflictError } from '../../shared/errors';
import type { TokenStore } from '../../shared/store/store';
import { API_CLIENT_ID, type CacheWorld } from './cache-harness';
import { runCli, servePopulation, type CliReport, type CliRun, type Member } from './cli-population';
import { registerSecret, secretRegistry } from './secret-registry';

/** Two local master keys, registered with the secret scan, and the CLI's environments before and after. */
export interface KeyRotation {
  readonly oldKey: string;
  readonly newKey: string;
  /** The ring the population was written with. */
  oldRing(): LocalKeyRing;
  /** The ring after the rotation, still opening `local-1`. */
  rotatedRing(): LocalKeyRing;
  /** Only the new key: what the library runs with once the rotation is done. */
  newRing(): LocalKeyRing;
  /** The CLI's environment on the store `storeEnv` names, with the old key. */
  env(storeEnv: Record<string, string>): Record<string, string>;
  /** `env` rotated: the new key current, the old one as a previous key. */
  rotated(env: Record<string, string>): Record<string, string>;
}

/** A fresh rotation (new random keys each call). */
export function keyRotation(): KeyRotation {
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  registerSecret('master-key', Buffer.from(oldKey, 'base64'));
  registerSecret('master-key', Buffer.from(newKey, 'base64'));
  return {
    oldKey,
    newKey,
    oldRing: () => new LocalKeyRing({ masterKey: oldKey, keyId: 'local-1' }),
    rotatedRing: () =>
      new LocalKeyRing({ masterKey: newKey, keyId: 'local-2', previousKeys: { 'local-1': oldKey } }),
    newRing: () => new LocalKeyRing({ masterKey: newKey, keyId: 'local-2' }),
    env: (storeEnv) => ({
      MSAL_CLIENT_ID: API_CLIENT_ID,
      ...storeEnv,
      TOKEN_CACHE_KEY_RING: 'local',
      TOKEN_CACHE_LOCAL_MASTER_KEY: oldKey,
    }),
    rotated: (env) => ({
      ...env,
      TOKEN_CACHE_LOCAL_MASTER_KEY: newKey,
      TOKEN_CACHE_LOCAL_KEY_ID: 'local-2',
      TOKEN_CACHE_LOCAL_PREVIOUS_KEYS: `local-1:${oldKey}`,
    }),
  };
}

/** Runs the CLI (see {@link runCli}) and expects no registered secret in what it printed. */
export async function scannedCli(
  argv: string[],
  env: Record<string, string>,
  io: Parameters<typeof runCli>[2] = {},
): Promise<CliRun<CliReport>> {
  const run = await runCli<CliReport>(argv, env, io);
  expect(secretRegistry().scan(run.stdout + run.stderr, () => 'cli output')).toEqual([]);
  return run;
}

/** Writers racing a rewrap, and the last document each wrote to its partition. */
export interface RacingWriters {
  readonly lastWrite: Map<string, string>;
  /** Stops the writers and waits for their last write. */
  stop(): Promise<void>;
}

/**
 * A library writer per member that keeps rewriting its partition with `envelope` (a new
 * `Marker` each time) until stopped; a lost race or a slow answer is tried again.
 */
export function raceWriters(
  store: TokenStore,
  envelope: Envelope,
  members: readonly Member[],
  pauseMs: number,
): RacingWriters {
  const lastWrite = new Map<string, string>();
  let stopped = false;
  const writer = async (member: Member): Promise<void> => {
    for (let n = 0; !stopped; n++) {
      const item = await store.read(member.key).catch(() => undefined);
      if (!item) continue;
      const doc = JSON.parse(Buffer.from(await envelope.open(item.blob, member.key)).toString()) as object;
      const next = JSON.stringify({ ...doc, Marker: { writer: { n: String(n) } } });
      try {
        await store.write(member.key, await envelope.seal(Buffer.from(next), member.key), {
          condition: { expectedVersion: item.version },
          expiresAt: item.expiresAt,
        });
        lastWrite.set(member.key, next);
      } catch (e) {
        // Lost the race (to the rewrap or another writer), or a slow answer: try again.
        if (!(e instanceof VersionConflictError || e instanceof StoreUnavailableError)) throw e;
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  };
  const running = Promise.all(members.map(writer));
  return {
    lastWrite,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

/** Expects each partition's stored document, opened with `envelope`, to be the last one its writer wrote. */
export async function expectLastWritesKept(
  store: TokenStore,
  envelope: Envelope,
  lastWrite: ReadonlyMap<string, string>,
): Promise<void> {
  for (const [key, json] of lastWrite) {
    const item = (await store.read(key))!;
    expect(Buffer.from(await envelope.open(item.blob, key)).toString()).toBe(json);
  }
}

/**
 * Expects the library, on `store` with only the rotation's new key, to serve every member
 * that is neither among the `expired` last ones nor tampered, with no token call.
 */
export async function expectServedWithNoTokenCall(
  world: CacheWorld,
  store: TokenStore,
  rotation: KeyRotation,
  population: { members: readonly Member[]; expired: number; tampered: readonly string[] },
): Promise<void> {
  world.authority.counters.reset();
  const { cache } = world.instance({ store, keyRing: rotation.newRing() });
  const live = population.members
    .slice(0, -population.expired)
    .filter((m) => !population.tampered.includes(m.key));
  expect(await servePopulation(cache, live, 32)).toBe(live.length);
  expect(world.authority.counters.token()).toBe(0);
}

/** A user partition that was not tampered with, for inspect and purge. */
export function untamperedUser(
  members: readonly Member[],
  tampered: readonly string[],
): Extract<Member, { kind: 'user' }> {
  return members.find((m) => m.kind === 'user' && !tampered.includes(m.key)) as Extract<
    Member,
    { kind: 'user' }
  >;
}
