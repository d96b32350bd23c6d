/**
 * A Secrets Manager-compatible server for the local stack and tests: CreateSecret,
 * GetSecretValue and PutSecretValue over the JSON 1.1 protocol
 * (`x-amz-target: secretsmanager.<Op>`), with versions, the AWSCURRENT / AWSPREVIOUS
 * staging labels and ClientRequestToken idempotency. The deployed functions read their
 * client secret from Secrets Manager at cold start; locally they read it from here.
 * Secrets live in memory, unencrypted: never put a real secret in it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import {
  AwsJsonError,
  blobMember,
  startAwsJsonServer,
  stringMember,
  type CallCounters,
  type JsonObject,
} from './kms/aws-json-server';

/** Options of {@link startLocalSecretsManager}. */
export interface LocalSecretsManagerOptions {
  /** TCP port on 127.0.0.1. @default 0 (any free port) */
  readonly port?: number;
  /** Region written into ARNs and the client config. @default 'us-east-1' */
  readonly region?: string;
  /** Account id written into ARNs. @default '000000000000' */
  readonly accountId?: string;
}

/** A running local Secrets Manager. */
export interface LocalSecretsManager {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  readonly region: string;
  /** A ready `SecretsManagerClientConfig`: endpoint, region and fake static credentials. */
  readonly clientConfig: SecretsManagerClientConfig;
  /** Creates a secret with a string value directly (not counted as a request); resolves to its ARN. */
  createSecret(name: string, value: string): Promise<string>;
  /** Requests received per operation (e.g. `calls('GetSecretValue')`). */
  readonly counters: CallCounters;
  /** Stops the server and drops every open connection. */
  stop(): Promise<void>;
}

interface SecretVersion {
  readonly id: string;
  readonly string?: string;
  readonly binary?: Buffer;
  readonly created: Date;
  stages: string[];
}

interface Secret {
  readonly name: string;
  readonly arn: string;
  readonly versions: Map<string, SecretVersion>;
}

const namePattern = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const suffixAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Starts a Secrets Manager-compatible server on 127.0.0.1.
 * @example
 * const sm = await startLocalSecretsManager();
 * const arn = await sm.createSecret('token-cache/client-secret', 'local-secret');
 * const client = new SecretsManagerClient(sm.clientConfig);
 */
export async function startLocalSecretsManager(
  options: LocalSecretsManagerOptions = {},
): Promise<LocalSecretsManager> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const secrets = new Map<string, Secret>();

  const find = (secretId: string): Secret => {
    const secret = secrets.get(secretId) ?? [...secrets.values()].find((s) => s.arn === secretId);
    if (!secret)
      throw new AwsJsonError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return secret;
  };

  const create = (name: string, value: { string?: string; binary?: Buffer }, token?: string): Secret => {
    if (!namePattern.test(name)) {
      throw new AwsJsonError(
        'InvalidParameterException',
        `Invalid name ${JSON.stringify(name)}: use 1 to 512 letters, digits and /_+=.@- only.`,
      );
    }
    if (secrets.has(name)) {
      throw new AwsJsonError(
        'ResourceExistsException',
        `The operation failed because the secret ${name} already exists.`,
      );
    }
    const suffix = Array.from(randomBytes(6), (b) => suffixAlphabet[b % suffixAlphabet.length]).join('');
    const secret: Secret = {
      name,
      arn: `arn:aws:secretsmanager:${region}:${accountId}:secret:${name}-${suffix}`,
      versions: new Map(),
    };
    secrets.set(name, secret);
    if (value.string !== undefined || value.binary !== undefined) putVersion(secret, value, token);
    return secret;
  };

  const server = await startAwsJsonServer({
    targetPrefix: 'secretsmanager',
    port: options.port ?? 0,
    messageField: 'Message',
    handle: async (operation, input) => {
      switch (operation) {
        case 'CreateSecret': {
          const secret = create(stringMember(input, 'Name', true), secretValue(input, false), token(input));
          const current = currentVersion(secret);
          return { ARN: secret.arn, Name: secret.name, ...(current ? { VersionId: current.id } : {}) };
        }
        case 'GetSecretValue': {
          const secret = find(stringMember(input, 'SecretId', true));
          const version = selectVersion(
            secret,
            stringMember(input, 'VersionId'),
            stringMember(input, 'VersionStage'),
          );
          return {
            ARN: secret.arn,
            Name: secret.name,
            VersionId: version.id,
            ...(version.string !== undefined ? { SecretString: version.string } : {}),
            ...(version.binary !== undefined ? { SecretBinary: version.binary.toString('base64') } : {}),
            VersionStages: [...version.stages],
            CreatedDate: version.created.getTime() / 1000,
          };
        }
        case 'PutSecretValue': {
          const secret = find(stringMember(input, 'SecretId', true));
          const stages = input.VersionStages;
          if (
            stages !== undefined &&
            (!Array.isArray(stages) || !stages.every((s) => typeof s === 'string'))
          ) {
            throw new AwsJsonError('InvalidParameterException', 'VersionStages must be a list of strings.');
          }
          const version = putVersion(secret, secretValue(input, true), token(input), stages);
          return {
            ARN: secret.arn,
            Name: secret.name,
            VersionId: version.id,
            VersionStages: [...version.stages],
          };
        }
        default:
          throw new AwsJsonError(
            'UnknownOperationException',
            `the local Secrets Manager does not implement ${operation}`,
          );
      }
    },
  });

  return {
    endpoint: server.endpoint,
    region,
    clientConfig: {
      endpoint: server.endpoint,
      region,
      credentials: { accessKeyId: 'AKIDLOCALSM', secretAccessKey: 'local-secrets-manager-secret' },
    },
    createSecret: async (name, value) => create(name, { string: value }).arn,
    counters: server.counters,
    stop: () => server.stop(),
  };
}

