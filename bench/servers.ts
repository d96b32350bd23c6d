/**
 * The benchmark's services, run in a child process of bench/run.ts: dynalite (in memory),
 * the local KMS and the local Entra-compatible authority. Out of the measuring process
 * on purpose: a real store, KMS and authority are remote, so the client's CPU time per
 * request is then what the cache itself costs, and the services' own work does not
 * run on the measured event loop. Loopback only.
 *
 * Protocol (Node IPC): the child sends `{ type: 'ready', info }` once, then answers each
 * `{ id, op, args }` with `{ id, result }` or `{ id, error }`.
 */
import { GrantType } from '../local/authority';
import { startLocalServices } from './local-services';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, type ServerOps, type ServersInfo } from './protocol';

interface Request {
  readonly id: number;
  readonly op: keyof ServerOps;
  readonly args?: unknown;
}

async function main(): Promise<void> {
  const send = (message: unknown): void => {
    process.send?.(message);
  };
  const services = await startLocalServices({
    tableName: 'bench-token-cache',
    clientId: BENCH_CLIENT_ID,
    clientSecret: BENCH_CLIENT_SECRET,
    // Longer than any run, so no token expires (or nears MSAL's 5-minute refresh margin).
    accessTokenLifetimeSeconds: 4 * 3600,
  });
  const { dynamo, kms, authority } = services;
  const stopAll = (): Promise<void> => services.stop();
  const { arn } = await kms.createKey({ alias: 'alias/bench-token-cache', description: 'benchmark' });
  const meta = authority.msalMetadata();
  const info: ServersInfo = {
    dynamo: { endpoint: dynamo.endpoint, tableName: dynamo.tableName },
    kms: { endpoint: kms.endpoint, region: kms.region, keyArn: arn },
    authority: {
      url: authority.url,
      host: authority.host,
      ca: authority.ca,
      tenantId: authority.tenantId,
      authority: authority.authority(),
      authorityMetadata: meta.authorityMetadata,
      cloudDiscoveryMetadata: meta.cloudDiscoveryMetadata,
    },
  };
  const a = authority;
  const k = kms;
  const ops: ServerOps = {
    counters: () => ({
      tokenCalls: a.counters.token(),
      oboCalls: a.counters.token(GrantType.OnBehalfOf),
      clientCredentialCalls: a.counters.token(GrantType.ClientCredentials),
      metadataCalls: a.counters.metadata(),
      kmsGenerateDataKey: k.counters.calls('GenerateDataKey'),
      kmsDecrypt: k.counters.calls('Decrypt'),
    }),
    mint: async ({ oids, audience, expiresInSeconds }) => {
      const out: string[] = [];
      for (const oid of oids) {
        out.push(
          await a.mintUserToken({
            audience,
            oid,
            preferredUsername: `${oid}@bench.example`,
            expiresInSeconds,
          }),
        );
      }
      return out;
    },
    setTokenLatency: ({ ms }) => a.setTokenLatency(ms),
    stop: async () => {
      await stopAll();
      setImmediate(() => process.exit(0));
    },
  };
  process.on('message', (message: Request) => {
    const op = ops[message.op] as (args: unknown) => unknown;
    Promise.resolve()
      .then(() => op(message.args))
      .then(
        (result) => send({ id: message.id, result }),
        (e: unknown) => send({ id: message.id, error: e instanceof Error ? e.message : String(e) }),
      );
  });
  // The parent went away (killed, crashed): do not linger.
  process.on('disconnect', () => {
    void stopAll().finally(() => process.exit(0));
  });
  send({ type: 'ready', info });
}

// An entry point only: importing it must not start anything.
if (require.main === module) {
  main().catch((e: unknown) => {
    console.error('bench servers failed to start:', e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
