import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent } from './changeEvent.js';

/**
 * The commit time of a change (`source.ts_ms`) as ISO 8601, as the change-history rows and ADX's
 * `__commit_time` carry it. A time that is not a date makes the event malformed: a permanent failure
 * for that record (dead-letter), since retrying cannot fix it.
 */
export function commitTime(event: Pick<ChangeEvent, 'source'>): string {
  const ms = event.source.ts_ms;
  const date = new Date(typeof ms === 'number' ? ms : Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Event has no usable source.ts_ms (${String(ms)}), so it has no commit time`);
  }
  return date.toISOString();
}
