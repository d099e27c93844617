import { describe, expect, test } from '@jest/globals';
import { quoteIdent, quoteLiteral } from '../../../src/shared/core/sql.js';

describe('identifiers', () => {
  test('quoteIdent / quoteLiteral', () => {
    expect(quoteIdent('x;drop table y')).toBe('"x;drop table y"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
  });
});
