/**
 * `commitTime` writes whole-millisecond times of years 0000–9999 itself (the hot path of the ADX rows);
 * every text must be the one `Date.prototype.toISOString` gives, and what is not a date is refused.
 */
import { describe, expect, it } from '@jest/globals';
import { PermanentRecordError } from '../../../src/shared/core/errors.js';
import { commitTime } from '../../../src/shared/events/commitTime.js';

const at = (ts_ms: unknown) => commitTime({ source: { ts_ms } as never });

describe('commitTime', () => {
  it('is the ISO text Date gives, across days, the epoch, leap days and the ends of four-digit years', () => {
    const times = [
      0,
      -1,
      1,
      86_399_999,
      86_400_000,
      -86_400_000,
      1_700_000_000_000,
      1_700_000_000_999,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(2000, 0, 1),
      -62_167_219_200_000, // 0000-01-01T00:00:00.000Z
      -62_167_219_200_001, // year -1: six digits and a sign
      253_402_300_799_999, // 9999-12-31T23:59:59.999Z
      253_402_300_800_000, // +010000
      8.64e15,
      -8.64e15,
      1.5, // not whole: Date truncates
      -1.5,
    ];
    // Many consecutive and scattered times, so the day kept between calls changes both ways.
    for (let i = 0; i < 5000; i++) times.push(1_699_990_000_000 + i * 7_919_111, 1_700_000_000_000 - i * 123_457);
    for (const ms of times) expect(at(ms)).toBe(new Date(ms).toISOString());
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, '1700000000000', null, undefined])('refuses ts_ms %p as no commit time', (ms) => {
    expect(() => at(ms)).toThrow(PermanentRecordError);
    expect(() => at(ms)).toThrow(/no usable source\.ts_ms/);
  });
});
