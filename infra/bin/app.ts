import { createApp } from '../lib/app';

// `npx cdk synth -c apiRequiredScopes=access_as_user` works offline with placeholders (the
// scopes are required, also for synth); to deploy, pass the app registration too:
// `npx cdk deploy -c tenantId=<guid> -c clientId=<guid> -c apiRequiredScopes=access_as_user`
// (other keys: infra/README.md).
createApp({ nag: true });
