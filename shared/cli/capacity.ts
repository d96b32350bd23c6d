/**
 * `msal-cloud-cache capacity`: the capacity model (shared/capacity/model.ts) for a workload
 * given by flags, printed as a table or one JSON document. Needs no store, key ring or
 * environment: it only computes. docs/scale.md is made from the same model.
 */
import { parseArgs } from 'node:util';
import {
  breakPoint,
  DEFAULT_INPUT,
  estimateCapacity,
  withInput,
  type CapacityEstimate,
  type CapacityInput,
} from '../capacity/model';
import { PRICES_READ_ON } from '../capacity/prices';
import { ConfigurationError } from '../errors';

/** The flags that take a value, each a field of {@link CapacityInput}. */
const VALUE_FLAGS = [
  'rps',
  'app-share',
  'obo-share',
  'user-share',
  'app-callers',
  'obo-callers',
  'user-callers',
  'zipf',
  'instances',
  'instance-lifetime',
  'l1',
  'l1-ttl',
  'l1-max-bytes',
  'l1-jitter',
  'shared-reads',
  'item-bytes',
  'token-lifetime',
  'assertion-lifetime',
  'data-key-max-age',
  'lease',
  'consistency',
  'store',
  'key-service',
] as const;

/** The flags as `parseArgs` wants them: every value flag a string, plus `--json` and `--help`. */
const FLAGS = {
  ...(Object.fromEntries(VALUE_FLAGS.map((flag) => [flag, { type: 'string' }])) as Record<
    (typeof VALUE_FLAGS)[number],
    { readonly type: 'string' }
  >),
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The help text of the command. */
export const CAPACITY_USAGE = `Usage: msal-cloud-cache capacity [options]

The capacity model: store reads/writes (total and hottest key), token calls, key-service
calls, units per 1,000 requests and cost, for the workload the flags describe.

  --rps <n>                  requests per second over the fleet (default ${DEFAULT_INPUT.requestsPerSecond})
  --app-share, --obo-share, --user-share <0..1>
                             share of the requests by kind (default ${DEFAULT_INPUT.mix.app} / ${DEFAULT_INPUT.mix.obo} / ${DEFAULT_INPUT.mix.user}; must sum to 1)
  --app-callers, --obo-callers, --user-callers <n>
                             distinct callers by kind (default ${DEFAULT_INPUT.callers.app} / ${DEFAULT_INPUT.callers.obo} / ${DEFAULT_INPUT.callers.user})
  --zipf <s>                 caller popularity exponent (default ${DEFAULT_INPUT.zipfExponent})
  --instances <n>            instances serving at once (default ${DEFAULT_INPUT.instances})
  --instance-lifetime <s>    mean instance lifetime, seconds, or "inf" (default ${DEFAULT_INPUT.instanceLifetimeSeconds})
  --l1 on|off                L1 (default on)
  --l1-ttl <s>               L1 entry age, seconds (default ${DEFAULT_INPUT.l1.ttlSeconds})
  --l1-max-bytes <n>         L1 bytes per instance (default ${DEFAULT_INPUT.l1.maxBytes})
  --l1-jitter <0..0.5>       L1 expiry jitter (default ${DEFAULT_INPUT.l1.jitter})
  --shared-reads on|off      shared store reads (default on)
  --item-bytes <n>           stored item size, every kind (default ${DEFAULT_INPUT.itemBytes.obo})
  --token-lifetime <s>       access-token lifetime (default ${DEFAULT_INPUT.tokenLifetimeSeconds})
  --assertion-lifetime <s>   incoming-token lifetime (default ${DEFAULT_INPUT.assertionLifetimeSeconds})
  --data-key-max-age <s>     data-key reuse for writes (default ${DEFAULT_INPUT.dataKeys.maxAgeSeconds})
  --lease on|off             cross-instance lease on a miss (default on)
  --consistency strong|eventual
  --store dynamodb|cosmos    (default dynamodb; cosmos: serverless RU prices)
  --key-service kms|keyvault (default kms)
  --json                     one JSON document on stdout
`;

class CapacityUsageError extends Error {
  override readonly name = 'CapacityUsageError';
}

function number(flag: string, value: string | undefined, allowInfinity = false): number | undefined {
  if (value === undefined) return undefined;
  if (allowInfinity && /^inf(inity)?$/i.test(value)) return Number.POSITIVE_INFINITY;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new CapacityUsageError(`--${flag} expects a number, got ${JSON.stringify(value)}`);
  }
  return n;
}

function onOff(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new CapacityUsageError(`--${flag} expects on or off, got ${JSON.stringify(value)}`);
}

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new CapacityUsageError(`--${flag} expects ${allowed.join(' or ')}, got ${JSON.stringify(value)}`);
}

