import type { InvocationContext } from '@azure/functions';
import type { Logger } from '../../shared/core/logger.js';

/**
 * Adapts an `InvocationContext` (its `log` is the info level) to the core's `Logger`. Fields are
 * appended to the message as JSON, so they reach Application Insights' traces with the message.
 */
export function loggerFromContext(context: InvocationContext, base: Record<string, unknown> = {}): Logger {
  const line = (msg: string, fields?: Record<string, unknown>): string => {
    const all = { ...base, ...fields };
    if (Object.keys(all).length === 0) return msg;
    try {
      return `${msg} ${JSON.stringify(all, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`;
    } catch {
      return msg;
    }
  };
  return {
    debug: (msg, fields) => context.trace(line(msg, fields)),
    info: (msg, fields) => context.log(line(msg, fields)),
    warn: (msg, fields) => context.warn(line(msg, fields)),
    error: (msg, fields) => context.error(line(msg, fields)),
    child: (fields) => loggerFromContext(context, { ...base, ...fields }),
  };
}
