/**
 * The Azure room of the operator CLI: the Cosmos DB store with its scanner and the key
 * ring the config names. Loaded by shared/cli only when TOKEN_CACHE_STORE is cosmos.
 */
import './peers';
import { Agent } from 'node:https';
import { CosmosClient } from '@azure/cosmos';
import { DefaultAzureCredential } from '@azure/identity';
import type { CacheConfig } from '../config';
import { ConfigurationError } from '../errors';
import { collectProblem, isLoopback, trustedCas } from '../runtime';
import type { CliRoom, CliRoomOptions } from '../cli/room';
import { CosmosScanSource } from './cosmos-scan';
import { CosmosStore } from './cosmos-store';
import { createKeyRing } from './from-env';

const TIMEOUT_MS = 5000;

/** The Cosmos DB store, its scanner and the key ring of `config`. @throws ConfigurationError */
export function openRoom(config: CacheConfig, _options: CliRoomOptions = {}): CliRoom {
  const store = config.store;
  if (store.kind !== 'cosmos') throw new Error(`the Azure room builds cosmos, not ${store.kind}`);
  const ca = trustedCas(config);
  const problems: ConfigurationError[] = [];
  // The CLI runs as an operator: their own Azure identity (az login, environment, managed identity).
  const keyRing = collectProblem(problems, () => createKeyRing(config, ca, undefined));
  if (problems.length > 0) throw ConfigurationError.of(problems);
  const client = new CosmosClient({
    endpoint: store.endpoint,
    ...(store.key ? { key: store.key.reveal() } : { aadCredentials: new DefaultAzureCredential() }),
    ...(ca && store.endpoint.startsWith('https:')
      ? { agent: new Agent({ keepAlive: true, ca: [...ca] }) }
      : {}),
    connectionPolicy: {
      requestTimeout: TIMEOUT_MS,
      ...(isLoopback(store.endpoint) ? { enableEndpointDiscovery: false } : {}),
    },
  });
  const container = client.database(store.databaseId).container(store.containerId);
  return {
    store: new CosmosStore({ container, budgetMs: 3 * TIMEOUT_MS }),
    source: new CosmosScanSource({ container }),
    keyRing: keyRing!,
    destroy: async () => client.dispose(),
  };
}
