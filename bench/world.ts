/**
 * The measuring process's view of the services: forks bench/servers.ts, speaks its IPC
 * protocol, and builds the clients every variant shares the configuration of.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { KMSClientConfig } from '@aws-sdk/client-kms';
import { KmsKeyRing } from '../shared/aws/kms-keyring';
import type { HttpsNetworkClient } from '../shared/cache/http';
import type { MsalOptions } from '../shared/cache/types';
import { localMsal } from './msal-options';
import { forkTs } from './worker-process';
import {
  BENCH_CLIENT_ID,
  BENCH_CLIENT_SECRET,
  type ServerOps,
  type ServersInfo,
  type ServiceCounters,
} from './protocol';

export { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET } from './protocol';
export type { ServiceCounters } from './protocol';

/** Fake static credentials: the local services ignore SigV4. */
const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

/** The running services and typed calls into them. */
export interface World {
  readonly info: ServersInfo;
  readonly dynamoConfig: DynamoDBClientConfig;
  readonly kmsConfig: KMSClientConfig;
  counters(): Promise<ServiceCounters>;
  mint(oids: string[], audience: string, expiresInSeconds?: number): Promise<string[]>;
  setTokenLatency(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** The bench app's MSAL settings against the world's authority, calling it over `network`. */
export function benchMsal(world: World, network: HttpsNetworkClient): MsalOptions {
  const { authority, host } = world.info.authority;
  return localMsal({
    clientId: BENCH_CLIENT_ID,
    clientSecret: BENCH_CLIENT_SECRET,
    authority,
    host,
    network,
  });
}

/** A KMS ring on the world's key for the bench app (the caller destroys it). */
export function benchKeyRing(world: World): KmsKeyRing {
  return new KmsKeyRing({
    keyId: world.info.kms.keyArn,
    clientId: BENCH_CLIENT_ID,
    clientConfig: world.kmsConfig,
  });
}

/** Starts the services in a child process and waits until they listen. */
export async function startWorld(): Promise<World> {
  const child = forkTs(path.join(__dirname, 'servers.ts'));
  const info = await new Promise<ServersInfo>((resolve, reject) => {
    const onExit = (code: number | null): void =>
      reject(new Error(`bench servers exited with ${code} before they were ready`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', (m: { type?: string; info?: ServersInfo }) => {
      child.off('exit', onExit);
      if (m.type === 'ready' && m.info) resolve(m.info);
      else reject(new Error('bench servers sent an unexpected first message'));
    });
  });
  const rpc = new Rpc(child);
  return {
    info,
    dynamoConfig: { region: 'us-east-1', endpoint: info.dynamo.endpoint, credentials: LOCAL_CREDENTIALS },
    kmsConfig: { region: info.kms.region, endpoint: info.kms.endpoint, credentials: LOCAL_CREDENTIALS },
    counters: () => rpc.call('counters', undefined),
    mint: (oids, audience, expiresInSeconds = 4 * 3600) =>
      rpc.call('mint', { oids, audience, expiresInSeconds }),
    setTokenLatency: (ms) => rpc.call('setTokenLatency', { ms }),
    stop: async () => {
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      await rpc.call('stop', undefined).catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

type Op = keyof ServerOps;
type Result<K extends Op> = Awaited<ReturnType<ServerOps[K]>>;
type Args<K extends Op> = Parameters<ServerOps[K]>[0];

/** Request/response over the child's IPC channel. */
class Rpc {
  private next = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(private readonly child: ChildProcess) {
    child.on('message', (m: { id?: number; result?: unknown; error?: string }) => {
      if (m.id === undefined) return;
      const waiter = this.pending.get(m.id);
      if (!waiter) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) waiter.reject(new Error(`bench servers: ${m.error}`));
      else waiter.resolve(m.result);
    });
    child.on('exit', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('bench servers exited'));
      this.pending.clear();
    });
  }

  call<K extends Op>(op: K, args: Args<K>): Promise<Result<K>> {
    const id = this.next++;
    return new Promise<Result<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve, reject });
      this.child.send({ id, op, args });
    });
  }
}
