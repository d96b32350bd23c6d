/** Checked first by every AWS entry point: the SDK clients it is built on are installed. */
/* eslint-disable @typescript-eslint/no-require-imports */
import { requirePeers } from '../peers';

requirePeers('msal-cloud-cache/aws', [
  ['@aws-sdk/client-dynamodb', (): unknown => require('@aws-sdk/client-dynamodb') as unknown],
  ['@aws-sdk/client-kms', (): unknown => require('@aws-sdk/client-kms') as unknown],
  ['@smithy/node-http-handler', (): unknown => require('@smithy/node-http-handler') as unknown],
]);
