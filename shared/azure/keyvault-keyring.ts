/**
 * Azure Key Vault key ring: data keys are 32 random bytes made here and wrapped with
 * RSA-OAEP-256 by a Key Vault RSA key (`wrapKey` / `unwrapKey`); the key never leaves
 * Key Vault. Each data key records the exact key version that wrapped it, so blobs sealed
 * before a rotation keep opening with their own version while new ones use the current.
 *
 * Wrapping is a public-key operation: anyone who can read the RSA key's public half could
 * wrap a data key of their choosing. So every data key is also attested: a Key Vault EC
 * P-256 signing key signs (ES256, once per data key) the digest of
 * {@link attestationMessage}, the envelope stores the signature (format v2), and unwrap
 * verifies it locally with the signing key's public half BEFORE it unwraps or trusts the
 * key. Signing needs `keys/sign/action`, which read access does not grant.
 *
 * Permissions the identity needs: on the wrapping key `get`, `wrapKey`, `unwrapKey`; on
 * the signing key `get` and `sign` (see infra/azure/azuredeploy.json: a custom role with
 * exactly these data actions).
 */
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import type { TokenCredential } from '@azure/core-auth';
import {
  CryptographyClient,
  KeyClient,
  type CryptographyClientOptions,
  type KeyVaultKey,
} from '@azure/keyvault-keys';
import { DATA_KEY_BYTES, KEY_VAULT_KEY_RING_DEFAULTS } from '../defaults';
import { ConfigurationError, KeyServiceError, KeyServiceFailure } from '../errors';
import {
  attestationDigest,
  attestationMessage,
  type DataKey,
  type KeyRing,
  type UnwrapContext,
} from '../crypto/keyring';
import { hasReadyClient } from '../options';

/** Settings every {@link KeyVaultKeyRing} takes. */
export interface KeyVaultKeyRingBaseOptions {
  /**
   * The Key Vault key: `https://<vault>.vault.azure.net/keys/<name>` to follow rotations
   * (data keys are wrapped by the current version), or `.../keys/<name>/<version>` to pin
   * one version. Blobs wrapped by any version of this key can be opened.
   */
  readonly keyId: string;
  /**
   * The Key Vault EC P-256 key that attests data keys (ES256), in the same forms as
   * `keyId`: unversioned to follow rotations, versioned to pin. A separate key from
   * `keyId` (key separation: the RSA key only wraps). Envelopes are trusted only when
   * signed by a version of this key.
   */
  readonly signingKeyId: string;
  /**
   * How long the resolved current key version is reused before Key Vault is asked again,
   * i.e. the longest a rotation can go unnoticed by a warm instance. 0 asks every time.
   * @defaultValue {@link KEY_VAULT_KEY_RING_DEFAULTS.currentVersionTtlMs} (5 minutes)
   */
  readonly currentVersionTtlMs?: number;
  /** Clock in epoch milliseconds, for the version and public-key caches. @defaultValue Date.now */
  readonly now?: () => number;
}

/** Use a `KeyClient` you built (and configured: retries, TLS, tracing) yourself. */
export interface KeyVaultKeyRingClientOptions extends KeyVaultKeyRingBaseOptions {
  /**
   * A ready client of the vault holding `keyId` and `signingKeyId`; the ring never closes
   * it. Its cryptography clients come from `client.getCryptographyClient`, which reads each
   * key version once before its first operation (so reads need `get` on the key too).
   */
  readonly client: KeyClient;
  readonly credential?: never;
  readonly cryptographyClientOptions?: never;
}

/** Let the ring build its clients from a credential and options. */
export interface KeyVaultKeyRingConfigOptions extends KeyVaultKeyRingBaseOptions {
  /** Credential for Key Vault (e.g. `ManagedIdentityCredential`, `DefaultAzureCredential`). */
  readonly credential: TokenCredential;
  /**
   * Options for the SDK clients (retries, TLS, challenge verification, service version).
   * @defaultValue `{}` (the SDK's defaults: 3 retries, system CAs, challenge resource verified)
   */
  readonly cryptographyClientOptions?: CryptographyClientOptions;
  readonly client?: never;
}

