/**
 * Builds what ships besides the compiled library (`npm run build` calls it after tsc):
 * - `dist/lambda/{web-api,daemon}/index.js`: the Lambda handlers bundled as the stack
 *   deploys them (Node 24, CJS, minified, the AWS SDK inside: the function runs the
 *   versions its tests ran). `TokenCacheStack` deploys these folders as they are, so a
 *   consumer's `cdk synth` needs neither esbuild nor Docker.
 * - `dist/azure-functions/`: a deployable Azure Functions app (host.json, a package.json
 *   whose `main` is the bundled app, the bundle) and `dist/azure-functions.zip`, the same
 *   as a zip deploy package (`npm run package:azure` builds only this).
 * No Azure SDK is in the Lambda bundles and no AWS SDK in the Functions app: each imports
 * its own cloud's room only.
 */
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { ZipFile } from 'yazl';

/** The Lambda handlers: folder name under dist/lambda → source entry. */
export const LAMBDA_ENTRIES = {
  'web-api': 'functions/aws/web-api.ts',
  daemon: 'functions/aws/daemon.ts',
} as const;

/** Node.js the bundles target: the runtime the stack and the ARM template deploy. */
export const TARGET_NODE = 'node24';

/**
 * AWS credential providers a Lambda function never reaches: the runtime puts the role's
 * credentials in the environment, where the SDK's default chain stops. They are loaded
 * lazily, only if the chain gets past the environment, so leaving them out removes about
 * 85 KiB (STS/SSO clients, ini files, IMDS) from every cold start. Not for code that runs
 * elsewhere than Lambda.
 */
export const LAMBDA_UNUSED_CREDENTIAL_PROVIDERS = [
  '@aws-sdk/nested-clients',
  '@aws-sdk/credential-provider-sso',
  '@aws-sdk/credential-provider-ini',
  '@aws-sdk/credential-provider-process',
  '@aws-sdk/credential-provider-web-identity',
  '@aws-sdk/credential-provider-login',
  '@aws-sdk/token-providers',
  '@smithy/credential-provider-imds',
] as const;

/**
 * The names the AWS room takes from each SDK package it loads with `require()` (an optional
 * peer, loaded only when configured: shared/aws/peers.ts, from-env.ts,
 * web-identity-assertion.ts). The peer check of `@smithy/node-http-handler` takes nothing:
 * its whole module would add the HTTP/2 handler, whose `node:http2` makes the import load
 * eleven more Node.js built-in modules (http2, its internals, assert: bench/import-profile.ts); the code uses `NodeHttpHandler`
 * only, imported statically. A `require()` yields the whole module, so esbuild keeps every
 * command and schema of the client (about 45 KiB per bundle); in the Lambda bundles each
 * such require gets a module re-exporting only these names instead. The peer check needs
 * none: in a bundle the client is inside. A name used but not listed here would be
 * `undefined` at run time, so test/infra/lambda-bundles.test.ts runs both paths that use
 * them (Secrets Manager and STS web identity) through the bundles.
 */
export const LAMBDA_REQUIRED_SDK_EXPORTS: Readonly<Record<string, readonly string[]>> = {
  '@aws-sdk/client-dynamodb': [],
  '@aws-sdk/client-kms': [],
  '@aws-sdk/client-secrets-manager': ['GetSecretValueCommand', 'SecretsManagerClient'],
  '@aws-sdk/client-sts': ['GetWebIdentityTokenCommand', 'STSClient'],
  '@smithy/node-http-handler': [],
};

/**
 * jsonwebtoken (msal-node's client-assertion signer) loads semver (29 KiB) only to ask three
 * questions about the running Node.js; on Node.js >= 16.9 every answer is yes, and the
 * bundles target Node.js 24.
 */
const JSONWEBTOKEN_NODE_CHECKS =
  /^\.\.?\/(lib\/)?(psSupported|asymmetricKeyDetailsSupported|rsaPssKeyDetailsSupported)(\.js)?$/;

/**
 * What the Lambda bundles leave out or shrink, beyond tree-shaking: see
 * {@link LAMBDA_REQUIRED_SDK_EXPORTS} and {@link JSONWEBTOKEN_NODE_CHECKS}, and the Smithy
 * event-stream codec (15 KiB), which `@smithy/core` imports only for an operation with an
 * event stream: DynamoDB, KMS, STS and Secrets Manager have none.
 */
