/**
 * The cost of observability on a warm hit (issue 15): the same warm L1 hit of an app token
 * with no metrics (the baseline), in-memory counters, CloudWatch EMF (recorded, serialized
 * and flushed per request as the Lambda handlers do, to a sink that drops the lines), and
 * OpenTelemetry (the SDK's meter provider plus one span per acquisition to an in-memory
 * exporter). Variants are interleaved in blocks so drift hits them all alike; figures
 * are ratios to the baseline of the same run.
 *
 * Run only this row: `npx tsx bench/metrics-overhead.ts` (about 30 s; BENCH_TIME_FACTOR
 * shortens it). Writes bench/results/metrics-overhead.{json,md}.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { startLocalAuthority } from '../local/authority';
import { EmfMetrics } from '../shared/aws/emf';
import { HttpsNetworkClient } from '../shared/cache/http';
import { createTokenCache } from '../shared/cache/token-cache';
import type { TokenCache, TokenCacheOptions } from '../shared/cache/types';
import { LocalKeyRing } from '../shared/crypto/local-keyring';
import { CounterMetrics, silentLogger } from '../shared/observability';
import { openTelemetry } from '../shared/otel';
import { MemoryStore } from '../shared/store/memory';
import { localAuthorityMsal } from './msal-options';
import { elapsedMs, summarize, type Summary } from './stats';

const factor = Number(process.env['BENCH_TIME_FACTOR'] ?? '1');
const BUDGET_MS = Math.round(24_000 * factor);
const BLOCK = 50;
const WARMUP = 200;
const CLIENT_ID = '6f1c7a2e-3b54-4d7e-9c1a-0e2f4b6d8a10';
const CLIENT_SECRET = 'bench-metrics-client-secret';
const SCOPES = ['api://downstream/.default'];

type VariantId = 'none' | 'counters' | 'emf' | 'otel';
interface Variant {
  readonly id: VariantId;
  readonly label: string;
  readonly cache: TokenCache;
  /** After each request: what the handler does (EMF flush), or nothing. */
  readonly after: () => void;
}

async function main(): Promise<void> {
  const authority = await startLocalAuthority({
    clients: [{ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET }],
  });
  const network = new HttpsNetworkClient({ ca: authority.ca });
  const masterKey = randomBytes(32);
  const build = (extra: Partial<TokenCacheOptions>): TokenCache =>
    createTokenCache({
      msal: localAuthorityMsal(authority, CLIENT_ID, CLIENT_SECRET, network),
      store: new MemoryStore(),
      keyRing: new LocalKeyRing({ masterKey }),
      logger: silentLogger,
      ...extra,
    });

  let emfBytes = 0;
  const emf = new EmfMetrics({ env: {}, write: (line) => (emfBytes += line.length) });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 }),
    ],
  });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const otel = openTelemetry({ meterProvider, tracerProvider });

  const variants: Variant[] = [
    { id: 'none', label: 'no metrics (baseline)', cache: build({}), after: () => {} },
    {
      id: 'counters',
      label: 'CounterMetrics',
      cache: build({ metrics: new CounterMetrics() }),
      after: () => {},
    },
    {
      id: 'emf',
      label: 'EMF, flushed per request',
      cache: build({ metrics: emf }),
      after: () => emf.flush(),
    },
    {
      id: 'otel',
      label: 'OpenTelemetry metrics + span',
      cache: build({ metrics: otel.metrics, onResult: otel.onResult }),
      after: () => {},
    },
  ];

  const samples = new Map<VariantId, number[]>(variants.map((v) => [v.id, []]));
  for (const v of variants) {
    for (let i = 0; i < WARMUP; i++) {
      await v.cache.acquireTokenForApp({ scopes: SCOPES });
      v.after();
    }
    const r = await v.cache.acquireTokenForApp({ scopes: SCOPES });
    if (r.cache.tokenSource !== 'l1')
      throw new Error(`${v.id}: expected a warm L1 hit, got ${r.cache.tokenSource}`);
  }
  const started = Date.now();
  let rounds = 0;
  while (Date.now() - started < BUDGET_MS) {
    // Rotate the order each round so no variant always runs first after a GC.
    const order = variants.map((_, i) => variants[(i + rounds) % variants.length]);
    for (const v of order) {
      const into = samples.get(v.id)!;
      for (let i = 0; i < BLOCK; i++) {
        const t = process.hrtime.bigint();
        await v.cache.acquireTokenForApp({ scopes: SCOPES });
        v.after();
        into.push(elapsedMs(t));
      }
    }
    spans.reset();
    rounds++;
  }

  const summaries = Object.fromEntries(variants.map((v) => [v.id, summarize(samples.get(v.id)!)])) as Record<
    VariantId,
    Summary
  >;
  const base = summaries.none;
  const rows = variants.map((v) => {
    const s = summaries[v.id];
    return {
      variant: v.id,
      label: v.label,
      n: s.n,
      p50Us: s.p50 * 1000,
      p95Us: s.p95 * 1000,
      meanUs: s.mean * 1000,
      p50Ratio: s.p50 / base.p50,
      meanRatio: s.mean / base.mean,
    };
  });
  const md = [
    '# Cost of metrics on a warm hit',
    '',
    `One warm L1 hit of an app token (real msal-node, local authority), ${rounds} interleaved rounds of ${BLOCK} per variant,`,
    `Node ${process.version}; ratios to the baseline of this run. Command: \`npx tsx bench/metrics-overhead.ts\`.`,
    '',
    '| variant | n | p50 µs | p95 µs | mean µs | p50 / baseline | mean / baseline |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.label} | ${r.n} | ${r.p50Us.toFixed(0)} | ${r.p95Us.toFixed(0)} | ${r.meanUs.toFixed(0)} | ${r.p50Ratio.toFixed(2)}x | ${r.meanRatio.toFixed(2)}x |`,
    ),
    '',
    `EMF wrote ${(emfBytes / samples.get('emf')!.length / 1024).toFixed(2)} KiB per request on average (warmup included).`,
    '',
  ].join('\n');
  const dir = path.join(__dirname, 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'metrics-overhead.json'),
    `${JSON.stringify({ rounds, block: BLOCK, rows }, null, 2)}\n`,
  );
  await writeFile(path.join(dir, 'metrics-overhead.md'), md);
  process.stdout.write(md);
  network.destroy();
  await meterProvider.shutdown();
  await tracerProvider.shutdown();
  await authority.stop();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
