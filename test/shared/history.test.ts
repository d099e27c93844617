import { describe, expect, it } from '@jest/globals';
import { historyRows } from '../../src/shared/history/pivot.js';
import { changeEvent, holding } from '../helpers/events.js';

const route = { columns: ['holding_stock', 'holding_quantity'], context: ['user_id'] };
const ev = (op: 'c' | 'u' | 'd' | 't' | 'r', before: Record<string, unknown> | null, after: Record<string, unknown> | null, lsn = 1000) =>
  changeEvent({ table: 'bank.holding', op, before, after, key: op === 't' ? null : { holding_id: 1000 }, lsn, tsMs: Date.UTC(2021, 5, 1) });

describe('historyRows (holding_pivot generalised)', () => {
  it('gives one row per column for an insert, with no old value', () => {
    const rows = historyRows(ev('c', null, holding(1000, 'VFIAX', 10)), route);
    expect(rows.map((r) => [r.Column, r.OldValue, r.NewValue, r.OldValueKnown])).toEqual([
      ['holding_stock', null, 'VFIAX', true],
      ['holding_quantity', null, 10, true],
    ]);
    expect(rows[0]).toMatchObject({
      SourceTable: 'bank.holding',
      Key: { holding_id: 1000 },
      KeyText: '1000',
      Op: 'c',
      Lsn: 1000,
      CommitTime: '2021-06-01T00:00:00.000Z',
      Context: { user_id: 1 },
    });
  });

  it('gives rows only for the changed columns of an update with a full before image', () => {
    const rows = historyRows(ev('u', holding(1000, 'VFIAX', 10), holding(1000, 'VFIAX', 100)), route);
    expect(rows.map((r) => [r.Column, r.OldValue, r.NewValue, r.OldValueKnown])).toEqual([['holding_quantity', 10, 100, true]]);
  });

  it('says the old value is unknown when there is no before image (REPLICA IDENTITY DEFAULT)', () => {
    const rows = historyRows(ev('u', null, holding(1000, 'VFIAX', 100)), route);
    expect(rows.map((r) => [r.Column, r.OldValue, r.OldValueKnown])).toEqual([
      ['holding_stock', null, false],
      ['holding_quantity', null, false],
    ]);
  });

  it('gives old values and no new value for a delete; key-only before images are flagged', () => {
    expect(historyRows(ev('d', holding(1000, 'SP500', 1), null), route).map((r) => [r.Column, r.OldValue, r.NewValue, r.OldValueKnown])).toEqual([
      ['holding_stock', 'SP500', null, true],
      ['holding_quantity', 1, null, true],
    ]);
    expect(historyRows(ev('d', { holding_id: 1000 }, null), route).every((r) => !r.OldValueKnown)).toBe(true);
  });

  it('tracks every non-key column by default, skips unchanged TOAST columns, snapshot reads and disabled tables', () => {
    const event = ev('u', holding(1000, 'A', 1), holding(1000, 'B', 2));
    event.source.unchanged_toast = ['holding_quantity'];
    expect(historyRows(event, {}).map((r) => r.Column)).toEqual(['holding_stock']);
    expect(historyRows(ev('r', null, holding(1000, 'A', 1)), route)).toEqual([]);
    expect(historyRows(ev('c', null, holding(1000, 'A', 1)), { enabled: false })).toEqual([]);
  });

  it('tracks the declared columns too by default, so a key-only delete records which columns went away (unknown old values)', () => {
    const keyOnly = ev('d', { holding_id: 1000 }, null);
    expect(historyRows(keyOnly, {}, ['holding_id', 'user_id', 'holding_stock']).map((r) => [r.Column, r.OldValueKnown])).toEqual([
      ['user_id', false],
      ['holding_stock', false],
    ]);
  });

  it('key-only deletes produce no history row: a delete with no tracked column is one row without column, old values unknown (like a truncate)', () => {
    // Default replica identity: the before image is the key. Without history.columns and declared
    // columns nothing is tracked, yet the delete must leave a trace.
    const keyOnly = ev('d', { holding_id: 1000 }, null);
    expect(historyRows(keyOnly, {})).toEqual([
      {
        SourceTable: 'bank.holding',
        Key: { holding_id: 1000 },
        KeyText: '1000',
        Column: null,
        OldValue: null,
        NewValue: null,
        OldValueKnown: false,
        Op: 'd',
        CommitTime: '2021-06-01T00:00:00.000Z',
        Lsn: 1000,
        TxId: 653,
        Context: null,
      },
    ]);
    // Declared columns that are all key columns, or an empty history.columns, track nothing either.
    expect(historyRows(keyOnly, {}, ['holding_id']).map((r) => [r.Op, r.Column])).toEqual([['d', null]]);
    expect(historyRows(ev('d', holding(1000, 'A', 1), null), { columns: [] }).map((r) => [r.Op, r.Column])).toEqual([['d', null]]);
    // Inserts and updates with nothing tracked stay without rows: nothing changed that is followed.
    expect(historyRows(ev('u', { holding_id: 1000 }, { holding_id: 1000 }), {})).toEqual([]);
  });

  it('uses the row version and the commit time of every sink: an event without a usable one is a permanent failure', () => {
    expect(() => historyRows(ev('c', null, holding(1000, 'A', 1), Number.NaN), route)).toThrow(
      expect.objectContaining({ code: 'NOT_AN_ENVELOPE', canRetry: false }),
    );
    const badTime = ev('c', null, holding(1000, 'A', 1));
    badTime.source.ts_ms = 1e20;
    expect(() => historyRows(badTime, route)).toThrow(/no usable source.ts_ms/);
  });

  it('marks a truncate with one row without column', () => {
    expect(historyRows(ev('t', null, null), route)).toEqual([expect.objectContaining({ Op: 't', Column: null, KeyText: null })]);
  });
});
