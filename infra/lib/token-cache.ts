import { Duration, Names, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { FunctionVariable } from '../../functions/core/config';
import { ENCRYPTION_CONTEXT_KIND_KEY, ENCRYPTION_CONTEXT_PURPOSE } from '../../shared/defaults';

/** The `purpose` and kind key of the KMS key ring's encryption context, which the key grant is conditioned on (declared in shared/defaults.ts). */
export { ENCRYPTION_CONTEXT_KIND_KEY, ENCRYPTION_CONTEXT_PURPOSE };

/** The partition kinds of the token cache (`app`, `obo`, `user`), as the KMS key ring names them. */
export type TokenCachePartitionKind = 'app' | 'obo' | 'user';

/** Options of {@link TokenCacheTable.grantReadWrite}. */
export interface TokenCacheGrantOptions {
  /**
   * Limit the grantee's data keys to these partition kinds: GenerateDataKey and Decrypt
   * then also require `kms:EncryptionContext:kind` to be one of them, so e.g. a daemon
   * granted `['app']` cannot decrypt an OBO partition's data key even with table access.
   * @default - every kind (no condition on the kind)
   */
  readonly partitionKinds?: readonly TokenCachePartitionKind[];
}

/** The environment variables `environmentFor` sets, named as `shared/config.ts` reads them. */
export const TOKEN_CACHE_ENV = {
  /** DynamoDB table name. */
  tableName: 'TOKEN_CACHE_TABLE_NAME',
  /** KMS key ARN the key ring generates data keys under. */
  kmsKeyId: 'TOKEN_CACHE_KMS_KEY_ID',
} as const satisfies Record<string, FunctionVariable>;

/** Properties of a {@link TokenCacheTable}. */
export interface TokenCacheTableProps {
  /**
   * Physical name of the DynamoDB table.
   * @default - CloudFormation generates a unique name
   */
  readonly tableName?: string;

  /**
   * What happens to the table and the key when they leave the stack. Deleting either
   * signs every caller out, and deleting the key makes any backup unreadable.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Alias of the KMS key, with or without the `alias/` prefix.
   * @default - `alias/msal-token-cache/<unique construct name>`
   */
  readonly keyAlias?: string;

  /**
   * How often KMS rotates the key material (90 to 2560 days). Old material keeps
   * decrypting, so blobs sealed before a rotation still open.
   * @default Duration.days(365)
   */
  readonly keyRotationPeriod?: Duration;

  /**
   * The Entra application (client) id whose tokens this cache holds. When set, the key
   * grant also requires `kms:EncryptionContext:app` to equal it, so one app's role cannot
   * open another app's blobs even when they share the table and key.
   * @default - the grant checks only the encryption context's `purpose`
   */
  readonly clientId?: string;
}

/**
 * The persistent store of the MSAL token cache: a DynamoDB table holding one encrypted
 * blob per caller partition, and the customer-managed KMS key that both encrypts the
 * table at rest and wraps the envelope's data keys.
 *
 * @example
 * const cache = new TokenCacheTable(this, 'TokenCache', { clientId });
 * cache.bindTo(myFunction); // grants the store's actions and sets TOKEN_CACHE_* variables
 */
export class TokenCacheTable extends Construct {
  /** The table: `pk` (S) hash key, `v` (N) version, `blob` (B), `expiresAt` (N, TTL). */
  public readonly table: dynamodb.Table;
  /** The key: table encryption at rest and the envelope's data keys, rotation on. */
  public readonly key: kms.Key;
  /** The key's alias. */
  public readonly alias: kms.IAlias;

  private readonly clientId: string | undefined;

  constructor(scope: Construct, id: string, props: TokenCacheTableProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.clientId = props.clientId;

    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the MSAL token cache table and wraps its envelope data keys',
      enableKeyRotation: true,
      rotationPeriod: props.keyRotationPeriod ?? Duration.days(365),
      removalPolicy,
    });
    const aliasName =
      props.keyAlias ??
      `msal-token-cache/${Names.uniqueResourceName(this, { maxLength: 200, separator: '-' })}`;
    this.alias = this.key.addAlias(aliasName.startsWith('alias/') ? aliasName : `alias/${aliasName}`);

    this.table = new dynamodb.Table(this, 'Table', {
      tableName: props.tableName,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      removalPolicy,
    });
  }

  /**
   * Grants exactly what the store and the KMS key ring call: GetItem, PutItem and
   * DeleteItem on the table; GenerateDataKey and Decrypt on the key only with the token
   * cache's encryption context; and Decrypt on the key only through DynamoDB, which needs
   * it to serve a table encrypted with this key. `options.partitionKinds` limits the data
   * keys to those partition kinds.
   */
  public grantReadWrite(grantee: iam.IGrantable, options: TokenCacheGrantOptions = {}): iam.Grant {
    const table = iam.Grant.addToPrincipalOrResource({
      grantee,
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
      resourceArns: [this.table.tableArn],
      resource: this.table,
    });
    const context: Record<string, string | string[]> = {
      'kms:EncryptionContext:purpose': ENCRYPTION_CONTEXT_PURPOSE,
    };
    if (this.clientId !== undefined) context['kms:EncryptionContext:app'] = this.clientId;
    const kinds = options.partitionKinds;
    if (kinds !== undefined) {
      if (kinds.length === 0 || kinds.some((k) => !['app', 'obo', 'user'].includes(k))) {
        throw new Error(
          `TokenCacheTable.grantReadWrite: partitionKinds must be a non-empty list of app, obo, user; got ${JSON.stringify(kinds)}`,
        );
      }
      // A list under StringEquals matches any one of its values.
      context[`kms:EncryptionContext:${ENCRYPTION_CONTEXT_KIND_KEY}`] = [...new Set(kinds)];
    }
    const envelope = iam.Grant.addToPrincipalOrResource({
      grantee,
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resourceArns: [this.key.keyArn],
      resource: this.key,
      conditions: { StringEquals: context },
    });
    const tableAtRest = iam.Grant.addToPrincipalOrResource({
      grantee,
      actions: ['kms:Decrypt'],
      resourceArns: [this.key.keyArn],
      resource: this.key,
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
    });
    return table.combine(envelope).combine(tableAtRest);
  }

  /** The environment variables a function needs to reach this cache: the table name and the key ARN. */
  public environmentFor(): Record<string, string> {
    return {
      [TOKEN_CACHE_ENV.tableName]: this.table.tableName,
      [TOKEN_CACHE_ENV.kmsKeyId]: this.key.keyArn,
    };
  }

  /** Grants `fn` read and write ({@link grantReadWrite}, with `options`) and sets its environment ({@link environmentFor}). */
  public bindTo(fn: lambda.Function, options: TokenCacheGrantOptions = {}): iam.Grant {
    for (const [name, value] of Object.entries(this.environmentFor())) fn.addEnvironment(name, value);
    return this.grantReadWrite(fn, options);
  }
}

/**
 * @deprecated Renamed {@link TokenCacheTable}: the old name clashed with the library's
 * `TokenCache` interface. The same class under its old name, kept for 0.x stacks.
 */
export const TokenCache = TokenCacheTable;
/** @deprecated Renamed {@link TokenCacheTable}. */
export type TokenCache = TokenCacheTable;
/** @deprecated Renamed {@link TokenCacheTableProps}. */
export type TokenCacheProps = TokenCacheTableProps;
