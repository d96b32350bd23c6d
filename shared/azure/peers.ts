/** Checked first by every Azure entry point: the SDKs it is built on are installed. */
/* eslint-disable @typescript-eslint/no-require-imports */
import { requirePeers } from '../peers';

requirePeers('msal-cloud-cache/azure', [
  ['@azure/cosmos', (): unknown => require('@azure/cosmos') as unknown],
  ['@azure/identity', (): unknown => require('@azure/identity') as unknown],
  ['@azure/keyvault-keys', (): unknown => require('@azure/keyvault-keys') as unknown],
]);
