/**
 * A local, in-process Azure Key Vault (keys only) over HTTPS, for tests and `npm start`.
 * It speaks the part of the Key Vault REST API that `@azure/keyvault-keys` uses for RSA
 * keys: create, get (latest or a version), list versions, rotate, update (enable /
 * disable), wrapkey and unwrapkey with RSA-OAEP and RSA-OAEP-256 done with real RSA keys
 * (node:crypto), EC P-256 keys and `sign` with ES256 over a given digest (ECDSA from the
 * digest, checked by node:crypto's verify), each operation refused unless the key's
 * `key_ops` list it, the challenge-based bearer authentication of the real service, Key
 * Vault's error bodies and statuses, per-operation counters and fault switches.
 *
 * Wire facts it follows (checked against the SDK source and reported service behaviour):
 * - a request without a bearer gets 401 and `WWW-Authenticate: Bearer
 *   authorization="<authority>/<tenant>", resource="https://vault.azure.net"`; the SDK's
 *   first request of a client carries no body, so the challenge is answered before the
 *   body is read;
 * - errors are `{"error":{"code","message","innererror"?:{"code"}}}`: 404 `KeyNotFound`,
 *   400 `BadParameter` (also for a ciphertext the key cannot decrypt), 403 `Forbidden`
 *   with innererror `KeyDisabled` (disabled key) or `ForbiddenByPolicy` (no permission),
 *   429 `Throttled` with `Retry-After`;
 * - a disabled key can still be read and used for public-key operations (wrapkey), but
 *   not for private-key ones (unwrapkey), as reported against the live service in
 *   Azure/azure-sdk-for-python#45342;
 * - an empty version segment (`/keys/name/` or `/keys/name//wrapkey`) means the latest.
 */
