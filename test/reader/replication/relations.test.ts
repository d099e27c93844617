import { describe, expect, test } from '@jest/globals';
import { decodeTuple, decodeValues } from '../../../src/reader/replication/relations.js';
import type { RelationInfo } from '../../../src/reader/replication/relations.js';

describe('decodeValues (column texts in order) and decodeTuple (the library tuple)', () => {
  const rel = {
    schema: 'public',
    table: 'items',
    columns: [
      { name: 'id', typeOid: 20, typmod: -1, decode: (t: string) => Number(t) },
      { name: 'note', typeOid: 25, typmod: -1, decode: (t: string) => t },
      { name: 'doc', typeOid: 25, typmod: -1, decode: (t: string) => `<${t}>` },
      { name: 'blob', typeOid: 17, typmod: -1, decode: (t: string) => t.length },
    ],
  } as unknown as RelationInfo;
  const asTuple = (values: (string | Buffer | null | undefined)[]) => {
    const t = Object.create(null) as Record<string, unknown>;
    values.forEach((v, i) => (t[rel.columns[i]!.name] = v));
    return t;
  };

  test.each([
    ['every kind', ['7', 'é', null, Buffer.from('abc')]],
    ['unchanged TOAST values', ['8', undefined, 'x', undefined]],
    ['fewer values than columns', ['9', 'y']],
  ])('%s: the same row and unchanged columns', (_name, values) => {
    const want = decodeTuple(rel, asTuple(values));
    const got = decodeValues(rel, values);
    expect(got.row).toEqual(want.row);
    expect(Object.keys(got.row)).toEqual(Object.keys(want.row));
    expect(got.unchanged ?? []).toEqual(want.unchanged);
  });

  test('more values than columns: an error naming the table', () => {
    expect(() => decodeValues(rel, ['1', '2', '3', '4', '5'])).toThrow('a change of public.items has 5 columns, its relation 4');
  });
});
