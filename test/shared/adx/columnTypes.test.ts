import { describe, expect, it } from '@jest/globals';
import { adxValue, kqlTypeOf, rawText, UNFIT } from '../../../src/shared/adx/columnTypes.js';
import { rawJSON } from '../../../src/shared/events/exactJson.js';

describe('kqlTypeOf (the ADX type of a new column, from its PostgreSQL type)', () => {
  it.each([
    ['float4', 'real'],
    ['float8', 'real'],
    ['numeric', 'decimal'],
    ['int8', 'long'],
    ['int4', 'long'],
    ['bool', 'bool'],
    ['json', 'dynamic'],
    ['jsonb', 'dynamic'],
    ['date', 'datetime'],
    ['timestamp', 'datetime'],
    ['timestamptz', 'datetime'],
    ['time', 'timespan'],
    ['timetz', 'string'],
    ['interval', 'string'],
    ['money', 'string'],
    ['uuid', 'string'],
    ['bytea', 'string'],
    ['inet', 'string'],
    ['int4range', 'string'],
    ['shop.mood', 'string'],
    ['int4[]', 'dynamic'],
    ['timestamptz[]', 'dynamic'],
    ['shop.mood[]', 'dynamic'],
  ])('%s → %s', (pgType, kql) => {
    expect(kqlTypeOf(pgType)).toBe(kql);
  });
});

describe('adxValue (what a value becomes in a column of its type)', () => {
  it('real: numbers as they are; NaN and ±Infinity cannot be held', () => {
    expect([10, 10.5, '2.5', 'NaN', 'Infinity', '-Infinity', '1e400', true].map((v) => adxValue('real', v))).toEqual([
      10,
      10.5,
      2.5,
      UNFIT,
      UNFIT,
      UNFIT,
      UNFIT,
      UNFIT,
    ]);
  });

  it('decimal: exact strings up to 34 digits; NaN, ±Infinity and more digits cannot be held', () => {
    const digits34 = `${'9'.repeat(30)}.1234`;
    expect(adxValue('decimal', '12345678901234567890.123')).toBe('12345678901234567890.123');
    expect(adxValue('decimal', '0.0000000000000000000000000000000001')).toBe('0.0000000000000000000000000000000001');
    expect(adxValue('decimal', digits34)).toBe(digits34);
    expect(adxValue('decimal', '-007.50')).toBe('-007.50');
    for (const v of [`${digits34}5`, 'NaN', 'Infinity', '-Infinity', '', '.', '1e5']) expect(adxValue('decimal', v)).toBe(UNFIT);
  });

  it('long and int: integers (a bigint beyond 2^53 becomes a JSON number with its exact digits); fractions cannot be held', () => {
    expect(JSON.stringify(adxValue('long', '9007199254740993'))).toBe('9007199254740993');
    expect(JSON.stringify(adxValue('long', '-9223372036854775808'))).toBe('-9223372036854775808');
    expect([adxValue('long', 7), adxValue('long', 10.5), adxValue('long', '9223372036854775808'), adxValue('long', 'x')]).toEqual([7, UNFIT, UNFIT, UNFIT]);
    expect([adxValue('int', 2 ** 31 - 1), adxValue('int', 2 ** 31), adxValue('int', '-5')]).toEqual([2 ** 31 - 1, UNFIT, -5]);
  });

  it('a value already shaped (an exact JSON number) is checked again by its text, and kept as it is when it fits', () => {
    // The ADX sink checks rows toTableRow already shaped against the table's reported types (after a schema change).
    const shaped = adxValue('long', '9223372036854775807');
    expect(adxValue('long', shaped)).toBe(shaped);
    expect(JSON.stringify(adxValue('decimal', shaped))).toBe('9223372036854775807');
    expect([adxValue('int', shaped), adxValue('real', rawJSON('1e400'))]).toEqual([UNFIT, UNFIT]);
  });

  it('datetime: infinity, BC and years beyond 9999 cannot be held; the rest is for ADX to parse', () => {
    for (const v of ['2024-05-01', '2024-05-01T10:00:00.123456Z', '0001-01-01', '2020-10-09 07:23:10']) expect(adxValue('datetime', v)).toBe(v);
    for (const v of ['infinity', '-infinity', '0044-03-15 BC', '0044-03-15 10:00:00+00 BC', '10000-01-01']) expect(adxValue('datetime', v)).toBe(UNFIT);
  });

  it("timespan: PostgreSQL's 24:00:00 is one day", () => {
    expect(['24:00:00', '24:00:00.000000', '07:23:10.5'].map((v) => adxValue('timespan', v))).toEqual(['1.00:00:00', '1.00:00:00', '07:23:10.5']);
  });

  it('string, dynamic, bool, guid and null: as they are', () => {
    for (const type of ['string', 'dynamic', 'bool', 'guid'] as const) expect(adxValue(type, 'NaN')).toBe('NaN');
    expect(adxValue('real', null)).toBeNull();
  });

  it('keeps the text of what cannot be held', () => {
    expect([rawText('NaN'), rawText(true), rawText({ a: 1 })]).toEqual(['NaN', 'true', '{"a":1}']);
  });
});