function token(input: JsonObject): string | undefined {
  return stringMember(input, 'ClientRequestToken');
}

function secretValue(input: JsonObject, required: boolean): { string?: string; binary?: Buffer } {
  const string = stringMember(input, 'SecretString');
  const binary = blobMember(input, 'SecretBinary');
  if (string !== undefined && binary !== undefined) {
    throw new AwsJsonError(
      'InvalidParameterException',
      'You can provide either SecretString or SecretBinary, not both.',
    );
  }
  if (required && string === undefined && binary === undefined) {
    throw new AwsJsonError(
      'InvalidRequestException',
      'You must provide either SecretString or SecretBinary.',
    );
  }
  return { ...(string !== undefined ? { string } : {}), ...(binary !== undefined ? { binary } : {}) };
}

function currentVersion(secret: Secret): SecretVersion | undefined {
  return [...secret.versions.values()].find((v) => v.stages.includes('AWSCURRENT'));
}

function selectVersion(secret: Secret, versionId?: string, stage?: string): SecretVersion {
  if (versionId !== undefined) {
    const version = secret.versions.get(versionId);
    if (!version || (stage !== undefined && !version.stages.includes(stage))) {
      throw new AwsJsonError(
        'ResourceNotFoundException',
        `Secrets Manager can't find the specified secret value for VersionId: ${versionId}`,
      );
    }
    return version;
  }
  const label = stage ?? 'AWSCURRENT';
  const version = [...secret.versions.values()].find((v) => v.stages.includes(label));
  if (!version) {
    throw new AwsJsonError(
      'ResourceNotFoundException',
      `Secrets Manager can't find the specified secret value for staging label: ${label}`,
    );
  }
  return version;
}

/**
 * Adds a version. A repeated ClientRequestToken with the same value is a no-op (the SDK's
 * retries rely on that); with a different value it fails, as in Secrets Manager.
 */
function putVersion(
  secret: Secret,
  value: { string?: string; binary?: Buffer },
  clientRequestToken: string = randomUUID(),
  stages: readonly string[] = ['AWSCURRENT'],
): SecretVersion {
  const existing = secret.versions.get(clientRequestToken);
  if (existing) {
    const same =
      existing.string === value.string &&
      (existing.binary === undefined) === (value.binary === undefined) &&
      (existing.binary === undefined || existing.binary.equals(value.binary!));
    if (!same) {
      throw new AwsJsonError(
        'ResourceExistsException',
        `A version with VersionId ${clientRequestToken} already exists with a different value.`,
      );
    }
    return existing;
  }
  const version: SecretVersion = { id: clientRequestToken, ...value, created: new Date(), stages: [] };
  for (const stage of stages) {
    for (const other of secret.versions.values()) {
      if (!other.stages.includes(stage)) continue;
      other.stages = other.stages.filter((s) => s !== stage);
      // Moving AWSCURRENT marks the version it leaves as AWSPREVIOUS.
      if (stage === 'AWSCURRENT') {
        for (const v of secret.versions.values()) v.stages = v.stages.filter((s) => s !== 'AWSPREVIOUS');
        other.stages.push('AWSPREVIOUS');
      }
    }
    version.stages.push(stage);
  }
  secret.versions.set(version.id, version);
  return version;
}
