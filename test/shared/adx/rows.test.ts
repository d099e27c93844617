import { describe, expect, it } from '@jest/globals';
import { adxRoutes } from '../../../src/shared/adx/config.js';
import { toHistoryJsonLines, toHistoryRow, toHistoryRows, toJsonLines, toMarkRow, toTableRow, toTruncateRow } from '../../../src/shared/adx/rows.js';
import { findNewColumns, HISTORY_COLUMNS } from '../../../src/shared/adx/schema.js';
import { historyRows } from '../../../src/shared/history/pivot.js';
import { declaredColumns, DEFAULT_ROUTES, Router } from '../../../src/shared/routing/routes.js';
import type { AdxTableRoute } from '../../../src/shared/adx/types.js';
import { changeEvent, holding, order } from '../../helpers/events.js';
import { controlMessage } from '../../../src/shared/events/controlMessage.js';
import type { ChangeEvent } from '../../../src/shared/events/changeEvent.js';
import { rawJSON } from '../../../src/shared/events/exactJson.js';

const [ordersRoute, holdingRoute] = adxRoutes(new Router(DEFAULT_ROUTES)) as [AdxTableRoute, AdxTableRoute];

describe('toTableRow', () => {
  it('is the after image plus the CDC columns for an insert', () => {
    expect(toTableRow(changeEvent({ op: 'c', after: order(51), lsn: 34220200 }), ordersRoute)).toEqual({
      orderid: 51,
      custid: 306,
      amount: 183,
      city: 'Austin',
      purchase_time: '2020-10-09 07:23:10',
      __op: 'c',
      __lsn: 34220200,
      __commit_lsn: 34220208,
      __commit_time: '2020-10-07T07:56:32.691Z',
      __deleted: false,
      __table: 'retail.orders_info',
      __txid: 653,
      __snapshot: 'false',
      __unchanged_toast: null,
      __old_key: null,
      __key: '{"orderid":51}',
      __from_key: null,
    });
  });

  it('keys the row by the key its event carries (__key, what the latest-state view groups by): after a key change the new key, never merging with an old key that prints the same', () => {
    const before = changeEvent({ op: 'u', after: { ...order(5), code: '5' }, key: { orderid: 5 }, lsn: 10 });
    const after = changeEvent({ op: 'u', after: { ...order(5), code: '5' }, key: { code: '5' }, lsn: 20 });
    const deleted = changeEvent({ op: 'd', before: { code: '5' }, key: { code: '5' }, lsn: 30 });
    expect([before, after, deleted].map((e) => toTableRow(e, ordersRoute)?.__key)).toEqual(['{"orderid":5}', '{"code":"5"}', '{"code":"5"}']);
    // Two columns, in the key's order; an exact number stays its text.
    const two = changeEvent({ op: 'c', after: { a: 1, b: '9007199254740993' }, key: { b: rawJSON('9007199254740993'), a: 1 }, lsn: 40 });
    expect(toTableRow(two, ordersRoute)?.__key).toBe('{"b":9007199254740993,"a":1}');
    // The create of a key change names the old key's __key.
    const moved = changeEvent({ op: 'c', after: order(6), key: { orderid: 6 }, lsn: 50 });
    moved.old_key = { orderid: 5 };
    expect(toTableRow(moved, ordersRoute)).toMatchObject({ __key: '{"orderid":6}', __from_key: '{"orderid":5}' });
  });

  it('is the key (and before image, when there is one) with __deleted for a delete', () => {
    const row = toTableRow(changeEvent({ op: 'd', before: { orderid: 51 }, lsn: 500 }), ordersRoute);
    expect(row).toMatchObject({ orderid: 51, __op: 'd', __deleted: true, __lsn: 500 });
    expect(row).not.toHaveProperty('city');
  });

  it('uses the row version (source.lsn) as __lsn: a row without a usable one is a permanent failure, as in every sink', () => {
    const event = changeEvent({ op: 'r', after: order(1), lsn: null });
    expect(() => toTableRow(event, ordersRoute)).toThrow(expect.objectContaining({ code: 'NOT_AN_ENVELOPE', canRetry: false }));
    expect(() => toTruncateRow(changeEvent({ op: 't', lsn: null }), ordersRoute)).toThrow(/no usable source.lsn/);
    expect(toTableRow(changeEvent({ op: 'r', after: order(1), lsn: 7 }), ordersRoute)).toMatchObject({ __lsn: 7, __op: 'r', __snapshot: 'true' });
  });

  it('a commit time that is not a date is a permanent failure (the record is dead-lettered, not retried)', () => {
    const event = changeEvent({ op: 'c', after: order(1), lsn: 8, tsMs: 1e20 });
    expect(() => toTableRow(event, ordersRoute)).toThrow(expect.objectContaining({ code: 'NOT_AN_ENVELOPE', canRetry: false }));
  });

  it('lists unchanged TOAST columns it could not fill', () => {
    expect(toTableRow(changeEvent({ op: 'u', after: order(1), lsn: 9, unchangedToast: ['city'] }), ordersRoute)).toMatchObject({ __unchanged_toast: ['city'] });
  });

  it('types columns by the route, else by source.types: a value the type cannot hold is null, with its text in __raw_<column>', () => {
    const event = changeEvent({ op: 'u', after: { ...order(1), amount: 'NaN', f8: 'Infinity', note: 'NaN' }, lsn: 9 });
    event.source.types = { amount: 'numeric', f8: 'float8' };
    // amount is declared int (the route wins), f8 is a float8 (real), note is not listed (text).
    expect(toTableRow(event, ordersRoute)).toMatchObject({ amount: null, __raw_amount: 'NaN', f8: null, __raw_f8: 'Infinity', note: 'NaN' });
  });

  it('a key value its ADX type cannot hold is a permanent failure (the latest-state view groups by the key)', () => {
    const [route] = adxRoutes(new Router({ 'public.ticks': { keys: ['at'], adx: { table: 'Ticks', columns: { at: 'datetime', v: 'real' } } } }));
    const event = changeEvent({ table: 'public.ticks', op: 'c', after: { at: 'infinity', v: 1 }, key: { at: 'infinity' }, lsn: 9 });
    expect(() => toTableRow(event, route!)).toThrow(expect.objectContaining({ code: 'REJECTED_BY_SINK', canRetry: false }));
    expect(() => toTableRow(event, route!)).toThrow('Key column "at" of public.ticks holds "infinity", which its ADX type datetime cannot hold');
  });

  it('names the old key of a primary-key change in __old_key, by ADX column names and with the values its key columns hold', () => {
    const event = changeEvent({ op: 'c', after: order(2), key: { orderid: 2 }, lsn: 9, unchangedToast: ['city'] });
    event.old_key = { orderid: 1 };
    expect(toTableRow(event, ordersRoute)).toMatchObject({ orderid: 2, __unchanged_toast: ['city'], __old_key: { orderid: 1 } });
    const [route] = adxRoutes(new Router({ 'a.t': { keys: ['big id'], adx: { table: 'T', columns: { 'big id': 'long', 'x:y': 'string' } } } }));
    const big = changeEvent({ table: 'a.t', op: 'c', after: { 'big id': '9007199254740993' }, key: { 'big id': '9007199254740993' }, lsn: 9 });
    big.old_key = { 'big id': '9007199254740995' };
    expect(JSON.stringify(toTableRow(big, route!)?.__old_key)).toBe('{"big id":9007199254740995}');
    expect(toTableRow(changeEvent({ op: 'u', after: order(2), lsn: 10 }), ordersRoute)).toMatchObject({ __old_key: null });
  });

  it('gives no row for truncates and logical messages', () => {
    expect(toTableRow(changeEvent({ op: 't', lsn: 1 }), ordersRoute)).toBeNull();
    expect(toTableRow(changeEvent({ op: 'm', lsn: 1 }), ordersRoute)).toBeNull();
  });
});

