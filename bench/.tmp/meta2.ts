import { build } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
async function main() {
  const r = await build({ ...lambdaBundleOptions('functions/aws/web-api.ts', '/tmp/meta-out/w3.js'), metafile: true });
  const out = Object.values(r.metafile!.outputs)[0];
  const rows = Object.entries(out.inputs).filter(([k]) => !k.includes('node_modules')).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput);
  for (const [k, v] of rows) console.log((v.bytesInOutput / 1024).toFixed(1).padStart(6), k);
  const kms = Object.entries(out.inputs).filter(([k]) => k.includes('client-kms') || k.includes('client-secrets') || k.includes('client-sts')).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput).slice(0, 12);
  for (const [k, v] of kms) console.log((v.bytesInOutput / 1024).toFixed(1).padStart(6), k);
}
void main();
