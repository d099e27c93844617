/**
 * The version of a row change, used by every sink that keeps latest state (Elasticsearch external
 * versions, ADX `arg_max`). See docs/reader.md "Versioning contract for sinks":
 * - streamed changes: `source.lsn`, the change's own WAL position. For one key, LSN order is commit
 *   order (the row lock serialises writers), and two changes never share an LSN;
 * - snapshot rows (`op: 'r'`): the reader sets `source.lsn` to the slot's consistent point, which sorts
 *   below every change streamed after the snapshot for the same key.
 */
import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent } from './changeEvent.js';

/** Largest value Elasticsearch accepts as an external version (a Java long), and exact in JS. */
const MAX_VERSION = Number.MAX_SAFE_INTEGER;

export function rowVersion(event: Pick<ChangeEvent, 'source' | 'op'>): number {
  const lsn = event.source.lsn;
  if (typeof lsn !== 'number' || !Number.isSafeInteger(lsn) || lsn < 0 || lsn > MAX_VERSION) {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Event has no usable source.lsn (${String(lsn)}), so it has no row version`);
  }
  return lsn;
}
