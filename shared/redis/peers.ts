/** Checked first by `msal-cloud-cache/redis`: the Redis client it is built on is installed. */
/* eslint-disable @typescript-eslint/no-require-imports */
import { requirePeers } from '../peers';

requirePeers('msal-cloud-cache/redis', [
  ['@redis/client', (): unknown => require('@redis/client') as unknown],
]);
