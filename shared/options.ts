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
 * Rejects the settings that only shape a client the store builds when the caller passed a
 * ready client: they would be silently ignored. `applies` says which client they shape and
 * `instead` what to do.
 * @throws ConfigurationError naming the first such setting that is set
 */
export function rejectBuildSettings<T extends object>(
  options: T,
  settings: readonly (keyof T & string)[],
  applies: string,
  instead: string,
): void {
  const set = settings.find((setting) => options[setting] !== undefined);
  if (set !== undefined) throw new ConfigurationError(set, `applies only to ${applies}; ${instead}`);
}
