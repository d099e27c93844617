import { describe, expect, it } from '@jest/globals';
import { adxColumnName, escapeFieldNames, fieldName } from '../../../src/shared/events/fieldNames.js';

describe('fieldName', () => {
  it('leaves ordinary names alone, including other names starting with one underscore', () => {
    for (const name of ['id', 'holding_stock', 'Weird Name', 'x;drop table y', '_private', 'ünï', '*']) expect(fieldName(name)).toBe(name);
  });

  it('escapes what Elasticsearch cannot hold and what the sinks reserve', () => {
    expect(
      ['_id', '_source', '_doc_count', '__op', '__deleted', '__version', '', ' ', '\t', 'x.y', '.z', 'a..b', '%', '%2E', '\u001c'].map((name) =>
        fieldName(name),
      ),
    ).toEqual([
      '%5Fid',
      '%5Fsource',
      '%5Fdoc_count',
      '%5F_op',
      '%5F_deleted',
      '%5F_version',
      '%',
      '%20',
      '%09',
      'x%2Ey',
      '%2Ez',
      'a%2E%2Eb',
      '%25',
      '%252E',
      '%1C',
    ]);
  });

  it('is injective: distinct columns never share a field name', () => {
    const names = ['', '%', '%25', ' ', '%20', '_id', '%5Fid', '__op', '%5F_op', '_%5Fop', 'x.y', 'x%2Ey', 'x', '.', '%2E', '_', '__', '%5F_'];
    const escaped = names.map((n) => fieldName(n));
    expect(new Set(escaped).size).toBe(names.length);
  });

  it('copies a row only when a name changes', () => {
    const plain = { a: 1, b: 2 };
    expect(escapeFieldNames(plain)).toBe(plain);
    expect(escapeFieldNames({ a: 1, 'a.b': 2 })).toEqual({ a: 1, 'a%2Eb': 2 });
    expect(escapeFieldNames(null)).toBeNull();
  });
});

describe('adxColumnName (the field name, then what an ADX identifier cannot hold)', () => {
  /** The documented inverse: `_xHH_` → `%HH`, then percent-decoding (`_x00_` is the empty name). */
  const decode = (name: string): string => (name === '_x00_' ? '' : decodeURIComponent(name.replace(/_x([0-9A-F]{2})_/g, '%$1')));

  it('leaves names ADX accepts and the field-name rule leaves alone unchanged', () => {
    for (const name of ['id', 'holding_stock', 'Weird Name', 'line-no', '_private', 'ünï', 'pos_x', 'x_', '_']) expect(adxColumnName(name)).toBe(name);
  });

  it("writes the field name's escapes, characters KQL identifiers cannot hold, and reserved underscores as _xHH_", () => {
    expect(['__op', '_id', '', ' ', 'x.y', '%', 'x:y', "it's", 'x;drop table y', '[b]', 'e😀', 'total__', '_x41_', 'a._'].map(adxColumnName)).toEqual([
      '_x5F__op',
      '_x5F_id',
      '_x00_',
      '_x20_',
      'x_x2E_y',
      '_x25_',
      'x_x3A_y',
      'it_x27_s',
      'x_x3B_drop table y',
      '_x5B_b_x5D_',
      'e_xF0__x9F__x98__x80_',
      'total__x5F_',
      '_x5F_x41_',
      'a_x2E__x5F_',
    ]);
  });

  it('is injective and reversible, and its names are valid KQL identifiers not starting or ending with __', () => {
    const names = ['', '%', '%25', ' ', '_x20_', '_x5F_', '__op', '_x5F__op', 'x.y', 'x_x2E_y', 'x%2Ey', 'a__', 'a__x5F_', '_x4%', 'x:y', '_x00_', '__', '_'];
    const escaped = names.map(adxColumnName);
    expect(new Set(escaped).size).toBe(names.length);
    expect(escaped.map(decode)).toEqual(names);
    for (const name of escaped) {
      expect(name).toMatch(/^[\p{L}\p{Nd}_ .-]{1,1024}$/u);
      expect(name.startsWith('__') || name.endsWith('__')).toBe(false);
    }
  });
});
