/**
 * The logging interface the core depends on. Azure Functions' `InvocationContext` satisfies it
 * (`context.log`, `context.warn`, ...); tests pass their own collector.
 */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A logger that drops everything (default for library code used outside a host). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Adapts an `InvocationContext`-like object (its `log` is the info level) to `Logger`. */
export function loggerFromContext(context: {
  trace(...args: unknown[]): void;
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}): Logger {
  return {
    debug: (...args) => context.trace(...args),
    info: (...args) => context.log(...args),
    warn: (...args) => context.warn(...args),
    error: (...args) => context.error(...args),
  };
}
