/**
 * Micro-measure of what a memo-off hit pays after the store read (issue 16,
 * `memo-off-penalty-ms`): Envelope.open of an OBO-sized partition (compressed and not),
 * its parts (inflate, UTF-8 decode, the validating parse). Interleaved shuffled blocks in one process, CPU time per operation.
 * No servers: the data key is cached after the first open, as on a warm container.
 *
 *   npx tsx bench/open-micro.ts [rounds=40] [block=200]
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { inflateRawSync } from 'node:zlib';
import type { AuthenticationResult } from '@azure/msal-node';
import { parseDocument } from '../shared/cache/cache-document';
import { FastHits } from '../shared/cache/fast-hit';
import { DataKeyCache } from '../shared/crypto/data-key-cache';
import { Envelope, parseEnvelopeHeader } from '../shared/crypto/envelope';
import { LocalKeyRing } from '../shared/crypto/local-keyring';
import { shuffled, summarize } from './stats';

const CLIENT_ID = '6f1c2f4e-0b1a-4a53-9f57-3c2e1a9d8b70';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const KEY = 'obo:bench-open-micro-partition-key';
const AUTHORITY = `https://login.microsoftonline.com/${TENANT}`;

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const jwt = (claims: object): string =>
  `${b64(Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' })))}.${b64(
    Buffer.from(JSON.stringify(claims)),
  )}.${b64(randomBytes(256))}`;

/** An OBO partition shaped like the bench's: one access token, refresh token, id token, account. */
function oboDocument(): string {
  const now = Math.floor(Date.now() / 1000);
  const home = `${randomUUIDish()}.${TENANT}`;
  const env = 'login.microsoftonline.com';
  const claims = {
    aud: 'api://downstream',
    iss: `https://sts.windows.net/${TENANT}/`,
    iat: now,
    nbf: now,
    exp: now + 3600,
    oid: randomUUIDish(),
    tid: TENANT,
    scp: 'access_as_user',
    name: 'Bench User',
    preferred_username: 'bench.user@contoso.example',
    uti: b64(randomBytes(16)),
  };
  const assertionHash = b64(randomBytes(32));
  return JSON.stringify({
    Account: {
      [`${home}-${env}-${TENANT}`]: {
        home_account_id: home,
        environment: env,
        realm: TENANT,
        local_account_id: claims.oid,
        username: claims.preferred_username,
        authority_type: 'MSSTS',
        name: claims.name,
        client_info: b64(Buffer.from(JSON.stringify({ uid: claims.oid, utid: TENANT }))),
        tenantProfiles: [
          JSON.stringify({ tenantId: TENANT, localAccountId: claims.oid, name: '', isHomeTenant: true }),
        ],
      },
    },
    IdToken: {
      [`${home}-${env}-idtoken-${CLIENT_ID}-${TENANT}---`]: {
        home_account_id: home,
        environment: env,
        credential_type: 'IdToken',
        client_id: CLIENT_ID,
        secret: jwt({ ...claims, aud: CLIENT_ID }),
        realm: TENANT,
      },
    },
    AccessToken: {
      [`${home}-${env}-accesstoken-${CLIENT_ID}-${TENANT}-api://downstream/.default--`]: {
        home_account_id: home,
        environment: env,
        credential_type: 'AccessToken',
        client_id: CLIENT_ID,
        secret: jwt(claims),
        realm: TENANT,
        target: 'api://downstream/.default',
        cached_at: String(now),
        expires_on: String(now + 3600),
        extended_expires_on: String(now + 7200),
        token_type: 'Bearer',
        userAssertionHash: assertionHash,
      },
    },
    RefreshToken: {
      [`${home}-${env}-refreshtoken-${CLIENT_ID}----`]: {
        home_account_id: home,
        environment: env,
        credential_type: 'RefreshToken',
        client_id: CLIENT_ID,
        secret: b64(randomBytes(900)),
        userAssertionHash: assertionHash,
      },
    },
    AppMetadata: {
      [`appmetadata-${env}-${CLIENT_ID}`]: { client_id: CLIENT_ID, environment: env },
    },
  });
}

