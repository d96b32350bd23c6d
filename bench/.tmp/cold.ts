import { startWorld } from '../world';
import { runColdStart } from '../scenarios/cold-start';
async function main() {
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] = 'true';
  const world = await startWorld();
  try {
    const r = await runColdStart({ world, runs: Number(process.argv[2] ?? 5), budgetMs: 120000 });
    for (const e of r.entries) console.log(e.id, (e.bundleBytes / 1024).toFixed(1), 'KiB import p50', e.importMs?.p50.toFixed(1), 'first', e.firstMs?.p50?.toFixed(1));
    console.log('ratio', r.importVsSdkFloor);
  } finally { await world.stop(); }
}
void main();
