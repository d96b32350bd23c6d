import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  ENCRYPTION_CONTEXT_KIND_KEY,
  ENCRYPTION_CONTEXT_PURPOSE,
  TOKEN_CACHE_ENV,
  TokenCache,
  TokenCacheTable,
} from '../../infra';
import {
  kmsEncryptionContext,
  kmsEncryptionContextKindKey,
  kmsEncryptionContextPurpose,
} from '../../shared/aws/kms-keyring';

interface PolicyResource {
  Properties: { Roles: unknown; PolicyDocument: { Statement: Statement[] } };
}
interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, Record<string, unknown>>;
  Effect: string;
}

/** Every statement of the identity policies attached to the role with logical id `roleId`. */
function statementsOf(template: Template, roleId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>)
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}
const actionsOf = (s: Statement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const logicalId = (stack: Stack, c: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(c.node.defaultChild as never);

describe('TokenCacheTable', () => {
  // One app, synthesized once: a cache with defaults bound to a function and granted to a role,
  // and a second cache with every prop overridden.
  const app = new App();
  const stack = new Stack(app, 'CacheStack');
  const cache = new TokenCacheTable(stack, 'Cache', { clientId: 'client-1' });
  const role = new iam.Role(stack, 'Grantee', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
  });
  const grant = cache.grantReadWrite(role);
  const fn = new lambda.Function(stack, 'Fn', {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {}'),
  });
  const bindGrant = cache.bindTo(fn);

  const otherStack = new Stack(app, 'OtherStack');
  const other = new TokenCacheTable(otherStack, 'Cache', {
    tableName: 'my-cache',
    removalPolicy: RemovalPolicy.DESTROY,
    keyAlias: 'team/cache',
  });
  const otherRole = new iam.Role(otherStack, 'Grantee', { assumedBy: new iam.AccountRootPrincipal() });
  other.grantReadWrite(otherRole);

  const template = Template.fromStack(stack);
  const otherTemplate = Template.fromStack(otherStack);
  const tableId = logicalId(stack, cache.table);
  const keyId = logicalId(stack, cache.key);
  const roleId = logicalId(stack, role);

  describe('table', () => {
    it('has pk as its only key, expiresAt as TTL, on-demand billing, PITR and the customer-managed key', () => {
      template.resourceCountIs('AWS::DynamoDB::Table', 1);
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: {
          SSEEnabled: true,
          SSEType: 'KMS',
          KMSMasterKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
        },
      });
    });

    it('is retained by default, with its key', () => {
      template.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
      });
      template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });

    it('takes a name and a removal policy', () => {
      otherTemplate.hasResource('AWS::DynamoDB::Table', {
        DeletionPolicy: 'Delete',
        Properties: Match.objectLike({ TableName: 'my-cache' }),
      });
      otherTemplate.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
    });
  });

  describe('key', () => {
    it('rotates yearly and has an alias', () => {
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true, RotationPeriodInDays: 365 });
      template.hasResourceProperties('AWS::KMS::Alias', {
        AliasName: Match.stringLikeRegexp('^alias/msal-token-cache/[A-Za-z0-9-]+$'),
        TargetKeyId: { 'Fn::GetAtt': [keyId, 'Arn'] },
      });
    });

    it('takes an alias with or without the alias/ prefix', () => {
      otherTemplate.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/team/cache' });
    });
  });

  describe('grantReadWrite', () => {
    const statements = statementsOf(template, roleId);

    it('grants exactly GetItem, PutItem and DeleteItem on the table', () => {
      const dynamo = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
      expect(dynamo).toEqual([
        {
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
          Resource: { 'Fn::GetAtt': [tableId, 'Arn'] },
        },
      ]);
    });

    it('grants GenerateDataKey and Decrypt only under the token-cache encryption context of this app', () => {
      const envelope = statements.filter((s) => s.Condition?.StringEquals?.['kms:EncryptionContext:purpose']);
      expect(envelope).toEqual([
        {
          Effect: 'Allow',
          Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
          Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
          Condition: {
            StringEquals: {
              'kms:EncryptionContext:purpose': ENCRYPTION_CONTEXT_PURPOSE,
              'kms:EncryptionContext:app': 'client-1',
            },
          },
        },
      ]);
    });

    it('conditions on exactly the encryption context the KMS key ring sends', () => {
      const envelope = statementsOf(template, roleId).find((s) =>
        actionsOf(s).includes('kms:GenerateDataKey'),
      );
      const sent = Object.entries(kmsEncryptionContext('client-1'));
      expect(envelope?.Condition?.StringEquals).toEqual(
        Object.fromEntries(sent.map(([key, value]) => [`kms:EncryptionContext:${key}`, value])),
      );
    });

    it('grants Decrypt for the table at rest only through DynamoDB', () => {
      const viaDynamo = statements.filter((s) => s.Condition?.StringEquals?.['kms:ViaService']);
      expect(viaDynamo).toEqual([
        {
          Effect: 'Allow',
          Action: 'kms:Decrypt',
          Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
          Condition: {
            StringEquals: {
              'kms:ViaService': { 'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
            },
          },
        },
      ]);
    });

    it('grants nothing else: no wildcard action, no wildcard resource, every KMS action conditioned', () => {
      expect(statements).toHaveLength(3);
      for (const s of statements) {
        expect(actionsOf(s).filter((a) => a.includes('*'))).toEqual([]);
        expect(JSON.stringify(s.Resource)).not.toContain('*');
        if (actionsOf(s).some((a) => a.startsWith('kms:'))) expect(s.Condition).toBeDefined();
      }
      expect(grant.success).toBe(true);
      expect(grant.principalStatements).toHaveLength(3);
    });

    it('checks only the purpose when no client id is given', () => {
      const otherStatements = statementsOf(otherTemplate, logicalId(otherStack, otherRole));
      const envelope = otherStatements.find(
        (s) => s.Condition?.StringEquals?.['kms:EncryptionContext:purpose'],
      );
      expect(envelope?.Condition).toEqual({
        StringEquals: { 'kms:EncryptionContext:purpose': ENCRYPTION_CONTEXT_PURPOSE },
      });
    });
  });

  describe('environmentFor', () => {
    it('names the table and the key ARN', () => {
      expect(stack.resolve(cache.environmentFor())).toEqual({
        [TOKEN_CACHE_ENV.tableName]: { Ref: tableId },
        [TOKEN_CACHE_ENV.kmsKeyId]: { 'Fn::GetAtt': [keyId, 'Arn'] },
      });
    });
  });

  describe('bindTo', () => {
    it("sets the function's environment and grants its role the same three statements", () => {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: {
            [TOKEN_CACHE_ENV.tableName]: { Ref: tableId },
            [TOKEN_CACHE_ENV.kmsKeyId]: { 'Fn::GetAtt': [keyId, 'Arn'] },
          },
        },
      });
      const fnRoleId = logicalId(stack, fn.role as iam.Role);
      const bound = statementsOf(template, fnRoleId);
      expect(bound).toEqual(statementsOf(template, roleId));
      expect(bindGrant.success).toBe(true);
    });
  });

  describe('grantReadWrite with partitionKinds (issue 11, point 7)', () => {
    const kindsStack = new Stack(new App(), 'KindsStack');
    const kindsCache = new TokenCacheTable(kindsStack, 'Cache', { clientId: 'client-1' });
    const daemonRole = new iam.Role(kindsStack, 'Daemon', { assumedBy: new iam.AccountRootPrincipal() });
    const apiRole = new iam.Role(kindsStack, 'Api', { assumedBy: new iam.AccountRootPrincipal() });
    kindsCache.grantReadWrite(daemonRole, { partitionKinds: ['app'] });
    kindsCache.grantReadWrite(apiRole, { partitionKinds: ['obo'] });
    const kindsTemplate = Template.fromStack(kindsStack);
    const envelopeOf = (roleLogicalId: string) =>
      statementsOf(kindsTemplate, roleLogicalId).find((s) => actionsOf(s).includes('kms:GenerateDataKey'));

    it('conditions each role on its own kinds, beside purpose and app', () => {
      expect(envelopeOf(logicalId(kindsStack, daemonRole))?.Condition).toEqual({
        StringEquals: {
          'kms:EncryptionContext:purpose': ENCRYPTION_CONTEXT_PURPOSE,
          'kms:EncryptionContext:app': 'client-1',
          'kms:EncryptionContext:kind': ['app'],
        },
      });
      expect(
        envelopeOf(logicalId(kindsStack, apiRole))?.Condition?.StringEquals?.['kms:EncryptionContext:kind'],
      ).toEqual(['obo']);
    });

    it('conditions on exactly the encryption context the KMS key ring sends for that kind', () => {
      const sent = Object.entries(kmsEncryptionContext('client-1', 'app'));
      const condition = envelopeOf(logicalId(kindsStack, daemonRole))?.Condition?.StringEquals ?? {};
      expect(Object.keys(condition).sort()).toEqual(
        sent.map(([key]) => `kms:EncryptionContext:${key}`).sort(),
      );
      for (const [key, value] of sent) {
        const allowed = condition[`kms:EncryptionContext:${key}`];
        expect(Array.isArray(allowed) ? allowed : [allowed]).toContain(value);
      }
    });

    it('ties the purpose string and the kind key to the ring', () => {
      expect(ENCRYPTION_CONTEXT_PURPOSE).toBe(kmsEncryptionContextPurpose);
      expect(ENCRYPTION_CONTEXT_PURPOSE).toBe('msal-token-cache');
      expect(ENCRYPTION_CONTEXT_KIND_KEY).toBe(kmsEncryptionContextKindKey);
    });

    it('refuses an empty or unknown kind list', () => {
      const s = new Stack(new App(), 'Bad');
      const c = new TokenCacheTable(s, 'Cache');
      const r = new iam.Role(s, 'R', { assumedBy: new iam.AccountRootPrincipal() });
      expect(() => c.grantReadWrite(r, { partitionKinds: [] })).toThrow(/partitionKinds/);
      expect(() => c.grantReadWrite(r, { partitionKinds: ['admin' as never] })).toThrow(/partitionKinds/);
    });
  });
});

describe('TokenCache (deprecated name)', () => {
  it('is the TokenCacheTable class itself, so 0.x stacks keep synthesizing the same resources', () => {
    const stack = new Stack(new App(), 'Alias');

    const cache = new TokenCache(stack, 'Cache', { clientId: 'client-1' });

    expect(TokenCache).toBe(TokenCacheTable);
    expect(cache).toBeInstanceOf(TokenCacheTable);
    Template.fromStack(stack).resourceCountIs('AWS::DynamoDB::Table', 1);
  });
});
