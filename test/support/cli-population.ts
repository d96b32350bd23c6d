/**
 * A population of cache partitions for the operator CLI's tests and benchmark, written by
 * the library: one real partition of each kind (app, on-behalf-of, user) comes from the
 * token cache and the local authority, and every further item is a copy of one of them
 * with its identity replaced (tenant id, assertion hash, user oid), sealed with the
 * library's Envelope under its own store key. The library can then serve every item of
 * the population without a token call (see {@link servePopulation}).
 */
import { randomUUID } from 'node:crypto';
import { BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Container } from '@azure/cosmos';
import { logicalKey, sha256Base64Url, storeKey } from '../../shared/cache/partitions';
import { main, type CliIo } from '../../shared/cli/main';
import type { CommandReport, FailureReport, HeaderView, StatsReport } from '../../shared/cli/reports';
import type { TokenCache } from '../../shared/cache/types';
import { DataKeyCache } from '../../shared/crypto/data-key-cache';
import { Envelope } from '../../shared/crypto/envelope';
import type { KeyRing } from '../../shared/crypto/keyring';
import { LocalKeyRing } from '../../shared/crypto/local-keyring';
import type { MemoryStore } from '../../shared/store/memory';
import { DEFAULT_TENANT_ID } from '../../local/authority';
import { API_CLIENT_ID, DOWNSTREAM_SCOPE, signIn, USER_SCOPES, type CacheWorld } from './cache-harness';

import { registerSecret } from './secret-registry';

/** One partition of the population and what a caller presents to be served from it. */
export type Member =
  | { readonly kind: 'app'; readonly key: string; readonly tenantId: string }
  | { readonly kind: 'obo'; readonly key: string; readonly assertion: string }
  | { readonly kind: 'user'; readonly key: string; readonly homeAccountId: string };

/** The three real partitions the copies are made from. */
export interface Templates {
  readonly app: { readonly json: string; readonly tenantId: string };
  readonly obo: { readonly json: string; readonly assertion: string };
  readonly user: { readonly json: string; readonly oid: string; readonly homeAccountId: string };
}

/** Where a population's items go: one call per batch (BatchWriteItem, parallel creates...). */
export type BulkWriter = (
  items: ReadonlyArray<{ key: string; blob: Uint8Array; expiresAt: number }>,
) => Promise<void>;

/** Asks the library (through the local authority) for one partition of each kind and opens them. */
export async function libraryTemplates(world: CacheWorld): Promise<Templates> {
  const { cache } = world.instance();
  await cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE] });
  const oboOid = randomUUID();
  const assertion = await world.authority.mintUserToken({
    audience: API_CLIENT_ID,
    oid: oboOid,
    preferredUsername: `${oboOid}@example.com`,
  });
  await cache.acquireTokenOnBehalfOf({ assertion, scopes: [DOWNSTREAM_SCOPE] });
  const oid = randomUUID();
  const signedIn = await signIn(world, cache, oid);
  const homeAccountId = signedIn.account!.homeAccountId;
  const envelope = new Envelope({ keys: new DataKeyCache(new LocalKeyRing({ masterKey: world.masterKey })) });
  const open = async (key: string): Promise<string> => {
    const item = await world.store.read(key);
    if (!item) throw new Error(`the library wrote no partition under ${key}`);
    return Buffer.from(await envelope.open(item.blob, key)).toString('utf8');
  };
  const templates: Templates = {
    app: {
      json: await open(cache.storeKeyOf({ kind: 'app', tenantId: DEFAULT_TENANT_ID })),
      tenantId: DEFAULT_TENANT_ID,
    },
    obo: { json: await open(cache.storeKeyOf({ kind: 'obo', assertion })), assertion },
    user: { json: await open(cache.storeKeyOf({ kind: 'user', homeAccountId })), oid, homeAccountId },
  };
  if (!templates.obo.json.includes(sha256Base64Url(assertion))) {
    throw new Error('the OBO template does not hold sha256(assertion) as its assertion hash');
  }
  return templates;
}

