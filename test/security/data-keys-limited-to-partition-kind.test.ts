/**
 * Least privilege by partition kind (issue 11, point 7). The KMS key ring puts the
 * partition kind into the encryption context; the CDK construct conditions each role's
 * GenerateDataKey / Decrypt on its kinds (the daemon `app`, the web API `obo`). Here the
 * conditions are taken from the synthesized grant itself and evaluated by the local KMS
 * per caller (by SigV4 access key id), so a cross-kind decrypt is denied by exactly the
 * policy the construct deploys — through the real AWS SDK and the real cache path.
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { TokenCacheTable } from '../../infra';
import { startLocalKms, type LocalKmsPolicy } from '../../local/kms';
import { kmsEncryptionContext, KmsKeyRing } from '../../shared/aws/kms-keyring';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../../shared/crypto/envelope';
import type { PartitionKind } from '../../shared/crypto/keyring';
import { KeyServiceFailure } from '../../shared/errors';
import { MemoryStore } from '../../shared/store/memory';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE } from '../support/cache-harness';
import { startSecureWorld, userAssertion } from '../support/security-world';
import { useDestroyables, useWorld } from '../support/use-world';
import { keyServiceError } from '../support/expect-errors';

const DAEMON_KEY_ID = 'AKIDDAEMONROLE';
const WEB_API_KEY_ID = 'AKIDWEBAPIROLE';

/** The StringEquals condition of a role's GenerateDataKey statement, as the construct synthesizes it. */
function synthesizedPolicies(): Record<string, LocalKmsPolicy> {
  const stack = new Stack(new App(), 'LeastPrivilege');
  const cache = new TokenCacheTable(stack, 'Cache', { clientId: API_CLIENT_ID });
  const daemon = new iam.Role(stack, 'Daemon', { assumedBy: new iam.AccountRootPrincipal() });
  const webApi = new iam.Role(stack, 'WebApi', { assumedBy: new iam.AccountRootPrincipal() });
  cache.grantReadWrite(daemon, { partitionKinds: ['app'] });
  cache.grantReadWrite(webApi, { partitionKinds: ['obo'] });
  const template = Template.fromStack(stack);
  const conditionOf = (role: iam.Role): LocalKmsPolicy => {
    const roleId = stack.getLogicalId(role.node.defaultChild as iam.CfnRole);
    const statements = Object.values(
      template.findResources('AWS::IAM::Policy') as Record<
        string,
        { Properties: { Roles: unknown; PolicyDocument: { Statement: Array<Record<string, unknown>> } } }
      >,
    )
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    const envelope = statements.find((s) => JSON.stringify(s['Action']).includes('kms:GenerateDataKey'));
    const equals = (envelope?.['Condition'] as { StringEquals: Record<string, string | string[]> })
      .StringEquals;
    const encryptionContext: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(equals)) {
      const name = key.replace(/^kms:EncryptionContext:/, '');
      if (name === key) throw new Error(`unexpected condition key ${key}`);
      encryptionContext[name] = Array.isArray(value) ? value : [value];
    }
    return { encryptionContext };
  };
  return { [DAEMON_KEY_ID]: conditionOf(daemon), [WEB_API_KEY_ID]: conditionOf(webApi) };
}

const destroyAfterAll = useDestroyables();
const world = useWorld(startSecureWorld);
const kms = useWorld(() => startLocalKms({ policies: synthesizedPolicies() }));
let arn: string;

beforeAll(async () => {
  arn = (await kms.createKey()).arn;
});

function clientAs(accessKeyId: string): KMSClient {
  const client = new KMSClient({
    ...kms.clientConfig,
    credentials: { accessKeyId, secretAccessKey: 'local-kms-secret' },
    maxAttempts: 1,
  });
  return destroyAfterAll(client);
}

const ringAs = (accessKeyId: string) =>
  new KmsKeyRing({ keyId: arn, clientId: API_CLIENT_ID, client: clientAs(accessKeyId) });

describe('least privilege by partition kind under AWS KMS', () => {
  it('each role seals and opens its own kind through the cache (msal-node path)', async () => {
    const store = new MemoryStore();
    const daemon = world.instance({ store, keyRing: ringAs(DAEMON_KEY_ID) }).cache;
    const webApi = world.instance({ store, keyRing: ringAs(WEB_API_KEY_ID) }).cache;
    const assertion = await userAssertion(world, 'least-privilege-user');

    await daemon.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] });
    await webApi.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });

    const coldDaemon = world.instance({ store, keyRing: ringAs(DAEMON_KEY_ID) }).cache;
    const coldWebApi = world.instance({ store, keyRing: ringAs(WEB_API_KEY_ID) }).cache;
    expect((await coldDaemon.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] })).fromCache).toBe(true);
    expect(
      (await coldWebApi.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] })).fromCache,
    ).toBe(true);
  });

  describe.each<[string, string, PartitionKind, PartitionKind]>([
    ['the web API', WEB_API_KEY_ID, 'app', 'obo'],
    ['the daemon', DAEMON_KEY_ID, 'obo', 'app'],
  ])('%s', (_who, accessKeyId, foreignKind, ownKind) => {
    it(`is denied Decrypt of a ${foreignKind} partition's data key (AccessDeniedException)`, async () => {
      const keys = new DataKeyCache(ringAs(accessKeyId === DAEMON_KEY_ID ? WEB_API_KEY_ID : DAEMON_KEY_ID));
      const blob = await new Envelope({ keys }).seal(Buffer.from('{}'), 'k', { partitionKind: foreignKind });
      const { keyId, wrappedKey } = parseEnvelopeHeader(blob);

      // Asking with the foreign kind: the policy refuses.
      const direct: unknown = await clientAs(accessKeyId)
        .send(
          new DecryptCommand({
            CiphertextBlob: wrappedKey,
            KeyId: keyId,
            EncryptionContext: kmsEncryptionContext(API_CLIENT_ID, foreignKind),
          }),
        )
        .catch((e: unknown) => e);
      expect(direct).toMatchObject({ name: 'AccessDeniedException' });
      const viaRing = await keyServiceError(
        ringAs(accessKeyId).unwrapDataKey(wrappedKey, keyId, { partitionKind: foreignKind }),
      );
      expect(viaRing.reason).toBe(KeyServiceFailure.AccessDenied);
      // Asking with its own kind: allowed, but the data key is bound to the foreign kind.
      const ownContext = await keyServiceError(
        ringAs(accessKeyId).unwrapDataKey(wrappedKey, keyId, { partitionKind: ownKind }),
      );
      expect(ownContext.reason).toBe(KeyServiceFailure.InvalidCiphertext);
      // And without a kind (an older ring): the policy refuses too.
      const noKind = await keyServiceError(ringAs(accessKeyId).unwrapDataKey(wrappedKey, keyId));
      expect(noKind.reason).toBe(KeyServiceFailure.AccessDenied);
    });

    it(`is denied GenerateDataKey for a ${foreignKind} partition`, async () => {
      const error = await keyServiceError(
        ringAs(accessKeyId).generateDataKey({ partitionKind: foreignKind }),
      );

      expect(error.reason).toBe(KeyServiceFailure.AccessDenied);
    });
  });

  it('denies a caller the policies do not name (fail closed)', async () => {
    const error = await keyServiceError(ringAs('AKIDSTRANGER').generateDataKey({ partitionKind: 'app' }));

    expect(error.reason).toBe(KeyServiceFailure.AccessDenied);
  });
});