/** Options of {@link KeyVaultKeyRing}: a ready `client`, or a `credential` to build clients with, not both. */
export type KeyVaultKeyRingOptions = KeyVaultKeyRingClientOptions | KeyVaultKeyRingConfigOptions;

/** The wrapping algorithm; fixed, so it is not stored in the envelope. */
const WRAP_ALGORITHM = 'RSA-OAEP-256';
/** The attestation algorithm; fixed, so it is not stored in the envelope. */
const SIGN_ALGORITHM = 'ES256';
const ES256_SIGNATURE_BYTES = 64;
/** Bound on cached per-version clients: envelope headers name versions, and headers come from the store. */
const MAX_CLIENTS = 32;
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const KEY_VERSION = /^[0-9a-zA-Z]{1,64}$/;

interface ParsedKeyId {
  /** `https://host[:port]`, lower-cased host, no trailing slash. */
  readonly vaultUrl: string;
  readonly name: string;
  readonly version: string | undefined;
}

interface CurrentKey {
  readonly kid: string;
  readonly expiresAt: number;
}

/** A key's current version, cached until it expires; concurrent callers share one lookup. */
class CurrentVersion {
  private cached: CurrentKey | undefined;
  private resolving: Promise<CurrentKey> | undefined;

  async get(now: number, resolve: () => Promise<CurrentKey>): Promise<CurrentKey> {
    if (this.cached && this.cached.expiresAt > now) return this.cached;
    this.resolving ??= resolve().finally(() => {
      this.resolving = undefined;
    });
    this.cached = await this.resolving;
    return this.cached;
  }
}

/**
 * Key ring backed by an Azure Key Vault RSA key.
 * @example
 * // In Azure Functions, with a managed identity:
 * const keyRing = new KeyVaultKeyRing({
 *   keyId: 'https://my-vault.vault.azure.net/keys/token-cache',
 *   credential: new ManagedIdentityCredential(),
 * });
 * @example
 * // Against the local Key Vault (local/keyvault.ts) with its self-signed certificate.
 * // `tlsOptions` reaches the SDK's HTTP pipeline (@azure/core-rest-pipeline): its `ca`
 * // replaces the system CAs for these clients only. An `agent` (`new https.Agent({ ca })`)
 * // works too; `NODE_EXTRA_CA_CERTS` set before Node starts adds the CA process-wide.
 * const keyRing = new KeyVaultKeyRing({
 *   keyId: `${vault.vaultUrl}/keys/token-cache`,
 *   credential,
 *   cryptographyClientOptions: {
 *     tlsOptions: { ca: vault.ca },
 *     // The challenge names https://vault.azure.net; the host is localhost.
 *     disableChallengeResourceVerification: true,
 *   },
 * });
 */
export class KeyVaultKeyRing implements KeyRing {
  /** Ring type written into every envelope. */
  readonly name = 'azure-keyvault';
  /** Wrapping is public: every data key is signed, and only signed (v2) envelopes open. */
  readonly attestsDataKeys = true;

  private readonly key: ParsedKeyId;
  private readonly signingKey: ParsedKeyId;
  /** Public halves of signing key versions, with when to ask again (a disabled version stops verifying). */
  private readonly verifyKeys = new Map<string, { readonly key: KeyObject; readonly expiresAt: number }>();
  private readonly fetchingVerifyKeys = new Map<string, Promise<KeyObject>>();
  /** The current signing key version. */
  private readonly currentSigner = new CurrentVersion();
  /** A remote-only client of one key version. */
  private readonly newCryptographyClient: (key: KeyVaultKey) => CryptographyClient;
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly keyClient: KeyClient;
  /** Remote-only clients per versioned kid, oldest first (Map keeps insertion order). */
  private readonly clients = new Map<string, CryptographyClient>();
  /** The current wrapping key version. */
  private readonly current = new CurrentVersion();