describe('toHistoryRows (per-column change history)', () => {
  const base = { SourceTable: 'bank.holding', Key: { holding_id: 1000 }, TxId: 653, Context: { user_id: 1 }, CommitTime: '2020-10-07T07:56:32.691Z' };

  it('records the tracked columns of an insert with no old value', () => {
    expect(toHistoryRows(changeEvent({ table: 'bank.holding', op: 'c', after: holding(1000, 'VFIAX', 10), lsn: 10 }), holdingRoute)).toEqual([
      { ...base, Op: 'c', Lsn: 10, Column: 'holding_stock', OldValue: null, NewValue: 'VFIAX', OldValueKnown: true },
      { ...base, Op: 'c', Lsn: 10, Column: 'holding_quantity', OldValue: null, NewValue: 10, OldValueKnown: true },
    ]);
  });

  it('records only changed columns of an update with a before image (REPLICA IDENTITY FULL)', () => {
    const event = changeEvent({ table: 'bank.holding', op: 'u', before: holding(1000, 'VFIAX', 10), after: holding(1000, 'VFIAX', 100), lsn: 20 });
    expect(toHistoryRows(event, holdingRoute)).toEqual([
      { ...base, Op: 'u', Lsn: 20, Column: 'holding_quantity', OldValue: 10, NewValue: 100, OldValueKnown: true },
    ]);
  });

  it('records every tracked column with OldValueKnown=false when there is no before image (REPLICA IDENTITY DEFAULT)', () => {
    const event = changeEvent({ table: 'bank.holding', op: 'u', before: null, after: holding(1000, 'SP500', 100), lsn: 30 });
    expect(toHistoryRows(event, holdingRoute)).toEqual([
      { ...base, Op: 'u', Lsn: 30, Column: 'holding_stock', OldValue: null, NewValue: 'SP500', OldValueKnown: false },
      { ...base, Op: 'u', Lsn: 30, Column: 'holding_quantity', OldValue: null, NewValue: 100, OldValueKnown: false },
    ]);
  });

  it('records the old values of a delete, unknown where the before image lacks the column', () => {
    const full = changeEvent({ table: 'bank.holding', op: 'd', before: holding(1000, 'SP500', 1, 3), lsn: 40 });
    expect(toHistoryRows(full, holdingRoute)).toEqual([
      { ...base, Context: { user_id: 3 }, Op: 'd', Lsn: 40, Column: 'holding_stock', OldValue: 'SP500', NewValue: null, OldValueKnown: true },
      { ...base, Context: { user_id: 3 }, Op: 'd', Lsn: 40, Column: 'holding_quantity', OldValue: 1, NewValue: null, OldValueKnown: true },
    ]);
    const keyOnly = changeEvent({ table: 'bank.holding', op: 'd', before: { holding_id: 1000 }, lsn: 41 });
    expect(toHistoryRows(keyOnly, holdingRoute).map((r) => [r.Column, r.OldValueKnown, r.Context])).toEqual([
      ['holding_stock', false, { user_id: null }],
      ['holding_quantity', false, { user_id: null }],
    ]);
  });

  it('key-only deletes produce no history row: a table whose declared columns are its key gets one row without column for the delete', () => {
    const [keyOnlyRoute] = adxRoutes(new Router({ 'public.tags': { keys: ['id'], adx: { table: 'Tags', columns: { id: 'long' } } } })) as [AdxTableRoute];
    const event = changeEvent({ table: 'public.tags', op: 'd', key: { id: 5 }, before: { id: 5 }, lsn: 45 });
    expect(toHistoryRows(event, keyOnlyRoute)).toEqual([
      {
        ...base,
        SourceTable: 'public.tags',
        Key: { id: 5 },
        Context: null,
        Op: 'd',
        Lsn: 45,
        Column: null,
        OldValue: null,
        NewValue: null,
        OldValueKnown: false,
      },
    ]);
  });

  it('tracks every non-key column (new ones included) when historyColumns is not configured', () => {
    const event = changeEvent({ op: 'u', before: order(7, { amount: 10 }), after: { ...order(7, { amount: 12 }), coupon: 'X1' }, lsn: 50 });
    expect(toHistoryRows(event, ordersRoute).map((r) => [r.Column, r.OldValue, r.NewValue, r.OldValueKnown])).toEqual([
      ['amount', 10, 12, true],
      ['coupon', null, 'X1', false],
    ]);
  });

  it('skips unchanged TOAST columns and snapshot reads', () => {
    const toast = changeEvent({ op: 'u', before: null, after: order(7), lsn: 60, unchangedToast: ['city'] });
    expect(toHistoryRows(toast, ordersRoute).map((r) => r.Column)).toEqual(['custid', 'amount', 'purchase_time']);
    expect(toHistoryRows(changeEvent({ op: 'r', after: order(7), lsn: 61 }), ordersRoute)).toEqual([]);
    expect(toHistoryRows(changeEvent({ op: 'm', lsn: 63 }), ordersRoute)).toEqual([]);
  });

  it('is the shared pivot (historyRows, as the Elasticsearch history writes it) without KeyText: exactly the history table columns', () => {
    const keyOnlyDelete = changeEvent({ op: 'd', before: { orderid: 7 }, lsn: 70 });
    const pivot = historyRows(keyOnlyDelete, DEFAULT_ROUTES['retail.orders_info']!.history, declaredColumns(DEFAULT_ROUTES['retail.orders_info']!));
    const rows = toHistoryRows(keyOnlyDelete, ordersRoute);
    expect(rows).toEqual(pivot.map(({ KeyText: _keyText, ...row }) => row));
    expect(rows.map((r) => r.Column)).toEqual(['custid', 'city', 'amount', 'purchase_time']);
    for (const row of rows) expect(Object.keys(row).sort()).toEqual(HISTORY_COLUMNS.map((c) => c.name).sort());
  });

  it('gives no rows for a table whose history is off (historyTable null, or history.enabled false)', () => {
    const off = adxRoutes(new Router({ 'retail.orders_info': { ...DEFAULT_ROUTES['retail.orders_info'], history: { enabled: false } } }))[0]!;
    expect(off.historyTable).toBeNull();
    expect(toHistoryRows(changeEvent({ op: 'c', after: order(1), lsn: 5 }), off)).toEqual([]);
  });

  it('records a truncate as one row without column or key (as the Elasticsearch history does)', () => {
    expect(toHistoryRows(changeEvent({ table: 'bank.holding', op: 't', lsn: 62 }), holdingRoute)).toEqual([
      {
        SourceTable: 'bank.holding',
        Key: null,
        Op: 't',
        CommitTime: '2020-10-07T07:56:32.691Z',
        Lsn: 62,
        TxId: 653,
        Context: null,
        Column: null,
        OldValue: null,
        NewValue: null,
        OldValueKnown: false,
      },
    ]);
  });
});

