import { createApp } from '../lib/app';

// `npx cdk synth` works offline with placeholders; to deploy, pass the app registration:
// `npx cdk deploy -c tenantId=<guid> -c clientId=<guid>` (other keys: infra/README.md).
createApp({ nag: true });
