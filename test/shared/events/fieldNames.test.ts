import { describe, expect, it } from '@jest/globals';
import { escapeFieldNames, fieldName } from '../../../src/shared/events/fieldNames.js';

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