  constructor(options: KeyVaultKeyRingOptions) {
    this.key = parseKeyId(options.keyId, 'keyId');
    this.signingKey = parseKeyId(options.signingKeyId, 'signingKeyId');
    if (
      this.signingKey.vaultUrl === this.key.vaultUrl &&
      this.signingKey.name.toLowerCase() === this.key.name.toLowerCase()
    ) {
      throw new ConfigurationError(
        'signingKeyId',
        'must name a different key than keyId (an EC P-256 key used only for signing: key separation)',
      );
    }
    const ready = hasReadyClient(options, {
      ready: 'client',
      build: ['credential'],
      buildOnly: ['cryptographyClientOptions'],
      pass: 'a ready KeyClient as client, or a TokenCredential as credential to build clients with',
    });
    if (ready) {
      if (typeof options.client.getKey !== 'function' || typeof options.client.vaultUrl !== 'string') {
        throw new ConfigurationError('client', 'expected a KeyClient from @azure/keyvault-keys');
      }
      const clientVault = options.client.vaultUrl.replace(/\/+$/, '').toLowerCase();
      for (const [setting, parsed] of [
        ['keyId', this.key],
        ['signingKeyId', this.signingKey],
      ] as const) {
        if (parsed.vaultUrl.toLowerCase() !== clientVault) {
          throw new ConfigurationError(
            setting,
            `names the vault ${parsed.vaultUrl}, but client is for ${options.client.vaultUrl}; use a client of that vault`,
          );
        }
      }
    } else if (typeof options.credential.getToken !== 'function') {
      throw new ConfigurationError(
        'credential',
        'expected a TokenCredential (an object with getToken), e.g. ManagedIdentityCredential, or a ready KeyClient as client',
      );
    }
    const ttl = options.currentVersionTtlMs ?? KEY_VAULT_KEY_RING_DEFAULTS.currentVersionTtlMs;
    if (!Number.isFinite(ttl) || ttl < 0) {
      throw new ConfigurationError(
        'currentVersionTtlMs',
        `expected a duration in milliseconds >= 0, received ${ttl}`,
      );
    }
    this.ttlMs = ttl;
    this.now = options.now ?? Date.now;
    if (ready) {
      const client = options.client;
      this.keyClient = client;
      this.newCryptographyClient = (key) =>
        client.getCryptographyClient(key.name, { keyVersion: key.properties.version });
    } else {
      const { credential } = options;
      const clientOptions = { ...options.cryptographyClientOptions };
      this.keyClient = new KeyClient(this.key.vaultUrl, credential, { ...clientOptions });
      this.newCryptographyClient = (key) => new CryptographyClient(key, credential, { ...clientOptions });
    }
  }

  /**
   * Makes 32 random bytes, wraps them with the current key version and signs the
   * attestation digest with the current signing key version. @throws KeyServiceError
   */
  async generateDataKey(): Promise<DataKey> {
    const [{ kid }, { kid: signingKid }] = await Promise.all([
      this.current.get(this.now(), () => this.resolveCurrentKey(this.key)),
      this.currentSigner.get(this.now(), () => this.resolveCurrentKey(this.signingKey)),
    ]);
    const plaintext = randomBytes(DATA_KEY_BYTES);
    let wrapped: Uint8Array;
    try {
      wrapped = (await this.clientFor(kid).wrapKey(WRAP_ALGORITHM, plaintext)).result;
    } catch (error) {
      plaintext.fill(0);
      throw toKeyServiceError(this.name, 'generate', kid, error);
    }
    let signature: Uint8Array;
    try {
      const digest = attestationDigest(this.name, kid, signingKid, wrapped);
      signature = (await this.clientFor(signingKid).sign(SIGN_ALGORITHM, digest)).result;
    } catch (error) {
      plaintext.fill(0);
      throw toKeyServiceError(this.name, 'generate', signingKid, error);
    }
    const key = new Uint8Array(plaintext);
    plaintext.fill(0);
    return { plaintext: key, wrapped, keyId: kid, attestation: { signingKeyId: signingKid, signature } };
  }

