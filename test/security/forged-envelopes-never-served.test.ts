/**
 * Forgery (issue 11, point 1): envelopes built BY HAND from docs/envelope.md's layout with
 * only a table writer's capabilities plus public material — the store item (headers,
 * key ids), public keys fetched with keys/get through the real @azure/keyvault-keys
 * KeyClient, the victim's store key computed from public ids — and none of this library's
 * Envelope / KeyRing / DataKeyCache code. Each is written into the store under the
 * victim's app partition; a cold instance on the real msal-node path (createTokenCache,
 * the local authority) must never serve it: `fromCache` false, the token endpoint called,
 * `envelope.rejected` counted with its reason, an error logged, and the next write
 * replaces the forgery with a genuine envelope.
 *
 * Rings: local, AWS KMS (local KMS through the real AWS SDK), Azure Key Vault (local Key
 * Vault through the real Azure SDK). Before the fix (format v1 only), the Key Vault case
 * "v1, own data key wrapped with the public key" was served (see docs/security.md).
 */
import {
  constants,
  createCipheriv,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  publicEncrypt,
  randomBytes,
  sign,
} from 'node:crypto';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { KeyClient } from '@azure/keyvault-keys';
import { startLocalKms, type LocalKms } from '../../local/kms';
import { startLocalKeyVault, type LocalKeyVault } from '../../local/keyvault';
import { GrantType } from '../../local/authority';
import { KmsKeyRing } from '../../shared/aws/kms-keyring';
import { KeyVaultKeyRing } from '../../shared/azure/keyvault-keyring';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import type { KeyRing } from '../../shared/crypto/keyring';
import { EnvelopeFailure } from '../../shared/errors';
import { Metric } from '../../shared/observability';
import { MemoryStore } from '../../shared/store/memory';
import { API_CLIENT_ID, type CacheWorld } from '../support/cache-harness';
import { registerSecret } from '../support/secret-registry';
import { accessTokensIn, startSecureWorld, storedDocument } from '../support/security-world';
import { localVaultClientOptions } from '../support/local-vault';

const SCOPE = 'api://forgery-victim/.default';
const FORGED_TOKEN = 'attacker-chosen-access-token-0123456789';

// ---- the attacker's own implementation of docs/envelope.md --------------------------

/** The header fields an attacker reads out of a stored item, per the documented layout. */
interface ParsedHeader {
  readonly version: number;
  readonly ring: string;
  readonly keyId: string;
  readonly wrapped: Buffer;
  readonly signingKeyId?: string;
  readonly signature?: Buffer;
}

function parseByHand(blob: Uint8Array): ParsedHeader {
  const b = Buffer.from(blob);
  let o = 4;
  const version = b.readUInt8(o);
  const r = b.readUInt8(o + 2); // after the version and flags bytes
  o += 3;
  const ring = b.subarray(o, (o += r)).toString('utf8');
  const k = b.readUInt16BE(o);
  const keyId = b.subarray((o += 2), (o += k)).toString('utf8');
  const w = b.readUInt16BE(o);
  const wrapped = Buffer.from(b.subarray((o += 2), (o += w)));
  if (version !== 2) return { version, ring, keyId, wrapped };
  const s = b.readUInt16BE(o);
  const signingKeyId = b.subarray((o += 2), (o += s)).toString('utf8');
  const g = b.readUInt16BE(o);
  const signature = Buffer.from(b.subarray(o + 2, o + 2 + g));
  return { version, ring, keyId, wrapped, signingKeyId, signature };
}

const u16 = (n: number) => Buffer.from([n >>> 8, n & 0xff]);

interface Forgery {
  readonly version: 1 | 2;
  readonly ring: string;
  readonly keyId: string;
  readonly wrapped: Uint8Array;
  readonly signingKeyId?: string;
  readonly signature?: Uint8Array;
  /** The data key the attacker encrypts the body with (their own, or a guess). */
  readonly dataKey: Uint8Array;
}

