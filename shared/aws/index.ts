/**
 * `msal-cloud-cache/aws`: the DynamoDB store, the KMS key ring and the Lambda-ready
 * composition {@link createTokenCacheFromEnv}. Needs the optional peers
 * `@aws-sdk/client-dynamodb` and `@aws-sdk/client-kms` (and `@aws-sdk/client-secrets-manager`
 * when the client secret is read from Secrets Manager, `@aws-sdk/client-sts`
 * for the secretless `aws-web-identity` client assertion). Loads no Azure package.
 */
import './peers';

export { DYNAMODB_STORE_DEFAULTS, KMS_KEY_RING_DEFAULTS } from '../defaults';
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
export {
  ENTRA_TOKEN_EXCHANGE_AUDIENCE,
  WebIdentityAssertionDefaults,
  webIdentityAssertion,
  webIdentityAssertionSource,
  type WebIdentityAssertionOptions,
} from './web-identity-assertion';
