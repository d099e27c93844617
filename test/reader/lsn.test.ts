import { describe, expect, test } from '@jest/globals';
import { formatLsn, parseLsn } from '../../src/reader/lsn.js';

describe('lsn', () => {
  test('round trip', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(() => parseLsn('nope')).toThrow();
  });
});
