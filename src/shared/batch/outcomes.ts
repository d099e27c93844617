/**
 * How an error becomes a record's outcome. The rule depends on the step that threw: a pure step
 * (decode, a pointer's decode, `sink.prepare`) sees nothing but the record, so it throws the same
 * error on every attempt; an I/O step (`sink.write`, the dead-letter store, reading a pointer's Blob)
 * may succeed next time.
 */
import { canRetry, CdcError, describeError } from '../core/errors.js';
import type { RecordOutcome } from './types.js';

/** A configuration error is not the record's fault: it holds the checkpoint until the setting is fixed. */
function isConfigError(error: unknown): boolean {
  return error instanceof CdcError && error.code === 'INVALID_CONFIG';
}

/**
 * The outcome of an error from an I/O step (`sink.write`, the dead-letter store, fetching a pointer's
 * Blob): retried unless it says it can never succeed. An unknown error there is most likely the
 * network or the service, and retrying loses nothing (`canRetry`).
 */
export function outcomeOfIoError(error: unknown): RecordOutcome {
  return canRetry(error) || isConfigError(error) ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error };
}

/**
 * The outcome of an error from a pure step (decode, a pointer's decode, `sink.prepare`): the step
 * depends on nothing but the record, so running it again throws again. An error without a flag (a
 * RangeError from `new Date(NaN).toISOString()`, a TypeError on a field that is not there) is
 * therefore permanent: retrying would stall the partition forever on one bad record. Only an error
 * that says `canRetry: true` (or a configuration error) is retried.
 */
export function outcomeOfPureStepError(error: unknown): RecordOutcome {
  const retry = (typeof error === 'object' && error !== null && 'canRetry' in error && error.canRetry === true) || isConfigError(error);
  return retry ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error };
}