describe('toTruncateRow (the truncates table)', () => {
  it('is the source table, the ADX table whose rows it removes, the truncate LSN, commit time and transaction', () => {
    expect(toTruncateRow(changeEvent({ op: 't', lsn: 34230000 }), ordersRoute)).toEqual({
      SourceTable: 'retail.orders_info',
      Table: 'Orders',
      Lsn: 34230000,
      CommitTime: '2020-10-07T07:56:32.691Z',
      TxId: 653,
      Kind: 'truncate',
      Snapshot: null,
      Partition: null,
      Partitions: null,
    });
  });

  it('is null for every other operation', () => {
    for (const op of ['c', 'u', 'd', 'r', 'm'] as const) expect(toTruncateRow(changeEvent({ op, after: order(1), lsn: 5 }), ordersRoute)).toBeNull();
  });
});

describe('toMarkRow (key changes and full incremental snapshots in the truncates table)', () => {
  const control = (kind: string, content: Record<string, unknown>, lsn: number): ChangeEvent => {
    const event = changeEvent({ op: 'm', after: null, key: null, lsn });
    (event as unknown as { message: unknown }).message = { prefix: 'pg-cdc', kind, content: { table: 'retail.orders_info', ...content } };
    return event;
  };
  const schemaChange = (key: string[], previousKey: string[]) =>
    control('schema_change', { columns: [], key, previous: { columns: [], key: previousKey }, partitions: 3 }, 700);
  const mark = (event: ChangeEvent, partition = '2') => toMarkRow(event, ordersRoute, controlMessage(event)!, partition);
  const common = { SourceTable: 'retail.orders_info', Table: 'Orders', CommitTime: '2020-10-07T07:56:32.691Z', TxId: 653 };

  it('a schema change that changes the key: a key_change at its LSN with the partition count; one that keeps the key: nothing', () => {
    expect(mark(schemaChange(['code'], ['orderid']))).toEqual({ ...common, Lsn: 700, Kind: 'key_change', Snapshot: null, Partition: '2', Partitions: 3 });
    expect(mark(schemaChange(['orderid'], ['orderid']))).toBeNull();
  });

  it('the start and end of a full snapshot: by snapshot id and partition; a snapshot with a WHERE condition: nothing', () => {
    expect(mark(control('snapshot_started', { id: 's1', where: null }, 800), '0')).toEqual({
      ...common,
      Lsn: 800,
      Kind: 'snapshot_started',
      Snapshot: 's1',
      Partition: '0',
      Partitions: null,
    });
    expect(mark(control('snapshot_done', { id: 's1', where: null, rows: 9 }, 900), '1')).toMatchObject({
      Lsn: 900,
      Kind: 'snapshot_done',
      Snapshot: 's1',
      Partition: '1',
    });
    expect(mark(control('snapshot_done', { id: 's2', where: 'id < 5' }, 950))).toBeNull();
  });
});

