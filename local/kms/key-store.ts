/**
 * The state and cryptography of the local KMS: symmetric keys with rotating key material,
 * aliases, and the ciphertext blob format. No HTTP here; the server maps requests onto it.
 *
 * Ciphertext blob (format 1), like real KMS self-describing so Decrypt needs no KeyId:
 *
 * | offset | bytes | field                                          |
 * |--------|-------|------------------------------------------------|
 * | 0      | 1     | format, 0x01                                   |
 * | 1      | 16    | key id (the UUID's bytes)                      |
 * | 17     | 4     | key material version, big-endian (0 = original) |
 * | 21     | 12    | AES-GCM nonce                                  |
 * | 33     | 16    | AES-GCM tag                                    |
 * | 49     | n     | AES-256-GCM ciphertext                         |
 *
 * The AAD is bytes 0..20 followed by the canonical encryption context (its entries sorted by
 * key, as a JSON array of pairs), so a changed header or a different context fails to open.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { AwsJsonError } from './aws-json-server';

/** Lifecycle state of a key, as KMS names it. */
export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

/** One generation of key material; rotation appends one, old ones keep decrypting. */
export interface KeyMaterial {
  /** 64 hex digits, like KMS's KeyMaterialId. */
  readonly id: string;
  readonly secret: Buffer;
}

/** A symmetric encryption key. */
export interface KeyRecord {
  readonly id: string;
  readonly arn: string;
  readonly created: Date;
  readonly description: string;
  state: KeyState;
  deletionDate?: Date;
  pendingWindowInDays?: number;
  rotationEnabled: boolean;
  rotationPeriodInDays?: number;
  onDemandRotations: number;
  /** Index = material version; the last one encrypts. */
  readonly materials: KeyMaterial[];
}

/** An alias pointing at a key. */
export interface AliasRecord {
  readonly name: string;
  readonly arn: string;
  targetKeyId: string;
  readonly created: Date;
  updated: Date;
}

const formatVersion = 1;
const headerLength = 21;
const nonceLength = 12;
const tagLength = 16;
/** Real KMS allows ten on-demand rotations per key. */
const maxOnDemandRotations = 10;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const aliasNamePattern = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

/** Keys and aliases as plain JSON, for keeping a local KMS's keys across restarts. Secret: keep it local. */
export interface KeyStoreState {
  readonly keys: ReadonlyArray<
    Omit<KeyRecord, 'created' | 'deletionDate' | 'materials'> & {
      readonly created: string;
      readonly deletionDate?: string;
      readonly materials: ReadonlyArray<{ readonly id: string; readonly secret: string }>;
    }
  >;
  readonly aliases: ReadonlyArray<
    Omit<AliasRecord, 'created' | 'updated'> & { created: string; updated: string }
  >;
}

/** Keys and aliases of one local account in one region. */
export class KeyStore {
  private readonly keys = new Map<string, KeyRecord>();
  private readonly aliases = new Map<string, AliasRecord>();

  constructor(
    readonly region: string,
    readonly accountId: string,
  ) {}

  /** Creates an enabled key with fresh material. */
  /** Everything this store holds, key material included (base64). */
  exportState(): KeyStoreState {
    return {
      keys: [...this.keys.values()].map(({ created, deletionDate, materials, ...rest }) => ({
        ...rest,
        created: created.toISOString(),
        ...(deletionDate ? { deletionDate: deletionDate.toISOString() } : {}),
        materials: materials.map((m) => ({ id: m.id, secret: m.secret.toString('base64') })),
      })),
      aliases: [...this.aliases.values()].map((a) => ({
        ...a,
        created: a.created.toISOString(),
        updated: a.updated.toISOString(),
      })),
    };
  }

  /** Replaces this store's keys and aliases with an exported state. */
  importState(state: KeyStoreState): void {
    this.keys.clear();
    this.aliases.clear();
    for (const { created, deletionDate, materials, ...rest } of state.keys) {
      this.keys.set(rest.id, {
        ...rest,
        created: new Date(created),
        ...(deletionDate ? { deletionDate: new Date(deletionDate) } : {}),
        materials: materials.map((m) => ({ id: m.id, secret: Buffer.from(m.secret, 'base64') })),
      });
    }
    for (const a of state.aliases) {
      this.aliases.set(a.name, { ...a, created: new Date(a.created), updated: new Date(a.updated) });
    }
  }

  createKey(description = ''): KeyRecord {
    const id = randomUUID();
    const key: KeyRecord = {
      id,
      arn: `arn:aws:kms:${this.region}:${this.accountId}:key/${id}`,
      created: new Date(),
      description,
      state: 'Enabled',
      rotationEnabled: false,
      onDemandRotations: 0,
      materials: [newMaterial()],
    };
    this.keys.set(id, key);
    return key;
  }