/** Options of {@link populate}. */
export interface PopulateOptions {
  readonly templates: Templates;
  readonly keyRing: KeyRing;
  readonly count: number;
  /** Share of app partitions (one tenant each). @default 0.05 */
  readonly appShare?: number;
  /** Items whose expiresAt is already past (still present, as TTL lags). @default 0 */
  readonly expired?: number;
  /** Items per writer call. @default 25 (DynamoDB's BatchWriteItem limit) */
  readonly batch?: number;
  /** Writer calls at once. @default 8 */
  readonly parallel?: number;
  /** Epoch seconds. @default now */
  readonly nowSeconds?: number;
}

/** Writes `count` partitions (app, OBO and user, the rest split evenly) and returns them. */
export async function populate(write: BulkWriter, options: PopulateOptions): Promise<Member[]> {
  const { templates, count } = options;
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const apps = Math.max(1, Math.round(count * (options.appShare ?? 0.05)));
  const obos = Math.floor((count - apps) / 2);
  const oboAssertionParts = templates.obo.assertion.split('.');
  const oboClaims = JSON.parse(Buffer.from(oboAssertionParts[1], 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  const oboHash = sha256Base64Url(templates.obo.assertion);
  const members: Array<Member & { json: string }> = [];
  for (let i = 0; i < count; i++) {
    if (i < apps) {
      const tenantId = randomUUID();
      members.push({
        kind: 'app',
        tenantId,
        key: storeKey(logicalKey(API_CLIENT_ID, { kind: 'app', tenantId })),
        json: templates.app.json.split(templates.app.tenantId).join(tenantId),
      });
    } else if (i < apps + obos) {
      // The same caller presenting another token: a new assertion, hence a new partition.
      const payload = Buffer.from(
        JSON.stringify({ ...oboClaims, uti: `population-${i}-${randomUUID()}` }),
      ).toString('base64url');
      const assertion = [oboAssertionParts[0], payload, oboAssertionParts[2]].join('.');
      registerSecret('assertion', assertion);
      members.push({
        kind: 'obo',
        assertion,
        key: storeKey(logicalKey(API_CLIENT_ID, { kind: 'obo', assertion })),
        json: templates.obo.json.split(oboHash).join(sha256Base64Url(assertion)),
      });
    } else {
      const oid = randomUUID();
      const homeAccountId = templates.user.homeAccountId.split(templates.user.oid).join(oid);
      members.push({
        kind: 'user',
        homeAccountId,
        key: storeKey(logicalKey(API_CLIENT_ID, { kind: 'user', homeAccountId })),
        json: templates.user.json.split(templates.user.oid).join(oid),
      });
    }
  }
  const envelope = new Envelope({ keys: new DataKeyCache(options.keyRing) });
  const expired = options.expired ?? 0;
  const batch = options.batch ?? 25;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const start = next;
      next += batch;
      if (start >= members.length) return;
      const slice = members.slice(start, start + batch);
      const items = await Promise.all(
        slice.map(async (m, j) => ({
          key: m.key,
          // Sealed for its kind, as the cache seals it.
          blob: await envelope.seal(Buffer.from(m.json, 'utf8'), m.key, { partitionKind: m.kind }),
          // The last `expired` items are past their expiry.
          expiresAt: start + j >= members.length - expired ? now - 60 : now + 86_400,
        })),
      );
      await write(items);
    }
  };
  await Promise.all(Array.from({ length: options.parallel ?? 8 }, worker));
  return members.map(({ json: _json, ...member }) => member);
}

