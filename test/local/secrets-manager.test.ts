/**
 * The local Secrets Manager driven by the real @aws-sdk/client-secrets-manager.
 */
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  InvalidParameterException,
  PutSecretValueCommand,
  ResourceExistsException,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { startLocalSecretsManager, type LocalSecretsManager } from '../../local/secrets-manager';
import { useAwsEmulator } from './aws-emulator';

describe('startLocalSecretsManager', () => {
  let sm: LocalSecretsManager;
  let client: SecretsManagerClient;

  useAwsEmulator(startLocalSecretsManager, 'eu-central-1', SecretsManagerClient, (up) => ([sm, client] = up));

  beforeEach(() => sm.counters.reset());

  /** A raw AWS JSON 1.1 request for `operation` with `body`, past the SDK. */
  const wire = (operation: string, body: string): Promise<Response> =>
    fetch(`${sm.endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `secretsmanager.${operation}`,
      },
      body,
    });

  describe('createSecret (direct)', () => {
    it('returns an ARN whose value GetSecretValue reads by name and by ARN', async () => {
      const arn = await sm.createSecret('app/client-secret', 's3cr3t');

      const byName = await client.send(new GetSecretValueCommand({ SecretId: 'app/client-secret' }));
      const byArn = await client.send(new GetSecretValueCommand({ SecretId: arn }));

      expect(arn).toMatch(
        /^arn:aws:secretsmanager:eu-central-1:000000000000:secret:app\/client-secret-[A-Za-z0-9]{6}$/,
      );
      expect(byName).toMatchObject({ ARN: arn, Name: 'app/client-secret', SecretString: 's3cr3t' });
      expect(byName.VersionStages).toEqual(['AWSCURRENT']);
      expect(byName.CreatedDate).toBeInstanceOf(Date);
      expect(byArn.SecretString).toBe('s3cr3t');
      expect(sm.counters.calls('GetSecretValue')).toBe(2);
      expect(sm.counters.calls('CreateSecret')).toBe(0);
    });
  });

  describe('CreateSecret', () => {
    it('creates a secret with a string or binary value', async () => {
      const created = await client.send(
        new CreateSecretCommand({ Name: 'sdk/string', SecretString: 'value-1' }),
      );
      await client.send(
        new CreateSecretCommand({ Name: 'sdk/binary', SecretBinary: new Uint8Array([1, 2, 3]) }),
      );

      const text = await client.send(new GetSecretValueCommand({ SecretId: 'sdk/string' }));
      const binary = await client.send(new GetSecretValueCommand({ SecretId: 'sdk/binary' }));

      expect(created.Name).toBe('sdk/string');
      expect(text).toMatchObject({ ARN: created.ARN, VersionId: created.VersionId, SecretString: 'value-1' });
      expect(Array.from(binary.SecretBinary!)).toEqual([1, 2, 3]);
      expect(binary.SecretString).toBeUndefined();
    });

    it('refuses an existing name with ResourceExistsException', async () => {
      await sm.createSecret('dup', 'a');

      await expect(
        client.send(new CreateSecretCommand({ Name: 'dup', SecretString: 'b' })),
      ).rejects.toBeInstanceOf(ResourceExistsException);
    });

    it('refuses an invalid name and a value given twice with InvalidParameterException', async () => {
      await expect(
        client.send(new CreateSecretCommand({ Name: 'bad name!', SecretString: 'x' })),
      ).rejects.toBeInstanceOf(InvalidParameterException);
      await expect(
        client.send(
          new CreateSecretCommand({ Name: 'both', SecretString: 'x', SecretBinary: new Uint8Array([1]) }),
        ),
      ).rejects.toBeInstanceOf(InvalidParameterException);
    });

    it('a secret created without a value has nothing to get yet', async () => {
      await client.send(new CreateSecretCommand({ Name: 'empty' }));

      await expect(client.send(new GetSecretValueCommand({ SecretId: 'empty' }))).rejects.toThrow(
        expect.objectContaining({
          name: 'ResourceNotFoundException',
          message: "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        }) as Error,
      );
    });
  });

  describe('GetSecretValue', () => {
    it('answers ResourceNotFoundException for an unknown secret, shaped as Secrets Manager does', async () => {
      const error: unknown = await client
        .send(new GetSecretValueCommand({ SecretId: 'missing' }))
        .catch((e: unknown) => e);

      expect(error).toBeInstanceOf(ResourceNotFoundException);
      expect(error).toMatchObject({
        message: "Secrets Manager can't find the specified secret.",
        $metadata: { httpStatusCode: 400 },
      });
    });

    it('answers on the wire with {"__type", "Message"}', async () => {
      const res = await wire('GetSecretValue', JSON.stringify({ SecretId: 'missing' }));

      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        __type: 'ResourceNotFoundException',
        Message: "Secrets Manager can't find the specified secret.",
      });
    });
  });

  describe('PutSecretValue', () => {
    it('makes the new value AWSCURRENT and keeps the old one as AWSPREVIOUS', async () => {
      const arn = await sm.createSecret('rotating', 'v1');
      const first = await client.send(new GetSecretValueCommand({ SecretId: 'rotating' }));

      const put = await client.send(new PutSecretValueCommand({ SecretId: arn, SecretString: 'v2' }));
      const current = await client.send(new GetSecretValueCommand({ SecretId: 'rotating' }));
      const previous = await client.send(
        new GetSecretValueCommand({ SecretId: 'rotating', VersionStage: 'AWSPREVIOUS' }),
      );
      const byVersion = await client.send(
        new GetSecretValueCommand({ SecretId: 'rotating', VersionId: first.VersionId }),
      );

      expect(put).toMatchObject({ ARN: arn, Name: 'rotating', VersionStages: ['AWSCURRENT'] });
      expect(put.VersionId).not.toBe(first.VersionId);
      expect(current).toMatchObject({ SecretString: 'v2', VersionId: put.VersionId });
      expect(previous).toMatchObject({
        SecretString: 'v1',
        VersionId: first.VersionId,
        VersionStages: ['AWSPREVIOUS'],
      });
      expect(byVersion.SecretString).toBe('v1');
    });

    it('is idempotent per ClientRequestToken and refuses a different value for the same token', async () => {
      await sm.createSecret('idempotent', 'v1');
      const token = '11111111-2222-3333-4444-555555555555';

      const once = await client.send(
        new PutSecretValueCommand({ SecretId: 'idempotent', SecretString: 'v2', ClientRequestToken: token }),
      );
      const twice = await client.send(
        new PutSecretValueCommand({ SecretId: 'idempotent', SecretString: 'v2', ClientRequestToken: token }),
      );

      expect(twice.VersionId).toBe(once.VersionId);
      expect(once.VersionId).toBe(token);
      await expect(
        client.send(
          new PutSecretValueCommand({
            SecretId: 'idempotent',
            SecretString: 'v3',
            ClientRequestToken: token,
          }),
        ),
      ).rejects.toBeInstanceOf(ResourceExistsException);
      const previous = await client.send(
        new GetSecretValueCommand({ SecretId: 'idempotent', VersionStage: 'AWSPREVIOUS' }),
      );
      expect(previous.SecretString).toBe('v1');
    });

    it('answers ResourceNotFoundException for an unknown secret', async () => {
      await expect(
        client.send(new PutSecretValueCommand({ SecretId: 'nowhere', SecretString: 'x' })),
      ).rejects.toBeInstanceOf(ResourceNotFoundException);
    });
  });

  it('answers UnknownOperationException for an operation it does not implement', async () => {
    const res = await wire('DeleteSecret', '{}');

    expect(await res.json()).toMatchObject({ __type: 'UnknownOperationException' });
    expect(sm.counters.calls('DeleteSecret')).toBe(1);
  });
});

describe('LocalSecretsManager.stop', () => {
  it('closes the port; a second stop is harmless', async () => {
    const sm = await startLocalSecretsManager();
    await sm.createSecret('s', 'v');

    await sm.stop();
    await sm.stop();

    const client = new SecretsManagerClient({ ...sm.clientConfig, maxAttempts: 1 });
    await expect(client.send(new GetSecretValueCommand({ SecretId: 's' }))).rejects.toThrow(/ECONNREFUSED/);
    client.destroy();
  });
});
