/**
 * Renders bench results as Markdown (tables) and SVG (a chart drawn as text: no browser,
 * no native dependency). Pure functions of the results; unit-tested in
 * test/unit/bench/report.test.ts.
 */
import type { BenchResults, Series } from './model';
import type { Summary } from './stats';
import { TARGETS as ISSUE16_TARGETS } from './targets';
import { KINDS, VARIANT_IDS, VARIANT_LABELS, type Kind, type VariantId } from './variants';

/** One target of the issue and where it stands. */
export interface TargetStatus {
  readonly target: string;
  readonly measured: string;
  /** undefined: not measured in this run. */
  readonly met: boolean | undefined;
}

/** Thresholds of the issue's targets. */
export const TARGETS = {
  aWithinFloorP50: 1.25,
  maxKmsPerThousand: 1,
  maxTokenCallsPerThousand: 0,
  /** "Flat": p50 at the largest level within this factor of p50 at the smallest. */
  flatGrowth: 1.25,
} as const;

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const x2 = (x: number): string => `${x.toFixed(2)}x`;
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
const kindName: Record<Kind, string> = { obo: 'OBO', app: 'app' };

/** Where each target of issue 6 stands in these results. */
export function evaluateTargets(results: BenchResults): TargetStatus[] {
  const out: TargetStatus[] = [];
  const lat = results.latency;
  const both = (f: (kind: Kind) => string): string => KINDS.map((k) => `${kindName[k]} ${f(k)}`).join(', ');
  if (lat) {
    out.push({
      target: `(a) within ${TARGETS.aWithinFloorP50}x of the floor at p50`,
      measured: both((k) => x2(lat.ratios.a[k].p50)),
      met: KINDS.every((k) => lat.ratios.a[k].p50 <= TARGETS.aWithinFloorP50),
    });
    out.push({
      target: '(a) no slower than the peer (c) (p50)',
      measured: both((k) => `${ms(lat.series.a[k].wall.p50)} vs ${ms(lat.series.c[k].wall.p50)} ms`),
      met: KINDS.every((k) => lat.series.a[k].wall.p50 <= lat.series.c[k].wall.p50),
    });
    out.push({
      target: '(b) faster than the floor (p50)',
      measured: both((k) => `${ms(lat.series.b[k].wall.p50)} vs ${ms(lat.series.e[k].wall.p50)} ms`),
      met: KINDS.every((k) => lat.series.b[k].wall.p50 < lat.series.e[k].wall.p50),
    });
    const ours = (['a', 'b'] as const).map((id) => [id, lat.callsPerThousand[id]] as const);
    out.push({
      target: `at most ${TARGETS.maxKmsPerThousand} KMS call and ${TARGETS.maxTokenCallsPerThousand} token-endpoint calls per 1,000 warm requests`,
      measured: ours
        .map(([id, r]) => (r ? `(${id}) ${fix(r.kmsCalls)} KMS, ${fix(r.tokenCalls)} token` : `(${id}) -`))
        .join('; '),
      met: ours.every(
        ([, r]) =>
          r !== undefined &&
          r.kmsCalls <= TARGETS.maxKmsPerThousand &&
          r.tokenCalls <= TARGETS.maxTokenCallsPerThousand,
      ),
    });
  }
  const scale = results.scale;
  if (scale && scale.levels.length >= 2) {
    const first = scale.levels[0];
    const last = scale.levels[scale.levels.length - 1];
    out.push({
      target: `flat (a) latency from ${first.users} to ${last.users} users (p50 within ${TARGETS.flatGrowth}x)`,
      measured: `p50 ${ms(first.a.wall.p50)} -> ${ms(last.a.wall.p50)} ms (${x2(scale.growthP50.a)}); ratio to floor ${x2(first.aRatio.p50)} -> ${x2(last.aRatio.p50)}`,
      met: scale.growthP50.aRatio <= TARGETS.flatGrowth,
    });
  }
  const con = results.contention;
  if (con) {
    out.push({
      target: '0 tokens lost by (a) under contention',
      measured: `(a) ${con.a.tokensLost}/${con.a.tokensAcquired}; peer (c) ${con.c.tokensLost}/${con.c.tokensAcquired}`,
      met: con.a.tokensLost === 0,
    });
  }
  return out;
}

