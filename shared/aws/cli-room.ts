/**
 * The AWS room of the operator CLI: the DynamoDB store with its scanner and the key ring
 * the config names. Loaded by shared/cli only when TOKEN_CACHE_STORE is dynamodb.
 */
import './peers';
import { Agent } from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { CacheConfig } from '../config';
import { trustedCas } from '../runtime';
import { CLI_TIMEOUT_MS, type CliRoom, type CliRoomOptions } from '../cli/room';
import { DynamoDbScanSource } from './dynamodb-scan';
import { DynamoDbStore } from './dynamodb-store';
import { createKeyRing } from './from-env';

/** The DynamoDB store, its scanner and the key ring of `config`. @throws ConfigurationError */
export function openRoom(config: CacheConfig, options: CliRoomOptions = {}): CliRoom {
  const store = config.store;
  if (store.kind !== 'dynamodb') throw new Error(`the AWS room builds dynamodb, not ${store.kind}`);
  const ca = trustedCas(config);
  const keyRing = createKeyRing(config, ca);
  const dynamo = new DynamoDbStore({
    tableName: store.tableName,
    clientConfig: {
      ...(config.awsRegion ? { region: config.awsRegion } : {}),
      ...(store.endpoint ? { endpoint: store.endpoint } : {}),
      maxAttempts: 3,
      requestHandler: new NodeHttpHandler({
        connectionTimeout: CLI_TIMEOUT_MS,
        requestTimeout: CLI_TIMEOUT_MS,
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
    keyRing,
    destroy: async () => dynamo.destroy(),
  };
}
