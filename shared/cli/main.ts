#!/usr/bin/env node
/**
 * `msal-cloud-cache`: the operator's tool for the token cache (stats, inspect, verify,
 * purge, prune, rewrap). Reads the same environment as the library; flags override it.
 * The README's "Operator CLI" section lists commands, flags, exit codes and JSON fields.
 */
import { createInterface } from 'node:readline/promises';
import { parseArgs } from 'node:util';
import { readCacheConfig, EnvReader, type CacheConfig, type Environment } from '../config';
import { ConfigurationError, KeyServiceError, StoreUnavailableError } from '../errors';
import {
  errorReport,
  ExitCode,
  inspect,
  prune,
  purge,
  rewrap,
  stats,
  verify,
  type CommandContext,
  type CommandResult,
} from './commands';
import { runCapacity } from './capacity';
import { renderReport } from './render';
import type { FailureReport } from './reports';
import { openRoom, type CliRoom, type CliRoomOptions } from './room';
import { Progress, RateLimiter } from './work';

/** Where the CLI reads and writes; every part can be replaced in tests. */
export interface CliIo {
  /** @default process.env */
  readonly env?: Environment;
  /** @default process.stdout */
  readonly stdout?: { write(text: string): unknown };
  /** @default process.stderr */
  readonly stderr?: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Asks the operator a question (interactive confirmation); absent when stdin is not a TTY. */
  readonly ask?: (question: string) => Promise<string>;
  /** Aborts the work after the items in flight (SIGINT). */
  readonly signal?: AbortSignal;
  /** Builds the store, scanner and key ring. @default the cloud room of TOKEN_CACHE_STORE */
  readonly openRoom?: (config: CacheConfig, options: CliRoomOptions) => CliRoom | Promise<CliRoom>;
  /** Epoch milliseconds. @default Date.now */
  readonly now?: () => number;
}

const COMMANDS = ['stats', 'inspect', 'verify', 'purge', 'prune', 'rewrap', 'capacity', 'help'] as const;
type Command = (typeof COMMANDS)[number];

/** Settings of the library the CLI does not use: it never signs in, so no authority or credential. */
const UNUSED_SETTINGS = new Set([
  'MSAL_AUTHORITY',
  'MSAL_KNOWN_AUTHORITIES',
  'MSAL_CLIENT_SECRET',
  'MSAL_CLIENT_SECRET_ARN',
  'MSAL_CLIENT_CERTIFICATE_PATH',
  'MSAL_CLIENT_CERTIFICATE_SEND_X5C',
  'AWS_ENDPOINT_URL_SECRETS_MANAGER',
  'TOKEN_CACHE_AZURE_CREDENTIAL',
]);

/** Flags that override a variable of the environment. */
const OVERRIDES = {
  store: 'TOKEN_CACHE_STORE',
  table: 'TOKEN_CACHE_TABLE_NAME',
  'cosmos-endpoint': 'TOKEN_CACHE_COSMOS_ENDPOINT',
  'cosmos-database': 'TOKEN_CACHE_COSMOS_DATABASE',
  'cosmos-container': 'TOKEN_CACHE_COSMOS_CONTAINER',
  'client-id': 'MSAL_CLIENT_ID',
} as const;

const OPTIONS = {
  json: { type: 'boolean' },
  progress: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  'max-rps': { type: 'string' },
  concurrency: { type: 'string' },
  segments: { type: 'string' },
  user: { type: 'string' },
  app: { type: 'string' },
  key: { type: 'string' },
  'user-partition-only': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  store: { type: 'string' },
  table: { type: 'string' },
  'cosmos-endpoint': { type: 'string' },
  'cosmos-database': { type: 'string' },
  'cosmos-container': { type: 'string' },
  'client-id': { type: 'string' },
} as const;