export function lambdaSlimmingPlugin(): Plugin {
  const sdk = new RegExp(
    `^(${Object.keys(LAMBDA_REQUIRED_SDK_EXPORTS)
      .map((name) => name.replace(/[/.-]/g, '\\$&'))
      .join('|')})$`,
  );
  return {
    name: 'lambda-slimming',
    setup(b) {
      b.onResolve({ filter: sdk }, (args) =>
        args.kind === 'require-call' ? { path: args.path, namespace: 'sdk-exports' } : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'sdk-exports' }, (args) => {
        const names = LAMBDA_REQUIRED_SDK_EXPORTS[args.path] ?? [];
        return {
          contents: names.length ? `export { ${names.join(', ')} } from '${args.path}';` : 'export {};',
          loader: 'js',
          resolveDir: __dirname,
        };
      });
      b.onResolve({ filter: /^@smithy\/core\/event-streams$/ }, (args) => ({
        path: args.path,
        namespace: 'no-event-streams',
      }));
      b.onLoad({ filter: /.*/, namespace: 'no-event-streams' }, () => ({
        contents:
          "throw new Error('@smithy/core/event-streams is not in this bundle (infra/build/bundle.ts): no client it holds has an event stream');",
        loader: 'js',
      }));
      b.onResolve({ filter: JSONWEBTOKEN_NODE_CHECKS }, (args) =>
        /[/\\]jsonwebtoken[/\\]/.test(args.importer)
          ? { path: args.path, namespace: 'node-at-least-16.9' }
          : undefined,
      );
      b.onLoad({ filter: /.*/, namespace: 'node-at-least-16.9' }, () => ({
        contents: 'module.exports = true;',
        loader: 'js',
      }));
    },
  };
}

/** How a Lambda handler is bundled, as shipped; the bench's cold start builds with the same. */
export function lambdaBundleOptions(entry: string, outfile: string): BuildOptions {
  return {
    ...bundleOptions(entry, outfile, LAMBDA_UNUSED_CREDENTIAL_PROVIDERS),
    plugins: [lambdaSlimmingPlugin()],
  };
}

/** Options shared by every bundle; `bench` and tests bundle the same way. */
export function bundleOptions(
  entry: string,
  outfile: string,
  external: readonly string[] = [],
): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: TARGET_NODE,
    format: 'cjs',
    // The SDKs' ES module builds, which esbuild can tree-shake (their CommonJS builds it cannot):
    // about 100 KiB less per Lambda bundle.
    mainFields: ['module', 'main'],
    external: [...external],
    minify: true,
    // No source maps: `--enable-source-maps` costs a fifth of the import on a cold start, and
    // a minified stack trace still names the function that threw.
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  };
}

/**
 * Bundles both Lambda handlers into `<root>/dist/lambda/<name>/index.js`. Each bundle is
 * built beside its place and renamed into it, so a reader (a synth in another test worker)
 * never sees a folder without its bundle or a half-written one.
 */
export async function bundleLambdas(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, entry] of Object.entries(LAMBDA_ENTRIES)) {
    const dir = path.join(root, 'dist', 'lambda', name);
    mkdirSync(dir, { recursive: true });
    const outfile = path.join(dir, 'index.js');
    const staging = path.join(root, 'dist', 'lambda', `.${name}-${process.pid}-${Date.now()}.js`);
    await build(lambdaBundleOptions(path.join(root, entry), staging));
    renameSync(staging, outfile);
    out[name] = outfile;
  }
  return out;
}

/**
 * Builds the Functions app folder and its zip deploy package.
 * @returns the folder and the zip
 */
export async function packageAzureFunctions(root: string): Promise<{ dir: string; zip: string }> {
  const dir = path.join(root, 'dist', 'azure-functions');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // The Functions host's Node.js worker provides @azure/functions-core to the app at run time.
  await build(
    bundleOptions(path.join(root, 'functions/azure/app.ts'), path.join(dir, 'index.js'), [
      '@azure/functions-core',
    ]),
  );
  copyFileSync(path.join(root, 'functions/azure/host.json'), path.join(dir, 'host.json'));
  writeFileSync(
    path.join(dir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'msal-cloud-cache-functions',
        private: true,
        description: 'The msal-cloud-cache web API and daemon as an Azure Functions app (bundled)',
        main: 'index.js',
        engines: { node: '>=22' },
      },
      null,
      2,
    )}\n`,
  );
  const zip = `${dir}.zip`;
  await writeZip(dir, zip);
  return { dir, zip };
}

async function writeZip(dir: string, file: string): Promise<void> {
  const zip = new ZipFile();
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isFile()) zip.addFile(full, name);
  }
  zip.end();
  await new Promise<void>((resolve, reject) => {
    zip.outputStream.pipe(createWriteStream(file)).on('close', resolve).on('error', reject);
  });
}

if (require.main === module) {
  const root = path.resolve(__dirname, '../..');
  const only = process.argv[2];
  const run = async () => {
    if (only !== 'azure') {
      for (const [name, file] of Object.entries(await bundleLambdas(root))) {
        process.stderr.write(`lambda ${name}: ${path.relative(root, file)} ${kib(file)} KiB\n`);
      }
    }
    if (only !== 'aws') {
      const { dir, zip } = await packageAzureFunctions(root);
      process.stderr.write(
        `azure functions: ${path.relative(root, dir)}/ (${kib(path.join(dir, 'index.js'))} KiB bundle), ${path.relative(root, zip)}\n`,
      );
    }
  };
  run().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}

function kib(file: string): string {
  return (statSync(file).size / 1024).toFixed(0);
}
