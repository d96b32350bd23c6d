import { build } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
async function main() {
  const o = lambdaBundleOptions('/work/main/functions/aws/web-api.ts', '/tmp/meta-out/web-api.js');
  const r = await build({ ...o, metafile: true });
  const groups = new Map<string, number>();
  for (const [file, info] of Object.entries(r.metafile!.outputs['/tmp/meta-out/web-api.js'.replace('/tmp/','../../tmp/')] ? {} : {})) void file, info;
  const out = Object.values(r.metafile!.outputs)[0];
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    const m = input.match(/node_modules\/((@[^/]+\/)?[^/]+)/);
    const k = m ? m[1] : input.split('/').slice(0, 2).join('/');
    groups.set(k, (groups.get(k) ?? 0) + bytesInOutput);
  }
  const tot = [...groups.values()].reduce((a, b) => a + b, 0);
  console.log('total KiB', (tot / 1024).toFixed(1));
  for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((v / 1024).toFixed(1).padStart(7), k);
}
void main();