const fix = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));

/** The Markdown report. `plan` is echoed so every figure has its iteration counts next to it. */
export function renderMarkdown(results: BenchResults, plan: unknown): string {
  const env = results.environment;
  const lines: string[] = [];
  const p = (...s: string[]): void => {
    lines.push(...s);
  };
  /** A section's heading, its intro paragraph if any, and its table: header row, separator, rows. */
  const table = (
    heading: string,
    intro: string | undefined,
    header: string,
    rows: readonly string[],
  ): void => {
    p(heading, '', ...(intro === undefined ? [] : [intro, '']), header, tableSeparator(header), ...rows);
  };
  p(
    '# Benchmark: the cost of a warm token',
    '',
    `Produced by \`${env.command}\` (bench/run.ts) on ${env.startedAt}, commit ${env.commit}, in ${env.durationSeconds} s.`,
    `Node ${env.node} on ${env.platform}, ${env.cpus} x ${env.cpuModel}; load average ${env.loadAverageStart.join(' ')} at the start, ${env.loadAverageEnd.join(' ')} at the end.`,
    'Loopback only: dynalite (in memory), the local KMS and the local authority run in a child process; the',
    'measuring process holds only the clients. Latency is wall-clock per request; CPU is the measuring',
    "process's CPU time per request (steadier on a loaded machine). Percentiles are nearest-rank samples.",
    'Every ratio is to the floor (e) of the same kind measured in the same run.',
    '',
  );

  if (results.targets?.length) {
    table(
      '## Targets (latest.json `targets`)',
      undefined,
      '| id | value | goal | status | what |',
      results.targets.map((t) => {
        const def = ISSUE16_TARGETS[t.id];
        const goal = `${def.kind === 'equal' ? '=' : '≤'} ${t.goal}${def.unit === 'x' ? 'x' : def.unit ? ` ${def.unit}` : ''}`;
        const value =
          t.value === null
            ? 'not measured'
            : `${fmtValue(t.value)}${def.unit === 'x' ? 'x' : def.unit ? ` ${def.unit}` : ''}`;
        return `| \`${t.id}\` | ${value} | ${goal} | ${t.met ? 'met' : '**missed**'} | ${def.description} |`;
      }),
    );
    p('');
  }

  table(
    '## Earlier targets (issue 6)',
    undefined,
    '| target | measured | status |',
    evaluateTargets(results).map(
      (t) =>
        `| ${t.target} | ${t.measured} | ${t.met === undefined ? 'not measured' : t.met ? 'met' : '**missed**'} |`,
    ),
  );
  p('');

  const lat = results.latency;
  if (lat) {
    table(
      `## 1. Warm cache-hit latency (${lat.users} users stored)`,
      `${lat.rounds} interleaved rounds; each round runs a block of ${lat.blockSize} requests of every variant and kind in a shuffled order, after a warm-up of ${lat.warmupPerSeries} requests (at least one per user) per series.`,
      '| variant | kind | n | p50 ms | p95 ms | p99 ms | x floor p50 | x floor p95 | x floor p99 | CPU p50 ms | CPU x floor | misses |',
      VARIANT_IDS.flatMap((id) =>
        KINDS.map((kind) => {
          const s = lat.series[id][kind];
          const r = lat.ratios[id][kind];
          return `| ${VARIANT_LABELS[id]} | ${kindName[kind]} | ${s.wall.n} | ${ms(s.wall.p50)} | ${ms(s.wall.p95)} | ${ms(s.wall.p99)} | ${x2(r.p50)} | ${x2(r.p95)} | ${x2(r.p99)} | ${ms(s.cpu.p50)} | ${x2(lat.cpuRatioP50[id][kind])} | ${s.misses} |`;
        }),
      ),
    );
    const over = KINDS.map((k) => {
      const aS = lat.series.a[k];
      const eS = lat.series.e[k];
      const wall = aS.wall.p50 - eS.wall.p50;
      const cpu = aS.cpu.p50 - eS.cpu.p50;
      // Only a positive overhead has a floor below which 1.25x is out of reach.
      const within =
        wall > 0
          ? `within ${TARGETS.aWithinFloorP50}x needs a floor of at least ${ms(wall / (TARGETS.aWithinFloorP50 - 1))} ms (here ${ms(eS.wall.p50)} ms)`
          : `within ${TARGETS.aWithinFloorP50}x at any floor ((a) is faster than it)`;
      return `${kindName[k]}: (a) - floor = ${ms(wall)} ms wall, ${ms(cpu)} ms CPU at p50; ${within}; (a) - (c) = ${ms(aS.wall.p50 - lat.series.c[k].wall.p50)} ms`;
    });
    p('', 'What (a) adds to the floor, in absolute terms:', '', ...over.map((o) => `- ${o}`));
    p(
      '',
      'Against the store floor (f), the same item through the same `DynamoDbStore` instance, and with the memo unable to answer (g):',
      '',
      ...KINDS.map((k) => {
        const a = lat.series.a[k];
        const f = lat.series.f[k];
        const g = lat.series.g[k];
        return `- ${kindName[k]}: (a) / (f) p50 ${x2(a.wall.p50 / f.wall.p50)} wall, ${x2(a.cpu.p50 / f.cpu.p50)} CPU; (a) CPU / (e) CPU ${x2(lat.cpuRatioP50.a[k])}; memo off (g) - (a) = ${ms(g.wall.p50 - a.wall.p50)} ms wall, ${ms(g.cpu.p50 - a.cpu.p50)} ms CPU at p50`;
      }),
    );
    p('');
    table(
      '## 2. Calls per 1,000 warm requests',
      undefined,
      '| variant | requests counted | store reads | store writes | KMS calls | token-endpoint calls |',
      (['a', 'b', 'c', 'd', 'g'] as const).flatMap((id) => {
        const r = lat.callsPerThousand[id];
        return r
          ? [
              `| ${VARIANT_LABELS[id]} | ${r.requests} | ${fix(r.storeReads)} | ${fix(r.storeWrites)} | ${fix(r.kmsCalls)} | ${fix(r.tokenCalls)} |`,
            ]
          : [];
      }),
    );
    p(
      '',
      `The peer (c) and (d) serve OBO from their cache only because the bench calls the plugin's \`beforeCacheAccess\` itself before \`acquireTokenOnBehalfOf\`: msal-node ${env.msalNode} does not call it before its OBO cache lookup. As shipped, without that call, ${lat.peerUnprimedObo.requests} OBO requests of the peer made ${fix(lat.peerUnprimedObo.tokenCallsPerThousand)} token-endpoint calls per 1,000 requests.`,
      '',
    );
  }

  const scale = results.scale;
  if (scale) {
    table(
      '## 3. Scale: users in the store',
      "(a): the real users' partitions plus filler partitions of the same size, requests interleaved with the floor at each level. (d): one blob holding every user; where it is larger than a DynamoDB item it is measured with the blob in process memory (no I/O: a lower bound for any store).",
      '| users | (a) n | (a) p50 / p95 / p99 ms | floor p50 ms | (a) x floor p50 / p95 / p99 | (d) blob | (d) on DynamoDB p50 ms | (d) in memory n | (d) in memory p50 / p95 / p99 ms | (d) in memory x floor p50 | misses (a) / (d) |',
      scale.levels.map(
        (l) =>
          `| ${l.users.toLocaleString('en-US')} | ${l.a.wall.n} | ${pct(l.a.wall)} | ${ms(l.floor.wall.p50)} | ${x2(l.aRatio.p50)} / ${x2(l.aRatio.p95)} / ${x2(l.aRatio.p99)} | ${kib(l.naiveBlobBytes)} | ${l.dDynamo ? `${ms(l.dDynamo.wall.p50)} (${x2(l.dDynamoRatio!.p50)})` : `does not fit: ${l.dDynamoRejected ?? ''}`} | ${l.dMemory.wall.n} | ${pct(l.dMemory.wall)} | ${x2(l.dMemoryRatio.p50)} | ${l.a.misses} / ${l.dMemory.misses} |`,
      ),
    );
    const viaAccounts = scale.levels.find((l) => l.dMemoryGetAllAccounts);
    if (viaAccounts?.dMemoryGetAllAccounts) {
      p(
        '',
        `(c) and (d) load the partition before an OBO lookup by calling the plugin's \`beforeCacheAccess\` once (one get, one deserialize, as (a) does). Priming through msal-node's public \`getAllAccounts()\` instead costs p50 ${ms(viaAccounts.dMemoryGetAllAccounts.wall.p50)} ms at ${viaAccounts.users} users (n=${viaAccounts.dMemoryGetAllAccounts.wall.n}) against ${ms(viaAccounts.dMemory.wall.p50)} ms: it looks up each account's id token by scanning every key, O(accounts²).`,
      );
    }
    p(
      '',
      `Growth of p50 from the first to the last level: (a) ${x2(scale.growthP50.a)} (ratio to floor ${x2(scale.growthP50.aRatio)}), (d) in memory ${x2(scale.growthP50.dMemory)}.`,
      '',
    );
  }

  const con = results.contention;
  if (con) {
    const rows: Array<[string, NonNullable<typeof con.aTuned>]> = [
      [VARIANT_LABELS.a + ', default retries', con.a],
    ];
    if (con.aTuned) {
      rows.push([`(a) with conflictRetries ${JSON.stringify(con.aTuned.conflictRetries)}`, con.aTuned]);
    }
    rows.push([VARIANT_LABELS.c, con.c]);
    table(
      `## 4. Contention: ${con.a.writersPerRound} concurrent writers on one partition`,
      'Each round: one OBO partition (a fresh user), a seed token stored first, then every writer (a warm container) acquires a token for its own downstream scope at once: a cache miss, a token call and a write each. A token is lost when the request got it but the stored partition does not hold it after the round.',
      '| | rounds | tokens acquired | tokens lost | failed requests | successful writes | conflicts | conflicts (retries) per write | write attempts per request p50 / p95 / max | writes given up | request p50 / p95 / p99 ms |',
      rows.map(([label, r]) => {
        const peer = r === con.c;
        return `| ${label} | ${r.rounds} | ${r.tokensAcquired} | ${r.tokensLost} | ${r.requestErrors} | ${r.writes} | ${peer ? 'n/a (no version check)' : r.conflicts} | ${peer ? 'n/a' : r.conflictsPerWrite.toFixed(2)} | ${peer ? '1 (blind overwrite)' : `${r.writeAttempts.p50} / ${r.writeAttempts.p95} / ${r.writeAttempts.max}`} | ${r.writeFailures} | ${pct(r.latency)} |`;
      }),
    );
    p('');
  }

  const cold = results.coldStart;
  if (cold) {
    const pm = (s: Summary | undefined, max = true): string =>
      s ? `${ms(s.p50)}${max ? ` / ${ms(s.max)}` : ''} (n=${s.n})` : '-';
    table(
      '## 5. Cold start',
      `Bundled with infra/build/bundle.ts's \`lambdaBundleOptions\`, as the package ships the Lambda handlers: \`${JSON.stringify(cold.esbuild)}\`. Fresh Node process per run (\`${env.node}\`), runs interleaved across the bundles; one unmeasured run per entry first stores the partition. Import: \`require()\` of the bundle. First request: the first invocation after the import (partition already stored). Second request: the next invocation in the same process.`,
      '| bundle | size | gzip | source map | NODE_OPTIONS | import p50 / max ms | first request p50 / max ms | second request p50 ms | note |',
      cold.entries.map(
        (e) =>
          `| ${e.entry} | ${kib(e.bundleBytes)} | ${kib(e.bundleGzipBytes)} | ${e.sourceMapBytes ? kib(e.sourceMapBytes) : 'none'} | ${e.nodeOptions ? `\`${e.nodeOptions}\`` : 'none'} | ${pm(e.importMs)} | ${pm(e.firstRequestMs)} | ${pm(e.secondRequestMs, false)} | ${e.note ?? ''} |`,
      ),
    );
    const web = cold.entries.find((e) => e.id === 'web-api');
    const maps = cold.entries.find((e) => e.id === 'web-api+maps');
    if (cold.importVsSdkFloor !== undefined) {
      p('', `Import of the shipped web API / import of the SDK floor: ${x2(cold.importVsSdkFloor)} at p50.`);
    }
    if (web?.importMs && maps?.importMs) {
      p(
        '',
        `Source maps: the same bundle with its map and \`--enable-source-maps\` imports in ${ms(maps.importMs.p50)} ms against ${ms(web.importMs.p50)} ms (${x2(maps.importMs.p50 / web.importMs.p50)}).`,
      );
    }
    if (cold.note) p('', cold.note);
    p('');
  }

  const net = results.network;
  if (net?.levels.length) {
    table(
      '## 7. Delayed network: DynamoDB behind a TCP delay proxy',
      "Every chunk waits the stated time each way (bench/delay-proxy.ts, its own process). (a) L1 off, (f) the store floor through (a)'s own store instance, (e) the raw SDK GetItem, all of (a)'s items; interleaved blocks.",
      '| one-way delay | kind | (a) p50 / p95 / p99 ms | (f) store floor p50 ms | (e) SDK floor p50 ms | (a) / (f) p50 | (a) / (e) p50 | CPU p50 ms (a) / (f) / (e) | n |',
      net.levels.flatMap((l) =>
        KINDS.map((k) => {
          const a = l.series.a[k];
          return `| ${l.delayMs} ms | ${kindName[k]} | ${pct(a.wall)} | ${ms(l.series.f[k].wall.p50)} | ${ms(l.series.e[k].wall.p50)} | ${x2(l.aVsStoreFloorP50[k])} | ${x2(l.aVsSdkFloorP50[k])} | ${ms(a.cpu.p50)} / ${ms(l.series.f[k].cpu.p50)} / ${ms(l.series.e[k].cpu.p50)} | ${a.wall.n} |`;
        }),
      ),
    );
    p('');
  }

  const active = results.activeCallers;
  if (active?.series.length) {
    table(
      '## 8. Active callers: distinct callers in use',
      'Each caller has its own stored OBO partition; callers are visited in a fixed shuffled cycle, so at 5,000 none comes back within the run: past the opened-envelope memo (about 690 partitions) and L1 (about 1,690). Each series is a fresh container; interleaved blocks.',
      '| variant | active callers | n | p50 / p95 / p99 ms | CPU p50 ms | store reads per request |',
      active.series.map(
        (x) =>
          `| ${VARIANT_LABELS[x.variant]} | ${x.callers.toLocaleString('en-US')} | ${x.series.wall.n} | ${pct(x.series.wall)} | ${ms(x.series.cpu.p50)} | ${x.storeReadsPerRequest.toFixed(2)} |`,
      ),
    );
    p(
      '',
      `p50 at ${active.levels[active.levels.length - 1].toLocaleString('en-US')} / p50 at ${active.levels[0]}: (a) ${x2(active.growthP50.a)}, (b) ${x2(active.growthP50.b)}.`,
      '',
    );
  }

  if (results.blobSizes?.length) {
    table(
      '## 6. Stored bytes per partition',
      undefined,
      '| partition | plain MSAL JSON | (a) envelope | (a) envelope / plain | (a) DynamoDB item | peer (c) DynamoDB item |',
      results.blobSizes.map(
        (r) =>
          `| ${r.partition} | ${r.plainJsonBytes} | ${r.envelopeBytes} | ${x2(r.envelopeBytes / r.plainJsonBytes)} | ${r.itemBytes} | ${r.peerItemBytes} |`,
      ),
    );
    p('');
  }

  if (results.notes.length) {
    p('## Notes', '', ...results.notes.map((n) => `- ${n}`), '');
  }
  p('## Plan (iteration counts and budgets)', '', '```json', JSON.stringify(plan, null, 2), '```', '');
  return lines.join('\n');
}

