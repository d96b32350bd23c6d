/**
 * A Powertools for AWS Lambda `Logger` as the cache's {@link Logger}: the cache's records
 * then carry Powertools' keys (cold start, function name, request id, sampling) and its
 * JSON layout. Typed structurally, so this module imports nothing from Powertools.
 */
import type { LogFields, Logger } from '../observability';

/** The part of `@aws-lambda-powertools/logger`'s `Logger` the adapter calls. */
export interface PowertoolsLikeLogger {
  debug(message: string, ...extra: Array<Record<string, unknown>>): void;
  info(message: string, ...extra: Array<Record<string, unknown>>): void;
  warn(message: string, ...extra: Array<Record<string, unknown>>): void;
  error(message: string, ...extra: Array<Record<string, unknown>>): void;
}

/**
 * Adapts a Powertools `Logger` (fields become its extra keys; undefined fields are dropped).
 * @example
 * import { Logger } from '@aws-lambda-powertools/logger';
 * const cache = await createTokenCacheFromEnv({ logger: powertoolsLogger(new Logger({ serviceName: 'orders' })) });
 */
export function powertoolsLogger(logger: PowertoolsLikeLogger): Logger {
  const call =
    (level: keyof PowertoolsLikeLogger) =>
    (message: string, fields?: LogFields): void => {
      const extra = fields ? defined(fields) : undefined;
      if (extra) logger[level](message, extra);
      else logger[level](message);
    };
  return { debug: call('debug'), info: call('info'), warn: call('warn'), error: call('error') };
}

function defined(fields: LogFields): Record<string, string | number | boolean> | undefined {
  const out: Record<string, string | number | boolean> = {};
  let any = false;
  for (const [k, v] of Object.entries(fields)) {
    if (v !== undefined) {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : undefined;
}
