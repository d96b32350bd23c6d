/**
 * Revocation window (issue 11, point 4): disable the master key in the local KMS / local
 * Key Vault, then step a fake clock a minute at a time while a warm instance keeps
 * serving the same app partition through msal-node. The instance must stop opening the
 * partition (fromCache false, the token endpoint called, the key error counted) within
 * the stated window, and not before its cached material ages out:
 *
 * - unwrapped data keys live `dataKeys.maxUnwrappedAgeMs` (15 min) from their unwrap;
 * - opened-envelope memo entries `l1.ttlMs` (5 min), or 5 min with L1 off;
 * - L1 entries `l1.ttlMs` (5 min).
 *
 * Worst case: 15 + 5 = 20 minutes with L1 off, 15 + 5 + 5 = 25 with L1 on (each layer can
 * be refilled from the one below just before that one expires). Steady traffic on one
 * partition measures 15 minutes, docs/security.md quotes both.
 */
import { DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { GrantType } from '../../local/authority';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import type { KeyRing } from '../../shared/crypto/keyring';
import { Metric } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import { API_CLIENT_ID, type CacheWorld } from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';
import { startSecureWorld } from '../support/security-world';
import { localVaultKeyRing } from '../support/local-vault';

const MINUTE = 60_000;

interface Rig {
  readonly name: string;
  /** A ring on a fresh master key, and the switch that disables that key. */
  fresh(): Promise<{ ring: () => KeyRing; disable: () => Promise<void> }>;
}

let world: CacheWorld;
let kms: LocalKms;
let admin: KMSClient;
let vault: LocalKeyVault;
const destroyers: Array<() => void> = [];
const bearer = 'revocation-suite-key-vault-bearer';
const credential: TokenCredential = {
  async getToken(): Promise<AccessToken> {
    return { token: bearer, expiresOnTimestamp: Date.now() + 3600_000 };
  },
};
let keyCount = 0;

beforeAll(async () => {
  world = await startSecureWorld();
  registerSecret('assertion', bearer);
  kms = await startLocalKms();
  admin = new KMSClient({ ...kms.clientConfig, maxAttempts: 1 });
  vault = await startLocalKeyVault();
});

afterAll(async () => {
  for (const destroy of destroyers) destroy();
  admin.destroy();
  await world.stop();
  await kms.stop();
  await vault.stop();
});

const rigs: Rig[] = [
  {
    name: 'aws-kms (local KMS)',
    async fresh() {
      const { arn } = await kms.createKey();
      return {
        ring: () => {
          const ring = new KmsKeyRing({
            keyId: arn,
            clientId: API_CLIENT_ID,
            clientConfig: { ...kms.clientConfig, maxAttempts: 1 },
          });
          destroyers.push(() => ring.destroy());
          return ring;
        },
        disable: async () => {
          await admin.send(new DisableKeyCommand({ KeyId: arn }));
        },
      };
    },
  },
  {
    name: 'azure-keyvault (local Key Vault)',
    async fresh() {
      const wrap = await vault.createKey(`revocation-wrap-${++keyCount}`);
      const sign = await vault.createKey(`revocation-sign-${keyCount}`, { kty: 'EC' });
      return {
        ring: () => localVaultKeyRing(vault, { wrap, sign }, credential),
        disable: async () => {
          vault.disableKey(wrap.name, wrap.version);
        },
      };
    },
  },
];

/** Measured windows, for docs/security.md. */
const measured: string[] = [];

describe.each(rigs)('revocation under $name', (rig) => {
  it.each([
    ['L1 off', false as const, 20],
    ['L1 on (defaults)', {}, 25],
  ])('%s: a warm instance stops opening the partition within the window', async (label, l1, boundMinutes) => {
    const { ring, disable } = await rig.fresh();
    let clock = Date.now();
    const { cache, metrics } = world.instance({
      store: new MemoryStore(),
      keyRing: ring(),
      l1,
      now: () => clock,
    });
    const scopes = [`api://revocation-${keyCount}-${label.length}/.default`];
    await cache.acquireTokenForApp({ scopes });
    expect((await cache.acquireTokenForApp({ scopes })).fromCache).toBe(true);

    await disable();
    let stoppedAt: number | undefined;
    for (let minute = 1; minute <= 60 && stoppedAt === undefined; minute += 1) {
      clock += MINUTE;
      world.authority.counters.reset();
      const result = await cache.acquireTokenForApp({ scopes });
      if (!result.fromCache) {
        stoppedAt = minute;
        expect(world.authority.counters.token(GrantType.ClientCredentials)).toBe(1);
      }
    }

    measured.push(
      `${rig.name}, ${label}: stopped reading ${stoppedAt ?? 'never (> 60)'} min after the key was disabled`,
    );
    expect(stoppedAt).toBeDefined();
    expect(stoppedAt!).toBeLessThanOrEqual(boundMinutes);
    // Cached material really was used while it was young: the window is not zero.
    expect(stoppedAt!).toBeGreaterThan(1);
    // Counted once, by the session, with the partition kind (test/unit/cache/session/events.test.ts).
    expect(metrics.get(Metric.KeyError, { kind: 'app', reason: 'disabled' })).toBeGreaterThanOrEqual(1);
  });
});

afterAll(() => {
  process.stdout.write(`revocation figures\n${measured.join('\n')}\n`);
});