const fmtValue = (x: number): string =>
  Number.isInteger(x) ? String(x) : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(Math.abs(x) >= 10 ? 1 : 3);

const pct = (s: Summary): string => `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}`;

const COLORS: Record<VariantId, string> = {
  a: '#1f77b4',
  b: '#2ca02c',
  c: '#ff7f0e',
  d: '#d62728',
  e: '#7f7f7f',
  f: '#555555',
  g: '#9467bd',
};

/**
 * A chart as SVG text: warm-hit latency per variant and kind (bar = p50, whisker to p99,
 * tick at p95) on a log scale with the floor's p50 as a dashed line; and, when measured,
 * p50 against users in the store for (a) and (d).
 */
export function renderSvg(results: BenchResults): string {
  const width = 860;
  const parts: string[] = [];
  let y = 0;
  const text = (x: number, ty: number, s: string, extra = ''): void => {
    parts.push(`<text x="${x}" y="${ty}" ${extra}>${escapeXml(s)}</text>`);
  };
  text(
    10,
    22,
    'Warm cache-hit latency, ms (log scale): bar p50, tick p95, whisker p99',
    'font-weight="bold"',
  );
  y = 36;
  const lat = results.latency;
  const left = 330;
  // Bars end here; the value column is to their right, so no label sits on a bar.
  const right = width - 140;
  if (lat) {
    const all = VARIANT_IDS.flatMap((id) =>
      KINDS.flatMap((k) => [lat.series[id][k].wall.p50, lat.series[id][k].wall.p99]),
    );
    const scale = logScale(Math.min(...all), Math.max(...all), left, right);
    const gridAt = parts.length;
    y = axis(parts, scale, y + 4, left);
    const gridTop = y;
    for (const kind of KINDS) {
      text(
        10,
        y + 14,
        kindName[kind] === 'OBO' ? 'acquireTokenOnBehalfOf' : 'acquireTokenForApp',
        'font-style="italic"',
      );
      y += 20;
      const top = y;
      for (const id of VARIANT_IDS) {
        bar(parts, scale, y, lat.series[id][kind], COLORS[id], left);
        text(10, y + 12, `${VARIANT_LABELS[id].slice(0, 44)}`, 'font-size="11"');
        text(
          right + 10,
          y + 12,
          `${ms(lat.series[id][kind].wall.p50)} ms, ${x2(lat.ratios[id][kind].p50)}`,
          'font-size="11"',
        );
        y += 18;
      }
      const fx = scale.x(lat.series.e[kind].wall.p50);
      parts.push(
        `<line x1="${fx.toFixed(1)}" y1="${top - 2}" x2="${fx.toFixed(1)}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`,
      );
      y += 8;
    }
    parts.splice(
      gridAt,
      0,
      ...scale.ticks.map((t) => {
        const gx = scale.x(t).toFixed(1);
        return `<line x1="${gx}" y1="${gridTop}" x2="${gx}" y2="${y}" stroke="#e4e4e4"/>`;
      }),
    );
  } else {
    text(10, y + 14, 'latency not measured in this run');
    y += 24;
  }

  const scale = results.scale;
  if (scale && scale.levels.length > 0) {
    y += 16;
    text(10, y, 'OBO hit p50, ms (log) against users in the store (log)', 'font-weight="bold"');
    y += 10;
    const h = 160;
    const values = scale.levels.flatMap((l) => [l.a.wall.p50, l.floor.wall.p50, l.dMemory.wall.p50]);
    const ys = logScale(Math.min(...values), Math.max(...values), y + h, y);
    const users = scale.levels.map((l) => l.users);
    const xs = logScale(Math.min(...users), Math.max(...users) * 1.0001, left, right);
    for (const tick of ys.ticks) {
      const ty = ys.x(tick);
      parts.push(
        `<line x1="${left}" y1="${ty.toFixed(1)}" x2="${right}" y2="${ty.toFixed(1)}" stroke="#ddd"/>`,
      );
      text(left - 6, ty + 4, fmtTick(tick), 'font-size="10" text-anchor="end"');
    }
    for (const u of users) {
      text(xs.x(u), y + h + 14, u.toLocaleString('en-US'), 'font-size="10" text-anchor="middle"');
    }
    const line = (values: number[], color: string, label: string, dashed = false): void => {
      const pts = values.map((v, i) => `${xs.x(users[i]).toFixed(1)},${ys.x(v).toFixed(1)}`);
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" ${dashed ? 'stroke-dasharray="4 3"' : ''} points="${pts.join(' ')}"/>`,
      );
      const last = pts[pts.length - 1].split(',');
      text(Number(last[0]) + 6, Number(last[1]) + 4, label, `font-size="11" fill="${color}"`);
    };
    line(
      scale.levels.map((l) => l.a.wall.p50),
      COLORS.a,
      '(a)',
    );
    line(
      scale.levels.map((l) => l.floor.wall.p50),
      COLORS.e,
      'floor',
      true,
    );
    line(
      scale.levels.map((l) => l.dMemory.wall.p50),
      COLORS.d,
      '(d) in memory',
    );
    const rejected = scale.levels
      .filter((l) => l.dDynamoRejected)
      .map((l) => l.users.toLocaleString('en-US'));
    if (rejected.length) {
      text(10, y + 20, "(d)'s shared blob does not fit", 'font-size="11"');
      text(10, y + 34, `a DynamoDB item at ${rejected.join(', ')} users:`, 'font-size="11"');
      text(10, y + 48, 'measured in process memory', 'font-size="11"');
    }
    y += h + 24;
  }
  const height = Math.ceil(y + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

interface LogScale {
  x(value: number): number;
  readonly ticks: number[];
}

/** A base-10 log scale from [min, max] (widened to decades) onto [from, to]. */
export function logScale(min: number, max: number, from: number, to: number): LogScale {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-3)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(max, 1e-3))));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return {
    x: (value) => from + ((Math.log10(Math.max(value, 1e-3)) - lo) / (hi - lo)) * (to - from),
    ticks,
  };
}

