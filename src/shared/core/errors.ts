/**
 * The one error root of the project (after platformatic/kafka's `errors.ts`). Every error carries a
 * stable `code` and says whether retrying can help (`canRetry`): transient failures (sink down,
 * throttled, timeout) fail the invocation so the host's retry policy holds the checkpoint; permanent
 * ones send the record to the dead-letter store. The reader's start-up failures and every
 * configuration error share the same root.
 */
import { redact } from './redact.js';

export type ErrorCode =
  | 'INVALID_CONFIG'
  | 'NOT_JSON'
  | 'NOT_AN_ENVELOPE'
  | 'UNKNOWN_TABLE'
  | 'NO_KEY'
  | 'POINTER_BROKEN'
  | 'REJECTED_BY_SINK'
  | 'SINK_UNAVAILABLE'
  | 'AWAITING_PARTITION'
  | 'DEAD_LETTER_FAILED'
  | 'BATCH_PROCESSING';

export class CdcError extends Error {
  readonly code: string;
  readonly canRetry: boolean;

  constructor(code: string, message: string, options: { canRetry: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.canRetry = options.canRetry;
  }
}

/**
 * A setting is missing or malformed; thrown at start-up. The message is `<VARIABLE>: expected
 * <what>, got <value>`; a secret's value is never shown (`secret: true`), and any other value passes
 * through `redact` (a connection string pasted into the wrong variable still has its key masked).
 */
export class ConfigError extends CdcError {
  readonly variable: string;

  constructor(variable: string, expected: string, got: string | undefined, options: { secret?: boolean; cause?: unknown } = {}) {
    const shown = got === undefined ? '(unset)' : options.secret === true ? '(redacted)' : JSON.stringify(redact(got));
    super('INVALID_CONFIG', `${variable}: expected ${expected}, got ${shown}`, { canRetry: false, cause: options.cause });
    this.variable = variable;
  }
}

/** A record that can never succeed: it goes to the dead-letter store and the batch continues. */
export class PermanentRecordError extends CdcError {
  constructor(code: Exclude<ErrorCode, 'INVALID_CONFIG' | 'SINK_UNAVAILABLE' | 'BATCH_PROCESSING'>, message: string, cause?: unknown) {
    super(code, message, { canRetry: false, cause });
  }
}

/** The sink (or the dead-letter store) is unavailable, throttling or timing out: retry later. */
export class TransientSinkError extends CdcError {
  constructor(message: string, cause?: unknown, code: 'SINK_UNAVAILABLE' | 'AWAITING_PARTITION' | 'DEAD_LETTER_FAILED' = 'SINK_UNAVAILABLE') {
    super(code, message, { canRetry: true, cause });
  }
}

/**
 * The record waits for an earlier change that sits on another partition (the delete of a key
 * change's old key): nothing is wrong with the sink, the other partition only has to catch up, which
 * usually takes one of its batches. A host that can choose its delay retries sooner than after a
 * failure (src/shared/sinks/retryPolicy.ts `awaitingRetryDelayMs`).
 */
export class AwaitingPartitionError extends TransientSinkError {
  constructor(message: string) {
    super(message, undefined, 'AWAITING_PARTITION');
  }
}

/**
 * Thrown by the batch processor after dead-letters were written and successes applied, when at least
 * one record must be retried. Carries every cause; the host's retry policy then re-runs the batch.
 */
export class BatchProcessingError extends CdcError {
  readonly errors: readonly unknown[];

  constructor(message: string, errors: readonly unknown[]) {
    super('BATCH_PROCESSING', message, { canRetry: true, cause: errors[0] });
    this.errors = errors;
  }
}

/** Normalises anything thrown into an `Error` (like `ensureErrorType` in azure-functions-nodejs-library). */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return new Error(text);
}

/**
 * Whether retrying can help. Errors without a `canRetry` flag are unknown failures (network, bugs in
 * a dependency) and are treated as retryable: retrying loses nothing, dead-lettering might. That holds
 * for I/O only: the batch core treats unflagged errors of pure steps (decode, `prepare`) as permanent,
 * since they throw again on every attempt (src/shared/batch/outcomes.ts).
 */
export function canRetry(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && 'canRetry' in error) {
    return error.canRetry !== false;
  }
  return true;
}

/** One-line description of an error and its causes, for logs and dead-letter reasons. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const e = ensureError(current);
    parts.push(`${e.name}: ${e.message}`);
    current = e.cause;
  }
  return parts.join(' <- ');
}