/** Writes batches with DynamoDB BatchWriteItem, in the DynamoDbStore's item shape. */
export function dynamoWriter(client: DynamoDBClient, tableName: string): BulkWriter {
  return async (items) => {
    let requests = items.map((item) => ({
      PutRequest: {
        Item: {
          pk: { S: item.key },
          // A version as DynamoDbStore makes them (a random 15-digit first version).
          v: { N: String(1e14 + Math.floor(Math.random() * 2 ** 40)) },
          blob: { B: item.blob },
          expiresAt: { N: String(item.expiresAt) },
        },
      },
    }));
    for (let attempt = 0; requests.length > 0; attempt++) {
      if (attempt > 20) throw new Error('BatchWriteItem kept leaving items unprocessed');
      const { UnprocessedItems } = await client.send(
        new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }),
      );
      requests = (UnprocessedItems?.[tableName] ?? []) as typeof requests;
    }
  };
}

/** Creates documents in the CosmosStore's item shape. */
export function cosmosWriter(container: Container, nowSeconds = Math.floor(Date.now() / 1000)): BulkWriter {
  return async (items) => {
    await Promise.all(
      items.map((item) =>
        container.items.create({
          id: item.key,
          pk: item.key,
          blob: Buffer.from(item.blob).toString('base64'),
          expiresAt: item.expiresAt,
          ttl: Math.max(1, item.expiresAt - nowSeconds),
        }),
      ),
    );
  };
}

/** Writes through the MemoryStore's own conditional write. */
export function memoryWriter(store: MemoryStore): BulkWriter {
  return async (items) => {
    for (const item of items) {
      await store.write(item.key, item.blob, {
        condition: { mustNotExist: true },
        expiresAt: item.expiresAt,
      });
    }
  };
}

/** Asks the library for a token from every member's partition; resolves to how many it served. */
export async function servePopulation(
  cache: TokenCache,
  members: readonly Member[],
  parallel = 16,
): Promise<number> {
  let served = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < members.length) {
      const member = members[next++];
      const result =
        member.kind === 'app'
          ? await cache.acquireTokenForApp({ scopes: [DOWNSTREAM_SCOPE], tenantId: member.tenantId })
          : member.kind === 'obo'
            ? await cache.acquireTokenOnBehalfOf({ assertion: member.assertion, scopes: [DOWNSTREAM_SCOPE] })
            : await cache.acquireTokenSilent({
                homeAccountId: member.homeAccountId,
                scopes: [...USER_SCOPES],
              });
      if (result.accessToken) served += 1;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return served;
}

/** What one CLI invocation printed and returned. */
export interface CliRun<Report> {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed, when `--json` was given. */
  readonly json: Report;
}

/** Runs the CLI in this process with its real cloud room, capturing its output. */
export async function runCli<Report>(
  argv: readonly string[],
  env: Record<string, string>,
  io: Pick<CliIo, 'signal' | 'openRoom'> = {},
): Promise<CliRun<Report>> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    env,
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    ...io,
  });
  const json = (argv.includes('--json') ? JSON.parse(stdout) : {}) as Report;
  return { code, stdout, stderr, json };
}

/** The field names of every member of a union. */
type KeysOf<U> = U extends unknown ? keyof U : never;
/** A field of whichever member of a union has it, typed as that member declares it. */
type FieldOf<U, K extends PropertyKey> = U extends unknown ? (K extends keyof U ? U[K] : never) : never;
/** Every field of every member of a union, in one object. */
type Fields<U> = { readonly [K in KeysOf<U>]: FieldOf<U, K> };

/**
 * The fields of every report, as the tests read them from the report of a command they know
 * they ran (shared/cli/reports.ts declares them, so a field renamed there fails here too).
 */
export type CliReport = Omit<Fields<CommandReport>, 'bytes' | 'error' | 'header'> & {
  /** Of `stats` (inspect's `bytes` is the item's size). */
  readonly bytes: StatsReport['bytes'];
  /** A service failure that stopped a walk, or the failure document of a command that could not run. */
  readonly error: FailureReport['error'];
  readonly header: Fields<HeaderView>;
};
