import { build } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
void build({ ...lambdaBundleOptions('', '/tmp/meta-out/floor.js'), entryPoints: undefined, stdin: { contents: `export { ConfidentialClientApplication } from '@azure/msal-node';\nexport { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';`, resolveDir: process.cwd(), loader: 'ts', sourcefile: 'f.ts' } });
