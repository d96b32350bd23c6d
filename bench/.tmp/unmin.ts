import { build } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
void build({ ...lambdaBundleOptions('functions/aws/web-api.ts', '/tmp/meta-out/web-api.unmin.js'), minify: false });
