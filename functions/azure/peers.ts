/** Checked first by `msal-cloud-cache/azure/functions`: the Functions programming model is installed. */
/* eslint-disable @typescript-eslint/no-require-imports */
import { requirePeers } from '../../shared/peers';

requirePeers('msal-cloud-cache/azure/functions', [
  ['@azure/functions', (): unknown => require('@azure/functions') as unknown],
]);
