/**
 * The Azure room of the operator CLI: the Cosmos DB store with its scanner and the key
 * ring the config names. Loaded by shared/cli only when TOKEN_CACHE_STORE is cosmos.
 */
import './peers';
import { Agent } from 'node:https';
import { CosmosClient } from '@azure/cosmos';
import { DefaultAzureCredential } from '@azure/identity';
import type { CacheConfig } from '../config';
import { isLoopback, trustedCas } from '../runtime';
import { CLI_TIMEOUT_MS, type CliRoom, type CliRoomOptions } from '../cli/room';
import { CosmosScanSource } from './cosmos-scan';
import { CosmosStore } from './cosmos-store';
import { createKeyRing } from './from-env';

/** The Cosmos DB store, its scanner and the key ring of `config`. @throws ConfigurationError */
export function openRoom(config: CacheConfig, _options: CliRoomOptions = {}): CliRoom {
  const store = config.store;
  if (store.kind !== 'cosmos') throw new Error(`the Azure room builds cosmos, not ${store.kind}`);
  const ca = trustedCas(config);
  // The CLI runs as an operator: their own Azure identity (az login, environment, managed identity).
  const keyRing = createKeyRing(config, ca, undefined);
  const client = new CosmosClient({
    endpoint: store.endpoint,
    ...(store.key ? { key: store.key.reveal() } : { aadCredentials: new DefaultAzureCredential() }),
    ...(ca && store.endpoint.startsWith('https:')
      ? { agent: new Agent({ keepAlive: true, ca: [...ca] }) }
      : {}),
    connectionPolicy: {
      requestTimeout: CLI_TIMEOUT_MS,
      ...(isLoopback(store.endpoint) ? { enableEndpointDiscovery: false } : {}),
    },
  });
  const container = client.database(store.databaseId).container(store.containerId);
  return {
    store: new CosmosStore({ container, budgetMs: 3 * CLI_TIMEOUT_MS }),
    source: new CosmosScanSource({ container }),
    keyRing,
    destroy: async () => client.dispose(),
  };
}