describe('serialisation and new columns', () => {
  it('writes JSON lines (bigint as string)', () => {
    expect(toJsonLines([{ a: 1 }, { b: 2n }]).toString()).toBe('{"a":1}\n{"b":"2"}\n');
    expect(toJsonLines([]).length).toBe(0);
    // Lines beyond the first buffer, and multi-byte text: the buffer grows and the bytes are UTF-8.
    const big = Array.from({ length: 40 }, (_, i) => ({ i, text: `${'é€😀'.repeat(50 + i * 20)}` }));
    expect(toJsonLines(big).toString('utf8')).toBe(big.map((r) => JSON.stringify(r) + '\n').join(''));
  });

  it('writes the history rows of one change with their shared fields once, and the bytes are those of toJsonLines', () => {
    const wide = { ...order(7), note: 'a "quoted"\nnote é', tags: [1, 2], doc: { n: 12345678901234567890n } };
    const events = [
      changeEvent({ op: 'c', after: order(1), lsn: 10 }),
      changeEvent({ op: 'c', after: order(2), lsn: 20 }), // another change right after: new shared fields
      changeEvent({ op: 'u', before: { ...order(1), amount: 1 }, after: order(1), lsn: 30 }),
      changeEvent({ op: 'u', after: wide, lsn: 40 }), // no before image; a bigint value (the replacer path)
      changeEvent({ op: 'd', before: { orderid: 3 }, lsn: 50 }),
      changeEvent({ table: 'bank.holding', op: 'c', after: holding(1000, 'VFIAX', 10), lsn: 60 }), // with Context
      changeEvent({ table: 'bank.holding', op: 't', lsn: 70 }),
    ];
    const rows = events.flatMap((e) => toHistoryRows(e, e.source.table === 'holding' ? holdingRoute : ordersRoute));
    // Rows that lack fields (undefined is left out by JSON.stringify), some of them all shared ones.
    rows.push({ ...rows[0]!, TxId: undefined, Context: undefined });
    rows.push(toHistoryRow({ ...historyRows(events[0]!)[0]!, Column: 'x', OldValue: undefined, NewValue: undefined }));
    rows.push({ Column: 'only', OldValue: 1, NewValue: 2, OldValueKnown: true }, { SourceTable: 's', Key: null }, {});
    expect(rows.length).toBeGreaterThan(events.length + 3);
    const lines = toHistoryJsonLines(rows).toString('utf8');
    expect(lines).toBe(toJsonLines(rows).toString('utf8'));
    expect(
      lines
        .split('\n')
        .slice(0, -1)
        .map((l) => JSON.parse(l) as unknown),
    ).toHaveLength(rows.length);
  });

  it('types new columns by source.types where it names them (a null one too), else from the first non-null value', () => {
    const types = new Map([
      ['f8', 'real' as const],
      ['at', 'datetime' as const],
    ]);
    expect(findNewColumns([{ f8: 10, at: null, n: 3, z: null }], new Set(), types)).toEqual([
      { name: 'f8', type: 'real' },
      { name: 'at', type: 'datetime' },
      { name: 'n', type: 'long' },
    ]);
  });

  it('finds columns the table lacks and types them from the first non-null value', () => {
    const known = new Set(ordersRoute.columns.map((c) => c.name));
    expect(
      findNewColumns(
        [
          { ...order(1), coupon: null, rate: 1.5 },
          { coupon: 'A', tags: ['x'], n: 3, ok: true, __op: 'c' },
        ],
        known,
      ),
    ).toEqual([
      { name: 'rate', type: 'real' },
      { name: 'coupon', type: 'string' },
      { name: 'tags', type: 'dynamic' },
      { name: 'n', type: 'long' },
      { name: 'ok', type: 'bool' },
    ]);
  });
});