import {
  constants,
  generateKeyPair,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { promisify } from 'node:util';
import { listen, readBody, sendJson } from './http';
import { createDevCertificate, type DevCertificate } from './tls';

const generateRsaKeyPair = promisify(generateKeyPair);

/** The tenant named in the challenge when none is given. A fixed, obviously local GUID. */
export const DEFAULT_LOCAL_TENANT_ID = '00000000-0000-4000-8000-00000000c0de';

/** The resource every Key Vault challenge names; tokens are requested for `<resource>/.default`. */
export const KEY_VAULT_RESOURCE = 'https://vault.azure.net';

/** Operation names used by {@link LocalKeyVault.counters} and {@link LocalKeyVaultFault.ops}. */
export type LocalKeyVaultOperation =
  | 'createKey'
  | 'getKey'
  | 'getKeyVersions'
  | 'updateKey'
  | 'rotateKey'
  | 'wrapKey'
  | 'unwrapKey'
  | 'sign'
  /** A request without a bearer, answered with the 401 challenge. */
  | 'challenge'
  /** A request whose bearer `verifyToken` rejected (401). */
  | 'unauthorized';

/** A fault switch: the next matching authenticated requests fail with `status`. */
export interface LocalKeyVaultFault {
  /** 429 Throttled, 503 ServiceUnavailable, 500 InternalServerError, 403 Forbidden (no permission). */
  readonly status: 429 | 503 | 500 | 403;
  /** How many requests fail before the switch turns itself off. @default every request until cleared */
  readonly count?: number;
  /** Only these operations fail. @default every key operation */
  readonly ops?: readonly LocalKeyVaultOperation[];
}

/** Options of {@link startLocalKeyVault}. */
export interface LocalKeyVaultOptions {
  /** Port on localhost. @default 0 (a free port) */
  readonly port?: number;
  /** The TLS certificate for localhost. @default a fresh {@link createDevCertificate} */
  readonly certificate?: DevCertificate;
  /** Tenant named in the challenge; a credential bound to another tenant refuses it. @default {@link DEFAULT_LOCAL_TENANT_ID} */
  readonly tenantId?: string;
  /** Authority host sent in the challenge (`authorization="<authorityUrl>/<tenantId>"`). @default 'https://login.microsoftonline.com' */
  readonly authorityUrl?: string;
  /** Decides whether a bearer token is accepted. @default any non-empty bearer is accepted */
  readonly verifyToken?: (bearer: string) => Promise<boolean>;
}

/** Options of {@link LocalKeyVault.createKey}. */
export interface LocalKeyOptions {
  /** Key type: RSA (wrap / unwrap) or EC P-256 (sign with ES256). @default 'RSA' */
  readonly kty?: 'RSA' | 'EC';
  /** RSA modulus size. @default 2048 */
  readonly keySize?: 2048 | 3072 | 4096;
  /** JWK key_ops allowed on the key. @default RSA: encrypt, decrypt, sign, verify, wrapKey, unwrapKey; EC: sign, verify */
  readonly keyOps?: readonly string[];
  /** @default true */
  readonly enabled?: boolean;
}

/** A key version held by the local vault. */
export interface LocalKeyVersion {
  /** The versioned key id (`kid`): `<vaultUrl>/keys/<name>/<version>`. */
  readonly id: string;
  readonly name: string;
  readonly version: string;
}

/** A running local Key Vault. */
export interface LocalKeyVault {
  /** `https://localhost:PORT`, no trailing slash, as Key Vault key ids spell the vault. */
  readonly vaultUrl: string;
  /** PEM certificate to trust (the dev certificate is its own CA). */
  readonly ca: string;
  /** Creates a key, or a new version of an existing one (as Key Vault's create does). */
  createKey(name: string, options?: LocalKeyOptions): Promise<LocalKeyVersion>;
  /** Makes a new current version with the same size and operations. @throws Error when the key does not exist */
  rotateKey(name: string): Promise<LocalKeyVersion>;
  /** Disables one version, or the latest when `version` is omitted. @throws Error when it does not exist */
  disableKey(name: string, version?: string): void;
  /** Enables one version, or the latest when `version` is omitted. @throws Error when it does not exist */
  enableKey(name: string, version?: string): void;
  /** Requests received, per operation. */
  readonly counters: {
    /** Requests for `op`, or every request (challenges included) when omitted. */
    calls(op?: LocalKeyVaultOperation): number;
    /** Sets every counter back to zero. */
    reset(): void;
  };
  /** Turns a fault on, or off with `undefined`. */
  setFault(fault: LocalKeyVaultFault | undefined): void;
  /** Closes the server and every open connection. */
  stop(): Promise<void>;
}

interface StoredVersion {
  readonly version: string;
  readonly kty: string;
  readonly keySize: number;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  keyOps: string[];
  enabled: boolean;
  readonly created: number;
  updated: number;
  tags: Record<string, string> | undefined;
}

const DEFAULT_KEY_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
const DEFAULT_EC_KEY_OPS = ['sign', 'verify'];
const RSA_KEY_SIZES = new Set([2048, 3072, 4096]);
const OAEP_HASH: Record<string, string> = { 'RSA-OAEP': 'sha1', 'RSA-OAEP-256': 'sha256' };
// api-version values of the keys API: 7.x (with optional -preview[.n]) and the dated ones (2025-07-01).
const API_VERSION = /^(7\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?)$/;
const KEY_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const MAX_BODY_BYTES = 1024 * 1024;

/** An HTTP answer the router raises instead of returning. */
class VaultHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const newVersionId = (): string => randomBytes(16).toString('hex');

/**
 * Starts a local Key Vault on localhost over HTTPS.
 * @example
 * const vault = await startLocalKeyVault();
 * const { id } = await vault.createKey('token-cache');
 * const client = new CryptographyClient(id, credential, {
 *   disableChallengeResourceVerification: true, // the challenge names vault.azure.net, the host is localhost
 *   tlsOptions: { ca: vault.ca },
 * });
 */
export async function startLocalKeyVault(options: LocalKeyVaultOptions = {}): Promise<LocalKeyVault> {
  const certificate = options.certificate ?? (await createDevCertificate());
  const tenantId = options.tenantId ?? DEFAULT_LOCAL_TENANT_ID;
  const authorityUrl = (options.authorityUrl ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  const verifyToken = options.verifyToken ?? (async (bearer: string) => bearer.length > 0);
  const challenge = `Bearer authorization="${authorityUrl}/${tenantId}", resource="${KEY_VAULT_RESOURCE}"`;

  const keys = new Map<string, StoredVersion[]>();
  const counts = new Map<LocalKeyVaultOperation, number>();
  let fault: { status: LocalKeyVaultFault['status']; remaining: number; ops?: readonly string[] } | undefined;
  let vaultUrl = '';

  const count = (op: LocalKeyVaultOperation): void => {
    counts.set(op, (counts.get(op) ?? 0) + 1);
  };
  const kidOf = (name: string, v: StoredVersion): string => `${vaultUrl}/keys/${name}/${v.version}`;

  const findVersion = (name: string, version: string): StoredVersion => {
    const versions = keys.get(name);
    // Key Vault's "latest" is the most recently created version.
    const found = version === '' ? versions?.at(-1) : versions?.find((v) => v.version === version);
    if (!found) {
      const what = version === '' ? `A key with (name) ${name}` : `A key with (name/id) ${name}/${version}`;
      throw new VaultHttpError(404, 'KeyNotFound', `${what} was not found in this key vault.`);
    }
    return found;
  };

  const addVersion = async (
    name: string,
    kty: string,
    keySize: number,
    keyOps: readonly string[],
    enabled: boolean,
    tags?: Record<string, string>,
  ): Promise<StoredVersion> => {
    const { privateKey, publicKey } = isEc(kty)
      ? await generateRsaKeyPair('ec', { namedCurve: 'P-256' })
      : await generateRsaKeyPair('rsa', { modulusLength: keySize });
    const created = nowSeconds();
    const stored: StoredVersion = {
      version: newVersionId(),
      kty,
      keySize,
      privateKey,
      publicKey,
      keyOps: [...keyOps],
      enabled,
      created,
      updated: created,
      tags,
    };
    const versions = keys.get(name) ?? [];
    versions.push(stored);
    keys.set(name, versions);
    return stored;
  };

  const attributesOf = (v: StoredVersion) => ({
    enabled: v.enabled,
    created: v.created,
    updated: v.updated,
    recoveryLevel: 'Recoverable+Purgeable',
    recoverableDays: 90,
    exportable: false,
  });

  const bundleOf = (name: string, v: StoredVersion) => {
    const jwk = v.publicKey.export({ format: 'jwk' });
    const material = isEc(v.kty) ? { crv: 'P-256', x: jwk.x, y: jwk.y } : { n: jwk.n, e: jwk.e };
    return {
      key: { kid: kidOf(name, v), kty: v.kty, key_ops: v.keyOps, ...material },
      attributes: attributesOf(v),
      ...(v.tags ? { tags: v.tags } : {}),
    };
  };

  const setEnabled = (name: string, version: string | undefined, enabled: boolean): void => {
    const stored = findVersion(name, version ?? '');
    stored.enabled = enabled;
    stored.updated = nowSeconds();
  };

  /** Maps method + path to an operation; `undefined` for routes the vault does not serve. */
  const route = (
    method: string,
    segments: readonly string[],
  ):
    | { op: Exclude<LocalKeyVaultOperation, 'challenge' | 'unauthorized'>; name: string; version: string }
    | undefined => {
    if (segments[0] !== 'keys' || segments.length < 2 || segments.length > 4) return undefined;
    const name = segments[1] ?? '';
    const [third, fourth] = [segments[2], segments[3]];
    if (
      segments.length === 2 ||
      (segments.length === 3 && !['create', 'rotate', 'versions'].includes(third ?? ''))
    ) {
      const version = third ?? '';
      if (method === 'GET') return { op: 'getKey', name, version };
      if (method === 'PATCH') return { op: 'updateKey', name, version };
      return undefined;
    }
    if (segments.length === 3) {
      if (third === 'create' && method === 'POST') return { op: 'createKey', name, version: '' };
      if (third === 'rotate' && method === 'POST') return { op: 'rotateKey', name, version: '' };
      if (third === 'versions' && method === 'GET') return { op: 'getKeyVersions', name, version: '' };
      return undefined;
    }
    if (method !== 'POST') return undefined;
    if (fourth === 'wrapkey') return { op: 'wrapKey', name, version: third ?? '' };
    if (fourth === 'unwrapkey') return { op: 'unwrapKey', name, version: third ?? '' };
    if (fourth === 'sign') return { op: 'sign', name, version: third ?? '' };
    return undefined;
  };

  const handle = async (
    req: IncomingMessage,
  ): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> => {
    const url = new URL(req.url ?? '/', 'https://localhost');
    // Keep empty segments: an empty version means "latest".
    const segments = url.pathname.replace(/^\/+/, '').split('/');
    if (segments.length === 3 && segments[2] === '') segments.pop();
    const method = req.method ?? 'GET';

    const authorization = req.headers.authorization ?? '';
    const bearer = /^Bearer (.+)$/i.exec(authorization)?.[1]?.trim() ?? '';
    if (bearer === '') {
      count('challenge');
      throw new VaultHttpError(
        401,
        'Unauthorized',
        'AKV10000: Request is missing a Bearer or PoP token.',
        undefined,
        {
          'WWW-Authenticate': challenge,
        },
      );
    }
    if (!(await verifyToken(bearer))) {
      count('unauthorized');
      throw new VaultHttpError(401, 'Unauthorized', 'AKV10032: Invalid issuer or signature.', undefined, {
        'WWW-Authenticate': `${challenge}, error="invalid_token"`,
      });
    }

    const target = route(method, segments);
    if (!target) {
      throw new VaultHttpError(
        400,
        'BadParameter',
        `No operation ${method} ${url.pathname} in this local key vault.`,
      );
    }
    count(target.op);

    if (fault && (!fault.ops || fault.ops.includes(target.op))) {
      const status = fault.status;
      fault.remaining -= 1;
      if (fault.remaining <= 0) fault = undefined;
      throw faultError(status);
    }

    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion)
      throw new VaultHttpError(400, 'BadParameter', 'The api-version query parameter is required.');
    if (!API_VERSION.test(apiVersion)) {
      throw new VaultHttpError(
        400,
        'BadParameter',
        `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version.`,
      );
    }
    if (!KEY_NAME.test(target.name)) {
      throw new VaultHttpError(
        400,
        'BadParameter',
        'The key name must be 1-127 characters: letters, digits, dashes.',
      );
    }

    const { name, version } = target;
    switch (target.op) {
      case 'getKey':
        return { status: 200, body: bundleOf(name, findVersion(name, version)) };
      case 'getKeyVersions': {
        const versions = keys.get(name);
        if (!versions) findVersion(name, '');
        const value = (versions ?? []).map((v) => ({
          kid: kidOf(name, v),
          attributes: attributesOf(v),
          ...(v.tags ? { tags: v.tags } : {}),
        }));
        return { status: 200, body: { value, nextLink: null } };
      }
      case 'createKey': {
        const body = await readJson(req);
        const kty = typeof body.kty === 'string' ? body.kty : '';
        if (kty !== 'RSA' && kty !== 'RSA-HSM' && kty !== 'EC' && kty !== 'EC-HSM') {
          throw new VaultHttpError(
            400,
            'BadParameter',
            `Key type ${kty || '(none)'} is not supported by this local vault: use RSA or EC.`,
          );
        }
        if (isEc(kty) && body.crv !== undefined && body.crv !== 'P-256') {
          throw new VaultHttpError(400, 'BadParameter', 'This local vault makes EC keys on P-256 only.');
        }
        const keySize = isEc(kty) ? 256 : body.key_size === undefined ? 2048 : body.key_size;
        if (!isEc(kty) && (typeof keySize !== 'number' || !RSA_KEY_SIZES.has(keySize))) {
          throw new VaultHttpError(400, 'BadParameter', 'The RSA key size must be 2048, 3072 or 4096.');
        }
        const keyOps = stringArray(body.key_ops) ?? (isEc(kty) ? DEFAULT_EC_KEY_OPS : DEFAULT_KEY_OPS);
        const attributes = isObject(body.attributes) ? body.attributes : {};
        const enabled = attributes.enabled !== false;
        const stored = await addVersion(name, kty, Number(keySize), keyOps, enabled, stringRecord(body.tags));
        return { status: 200, body: bundleOf(name, stored) };
      }
      case 'rotateKey': {
        const latest = findVersion(name, '');
        const stored = await addVersion(name, latest.kty, latest.keySize, latest.keyOps, true, latest.tags);
        return { status: 200, body: bundleOf(name, stored) };
      }
      case 'updateKey': {
        const stored = findVersion(name, version);
        const body = await readJson(req);
        if (isObject(body.attributes) && typeof body.attributes.enabled === 'boolean') {
          stored.enabled = body.attributes.enabled;
        }
        const keyOps = stringArray(body.key_ops);
        if (keyOps) stored.keyOps = keyOps;
        const tags = stringRecord(body.tags);
        if (tags) stored.tags = tags;
        stored.updated = nowSeconds();
        return { status: 200, body: bundleOf(name, stored) };
      }
      case 'sign': {
        const stored = findVersion(name, version);
        const body = await readJson(req);
        if (!stored.keyOps.includes('sign')) {
          throw new VaultHttpError(
            403,
            'Forbidden',
            'Operation sign is not permitted on this key.',
            'KeyOperationForbidden',
          );
        }
        if (!stored.enabled) {
          throw new VaultHttpError(
            403,
            'Forbidden',
            'Operation sign is not allowed on a disabled key.',
            'KeyDisabled',
          );
        }
        if (!isEc(stored.kty) || body.alg !== 'ES256') {
          throw new VaultHttpError(
            400,
            'BadParameter',
            `Algorithm ${typeof body.alg === 'string' ? body.alg : '(none)'} is not supported for this key: this local vault signs ES256 with EC P-256 keys.`,
          );
        }
        if (typeof body.value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(body.value)) {
          throw new VaultHttpError(400, 'BadParameter', "Content of 'value' is not base64url.");
        }
        const digest = Buffer.from(body.value, 'base64url');
        if (digest.length !== 32) {
          throw new VaultHttpError(400, 'BadParameter', 'ES256 signs a 32-byte SHA-256 digest.');
        }
        const signature = signP256Digest(stored.privateKey, digest);
        return { status: 200, body: { kid: kidOf(name, stored), value: signature.toString('base64url') } };
      }
      case 'wrapKey':
      case 'unwrapKey': {
        const stored = findVersion(name, version);
        if (isEc(stored.kty)) {
          throw new VaultHttpError(
            400,
            'BadParameter',
            `Operation ${target.op} needs an RSA key; this key is ${stored.kty}.`,
          );
        }
        const body = await readJson(req);
        const alg = typeof body.alg === 'string' ? body.alg : '';
        const hash = OAEP_HASH[alg];
        if (!hash) {
          throw new VaultHttpError(
            400,
            'BadParameter',
            `Algorithm ${alg || '(none)'} is not supported: use RSA-OAEP or RSA-OAEP-256.`,
          );
        }
        if (typeof body.value !== 'string' || !/^[A-Za-z0-9_-]*$/.test(body.value)) {
          throw new VaultHttpError(400, 'BadParameter', "Content of 'value' is not base64url.");
        }
        const value = Buffer.from(body.value, 'base64url');
        const operation = target.op;
        if (!stored.keyOps.includes(operation)) {
          throw new VaultHttpError(
            403,
            'Forbidden',
            `Operation ${operation} is not permitted on this key.`,
            'KeyOperationForbidden',
          );
        }
        if (operation === 'unwrapKey' && !stored.enabled) {
          throw new VaultHttpError(
            403,
            'Forbidden',
            'Operation unwrapKey is not allowed on a disabled key.',
            'KeyDisabled',
          );
        }
        const padding = constants.RSA_PKCS1_OAEP_PADDING;
        let result: Buffer;
        try {
          result =
            operation === 'wrapKey'
              ? publicEncrypt({ key: stored.publicKey, padding, oaepHash: hash }, value)
              : privateDecrypt({ key: stored.privateKey, padding, oaepHash: hash }, value);
        } catch {
          const message =
            operation === 'wrapKey'
              ? 'The value is too long for this key and algorithm.'
              : 'Unable to decrypt specified value with this key.';
          throw new VaultHttpError(400, 'BadParameter', message);
        }
        return { status: 200, body: { kid: kidOf(name, stored), value: result.toString('base64url') } };
      }
    }
  };

  const server: Server = createServer({ cert: certificate.cert, key: certificate.key }, (req, res) => {
    handle(req).then(
      ({ status, body, headers }) => send(res, status, body, headers),
      (error: unknown) => {
        if (error instanceof VaultHttpError) {
          const inner = error.innerCode ? { innererror: { code: error.innerCode } } : {};
          send(
            res,
            error.status,
            { error: { code: error.code, message: error.message, ...inner } },
            error.headers,
          );
        } else {
          send(res, 500, { error: { code: 'InternalServerError', message: 'The local key vault failed.' } });
        }
      },
    );
  });

  vaultUrl = `https://localhost:${await listen(server, options.port ?? 0)}`;

  const requireKey = (name: string): void => {
    if (!keys.has(name)) throw new Error(`local key vault: no key named ${name}`);
  };
  const toVersion = (name: string, v: StoredVersion): LocalKeyVersion => ({
    id: kidOf(name, v),
    name,
    version: v.version,
  });
  const adminSetEnabled = (name: string, version: string | undefined, enabled: boolean): void => {
    requireKey(name);
    try {
      setEnabled(name, version, enabled);
    } catch (cause) {
      throw new Error(`local key vault: no version ${version ?? '(latest)'} of key ${name}`, { cause });
    }
  };

  return {
    vaultUrl,
    ca: certificate.cert,
    async createKey(name, keyOptions = {}) {
      if (!KEY_NAME.test(name)) throw new Error(`local key vault: invalid key name ${JSON.stringify(name)}`);
      const ec = keyOptions.kty === 'EC';
      const stored = await addVersion(
        name,
        ec ? 'EC' : 'RSA',
        ec ? 256 : (keyOptions.keySize ?? 2048),
        keyOptions.keyOps ?? (ec ? DEFAULT_EC_KEY_OPS : DEFAULT_KEY_OPS),
        keyOptions.enabled ?? true,
      );
      return toVersion(name, stored);
    },
    async rotateKey(name) {
      requireKey(name);
      const latest = findVersion(name, '');
      const stored = await addVersion(name, latest.kty, latest.keySize, latest.keyOps, true, latest.tags);
      return toVersion(name, stored);
    },
    disableKey(name, version) {
      adminSetEnabled(name, version, false);
    },
    enableKey(name, version) {
      adminSetEnabled(name, version, true);
    },
    counters: {
      calls(op) {
        if (op !== undefined) return counts.get(op) ?? 0;
        let total = 0;
        for (const n of counts.values()) total += n;
        return total;
      },
      reset() {
        counts.clear();
      },
    },
    setFault(next) {
      fault = next
        ? {
            status: next.status,
            remaining: next.count ?? Number.POSITIVE_INFINITY,
            ...(next.ops ? { ops: [...next.ops] } : {}),
          }
        : undefined;
    },
    stop() {
      return new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function isEc(kty: string): boolean {
  return kty === 'EC' || kty === 'EC-HSM';
}

/** NIST P-256 (FIPS 186-4, D.1.2.3). */
const P256 = {
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
  gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
} as const;

/**
 * ECDSA P-256 over a given 32-byte digest (what Key Vault's ES256 `sign` does), r || s.
 * node:crypto only signs messages it hashes itself, hence this small, test-only
 * implementation (affine arithmetic, random k); callers verify with node:crypto.
 */
function signP256Digest(privateKey: KeyObject, digest: Buffer): Buffer {
  const { p, n } = P256;
  const mod = (a: bigint, m: bigint): bigint => ((a % m) + m) % m;
  const pow = (b: bigint, e: bigint, m: bigint): bigint => {
    let result = 1n;
    let base = mod(b, m);
    for (let x = e; x > 0n; x >>= 1n) {
      if (x & 1n) result = (result * base) % m;
      base = (base * base) % m;
    }
    return result;
  };
  const inv = (a: bigint, m: bigint): bigint => pow(a, m - 2n, m);
  type Point = readonly [bigint, bigint] | undefined;
  const add = (P: Point, Q: Point): Point => {
    if (!P) return Q;
    if (!Q) return P;
    if (P[0] === Q[0] && mod(P[1] + Q[1], p) === 0n) return undefined;
    const l =
      P[0] === Q[0] && P[1] === Q[1]
        ? mod(3n * P[0] * P[0] - 3n, p) * inv(2n * P[1], p)
        : mod(Q[1] - P[1], p) * inv(mod(Q[0] - P[0], p), p);
    const lambda = mod(l, p);
    const x = mod(lambda * lambda - P[0] - Q[0], p);
    return [x, mod(lambda * (P[0] - x) - P[1], p)];
  };
  const multiply = (k: bigint, P: Point): Point => {
    let result: Point = undefined;
    let addend = P;
    for (let x = k; x > 0n; x >>= 1n) {
      if (x & 1n) result = add(result, addend);
      addend = add(addend, addend);
    }
    return result;
  };
  const toInt = (bytes: Buffer): bigint => BigInt(`0x${bytes.toString('hex') || '0'}`);
  const d = toInt(Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url'));
  const e = toInt(digest);
  for (;;) {
    const k = mod(toInt(randomBytes(40)), n - 1n) + 1n;
    const R = multiply(k, [P256.gx, P256.gy]);
    const r = R ? mod(R[0], n) : 0n;
    if (r === 0n) continue;
    const s = mod(inv(k, n) * (e + r * d), n);
    if (s === 0n) continue;
    const hex = (v: bigint): string => v.toString(16).padStart(64, '0');
    return Buffer.from(hex(r) + hex(s), 'hex');
  }
}

function faultError(status: LocalKeyVaultFault['status']): VaultHttpError {
  switch (status) {
    case 429:
      return new VaultHttpError(
        429,
        'Throttled',
        'Request was not processed because too many requests were received.',
        undefined,
        { 'Retry-After': '1' },
      );
    case 503:
      return new VaultHttpError(503, 'ServiceUnavailable', 'The service is temporarily unavailable.');
    case 500:
      return new VaultHttpError(500, 'InternalServerError', 'The service encountered an internal error.');
    case 403:
      return new VaultHttpError(
        403,
        'Forbidden',
        'The caller does not have permission to perform this operation on this key vault.',
        'ForbiddenByPolicy',
      );
  }
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, body, { 'x-ms-keyvault-service-version': 'local', ...headers });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const tooLarge = () => new VaultHttpError(400, 'BadParameter', 'The request body is too large.');
  const text = (await readBody(req, MAX_BODY_BYTES, tooLarge)).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new VaultHttpError(400, 'BadParameter', 'The request body is not valid JSON.');
  }
  if (!isObject(parsed))
    throw new VaultHttpError(400, 'BadParameter', 'The request body must be a JSON object.');
  return parsed;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringArray(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? [...value] : undefined;
}

function stringRecord(value: unknown): Record<string, string> | undefined {
  if (!isObject(value)) return undefined;
  const entries = Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string');
  return Object.fromEntries(entries);
}