/** Seals `json` for `partitionKey` exactly as docs/envelope.md specifies. */
function sealByHand(f: Forgery, partitionKey: string, json: string): Uint8Array {
  const ring = Buffer.from(f.ring, 'utf8');
  const keyId = Buffer.from(f.keyId, 'utf8');
  const attestation =
    f.version === 2
      ? [
          u16(Buffer.byteLength(f.signingKeyId ?? '')),
          Buffer.from(f.signingKeyId ?? '', 'utf8'),
          u16(f.signature?.length ?? 0),
          Buffer.from(f.signature ?? []),
        ]
      : [];
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const header = Buffer.concat([
    Buffer.from('MCCE', 'ascii'),
    Buffer.from([f.version, 0, ring.length]),
    ring,
    u16(keyId.length),
    keyId,
    u16(f.wrapped.length),
    Buffer.from(f.wrapped),
    ...attestation,
    salt,
    nonce,
  ]);
  const pk = Buffer.from(partitionKey, 'utf8');
  const info = Buffer.concat([Buffer.from('msal-cloud-cache/envelope/v1/item-key\0', 'utf8'), pk]);
  const itemKey = Buffer.from(hkdfSync('sha256', f.dataKey, salt, info, 32));
  const cipher = createCipheriv('aes-256-gcm', itemKey, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.concat([header, pk]));
  return Buffer.concat([header, cipher.update(json, 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

/** The v2 attestation message of docs/envelope.md, built by hand. */
function attestationMessageByHand(ring: string, keyId: string, signingKeyId: string, wrapped: Uint8Array) {
  const r = Buffer.from(ring, 'utf8');
  const k = Buffer.from(keyId, 'utf8');
  const s = Buffer.from(signingKeyId, 'utf8');
  return Buffer.concat([
    Buffer.from('msal-cloud-cache/envelope/v2/data-key-attestation\0', 'utf8'),
    Buffer.from([2, r.length]),
    r,
    u16(k.length),
    k,
    u16(s.length),
    s,
    u16(wrapped.length),
    Buffer.from(wrapped),
  ]);
}

/** The victim's app partition store key, computed from public ids (DESIGN.md). */
function appStoreKey(clientId: string, tenantId: string): string {
  return createHash('sha256').update(`app:${clientId}:${tenantId}`, 'utf8').digest('base64url');
}

/** MSAL JSON holding the attacker's access token for the victim's app partition. */
function forgedMsalJson(world: CacheWorld): string {
  const env = world.authority.host;
  const tenantId = world.authority.tenantId;
  const now = Math.floor(Date.now() / 1000);
  const atKey = `-${env}-accesstoken-${API_CLIENT_ID}-${tenantId}-${SCOPE.toLowerCase()}--`;
  return JSON.stringify({
    Account: {},
    IdToken: {},
    AccessToken: {
      [atKey]: {
        home_account_id: '',
        environment: env,
        credential_type: 'AccessToken',
        client_id: API_CLIENT_ID,
        secret: FORGED_TOKEN,
        realm: tenantId,
        target: SCOPE,
        cached_at: String(now),
        expires_on: String(now + 3600),
        extended_expires_on: String(now + 7200),
        token_type: 'Bearer',
      },
    },
    RefreshToken: {},
    AppMetadata: {},
  });
}

// ---- the rings under attack ----------------------------------------------------------

/** What the attacker may use besides the store: public material only. */
interface RingRig {
  readonly name: string;
  ring(): KeyRing;
  /** Forgeries to try, given the genuine stored header. */
  forgeries(genuine: ParsedHeader): Promise<Array<[label: string, forgery: Forgery]>>;
}

let world: CacheWorld;
let kms: LocalKms;
let vault: LocalKeyVault;
const kmsRings: KmsKeyRing[] = [];
const bearer = 'forgery-suite-key-vault-bearer';
const credential: TokenCredential = {
  async getToken(): Promise<AccessToken> {
    return { token: bearer, expiresOnTimestamp: Date.now() + 3600_000 };
  },
};
let wrapKeyUrl: string;
let signKeyUrl: string;
let rogueSigner: { id: string };

beforeAll(async () => {
  world = await startSecureWorld();
  registerSecret('assertion', bearer);
  kms = await startLocalKms();
  await kms.createKey({ alias: 'alias/forgery' });
  vault = await startLocalKeyVault();
  const wrap = await vault.createKey('forgery-wrap');
  const signer = await vault.createKey('forgery-sign', { kty: 'EC' });
  // A key the attacker controls in the same vault (e.g. their own deployment's).
  rogueSigner = await vault.createKey('attacker-sign', { kty: 'EC' });
  wrapKeyUrl = `${vault.vaultUrl}/keys/${wrap.name}`;
  signKeyUrl = `${vault.vaultUrl}/keys/${signer.name}`;
});

afterAll(async () => {
  for (const ring of kmsRings) ring.destroy();
  await world.stop();
  await kms.stop();
  await vault.stop();
});

const guessed = (): Forgery['dataKey'] => randomBytes(32);

/** Forgeries every ring gets: headers copied from the store, bodies under the attacker's own key. */
function common(genuine: ParsedHeader): Array<[string, Forgery]> {
  const base = { ring: genuine.ring, keyId: genuine.keyId };
  return [
    [
      'v1, random wrapped key under the copied key id',
      { ...base, version: 1, wrapped: randomBytes(genuine.wrapped.length), dataKey: guessed() },
    ],
    [
      'v1 header graft: the genuine wrapped key, own body',
      { ...base, version: 1, wrapped: genuine.wrapped, dataKey: guessed() },
    ],
    [
      'v2 header graft: genuine wrapped key and attestation fields, own body',
      {
        ...base,
        version: 2,
        wrapped: genuine.wrapped,
        signingKeyId: genuine.signingKeyId ?? genuine.keyId,
        signature: genuine.signature ?? randomBytes(64),
        dataKey: guessed(),
      },
    ],
  ];
}

const rigs: RingRig[] = [
  {
    name: 'local',
    ring: () => new LocalKeyRing({ masterKey: world.masterKey }),
    async forgeries(genuine) {
      return common(genuine);
    },
  },
  {
    name: 'aws-kms (local KMS, real AWS SDK)',
    ring: () => {
      const ring = new KmsKeyRing({
        keyId: 'alias/forgery',
        clientId: API_CLIENT_ID,
        clientConfig: { ...kms.clientConfig, maxAttempts: 1 },
      });
      kmsRings.push(ring);
      return ring;
    },
    async forgeries(genuine) {
      return common(genuine);
    },
  },
  {
    name: 'azure-keyvault (local Key Vault, real Azure SDK)',
    ring: () =>
      new KeyVaultKeyRing({
        keyId: wrapKeyUrl,
        signingKeyId: signKeyUrl,
        credential,
        cryptographyClientOptions: localVaultClientOptions(vault),
      }),
    async forgeries(genuine) {
      // Public material, as Key Vault Reader (keys/get) sees it.
      const keys = new KeyClient(vault.vaultUrl, credential, {
        tlsOptions: { ca: vault.ca },
        disableChallengeResourceVerification: true,
      });
      const publicKey = await keys.getKey('forgery-wrap', { version: genuine.keyId.split('/').pop()! });
      const rsa = createPublicKey({
        key: {
          kty: 'RSA',
          n: Buffer.from(publicKey.key!.n!).toString('base64url'),
          e: Buffer.from(publicKey.key!.e!).toString('base64url'),
        },
        format: 'jwk',
      });
      const own = (): { dataKey: Buffer; wrapped: Buffer } => {
        const dataKey = randomBytes(32);
        const wrapped = publicEncrypt(
          { key: rsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
          dataKey,
        );
        return { dataKey, wrapped };
      };
      const base = { ring: genuine.ring, keyId: genuine.keyId };
      const a = own();
      const b = own();
      const c = own();
      const d = own();
      // The attacker's own P-256 key, outside any vault.
      const mine = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const selfSigned = (signingKeyId: string, wrapped: Buffer, key = mine.privateKey) =>
        sign('sha256', attestationMessageByHand(genuine.ring, genuine.keyId, signingKeyId, wrapped), {
          key,
          dsaEncoding: 'ieee-p1363',
        });
      // Signed through Key Vault with a key the attacker holds sign on (same vault, other name).
      const rogueSignature = async (wrapped: Buffer) => {
        const { CryptographyClient } = await import('@azure/keyvault-keys');
        const digest = createHash('sha256')
          .update(attestationMessageByHand(genuine.ring, genuine.keyId, rogueSigner.id, wrapped))
          .digest();
        const client = new CryptographyClient(rogueSigner.id, credential, {
          tlsOptions: { ca: vault.ca },
          disableChallengeResourceVerification: true,
        });
        return Buffer.from((await client.sign('ES256', digest)).result);
      };
      return [
        ...common(genuine),
        // The reported attack: format v1, a data key of the attacker's choosing, wrapped locally.
        ['downgrade to v1: own data key wrapped with the public key', { ...base, version: 1, ...a }],
        [
          'v2, own data key, genuine signature copied from the stored header',
          { ...base, version: 2, ...b, signingKeyId: genuine.signingKeyId!, signature: genuine.signature! },
        ],
        [
          'v2, own data key, own signature naming the genuine signing key',
          {
            ...base,
            version: 2,
            ...c,
            signingKeyId: genuine.signingKeyId!,
            signature: selfSigned(genuine.signingKeyId!, c.wrapped),
          },
        ],
        [
          'v2, own data key, signed by another key of the same vault',
          {
            ...base,
            version: 2,
            ...d,
            signingKeyId: rogueSigner.id,
            signature: await rogueSignature(d.wrapped),
          },
        ],
        [
          'v2, own data key, signed by a key in another vault',
          {
            ...base,
            version: 2,
            ...d,
            signingKeyId: `https://attacker.vault.azure.net/keys/forgery-sign/${'a'.repeat(32)}`,
            signature: selfSigned(
              `https://attacker.vault.azure.net/keys/forgery-sign/${'a'.repeat(32)}`,
              d.wrapped,
            ),
          },
        ],
      ];
    },
  },
];

/** Forgeries served, per ring: the figure docs/security.md quotes (goal 0). */
const served = new Map<string, { tried: number; served: number; reasons: Record<string, string> }>();

describe.each(rigs)('forged envelopes under the $name ring', (rig) => {
  it('none is served on the msal-node path; each is rejected, reported and replaced', async () => {
    const store = new MemoryStore();
    const tenantId = world.authority.tenantId;
    const key = appStoreKey(API_CLIENT_ID, tenantId);
    // The victim's genuine item, so the attacker has headers to copy.
    const victim = world.instance({ store, keyRing: rig.ring() }).cache;
    await victim.acquireTokenForApp({ scopes: [SCOPE] });
    expect(victim.storeKeyOf({ kind: 'app', tenantId })).toBe(key);
    const genuine = parseByHand((await store.read(key))!.blob);
    const forgeries = await rig.forgeries(genuine);
    const tally = { tried: 0, served: 0, reasons: {} as Record<string, string> };
    served.set(rig.name, tally);

    for (const [label, forgery] of forgeries) {
      const current = (await store.read(key))!;
      await store.write(key, sealByHand(forgery, key, forgedMsalJson(world)), {
        condition: { expectedVersion: current.version },
        expiresAt: current.expiresAt,
      });
      const { cache, metrics, logger } = world.instance({ store, keyRing: rig.ring() });
      world.authority.counters.reset();

      const result = await cache.acquireTokenForApp({ scopes: [SCOPE] });

      tally.tried += 1;
      if (result.accessToken === FORGED_TOKEN) tally.served += 1;
      expect({ label, token: result.accessToken === FORGED_TOKEN }).toEqual({ label, token: false });
      expect({ label, fromCache: result.fromCache }).toEqual({ label, fromCache: false });
      expect({ label, calls: world.authority.counters.token(GrantType.ClientCredentials) }).toEqual({
        label,
        calls: 1,
      });
      expect({ label, rejected: metrics.get(Metric.EnvelopeRejected) }).toEqual({ label, rejected: 1 });
      const reason = Object.values(EnvelopeFailure).find(
        (r) => metrics.get(Metric.EnvelopeRejected, { kind: 'app', reason: r }) === 1,
      );
      expect({ label, reasonReported: reason !== undefined }).toEqual({ label, reasonReported: true });
      tally.reasons[label] = reason!;
      expect(logger.lines.some((l) => l.message === 'stored token cache rejected; treating as a miss')).toBe(
        true,
      );
      // The next (conditional) write replaced the forgery with a genuine envelope.
      const doc = await storedDocument(store, key, rig.ring(), 'app');
      expect(accessTokensIn(doc)).not.toContain(FORGED_TOKEN);
      expect(accessTokensIn(doc)).toContain(result.accessToken);
    }
    expect({ tried: tally.tried, served: tally.served }).toEqual({ tried: forgeries.length, served: 0 });
  });
});

afterAll(() => {
  // The figure for docs/security.md.
  const rows = [...served].map(
    ([ring, t]) =>
      `${ring}: ${t.served} of ${t.tried} forged envelopes served\n` +
      Object.entries(t.reasons)
        .map(([label, reason]) => `  ${label}: ${reason}`)
        .join('\n'),
  );
  process.stdout.write(`forgery figures\n${rows.join('\n')}\n`);
});
