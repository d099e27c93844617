import { describe, expect, test } from '@jest/globals';
import { parseSignal, SignalError, splitTableName } from '../../../src/reader/snapshot/signals.js';

const refused = (row: Record<string, unknown>): SignalError => {
  try {
    parseSignal(row);
  } catch (err) {
    if (err instanceof SignalError) return err;
    throw err;
  }
  throw new Error('not refused');
};

describe('signals: Debezium format', () => {
  test('execute-snapshot with data-collections and additional-conditions, as Debezium 3 writes it', () => {
    const data = JSON.stringify({
      'data-collections': ['public.orders', '"My Schema"."Odd.Name"'],
      type: 'INCREMENTAL',
      'additional-conditions': [{ 'data-collection': 'public.orders', filter: "status = 'open'" }],
    });
    expect(parseSignal({ id: 's1', type: 'execute-snapshot', data })).toEqual({
      kind: 'execute-snapshot',
      id: 's1',
      targets: [
        { name: 'public.orders', filter: "status = 'open'" },
        { name: '"My Schema"."Odd.Name"', filter: null },
      ],
    });
  });

  test('stop-snapshot of some tables, or of all without data-collections; other types are ignored, not refused', () => {
    expect(parseSignal({ id: 'x', type: 'stop-snapshot', data: '{"data-collections": ["public.a"], "type": "incremental"}' })).toEqual({
      kind: 'stop-snapshot',
      id: 'x',
      tables: ['public.a'],
    });
    expect(parseSignal({ id: 'y', type: 'stop-snapshot', data: '{"type": "incremental"}' })).toEqual({ kind: 'stop-snapshot', id: 'y', tables: null });
    expect(parseSignal({ id: 'z', type: 'log', data: '{"message": "hi"}' })).toEqual({ kind: 'ignored', id: 'z', type: 'log' });
  });

  test('malformed signals are refused with what is wrong and a fix', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ id: '', type: 'execute-snapshot', data: '{}' }, /without an id/],
      [{ id: 'a', type: 'execute-snapshot', data: '{"data-collections": [' }, /not JSON/],
      [{ id: 'a', type: 'execute-snapshot', data: '[1]' }, /JSON object/],
      [{ id: 'a', type: 'execute-snapshot', data: '{"type": "blocking", "data-collections": ["public.a"]}' }, /"blocking" is not supported/],
      [{ id: 'a', type: 'execute-snapshot', data: '{"data-collections": []}' }, /non-empty array/],
      [{ id: 'a', type: 'execute-snapshot', data: '{"data-collections": [1]}' }, /non-empty array/],
      [{ id: 'a', type: 'execute-snapshot', data: '{"data-collections": ["public.a"], "additional-conditions": {}}' }, /must be an array/],
      [
        {
          id: 'a',
          type: 'execute-snapshot',
          data: '{"data-collections": ["public.a"], "additional-conditions": [{"data-collection": "public.a", "filter": " "}]}',
        },
        /non-empty "filter"/,
      ],
      [
        {
          id: 'a',
          type: 'execute-snapshot',
          data: '{"data-collections": ["public.a"], "additional-conditions": [{"data-collection": "public.b", "filter": "x"}]}',
        },
        /not in data-collections/,
      ],
      [{ id: 'a', type: 'stop-snapshot', data: '{"data-collections": "public.a"}' }, /array/],
    ];
    for (const [row, why] of cases) {
      const err = refused(row);
      expect(err.message).toMatch(why);
      expect(err.fix.length).toBeGreaterThan(5);
    }
  });

  test('table names: schema.table, parts optionally double-quoted (dots and quotes inside quotes)', () => {
    expect(splitTableName('public.orders')).toEqual({ schema: 'public', table: 'orders' });
    expect(splitTableName(' "My Schema"."Odd.Na""me" ')).toEqual({ schema: 'My Schema', table: 'Odd.Na"me' });
    expect(splitTableName('orders')).toBeNull();
    expect(splitTableName('a.b.c')).toBeNull();
  });
});