  /**
   * Verifies the attestation (locally, with the signing key version's public half), then
   * unwraps with exactly the key version `keyId` names, which must be a version of the
   * configured key. Nothing is sent to Key Vault's unwrap for an envelope that fails.
   * @throws KeyServiceError (`bad-attestation` when the attestation is missing, names
   * another key, or does not verify)
   */
  async unwrapDataKey(wrapped: Uint8Array, keyId: string, context: UnwrapContext = {}): Promise<Uint8Array> {
    const kid = this.checkVersionOfConfiguredKey(keyId);
    await this.verifyAttestation(kid, wrapped, context.attestation);
    let result: Uint8Array;
    try {
      result = (await this.clientFor(kid).unwrapKey(WRAP_ALGORITHM, wrapped)).result;
    } catch (error) {
      throw toKeyServiceError(this.name, 'unwrap', kid, error);
    }
    if (result.length !== DATA_KEY_BYTES) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.InvalidCiphertext,
        `${kid} unwrapped ${result.length} bytes, expected a ${DATA_KEY_BYTES}-byte data key`,
      );
    }
    return result;
  }

  private async verifyAttestation(
    kid: string,
    wrapped: Uint8Array,
    attestation: UnwrapContext['attestation'],
  ): Promise<void> {
    const refuse = (why: string): KeyServiceError =>
      new KeyServiceError(this.name, 'unwrap', KeyServiceFailure.BadAttestation, why);
    if (!attestation) throw refuse(`the data key of ${kid} carries no attestation`);
    const signingKid = this.versionOf(this.signingKey, attestation.signingKeyId);
    if (!signingKid) {
      throw refuse(
        `the attestation names ${JSON.stringify(attestation.signingKeyId.slice(0, 300))}, not a version of the configured signing key ` +
          `${this.signingKey.vaultUrl}/keys/${this.signingKey.name}`,
      );
    }
    const publicKey = await this.verifyKey(signingKid);
    const message = attestationMessage(this.name, kid, signingKid, wrapped);
    const valid =
      attestation.signature.length === ES256_SIGNATURE_BYTES &&
      verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, attestation.signature);
    if (!valid)
      throw refuse(`the ES256 attestation of the data key of ${kid} by ${signingKid} does not verify`);
  }

  /** The public half of a signing key version, fetched with `keys/get` and cached for `currentVersionTtlMs`. */
  private async verifyKey(signingKid: string): Promise<KeyObject> {
    const cached = this.verifyKeys.get(signingKid);
    if (cached && cached.expiresAt > this.now()) return cached.key;
    let pending = this.fetchingVerifyKeys.get(signingKid);
    if (!pending) {
      pending = this.fetchVerifyKey(signingKid).finally(() => {
        this.fetchingVerifyKeys.delete(signingKid);
      });
      this.fetchingVerifyKeys.set(signingKid, pending);
    }
    return pending;
  }

  private async fetchVerifyKey(signingKid: string): Promise<KeyObject> {
    const parsed = parseKeyId(signingKid, 'signingKeyId');
    let key: KeyVaultKey;
    try {
      key = await this.keyClient.getKey(parsed.name, { version: parsed.version });
    } catch (error) {
      throw toKeyServiceError(this.name, 'unwrap', signingKid, error);
    }
    if (key.properties.enabled === false) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.Disabled,
        `signing key ${signingKid} is disabled: its attestations are no longer trusted`,
      );
    }
    const jwk = key.key;
    if (!jwk || (jwk.kty !== 'EC' && jwk.kty !== 'EC-HSM') || jwk.crv !== 'P-256' || !jwk.x || !jwk.y) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.Unknown,
        `signing key ${signingKid} is not an EC P-256 key (kty ${String(jwk?.kty)}, crv ${String(jwk?.crv)}); create one with kty EC, crv P-256`,
      );
    }
    const publicKey = createPublicKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: Buffer.from(jwk.x).toString('base64url'),
        y: Buffer.from(jwk.y).toString('base64url'),
      },
      format: 'jwk',
    });
    if (this.verifyKeys.size >= MAX_CLIENTS) {
      const oldest = this.verifyKeys.keys().next().value;
      if (oldest !== undefined) this.verifyKeys.delete(oldest);
    }
    this.verifyKeys.set(signingKid, { key: publicKey, expiresAt: this.now() + this.ttlMs });
    return publicKey;
  }

  private async resolveCurrentKey(configured: ParsedKeyId): Promise<CurrentKey> {
    const { name, version } = configured;
    const label = `${configured.vaultUrl}/keys/${name}${version ? `/${version}` : ''}`;
    let key: KeyVaultKey;
    try {
      key = await this.keyClient.getKey(name, version ? { version } : {});
    } catch (error) {
      throw toKeyServiceError(this.name, 'generate', label, error);
    }
    const kid = key.id ?? '';
    const parsed = tryParseKeyId(kid);
    if (!parsed?.version) {
      throw new KeyServiceError(
        this.name,
        'generate',
        KeyServiceFailure.Unknown,
        `Key Vault returned no versioned key id for ${label}`,
      );
    }
    // Key Vault still wraps with a disabled version (wrap is a public-key operation) but
    // refuses to unwrap with it: never seal a blob nobody could open.
    if (key.properties.enabled === false) {
      throw new KeyServiceError(
        this.name,
        'generate',
        KeyServiceFailure.Disabled,
        `${kid} is disabled; enable it or rotate the key`,
      );
    }
    return { kid, expiresAt: this.now() + this.ttlMs };
  }

  /**
   * A CryptographyClient for exactly one version, built from a KeyVaultKey without key
   * material: the SDK then skips the GET it makes to try local crypto and goes straight to
   * the service (unwrap and RSA-OAEP-256 wrap are remote anyway), so a cold instance makes
   * one round trip fewer and reads need no `get` permission.
   */
  private clientFor(kid: string): CryptographyClient {
    const cached = this.clients.get(kid);
    if (cached) return cached;
    const parsed = parseKeyId(kid, 'keyId');
    const key: KeyVaultKey = {
      id: kid,
      name: parsed.name,
      properties: { id: kid, name: parsed.name, vaultUrl: parsed.vaultUrl, version: parsed.version },
    };
    const client = this.newCryptographyClient(key);
    if (this.clients.size >= MAX_CLIENTS) {
      const oldest = this.clients.keys().next().value;
      if (oldest !== undefined) this.clients.delete(oldest);
    }
    this.clients.set(kid, client);
    return client;
  }

  /**
   * Only versions of the configured key (same vault, same name) may be used to unwrap: the
   * key id comes from a stored envelope header, and following it elsewhere would send our
   * bearer token to whichever vault the header names.
   */
  private checkVersionOfConfiguredKey(keyId: string): string {
    const kid = this.versionOf(this.key, keyId);
    if (!kid) {
      throw new KeyServiceError(
        this.name,
        'unwrap',
        KeyServiceFailure.NotFound,
        `key id ${JSON.stringify(keyId.slice(0, 300))} is not a version of the configured key ${this.key.vaultUrl}/keys/${this.key.name}`,
      );
    }
    return kid;
  }

  /** The canonical versioned kid when `keyId` is a version of `configured` (same vault, same name); else undefined. */
  private versionOf(configured: ParsedKeyId, keyId: string): string | undefined {
    const parsed = typeof keyId === 'string' ? tryParseKeyId(keyId) : undefined;
    if (
      !parsed?.version ||
      parsed.vaultUrl !== configured.vaultUrl ||
      parsed.name.toLowerCase() !== configured.name.toLowerCase()
    ) {
      return undefined;
    }
    return `${parsed.vaultUrl}/keys/${parsed.name}/${parsed.version}`;
  }
}

