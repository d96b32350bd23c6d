/**
 * The AWS room of the operator CLI: the DynamoDB store with its scanner and the key ring
 * the config names. Loaded by shared/cli only when TOKEN_CACHE_STORE is dynamodb.
 */
import './peers';
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { CacheConfig } from '../config';
import { ConfigurationError } from '../errors';
import { collectProblem, trustedCas } from '../runtime';
import type { CliRoom, CliRoomOptions } from '../cli/room';
import { DynamoDbScanSource } from './dynamodb-scan';
import { DynamoDbStore } from './dynamodb-store';
import { createKeyRing } from './from-env';

/** Per attempt: bulk work tolerates a slower answer than a request path does. */
const TIMEOUT_MS = 5000;

/** The DynamoDB store, its scanner and the key ring of `config`. @throws ConfigurationError */
export function openRoom(config: CacheConfig, options: CliRoomOptions = {}): CliRoom {
  const store = config.store;
  if (store.kind !== 'dynamodb') throw new Error(`the AWS room builds dynamodb, not ${store.kind}`);
  const ca = trustedCas(config);
  const problems: ConfigurationError[] = [];
  const keyRing = collectProblem(problems, () => createKeyRing(config, ca));
  if (problems.length > 0) throw ConfigurationError.of(problems);
  const dynamo = new DynamoDbStore({
    tableName: store.tableName,
    clientConfig: {
      ...(config.awsRegion ? { region: config.awsRegion } : {}),
      ...(store.endpoint ? { endpoint: store.endpoint } : {}),
      maxAttempts: 3,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: TIMEOUT_MS,
        requestTimeout: TIMEOUT_MS,
        throwOnRequestTimeout: true,
        httpsAgent: new Agent({ keepAlive: true, maxSockets: 64, ...(ca ? { ca: [...ca] } : {}) }),
      }),
    },
  });
  return {
    store: dynamo,
    source: new DynamoDbScanSource({
      client: dynamo.client,
      tableName: store.tableName,
      ...(options.segments ? { segments: options.segments } : {}),
    }),
    keyRing: keyRing!,
    destroy: async () => dynamo.destroy(),
  };
}