function axis(parts: string[], scale: LogScale, y: number, left: number): number {
  for (const t of scale.ticks) {
    const x = scale.x(t).toFixed(1);
    parts.push(`<text x="${x}" y="${y + 10}" font-size="10" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  parts.push(
    `<line x1="${left}" y1="${y + 14}" x2="${scale.x(scale.ticks[scale.ticks.length - 1]).toFixed(1)}" y2="${y + 14}" stroke="#999"/>`,
  );
  return y + 18;
}

function bar(parts: string[], scale: LogScale, y: number, s: Series, color: string, left: number): void {
  const x50 = scale.x(s.wall.p50);
  const x95 = scale.x(s.wall.p95);
  const x99 = scale.x(s.wall.p99);
  parts.push(
    `<rect x="${left}" y="${y + 2}" width="${Math.max(1, x50 - left).toFixed(1)}" height="12" fill="${color}"/>`,
    `<line x1="${x50.toFixed(1)}" y1="${y + 8}" x2="${x99.toFixed(1)}" y2="${y + 8}" stroke="${color}"/>`,
    `<line x1="${x95.toFixed(1)}" y1="${y + 4}" x2="${x95.toFixed(1)}" y2="${y + 12}" stroke="${color}"/>`,
    `<line x1="${x99.toFixed(1)}" y1="${y + 2}" x2="${x99.toFixed(1)}" y2="${y + 14}" stroke="${color}"/>`,
  );
}

const fmtTick = (t: number): string => (t >= 1 ? String(t) : String(Number(t.toPrecision(1))));

/** The Markdown separator row under `header`: one `---` per cell. */
function tableSeparator(header: string): string {
  return `|${'---|'.repeat(header.split('|').length - 2)}`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
