/**
 * Re-renders bench/results/latest.md and latest.svg from latest.json, without measuring
 * again (after a change to bench/report.ts): `npx tsx bench/render.ts`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchResults } from './model';
import { renderMarkdown, renderSvg } from './report';
import { renderHerd } from './scenarios/herd';

async function main(): Promise<void> {
  const dir = path.join(__dirname, 'results');
  const { plan, ...results } = JSON.parse(
    await readFile(path.join(dir, 'latest.json'), 'utf8'),
  ) as BenchResults & {
    plan: unknown;
  };
  // As bench/run.ts writes it: the tables, then the herd section when it ran.
  await writeFile(
    path.join(dir, 'latest.md'),
    renderMarkdown(results, plan) +
      (results.herd ? `\n${renderHerd(results.herd, results.environment.command)}` : ''),
  );
  await writeFile(path.join(dir, 'latest.svg'), renderSvg(results));
  process.stdout.write('rendered bench/results/latest.md and latest.svg from latest.json\n');
}

main().catch((e: unknown) => {
  console.error('render failed:', e);
  process.exitCode = 1;
});