  /** Points a new alias at a key. */
  createAlias(aliasName: string, targetKeyId: string): AliasRecord {
    checkAliasName(aliasName);
    if (this.aliases.has(aliasName)) {
      throw new AwsJsonError(
        'AlreadyExistsException',
        `An alias with the name ${this.aliasArn(aliasName)} already exists`,
      );
    }
    const target = this.resolveKeyOnly(targetKeyId);
    const now = new Date();
    const alias: AliasRecord = {
      name: aliasName,
      arn: this.aliasArn(aliasName),
      targetKeyId: target.id,
      created: now,
      updated: now,
    };
    this.aliases.set(aliasName, alias);
    return alias;
  }

  /** Points an existing alias at another key. */
  updateAlias(aliasName: string, targetKeyId: string): void {
    const alias = this.aliases.get(aliasName);
    if (!alias)
      throw new AwsJsonError('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
    alias.targetKeyId = this.resolveKeyOnly(targetKeyId).id;
    alias.updated = new Date();
  }

  /** Every alias, or those of one key, in creation order. */
  listAliases(keyId?: string): AliasRecord[] {
    const all = [...this.aliases.values()];
    if (keyId === undefined) return all;
    const key = this.resolveKeyOnly(keyId);
    return all.filter((a) => a.targetKeyId === key.id);
  }

  /** Finds a key by key id, key ARN, alias name or alias ARN. @throws NotFoundException */
  resolve(identifier: string): KeyRecord {
    const aliasName = this.aliasNameOf(identifier);
    if (aliasName === undefined) return this.resolveKeyOnly(identifier);
    const alias = this.aliases.get(aliasName);
    if (!alias)
      throw new AwsJsonError('NotFoundException', `Alias ${this.aliasArn(aliasName)} is not found.`);
    return this.mustGet(alias.targetKeyId);
  }

  /** Fails unless the key can be used for cryptographic operations. */
  assertUsable(key: KeyRecord): void {
    if (key.state === 'Disabled') throw new AwsJsonError('DisabledException', `${key.arn} is disabled.`);
    if (key.state === 'PendingDeletion') {
      throw new AwsJsonError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
  }

  /** EnableKey / DisableKey. */
  setEnabled(key: KeyRecord, enabled: boolean): void {
    if (key.state === 'PendingDeletion') {
      throw new AwsJsonError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
    key.state = enabled ? 'Enabled' : 'Disabled';
  }

  /** ScheduleKeyDeletion: the key stops working at once; nothing is ever actually deleted here. */
  scheduleDeletion(key: KeyRecord, pendingWindowInDays: number): void {
    if (key.state === 'PendingDeletion') {
      throw new AwsJsonError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
    key.state = 'PendingDeletion';
    key.pendingWindowInDays = pendingWindowInDays;
    key.deletionDate = new Date(Date.now() + pendingWindowInDays * 86_400_000);
  }

  /** CancelKeyDeletion: like KMS, the key comes back disabled. */
  cancelDeletion(key: KeyRecord): void {
    if (key.state !== 'PendingDeletion') {
      throw new AwsJsonError('KMSInvalidStateException', `${key.arn} is not pending deletion.`);
    }
    key.state = 'Disabled';
    delete key.deletionDate;
    delete key.pendingWindowInDays;
  }

  /** RotateKeyOnDemand: appends new material that encrypts from now on. */
  rotate(key: KeyRecord): KeyMaterial {
    this.assertUsable(key);
    if (key.onDemandRotations >= maxOnDemandRotations) {
      throw new AwsJsonError(
        'LimitExceededException',
        `${key.arn} has reached the limit of ${maxOnDemandRotations} on-demand rotations.`,
      );
    }
    key.onDemandRotations += 1;
    const material = newMaterial();
    key.materials.push(material);
    return material;
  }

  /** The material new ciphertexts are made with. */
  currentMaterial(key: KeyRecord): KeyMaterial {
    return key.materials[key.materials.length - 1];
  }

  /** Encrypts under the key's current material. */
  encrypt(
    key: KeyRecord,
    plaintext: Uint8Array,
    context: Record<string, string>,
  ): { blob: Buffer; material: KeyMaterial } {
    this.assertUsable(key);
    const version = key.materials.length - 1;
    const material = key.materials[version];
    const header = Buffer.alloc(headerLength);
    header.writeUInt8(formatVersion, 0);
    Buffer.from(key.id.replaceAll('-', ''), 'hex').copy(header, 1);
    header.writeUInt32BE(version, 17);
    const nonce = randomBytes(nonceLength);
    const cipher = createCipheriv('aes-256-gcm', material.secret, nonce);
    cipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return { blob: Buffer.concat([header, nonce, cipher.getAuthTag(), body]), material };
  }

  /**
   * Decrypts a blob made by {@link encrypt}. With `keyId`, the key it names must be the one
   * that made the blob (IncorrectKeyException otherwise), as in KMS.
   */
  decrypt(
    blob: Buffer,
    context: Record<string, string>,
    keyId?: string,
  ): { key: KeyRecord; material: KeyMaterial; plaintext: Buffer } {
    if (blob.length < headerLength + nonceLength + tagLength || blob.readUInt8(0) !== formatVersion) {
      throw invalidCiphertext();
    }
    const hex = blob.subarray(1, 17).toString('hex');
    const blobKeyId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    if (keyId !== undefined) {
      const requested = this.resolve(keyId);
      if (requested.id !== blobKeyId) {
        throw new AwsJsonError(
          'IncorrectKeyException',
          'The key ID in the request does not identify a CMK that can perform this operation.',
        );
      }
    }
    const key = this.keys.get(blobKeyId);
    if (!key) throw new AwsJsonError('NotFoundException', `Key '${this.keyArn(blobKeyId)}' does not exist`);
    this.assertUsable(key);
    const material = key.materials[blob.readUInt32BE(17)];
    if (!material) throw invalidCiphertext();
    const nonce = blob.subarray(headerLength, headerLength + nonceLength);
    const tag = blob.subarray(headerLength + nonceLength, headerLength + nonceLength + tagLength);
    const decipher = createDecipheriv('aes-256-gcm', material.secret, nonce);
    decipher.setAAD(Buffer.concat([blob.subarray(0, headerLength), canonicalContext(context)]));
    decipher.setAuthTag(tag);
    try {
      const plaintext = Buffer.concat([
        decipher.update(blob.subarray(headerLength + nonceLength + tagLength)),
        decipher.final(),
      ]);
      return { key, material, plaintext };
    } catch {
      throw invalidCiphertext();
    }
  }

  /** `arn:aws:kms:<region>:<account>:key/<id>`. */
  keyArn(id: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:key/${id}`;
  }

  /** `arn:aws:kms:<region>:<account>:alias/<name>`. */
  aliasArn(aliasName: string): string {
    return `arn:aws:kms:${this.region}:${this.accountId}:${aliasName}`;
  }

  /** Finds a key by key id or key ARN only, as KMS does for key-management operations. @throws NotFoundException */
  resolveKeyOnly(identifier: string): KeyRecord {
    const arnPrefix = `arn:aws:kms:${this.region}:${this.accountId}:key/`;
    const id = identifier.startsWith(arnPrefix) ? identifier.slice(arnPrefix.length) : identifier;
    const key = uuidPattern.test(id) ? this.keys.get(id) : undefined;
    if (!key) {
      const shown = identifier.startsWith('arn:') ? identifier : this.keyArn(identifier);
      throw new AwsJsonError('NotFoundException', `Key '${shown}' does not exist`);
    }
    return key;
  }

  private aliasNameOf(identifier: string): string | undefined {
    if (identifier.startsWith('alias/')) return identifier;
    const arnPrefix = `arn:aws:kms:${this.region}:${this.accountId}:`;
    if (identifier.startsWith(`${arnPrefix}alias/`)) return identifier.slice(arnPrefix.length);
    // An alias ARN of another region or account names nothing this account can see.
    if (/^arn:aws:kms:[^:]*:[^:]*:alias\//.test(identifier)) {
      throw new AwsJsonError('NotFoundException', `Alias ${identifier} is not found.`);
    }
    return undefined;
  }

  private mustGet(id: string): KeyRecord {
    const key = this.keys.get(id);
    if (!key) throw new AwsJsonError('NotFoundException', `Key '${this.keyArn(id)}' does not exist`);
    return key;
  }
}

function newMaterial(): KeyMaterial {
  return { id: randomBytes(32).toString('hex'), secret: randomBytes(32) };
}

function checkAliasName(aliasName: string): void {
  if (!aliasNamePattern.test(aliasName) || aliasName.startsWith('alias/aws/')) {
    throw new AwsJsonError(
      'InvalidAliasNameException',
      `Alias name ${aliasName} must begin with 'alias/', use only letters, digits, '/', '_' and '-', and not begin with 'alias/aws/'.`,
    );
  }
}

function canonicalContext(context: Record<string, string>): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

function invalidCiphertext(): AwsJsonError {
  return new AwsJsonError(
    'InvalidCiphertextException',
    'The ciphertext or its encryption context is invalid.',
  );
}
