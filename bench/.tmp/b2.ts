import { build } from 'esbuild';
import { lambdaBundleOptions } from '../../infra/build/bundle';
void build(lambdaBundleOptions('functions/aws/web-api.ts', process.argv[2]!));
