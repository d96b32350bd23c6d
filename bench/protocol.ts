/**
 * What bench/run.ts and its service process (bench/servers.ts) share: the local app
 * registration and the IPC protocol. No side effects: both sides import it.
 */

/** Identity of the benchmark's app registration at the local authority (local-only values). */
export const BENCH_CLIENT_ID = '0b7e1c55-6f0e-4c3a-9d8e-5a1b2c3d4e5f';
export const BENCH_CLIENT_SECRET = 'bench-local-only-secret';

/** What the parent needs to reach the services. */
export interface ServersInfo {
  readonly dynamo: {
    readonly endpoint: string;
    readonly tableName: string;
  };
  readonly kms: { readonly endpoint: string; readonly region: string; readonly keyArn: string };
  readonly authority: {
    readonly url: string;
    readonly host: string;
    readonly ca: string;
    readonly tenantId: string;
    readonly authority: string;
    readonly authorityMetadata: string;
    readonly cloudDiscoveryMetadata: string;
  };
}

/** Request counts of the services since the last reset. */
export interface ServiceCounters {
  readonly tokenCalls: number;
  readonly oboCalls: number;
  readonly clientCredentialCalls: number;
  readonly metadataCalls: number;
  readonly kmsGenerateDataKey: number;
  readonly kmsDecrypt: number;
}

/** The operations the child answers. */
export interface ServerOps {
  counters(): ServiceCounters;
  /** Mints user access tokens (the incoming assertions of OBO), one per oid. */
  mint(args: { oids: string[]; audience: string; expiresInSeconds: number }): Promise<string[]>;
  /** Delays every token response by `ms`, as a remote authority would take (0: none). */
  setTokenLatency(args: { ms: number }): void;
  stop(): Promise<void>;
}