/** The model's input from the command's flags (defaults for the rest). @throws on a bad flag */
export function capacityInputFromFlags(argv: readonly string[]): {
  input: CapacityInput;
  json: boolean;
  help: boolean;
} {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: false, strict: true });
  } catch (e) {
    throw new CapacityUsageError((e as Error).message);
  }
  const v = parsed.values;
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>;
  const shares = defined({
    app: number('app-share', v['app-share']),
    obo: number('obo-share', v['obo-share']),
    user: number('user-share', v['user-share']),
  });
  // Shares not given make up the rest, split as in the defaults' proportions... or zero.
  const mix =
    Object.keys(shares).length === 0
      ? DEFAULT_INPUT.mix
      : { app: shares.app ?? 0, obo: shares.obo ?? 0, user: shares.user ?? 0 };
  const itemBytes = number('item-bytes', v['item-bytes']);
  const changes = defined({
    requestsPerSecond: number('rps', v.rps),
    mix,
    callers: {
      ...DEFAULT_INPUT.callers,
      ...defined({
        app: number('app-callers', v['app-callers']),
        obo: number('obo-callers', v['obo-callers']),
        user: number('user-callers', v['user-callers']),
      }),
    },
    zipfExponent: number('zipf', v.zipf),
    instances: number('instances', v.instances),
    instanceLifetimeSeconds: number('instance-lifetime', v['instance-lifetime'], true),
    l1: defined({
      enabled: onOff('l1', v.l1),
      ttlSeconds: number('l1-ttl', v['l1-ttl']),
      maxBytes: number('l1-max-bytes', v['l1-max-bytes']),
      jitter: number('l1-jitter', v['l1-jitter']),
    }),
    sharedReads: onOff('shared-reads', v['shared-reads']),
    itemBytes: itemBytes === undefined ? undefined : { app: itemBytes, obo: itemBytes, user: itemBytes },
    tokenLifetimeSeconds: number('token-lifetime', v['token-lifetime']),
    assertionLifetimeSeconds: number('assertion-lifetime', v['assertion-lifetime']),
    dataKeys: defined({ maxAgeSeconds: number('data-key-max-age', v['data-key-max-age']) }),
    lease: onOff('lease', v.lease),
    consistency: oneOf('consistency', v.consistency, ['strong', 'eventual'] as const),
    store: oneOf('store', v.store, ['dynamodb', 'cosmos'] as const),
    keyService: oneOf('key-service', v['key-service'], ['kms', 'keyvault'] as const),
  });
  return { input: withInput(DEFAULT_INPUT, changes), json: v.json ?? false, help: v.help ?? false };
}

const f = (x: number, digits = 2): string =>
  !Number.isFinite(x) ? '∞' : x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(digits);

/** The table printed without --json. */
export function renderCapacity(e: CapacityEstimate, hotKeyBreak: number | undefined): string {
  const [readUnit, writeUnit] = e.input.store === 'dynamodb' ? ['RRU', 'WRU'] : ['RU', 'RU'];
  return [
    `capacity model: ${f(e.input.requestsPerSecond)} rps, ${e.input.instances} instances, store ${e.input.store}, key service ${e.input.keyService} (prices read ${PRICES_READ_ON})`,
    `  store reads/s            ${f(e.store.reads)}   (${readUnit} ${f(e.store.readUnits)}/s, ${f(e.store.unitsPer1000Requests.read)} per 1,000 requests)`,
    `  store writes/s           ${f(e.store.writes)}   (${writeUnit} ${f(e.store.writeUnits)}/s, ${f(e.store.unitsPer1000Requests.write)} per 1,000 requests; leases ${f(e.store.leaseWrites)}, failed ${f(e.store.failedWrites)})`,
    `  hottest key (${e.hottestKey.kind})        reads ${f(e.hottestKey.reads)}/s, writes ${f(e.hottestKey.writes)}/s: ${f(e.hottestKey.utilisation * 100, 3)}% of its limit` +
      (hotKeyBreak ? ` (reaches it at ${f(hotKeyBreak)} rps)` : ''),
    `  token calls/s            ${f(e.tokenCalls.total)}   (app ${f(e.tokenCalls.byKind.app)}, obo ${f(e.tokenCalls.byKind.obo)}, user ${f(e.tokenCalls.byKind.user)})`,
    `  key-service calls/s      ${f(e.keyService.calls)}   (generate ${f(e.keyService.generate)}, unwrap ${f(e.keyService.unwrap)}; ${f(e.keyService.utilisation * 100, 3)}% of ${f(e.keyService.limit)}/s)`,
    `  L1 hit ratio             ${f(e.l1.hitRatio * 100, 1)}%   (LRU characteristic time ${f(e.l1.characteristicTimeSeconds)} s)`,
    `  cost                     $${f(e.cost.perMillionRequests, 3)} per million requests, $${f(e.cost.perMonth)} per month`,
  ].join('\n');
}

/** Runs the command; resolves to its exit code (0 done, 2 bad flags). */
export function runCapacity(
  argv: readonly string[],
  io: { stdout: { write(text: string): unknown }; stderr: { write(text: string): unknown } },
): number {
  const json = argv.includes('--json');
  try {
    const { input, help } = capacityInputFromFlags(argv);
    if (help) {
      io.stdout.write(CAPACITY_USAGE);
      return 0;
    }
    const estimate = estimateCapacity(input);
    const hot = breakPoint(input, (e) => e.hottestKey.utilisation);
    if (json) {
      io.stdout.write(
        `${JSON.stringify({ ...estimate, hottestKeyBreakPointRps: hot ?? null, pricesReadOn: PRICES_READ_ON }, (_k, x: unknown) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x), 2)}\n`,
      );
    } else io.stdout.write(`${renderCapacity(estimate, hot)}\n`);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    io.stderr.write(`msal-cloud-cache capacity: ${message}\n`);
    if (!(e instanceof ConfigurationError))
      io.stderr.write('Run msal-cloud-cache capacity --help for the flags.\n');
    if (json) {
      const problems = e instanceof ConfigurationError ? { problems: e.problems } : {};
      io.stdout.write(
        `${JSON.stringify({ error: { code: e instanceof ConfigurationError ? e.code : 'usage', message, ...problems } }, null, 2)}\n`,
      );
    }
    return 2;
  }
}
