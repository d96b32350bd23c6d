/**
 * Checks shared by the option types of the stores and key rings, so each rule and its
 * message is written once.
 */
import { ConfigurationError } from './errors';

/** A whole-call budget, and the name of the option it came from (for messages). */
export interface Budget {
  readonly ms: number;
  readonly setting: string;
}

/**
 * The whole-call budget from `budgetMs` or its deprecated older name, or `fallback`.
 * Messages name the option the caller set.
 * @throws ConfigurationError when both names are set, or the value is not a positive number of ms
 */
export function budgetOption(
  options: { readonly budgetMs?: number | undefined },
  deprecated: { readonly name: string; readonly value: number | undefined },
  fallback: number,
  { wholeMs = false }: { readonly wholeMs?: boolean } = {},
): Budget {
  if (options.budgetMs !== undefined && deprecated.value !== undefined) {
    throw new ConfigurationError(
      'budgetMs',
      `received both budgetMs and ${deprecated.name} (its deprecated name); keep budgetMs`,
    );
  }
  const setting = deprecated.value !== undefined ? deprecated.name : 'budgetMs';
  const ms = options.budgetMs ?? deprecated.value ?? fallback;
  const valid = wholeMs ? Number.isInteger(ms) && ms > 0 : Number.isFinite(ms) && ms > 0;
  if (!valid) {
    throw new ConfigurationError(
      setting,
      `expected a positive ${wholeMs ? 'whole ' : ''}number of milliseconds, received ${String(ms)}`,
    );
  }
  return { ms, setting };
}

/**
 * How a store or key ring gets its client: a ready one the caller passes (it stays the
 * caller's: never closed by the store or ring), or one it builds from settings.
 */
export interface ClientChoice<T, K extends keyof T & string> {
  /** The option that holds a ready client. */
  readonly ready: K;
  /** The options to build a client from; exactly one of them, or `ready`, must be set. */
  readonly build: readonly [keyof T & string, ...(keyof T & string)[]];
  /** Options that only shape a client the store or ring builds: an error beside `ready`. */
  readonly buildOnly?: readonly (keyof T & string)[];
  /** What to pass, for messages (e.g. "a ready DynamoDBClient as client, or its config as clientConfig"). */
  readonly pass: string;
  /** What to do instead of a build-only option beside a ready client. @default 'configure your own client instead' */
  readonly instead?: string;
}

/**
 * Checks the client options of a store or key ring against `choice`: exactly one of the
 * ready client and the build options, and no build-only option beside a ready client
 * (it would be silently ignored).
 * @returns true when the caller passed a ready client (narrowing `options` to the variant
 * that has it), false when the store or ring is to build one
 * @throws ConfigurationError naming the first option set of several (the ready one, when
 * it is among them), the first build option when none is set, or the build-only option
 */
export function hasReadyClient<T extends object, K extends keyof T & string>(
  options: T,
  choice: ClientChoice<T, K>,
): options is Extract<T, { readonly [P in K]: NonNullable<T[K]> }> {
  const names = [choice.ready, ...choice.build];
  const given = names.filter((name) => options[name] !== undefined);
  if (given.length !== 1) {
    const none = names.length === 2 ? `neither ${names[0]} nor ${names[1]}` : `none of ${list(names)}`;
    const several = given.length === 2 ? `both ${given[0]} and ${given[1]}` : list(given);
    throw new ConfigurationError(
      given[0] ?? choice.build[0],
      `received ${given.length === 0 ? none : several}; pass exactly one: ${choice.pass}`,
    );
  }
  if (given[0] !== choice.ready) return false;
  const set = (choice.buildOnly ?? []).find((setting) => options[setting] !== undefined);
  if (set !== undefined) {
    throw new ConfigurationError(
      set,
      `applies only to a client built from ${choice.build.join(' or ')}; ${choice.instead ?? 'configure your own client instead'}`,
    );
  }
  return true;
}

/** "a, b and c". */
function list(names: readonly string[]): string {
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}
