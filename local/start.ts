/**
 * `npm start`: runs the local stack and says what to call.
 *
 *   npm start                          AWS flavour: dynalite + local KMS + Lambda handlers
 *   npm start -- --cloud azure         Azure flavour: cosmosdb-server + local Key Vault + Functions handlers
 *   npm start -- --store redis         Redis (Debian's redis-server) as the store, with either cloud
 *   npm start -- --credential secret   a client secret instead of the federated credential (no secret)
 *   npm start -- --port-base 5000      ports 5000..5007 instead of 4000..4007
 *   npm start -- --daemon-interval 10  fire the daemon every 10 s (0: never)
 *   npm start -- --data-dir DIR        keep state in DIR instead of .local-data
 *   npm start -- --multi-tenant        the web API multi-tenant (organizations, two allowed tenants; AWS flavour)
 */
import { parseArgs } from 'node:util';
import { LOCAL_STEP_UP_USER, LOCAL_TENANTS, startLocalStack, type LocalStackOptions } from './stack';

function options(): LocalStackOptions {
  const { values } = parseArgs({
    options: {
      cloud: { type: 'string', default: 'aws' },
      store: { type: 'string', default: 'cloud' },
      credential: { type: 'string', default: 'federated' },
      'port-base': { type: 'string', default: '4000' },
      'daemon-interval': { type: 'string', default: '30' },
      'data-dir': { type: 'string', default: '.local-data' },
      'multi-tenant': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm start -- [--cloud aws|azure] [--store cloud|redis] [--credential federated|secret] [--port-base N] [--daemon-interval SECONDS] [--data-dir DIR] [--multi-tenant]',
    );
    process.exit(0);
  }
  const cloud = values.cloud;
  if (cloud !== 'aws' && cloud !== 'azure') fail(`--cloud: expected aws or azure, got "${cloud}"`);
  const store = values.store;
  if (store !== 'cloud' && store !== 'redis') fail(`--store: expected cloud or redis, got "${store}"`);
  const credential = values.credential;
  if (credential !== 'federated' && credential !== 'secret') {
    fail(`--credential: expected federated or secret, got "${credential}"`);
  }
  const portBase = Number(values['port-base']);
  if (!Number.isInteger(portBase) || portBase < 1024 || portBase > 65_000) {
    fail(`--port-base: expected an integer from 1024 to 65000, got "${values['port-base']}"`);
  }
  const daemonSeconds = Number(values['daemon-interval']);
  if (!Number.isFinite(daemonSeconds) || daemonSeconds < 0) {
    fail(`--daemon-interval: expected seconds >= 0, got "${values['daemon-interval']}"`);
  }
  return {
    cloud,
    store,
    credential,
    portBase,
    daemonIntervalMs: daemonSeconds * 1000,
    dataDir: values['data-dir'],
    multiTenant: values['multi-tenant'],
    print: (line) => console.log(line),
  };
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

async function main(): Promise<void> {
  const opts = options();
  console.log(`starting the local stack (${opts.cloud}${opts.store === 'redis' ? ', redis' : ''}) ...`);
  const stack = await startLocalStack(opts);
  const seconds = opts.daemonIntervalMs! / 1000;
  console.log(
    [
      '',
      `msal-cloud-cache local stack (${stack.cloud}${stack.store === 'redis' ? ', redis' : ''}) is up`,
      `  web API        ${stack.url}/api/downstream   (health: ${stack.url}/healthz)`,
      `  authority      ${stack.authority.authority()}`,
      `  credential     ${
        stack.credential === 'federated'
          ? `federated, no secret: the ${stack.cloud === 'aws' ? 'local STS web identity token' : 'local managed identity token'} is the client assertion`
          : 'a client secret'
      }`,
      ...(stack.multiTenant
        ? [
            `  tenants        multi-tenant on organizations; allowed (and the daemon's): ${LOCAL_TENANTS.join(', ')}`,
            `                 a token of the second tenant: curl -s "${stack.url}/_local/token?tenant=${LOCAL_TENANTS[1]}"`,
          ]
        : []),
      `  daemon         ${seconds > 0 ? `every ${seconds} s` : 'off (--daemon-interval 0)'}`,
      `  state          ${opts.dataDir} (a restart keeps the cache${stack.cloud === 'azure' && stack.store !== 'redis' ? ', except on Azure: cosmosdb-server keeps no files' : ''})`,
      '',
      'Call the web API as a signed-in user: the first call is a cache MISS, the second a HIT',
      '(the same caller token both times; a new token is a new caller):',
      `  TOKEN=$(curl -s ${stack.url}/_local/token)`,
      `  curl -s -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      `  curl -s -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      `Another user: TOKEN=$(curl -s "${stack.url}/_local/token?user=bob")`,
      '',
      `Conditional Access: ${LOCAL_STEP_UP_USER} must step up for the downstream API. Her plain token gets a 401`,
      'with WWW-Authenticate: Bearer ... error="insufficient_claims", claims="<base64>"; a token with the',
      'authentication context it asks for (acrs c1) gets through:',
      `  TOKEN=$(curl -s "${stack.url}/_local/token?user=${LOCAL_STEP_UP_USER}")`,
      `  curl -si -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      `  TOKEN=$(curl -s "${stack.url}/_local/token?user=${LOCAL_STEP_UP_USER}&acrs=c1")`,
      `  curl -s -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      'CAE revocation: the functions declare cp1 (MSAL_CLIENT_CAPABILITIES), so their tokens live 28 h. Cache one of',
      "alice's, revoke her tokens at the downstream API, and call again: the downstream refuses the cached token (401,",
      'claims challenge), the web API evicts it from the store, acquires with the claims and retries once:',
      `  TOKEN=$(curl -s ${stack.url}/_local/token)`,
      `  curl -s -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      `  curl -s -X POST -H "content-type: application/json" -d '{"oid":"${stack.userOid('alice')}"}' ${new URL('/_admin/revoke', stack.downstreamUrl).href}`,
      `  curl -s -H "Authorization: Bearer $TOKEN" ${stack.url}/api/downstream`,
      '',
      'To use the library against this stack from your own code (development values):',
      ...Object.entries(stack.libraryEnv).map(([name, value]) => `  ${name}=${value}`),
      '',
      'One line per request: cache hit or miss, store reads/writes, key-service and token-endpoint calls, latency.',
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping ...`);
    stack
      .stop()
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        console.error('stop failed:', e instanceof Error ? e.message : String(e));
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  const err = e as { code?: string; message?: string };
  if (err.code === 'EADDRINUSE') {
    console.error(`a port is already in use (${err.message}); try: npm start -- --port-base 5000`);
  } else {
    console.error(`the local stack failed to start: ${err.message ?? String(e)}`);
  }
  process.exit(1);
});
