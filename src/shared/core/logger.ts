import { redact } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * The one logging interface: a message plus structured fields, and `child` for fields every line of
 * a component carries. The reader writes JSON lines (`createLogger`); the Functions host adapts its
 * `InvocationContext` (src/functions/host); tests pass `memoryLogger`.
 */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { error: err.message, errorName: err.name };
    const code = (err as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (err.cause !== undefined) out.cause = err.cause instanceof Error ? err.cause.message : JSON.stringify(err.cause);
    return out;
  }
  return { error: String(err) };
}

/**
 * One JSON object per line on stdout. Every line passes through `redact` so a secret that reached a
 * message or a field (a connection string inside a driver error, say) never leaves the process.
 */
export function createLogger(
  options: { level?: LogLevel; secrets?: readonly string[]; write?: (line: string) => void; base?: Record<string, unknown> } = {},
): Logger {
  const min = order[options.level ?? 'info'];
  const secrets = options.secrets ?? [];
  const write = options.write ?? ((line: string) => void process.stdout.write(line + '\n'));
  const make = (base: Record<string, unknown>): Logger => {
    const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      if (order[level] < min) return;
      const record = { time: new Date().toISOString(), level, msg, ...base, ...fields };
      let line: string;
      try {
        line = JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      } catch {
        line = JSON.stringify({ time: record.time, level, msg });
      }
      write(redact(line, secrets));
    };
    return {
      debug: (m, f) => log('debug', m, f),
      info: (m, f) => log('info', m, f),
      warn: (m, f) => log('warn', m, f),
      error: (m, f) => log('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make(options.base ?? {});
}

/** A logger that drops everything (default for library code used outside a host). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};

/** A logger that keeps lines in memory (tests). */
export function memoryLogger(): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return Object.assign(logger, { lines });
}