function tryParseKeyId(keyId: string): ParsedKeyId | undefined {
  let url: URL;
  try {
    url = new URL(keyId);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.search !== '' || url.hash !== '' || url.username || url.password) {
    return undefined;
  }
  const segments = url.pathname.replace(/\/+$/, '').split('/').slice(1);
  const [collection, name, version] = segments;
  if (segments.length < 2 || segments.length > 3 || collection !== 'keys' || !name || !KEY_NAME.test(name)) {
    return undefined;
  }
  if (version !== undefined && !KEY_VERSION.test(version)) return undefined;
  return { vaultUrl: `${url.protocol}//${url.host}`, name, version };
}

function parseKeyId(keyId: string, setting: string): ParsedKeyId {
  const parsed = typeof keyId === 'string' ? tryParseKeyId(keyId) : undefined;
  if (!parsed) {
    throw new ConfigurationError(
      setting,
      `expected a Key Vault key id like https://<vault>.vault.azure.net/keys/<name> or .../keys/<name>/<version>, received ${JSON.stringify(keyId)}`,
    );
  }
  return parsed;
}

/** The parts of an SDK RestError this ring reads (duck-typed: SDK packages may be duplicated). */
interface RestErrorLike extends Error {
  readonly statusCode?: number;
  readonly code?: string;
  readonly details?: { error?: { code?: string; innerError?: { code?: string } } };
}

