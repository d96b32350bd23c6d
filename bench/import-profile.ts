/**
 * Where the import of a Lambda bundle goes (issue 16, `cold-import-vs-sdk-floor`): the
 * shipped web-API bundle and the SDK floor, built exactly as the cold-start section builds
 * them, each `require()`d in fresh Node.js processes under `--cpu-prof`, alternately. Per
 * bundle: the import's wall p50 and the profile's mean split into V8 compiling the script
 * (`wrapSafe`), evaluating the bundle's own code, loading Node.js built-ins and GC, with
 * compile time per KiB; then what the web-API bundle holds, by package (esbuild's metafile).
 * Needs no servers (import only).
 *
 *   npx tsx bench/import-profile.ts [runs=7]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { coldStartBuilds } from './scenarios/cold-start';
import { summarize } from './stats';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The parts of an import, by the frame a sample was taken in. */
function partOf(frame: ProfileNode['callFrame'], bundle: string): string {
  if (frame.url.endsWith(bundle)) return 'evaluating the bundle';
  if (frame.functionName === 'wrapSafe') return 'compiling the script (wrapSafe)';
  if (frame.functionName === 'compileForInternalLoader') return 'Node.js built-ins';
  if (frame.functionName === '(garbage collector)') return 'GC';
  return 'other (boot, loader, reads)';
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 7);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-import-profile-'));
  try {
    const bundles = coldStartBuilds(dir).filter((b) => b.id === 'web-api' || b.id === 'sdk-floor');
    const holds = new Map<string, number>();
    for (const b of bundles) {
      const built = await build({ ...b.options, logLevel: 'silent', metafile: true });
      if (b.id !== 'web-api') continue;
      for (const output of Object.values(built.metafile.outputs)) {
        for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
          const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.split('/')[0];
          holds.set(pkg, (holds.get(pkg) ?? 0) + bytesInOutput);
        }
      }
    }
    const results = new Map(
      bundles.map((b) => [b.id, { importMs: [] as number[], builtins: 0, parts: new Map<string, number>() }]),
    );
    for (let run = 0; run < runs; run++) {
      for (const b of bundles) {
        const outfile = String(b.options.outfile);
        const profDir = path.join(dir, `prof-${b.id}-${run}`);
        // perf_hooks first, as the cold-start section's runner loads it before timing.
        const script =
          "const { performance } = require('node:perf_hooks'); const n = process.moduleLoadList.length; " +
          `const t = performance.now(); require(${JSON.stringify(outfile)}); const ms = performance.now() - t; ` +
          "const builtins = process.moduleLoadList.slice(n).filter((m) => m.startsWith('NativeModule ')).length; " +
          'process.stdout.write(JSON.stringify({ ms, builtins }));';
        const out = execFileSync(
          process.execPath,
          ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', profDir, '-e', script],
          {
            env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
          },
        );
        const r = results.get(b.id)!;
        const measured = JSON.parse(out.toString()) as { ms: number; builtins: number };
        r.importMs.push(measured.ms);
        r.builtins = measured.builtins;
        const file = readdirSync(profDir)[0];
        const profile = JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as Profile;
        const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
        profile.samples.forEach((id, i) => {
          const part = partOf(frames.get(id)!, path.basename(outfile));
          r.parts.set(part, (r.parts.get(part) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000 / runs);
        });
      }
    }
    process.stdout.write(
      `import profile: ${runs} fresh processes per bundle, node ${process.version}, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}\n`,
    );
    for (const b of bundles) {
      const r = results.get(b.id)!;
      const kib = statSync(String(b.options.outfile)).size / 1024;
      const compile = r.parts.get('compiling the script (wrapSafe)') ?? 0;
      process.stdout.write(
        `\n${b.label}: ${kib.toFixed(1)} KiB, import p50 ${summarize(r.importMs).p50.toFixed(1)} ms (profiled), ${r.builtins} Node.js built-in modules loaded by it\n`,
      );
      for (const [part, ms] of [...r.parts].sort((x, y) => y[1] - x[1])) {
        process.stdout.write(`  ${part.padEnd(34)} ${ms.toFixed(1).padStart(6)} ms (mean)\n`);
      }
      process.stdout.write(`  compile per KiB                    ${(compile / kib).toFixed(3)} ms\n`);
    }
    process.stdout.write("\nthe web-API bundle by package (KiB; the project's own code by top folder):\n");
    for (const [pkg, bytes] of [...holds].sort((x, y) => y[1] - x[1]).slice(0, 20)) {
      process.stdout.write(`  ${(bytes / 1024).toFixed(1).padStart(7)}  ${pkg}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