function randomUUIDish(): string {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

interface Op {
  readonly id: string;
  readonly run: () => unknown;
  readonly cpuUs: number[];
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 40);
  const block = Number(process.argv[3] ?? 200);
  const ring = new LocalKeyRing({ masterKey: randomBytes(32) });
  const keys = new DataKeyCache(ring);
  const packed = new Envelope({ keys });
  const plain = new Envelope({ keys, compressAboveBytes: false });
  const json = oboDocument();
  const bytes = Buffer.from(json, 'utf8');
  // open()'s result: a fresh Uint8Array, not a Buffer.
  const opened = new Uint8Array(bytes);
  const sealedPacked = await packed.seal(bytes, KEY);
  const sealedPlain = await plain.seal(bytes, KEY);
  if (!parseEnvelopeHeader(sealedPacked).compressed) throw new Error('expected a compressed envelope');
  // The deflated body, for inflate alone (what open decrypts before inflating).
  const { deflateRawSync } = await import('node:zlib');
  const deflated = deflateRawSync(bytes);
  // A new version each call: the fast-hit index is rebuilt, as after every open at 5,000
  // active callers (past its 4,096 entries) or after another container's write.
  const fast = new FastHits(CLIENT_ID);
  const fastRequest = {
    kind: 'obo',
    assertion: 'bench-assertion',
    scopes: ['api://downstream/.default'],
  } as const;
  const doc = parseDocument(json);
  let version = 0;
  fast.learn(fastRequest, AUTHORITY, KEY, { json, version: 'learn' }, {
    authority: AUTHORITY,
  } as AuthenticationResult);
  if (fast.serve(fastRequest, AUTHORITY, KEY, { json, version: 'check', doc }) !== undefined)
    throw new Error(
      'the bench document must not match (its assertion hash differs): the index is what is measured',
    );
  const ops: Op[] = [
    { id: 'open, compressed (shipped)', run: () => packed.open(sealedPacked, KEY), cpuUs: [] },
    { id: 'open, uncompressed', run: () => plain.open(sealedPlain, KEY), cpuUs: [] },
    { id: 'inflateRawSync alone', run: () => inflateRawSync(deflated), cpuUs: [] },
    { id: 'utf-8 decode', run: () => bytes.toString('utf8'), cpuUs: [] },
    // What the reader did with open()'s Uint8Array before (a copy) and does now (a view).
    { id: 'utf-8 decode, Buffer.from copy', run: () => Buffer.from(opened).toString('utf8'), cpuUs: [] },
    {
      id: 'utf-8 decode, Buffer view',
      run: () => Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength).toString('utf8'),
      cpuUs: [],
    },
    { id: 'parseDocument', run: () => parseDocument(json), cpuUs: [] },
    {
      id: 'fast-hit index, JSON parsed again',
      run: () => fast.serve(fastRequest, AUTHORITY, KEY, { json, version: String(version++) }),
      cpuUs: [],
    },
    {
      id: 'fast-hit index, parsed doc given',
      run: () => fast.serve(fastRequest, AUTHORITY, KEY, { json, version: String(version++), doc }),
      cpuUs: [],
    },
  ];
  for (const op of ops) for (let i = 0; i < 200; i++) await op.run();
  for (let round = 0; round < rounds; round++) {
    for (const op of shuffled(ops, round + 1)) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      for (let i = 0; i < block; i++) await op.run();
      void started;
      const used = process.cpuUsage(cpu);
      op.cpuUs.push((used.user + used.system) / block);
    }
  }
  console.log(
    `open micro: ${rounds} rounds x ${block} per op, node ${process.version}; plain JSON ${bytes.length} B, ` +
      `envelope compressed ${sealedPacked.length} B, uncompressed ${sealedPlain.length} B`,
  );
  const base = summarize(ops[0].cpuUs).p50;
  for (const op of ops) {
    const s = summarize(op.cpuUs);
    console.log(
      `${op.id.padEnd(34)} CPU/op p50 ${s.p50.toFixed(1).padStart(7)} µs  p95 ${s.p95.toFixed(1).padStart(7)} µs  ` +
        `${(s.p50 / base).toFixed(2)}x of the shipped open`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