function isRestErrorLike(error: unknown): error is RestErrorLike {
  return error instanceof Error && error.name === 'RestError';
}

/** Credential failures from @azure/identity, recognised by name so the package is not required. */
const CREDENTIAL_ERRORS = new Set([
  'CredentialUnavailableError',
  'AuthenticationError',
  'AuthenticationRequiredError',
]);

/**
 * Maps a Key Vault / SDK failure to a KeyServiceError; the original error is kept as cause.
 * Messages carry the status, the service's error codes and the key id, never key material
 * or tokens.
 */
function toKeyServiceError(
  keyRing: string,
  operation: 'generate' | 'unwrap',
  kid: string,
  error: unknown,
): KeyServiceError {
  if (error instanceof KeyServiceError) return error;
  const fail = (reason: KeyServiceFailure, message: string): KeyServiceError =>
    new KeyServiceError(keyRing, operation, reason, message, { cause: error });

  if (isRestErrorLike(error)) {
    const status = error.statusCode;
    const code = error.details?.error?.code ?? error.code ?? '';
    const inner = error.details?.error?.innerError?.code ?? '';
    const codes = [code, inner].filter(Boolean).join('/');
    const answered = `Key Vault answered ${status ?? 'no status'}${codes ? ` ${codes}` : ''} for ${kid}`;
    if (status === undefined) {
      return fail(
        KeyServiceFailure.Unavailable,
        `Key Vault could not be reached for ${kid} (${error.code ?? 'network error'})`,
      );
    }
    if (status === 404 || code === 'KeyNotFound') return fail(KeyServiceFailure.NotFound, answered);
    if (status === 403) {
      const disabled = inner === 'KeyDisabled' || /disabled/i.test(error.message);
      return disabled
        ? fail(KeyServiceFailure.Disabled, `${answered}: the key version is disabled`)
        : fail(
            KeyServiceFailure.AccessDenied,
            `${answered}: grant the identity get, wrapKey and unwrapKey on the wrapping key, get and sign on the signing key`,
          );
    }
    if (status === 401)
      return fail(KeyServiceFailure.AccessDenied, `${answered}: the bearer token was refused`);
    if (status === 429 || code === 'Throttled') return fail(KeyServiceFailure.Throttled, answered);
    if (status >= 500) return fail(KeyServiceFailure.Unavailable, answered);
    if (operation === 'unwrap' && status === 400 && code === 'BadParameter') {
      return fail(
        KeyServiceFailure.InvalidCiphertext,
        `${answered}: this key version cannot unwrap the data key`,
      );
    }
    return fail(KeyServiceFailure.Unknown, answered);
  }
  if (error instanceof Error && CREDENTIAL_ERRORS.has(error.name)) {
    return fail(
      KeyServiceFailure.AccessDenied,
      `the credential could not get a token for Key Vault (${error.name})`,
    );
  }
  if (error instanceof Error && error.name === 'AbortError') {
    return fail(KeyServiceFailure.Unavailable, `the call to Key Vault for ${kid} was aborted`);
  }
  const name = error instanceof Error ? error.name : typeof error;
  return fail(KeyServiceFailure.Unknown, `unexpected ${name} calling Key Vault for ${kid}`);
}