export const USAGE = `Usage: msal-cloud-cache <command> [options]

Commands:
  stats                     items, bytes and histogram, expired, counts by key id and format (headers only)
  inspect --user <homeAccountId> | --app <tenantId> | --key <storeKey>
                            one partition: header, sizes, expiry, entities, scopes and expiries (no secrets)
  verify                    open every item; report those that do not open, by reason
  purge --user <homeAccountId>
                            sign-out everywhere for one user (user partition and on-behalf-of partitions)
  prune                     delete expired items
  rewrap                    re-encrypt every item under the current master key (resumable)
  capacity [flags]          the capacity model for a workload (no store needed; capacity --help)

Options:
  --json                    one JSON document on stdout
  --progress                progress with rate and ETA on stderr (default: when stderr is a TTY)
  --dry-run                 purge, prune, rewrap: report what would change, change nothing
  -y, --yes                 purge, prune, rewrap: do not ask for confirmation (required without a TTY)
  --max-rps <n>             at most n store reads/writes/deletes per second (scan pages not counted)
  --concurrency <n>         items handled at once (default 32)
  --segments <n>            DynamoDB parallel Scan segments (default 4)
  --user-partition-only     purge: skip the scan for on-behalf-of partitions
  --store <kind>            overrides TOKEN_CACHE_STORE (dynamodb, cosmos)
  --table <name>            overrides TOKEN_CACHE_TABLE_NAME
  --cosmos-endpoint <url>   overrides TOKEN_CACHE_COSMOS_ENDPOINT
  --cosmos-database <id>    overrides TOKEN_CACHE_COSMOS_DATABASE
  --cosmos-container <id>   overrides TOKEN_CACHE_COSMOS_CONTAINER
  --client-id <id>          overrides MSAL_CLIENT_ID
  -h, --help                this text

Exit codes: 0 ok, 1 findings (items that do not open, partition not found),
2 usage or configuration error, 3 store or key-service failure, 130 interrupted.
`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Runs one CLI invocation and resolves to its exit code; never throws.
 * @example process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: readonly string[], io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  let json = argv.includes('--json');
  let room: CliRoom | undefined;
  // The capacity model reads no environment and opens no store: it has flags of its own.
  if (argv[0] === 'capacity') return runCapacity(argv.slice(1), { stdout, stderr });
  try {
    const { values, positionals } = parse(argv);
    json = values.json ?? false;
    const command = positionals[0] as Command | undefined;
    if (values.help || command === 'help') {
      stdout.write(USAGE);
      return ExitCode.Ok;
    }
    if (command === undefined) throw new UsageError('no command given');
    if (!(COMMANDS as readonly string[]).includes(command))
      throw new UsageError(`unknown command "${command}"`);
    if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
    const target = targetOf(command, values);
    const concurrency = positiveInteger(values.concurrency, '--concurrency', 32);
    const segments = positiveInteger(values.segments, '--segments', 4);
    const maxRps =
      values['max-rps'] === undefined ? undefined : positiveNumber(values['max-rps'], '--max-rps');
    const dryRun = values['dry-run'] ?? false;

    const env: Record<string, string | undefined> = { ...(io.env ?? process.env) };
    for (const [flag, variable] of Object.entries(OVERRIDES)) {
      const value = values[flag as keyof typeof OVERRIDES];
      if (value !== undefined) env[variable] = value;
    }
    const config = loadCliConfig(env);

    if (['purge', 'prune', 'rewrap'].includes(command) && !dryRun && !values.yes) {
      if (!io.ask) {
        throw new UsageError(
          `${command} changes the store: pass --yes to run it without a terminal, or --dry-run`,
        );
      }
      const what =
        command === 'purge'
          ? `delete every partition of user ${values.user}`
          : command === 'prune'
            ? 'delete every expired item'
            : 're-encrypt every item under the current master key';
      const answer = await io.ask(`${command}: ${what} in ${describeStore(config)}? [y/N] `);
      if (!/^y(es)?$/i.test(answer.trim())) {
        stderr.write('msal-cloud-cache: not confirmed, nothing changed\n');
        return ExitCode.Usage;
      }
    }

    room = await (io.openRoom ?? openRoom)(config, { segments });
    const showProgress = (values.progress ?? false) || stderr.isTTY === true;
    const tty = stderr.isTTY === true;
    const ctx: CommandContext = {
      store: room.store,
      source: room.source,
      keyRing: room.keyRing,
      clientId: config.msal.clientId,
      dataKeys: config.dataKeys,
      compressAboveBytes: config.compressAboveBytes,
      concurrency,
      ...(maxRps ? { limiter: new RateLimiter(maxRps) } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
      progress: (label, detail) =>
        new Progress(label, showProgress ? (text) => stderr.write(text) : undefined, tty, detail),
      now: io.now ?? Date.now,
    };
    const result = await runCommand(command, ctx, {
      target,
      dryRun,
      userPartitionOnly: values['user-partition-only'] ?? false,
    });
    stdout.write(json ? `${JSON.stringify(result.report, null, 2)}\n` : `${renderReport(result.report)}\n`);
    const error = 'error' in result.report ? result.report.error : undefined;
    if (error)
      stderr.write(`msal-cloud-cache: stopped: ${error.message}\nRerun the same command to resume.\n`);
    return result.exitCode;
  } catch (e) {
    const exitCode = exitCodeOf(e);
    stderr.write(`msal-cloud-cache: ${messageOf(e)}\n`);
    if (exitCode === ExitCode.Usage && !(e instanceof ConfigurationError))
      stderr.write('Run msal-cloud-cache --help for usage.\n');
    if (json) {
      const problems = e instanceof ConfigurationError ? { problems: e.problems } : {};
      const failure: FailureReport = { error: { ...errorReport(e), ...problems } };
      stdout.write(`${JSON.stringify(failure, null, 2)}\n`);
    }
    return exitCode;
  } finally {
    await room?.destroy().catch(() => undefined);
  }
}

