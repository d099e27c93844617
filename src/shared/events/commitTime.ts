import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent } from './changeEvent.js';

const DAY_MS = 86_400_000;
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the years `toISOString` writes with four digits. */
const FOUR_DIGIT_YEARS_FROM = -62_167_219_200_000;
const FOUR_DIGIT_YEARS_TO = 253_402_300_799_999;
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** The day last formatted and its `YYYY-MM-DDT`: the changes of a batch mostly share their commit day. */
let lastDay = Number.NaN;
let lastDayText = '';

/**
 * The commit time of a change (`source.ts_ms`) as ISO 8601, as the change-history rows and ADX's
 * `__commit_time` carry it. A time that is not a date makes the event malformed: a permanent failure
 * for that record (dead-letter), since retrying cannot fix it.
 *
 * Exactly `new Date(ms).toISOString()`, but that costs about 1 µs, twice per change on the ADX path
 * (table row and history rows): whole milliseconds in years 0000–9999 (every real commit time) take
 * the date part from the day last formatted and write the time of day from the digits.
 */
export function commitTime(event: Pick<ChangeEvent, 'source'>): string {
  const ms = event.source.ts_ms;
  if (typeof ms === 'number' && Number.isInteger(ms) && ms >= FOUR_DIGIT_YEARS_FROM && ms <= FOUR_DIGIT_YEARS_TO) {
    const day = Math.floor(ms / DAY_MS);
    if (day !== lastDay) {
      lastDayText = new Date(day * DAY_MS).toISOString().slice(0, 11);
      lastDay = day;
    }
    let rest = ms - day * DAY_MS;
    const hours = Math.floor(rest / 3_600_000);
    rest -= hours * 3_600_000;
    const minutes = Math.floor(rest / 60_000);
    rest -= minutes * 60_000;
    const seconds = Math.floor(rest / 1000);
    const millis = rest - seconds * 1000;
    return `${lastDayText}${TWO_DIGITS[hours]!}:${TWO_DIGITS[minutes]!}:${TWO_DIGITS[seconds]!}.${THREE_DIGITS[millis]!}Z`;
  }
  const date = new Date(typeof ms === 'number' ? ms : Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Event has no usable source.ts_ms (${String(ms)}), so it has no commit time`);
  }
  return date.toISOString();
}
