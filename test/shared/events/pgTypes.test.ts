import { describe, expect, test } from '@jest/globals';
import {
  decodeBytea,
  decodeFloat,
  decodeInt8,
  decodeJson,
  decodeTimestamp,
  decodeTimestamptz,
  parseArray,
  decodeInt,
} from '../../../src/shared/events/pgTypes.js';

describe('type decoding', () => {
  test('int8 exact: number while safe, string beyond 2^53', () => {
    expect(decodeInt8('9007199254740991')).toBe(9007199254740991);
    expect(decodeInt8('9007199254740993')).toBe('9007199254740993');
    expect(decodeInt8('-9223372036854775808')).toBe('-9223372036854775808');
  });
  test('floats', () => {
    expect(decodeFloat('1.5')).toBe(1.5);
    expect(decodeFloat('NaN')).toBe('NaN');
    expect(decodeFloat('-Infinity')).toBe('-Infinity');
  });
  test('timestamps', () => {
    expect(decodeTimestamptz('2024-05-01 10:00:00.123456+00')).toBe('2024-05-01T10:00:00.123456Z');
    expect(decodeTimestamptz('2024-05-01 10:00:00+05:30')).toBe('2024-05-01T04:30:00Z');
    expect(decodeTimestamptz('2024-05-01 01:00:00.5-02')).toBe('2024-05-01T03:00:00.5Z');
    expect(decodeTimestamptz('infinity')).toBe('infinity');
    expect(decodeTimestamp('2024-05-01 10:00:00.000001')).toBe('2024-05-01T10:00:00.000001');
  });
  test('bytea → base64', () => {
    expect(decodeBytea('\\x00ff10')).toBe(Buffer.from([0, 255, 16]).toString('base64'));
  });
  test('json keeps exact numbers', () => {
    expect(JSON.stringify(decodeJson('{"a": 12345678901234567890, "b": 1.50, "c": [1, "x"]}'))).toBe('{"a":12345678901234567890,"b":1.50,"c":[1,"x"]}');
    // Numbers a double reproduces stay plain values; the others (-0, exponents, long digits) keep their text; strings are never touched.
    expect(decodeJson('{"a": 1, "b": [2.5, -3], "s": "1.50 12345678901234567890"}')).toEqual({ a: 1, b: [2.5, -3], s: '1.50 12345678901234567890' });
    expect(JSON.stringify(decodeJson('[-0, 1e5, 1E-7, 0.1, "x\\"y 1.0", 123456789012345678]'))).toBe('[-0,1e5,1E-7,0.1,"x\\"y 1.0",123456789012345678]');
  });
  test('arrays: nested, quoted, NULL', () => {
    expect(parseArray('{1,2,NULL}', decodeInt)).toEqual([1, 2, null]);
    expect(parseArray('{{a,b},{"c d","e\\"f"}}', (t) => t)).toEqual([
      ['a', 'b'],
      ['c d', 'e"f'],
    ]);
    expect(parseArray('{}', (t) => t)).toEqual([]);
    expect(parseArray('{"NULL",NULL}', (t) => t)).toEqual(['NULL', null]);
    expect(parseArray('[0:1]={7,8}', decodeInt)).toEqual([7, 8]);
  });
});