function parse(
  argv: readonly string[],
): ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>> {
  try {
    return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

type Values = ReturnType<typeof parse>['values'];

function targetOf(
  command: Command,
  values: Values,
): { user: string } | { app: string } | { key: string } | undefined {
  const given = (['user', 'app', 'key'] as const).filter((name) => values[name] !== undefined);
  if (command === 'inspect') {
    if (given.length !== 1) throw new UsageError('inspect needs exactly one of --user, --app or --key');
    const name = given[0];
    const value = values[name]!.trim();
    if (value === '') throw new UsageError(`--${name} is empty`);
    return { [name]: value } as { user: string } | { app: string } | { key: string };
  }
  if (command === 'purge') {
    if (given.length !== 1 || given[0] !== 'user' || values.user!.trim() === '') {
      throw new UsageError("purge needs --user <homeAccountId> (the user's oid.tid)");
    }
    return { user: values.user!.trim() };
  }
  if (given.length > 0) throw new UsageError(`--${given[0]} applies to inspect and purge only`);
  return undefined;
}

async function runCommand(
  command: Command,
  ctx: CommandContext,
  options: { target: ReturnType<typeof targetOf>; dryRun: boolean; userPartitionOnly: boolean },
): Promise<CommandResult> {
  switch (command) {
    case 'stats':
      return stats(ctx);
    case 'verify':
      return verify(ctx);
    case 'inspect':
      return inspect(ctx, options.target!);
    case 'purge':
      return purge(ctx, {
        homeAccountId: (options.target as { user: string }).user,
        dryRun: options.dryRun,
        userPartitionOnly: options.userPartitionOnly,
      });
    case 'prune':
      return prune(ctx, { dryRun: options.dryRun });
    case 'rewrap':
      return rewrap(ctx, { dryRun: options.dryRun });
    case 'capacity': // handled by runCapacity before any store is opened
    case 'help':
      throw new UsageError(`${command} has no store report`);
  }
}

/**
 * The cache settings the CLI needs, from the same variables as the library; the ones it
 * does not use (authority, client credential) are not required.
 * @throws ConfigurationError naming every variable at fault
 */
export function loadCliConfig(env: Environment): CacheConfig {
  const read = new EnvReader(env);
  const config = readCacheConfig(read);
  try {
    read.done();
  } catch (e) {
    if (!(e instanceof ConfigurationError)) throw e;
    const problems = e.problems.filter((p) => !UNUSED_SETTINGS.has(p.setting));
    if (problems.length > 0)
      throw ConfigurationError.of(problems.map((p) => new ConfigurationError(p.setting, p.message)));
  }
  if (config.store.kind === 'memory') {
    throw new ConfigurationError(
      'TOKEN_CACHE_STORE',
      '"memory" lives inside one process, there is nothing for the CLI to read; set dynamodb or cosmos (or --store)',
    );
  }
  return config;
}

function describeStore(config: CacheConfig): string {
  const store = config.store;
  return store.kind === 'dynamodb'
    ? `table ${store.tableName}`
    : store.kind === 'cosmos'
      ? `container ${store.databaseId}/${store.containerId}`
      : store.kind;
}

function positiveInteger(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) {
    throw new UsageError(`${flag} expects a whole number from 1 to 10000, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0))
    throw new UsageError(`${flag} expects a positive number, got ${JSON.stringify(value)}`);
  return n;
}

function exitCodeOf(e: unknown): ExitCode {
  if (e instanceof UsageError || e instanceof ConfigurationError) return ExitCode.Usage;
  if (e instanceof StoreUnavailableError || e instanceof KeyServiceError) return ExitCode.ServiceFailure;
  return ExitCode.ServiceFailure;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The process entry: SIGINT stops after the items in flight (a second one quits at once). */
export async function run(): Promise<void> {
  const controller = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    interrupts += 1;
    if (interrupts > 1) process.exit(ExitCode.Interrupted);
    process.stderr.write(
      '\nmsal-cloud-cache: interrupted, finishing the items in flight (Ctrl-C again to quit now)\n',
    );
    controller.abort();
  });
  const interactive = process.stdin.isTTY === true;
  const code = await main(process.argv.slice(2), {
    signal: controller.signal,
    ...(interactive
      ? {
          ask: async (question: string) => {
            const rl = createInterface({ input: process.stdin, output: process.stderr });
            try {
              return await rl.question(question);
            } finally {
              rl.close();
            }
          },
        }
      : {}),
  });
  process.exitCode = code;
  // Keep-alive sockets of an SDK must not hold the process open once the work is reported.
  setTimeout(() => process.exit(code), 1000).unref();
}

if (require.main === module) void run();
