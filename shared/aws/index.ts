/**
 * `msal-cloud-cache/aws`: the DynamoDB store, the KMS key ring and the Lambda-ready
 * composition {@link createTokenCacheFromEnv}. Needs the optional peers
 * `@aws-sdk/client-dynamodb` and `@aws-sdk/client-kms` (and `@aws-sdk/client-secrets-manager`
 * when the client secret is read from Secrets Manager). Loads no Azure package.
 */
import './peers';

export {
  DynamoDbStore,
  type DynamoDbStoreOptions,
  type DynamoDbStoreClientOptions,
  type DynamoDbStoreConfigOptions,
} from './dynamodb-store';
export {
  KmsKeyRing,
  kmsEncryptionContext,
  kmsEncryptionContextPurpose,
  type KmsKeyRingOptions,
} from './kms-keyring';
export {
  DEFAULT_METRICS_NAMESPACE,
  DEFAULT_SERVICE_NAME,
  EmfMetrics,
  emfEnabled,
  flushMetrics,
  lambdaMetrics,
  type EmfMetricsOptions,
  type MetricsSetting,
} from './emf';
export { powertoolsLogger, type PowertoolsLikeLogger } from './powertools';
export {
  createTokenCacheFromConfig,
  createTokenCacheFromEnv,
  resolveClientCredential,
  type FromEnvOptions,
} from './from-env';
