/**
 * Change events and rows for every test: one factory for the envelope the reader emits (Debezium
 * shape plus `key` and `source.commit_lsn`), the demo tables' rows, and the body shapes the Functions
 * host hands over. Deterministic except the default LSN, which increases from call to call.
 */
import type { ChangeEvent, ChangeOp, RowImage } from '../../src/shared/events/changeEvent.js';

let nextLsn = 100_000;

/** Commit time of the events unless told otherwise (the Kafka Connect → ADX demo's sample event: 2020-10-07T07:56:32.691Z). */
export const EVENT_TS_MS = 1_602_057_392_691;

export interface EventInit {
  /** `schema.table`; default `retail.orders_info`. */
  table?: string;
  op?: ChangeOp;
  before?: RowImage | null;
  /** Default: `order(1)` for c/u/r/m, null for d/t. */
  after?: RowImage | null;
  /** Default: the table's key column (`holding_id` in `bank.*`, else `orderid`) taken from the image; null for a truncate. */
  key?: RowImage | null;
  /** `source.lsn`; default a fresh, increasing one. */
  lsn?: number | null;
  /** `source.commit_lsn`; default `lsn + 8`. */
  commitLsn?: number | null;
  /** `source.ts_ms`; default `EVENT_TS_MS`. */
  tsMs?: number;
  unchangedToast?: string[];
}

/** A change event as the reader emits it. */
export function changeEvent(init: EventInit = {}): ChangeEvent {
  const [schema = 'retail', table = 'orders_info'] = (init.table ?? 'retail.orders_info').split('.');
  const op = init.op ?? 'c';
  const lsn = init.lsn === undefined ? (nextLsn += 8) : init.lsn;
  const tsMs = init.tsMs ?? EVENT_TS_MS;
  const after = init.after !== undefined ? init.after : op === 'd' || op === 't' ? null : order(1);
  const before = init.before ?? null;
  const keyColumn = schema === 'bank' ? 'holding_id' : 'orderid';
  const key = init.key !== undefined ? init.key : op === 't' ? null : { [keyColumn]: (after ?? before)?.[keyColumn] ?? 1 };
  return {
    before,
    after,
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'pgcdc',
      ts_ms: tsMs,
      snapshot: op === 'r' ? 'true' : 'false',
      db: 'postgres',
      schema,
      table,
      txId: 653,
      lsn,
      sequence: null,
      commit_lsn: init.commitLsn !== undefined ? init.commitLsn : lsn === null ? null : lsn + 8,
      ...(init.unchangedToast ? { unchanged_toast: init.unchangedToast } : {}),
    },
    op,
    ts_ms: tsMs + 5,
    key,
    transaction: null,
  };
}

/** A `retail.orders_info` row (int columns arrive as JSON numbers). */
export const order = (orderid: number, fields: Partial<{ custid: number; amount: number; city: string; purchase_time: string }> = {}): RowImage => ({
  orderid,
  custid: fields.custid ?? 306,
  amount: fields.amount ?? 183,
  city: fields.city ?? 'Austin',
  purchase_time: fields.purchase_time ?? '2020-10-09 07:23:10',
});

/** A `bank.holding` row (the table of the Debezium per-field history demo). */
export const holding = (holdingId: number, stock: string, quantity: number, userId = 1): RowImage => ({
  holding_id: holdingId,
  user_id: userId,
  holding_stock: stock,
  holding_quantity: quantity,
  datetime_created: '2021-06-26T21:52:07.000000Z',
  datetime_updated: '2021-06-26T21:52:07.000000Z',
});

export type BodyShape = 'object' | 'string' | 'buffer' | 'schemaPayload';

/** How the host hands a JSON event over: parsed object, string, Buffer, or Debezium's {schema,payload}. */
export function hostBody(event: unknown, shape: BodyShape = 'object'): unknown {
  switch (shape) {
    case 'object':
      return JSON.parse(JSON.stringify(event)) as unknown;
    case 'string':
      return JSON.stringify(event);
    case 'buffer':
      return Buffer.from(JSON.stringify(event), 'utf8');
    case 'schemaPayload':
      return JSON.parse(JSON.stringify({ schema: { type: 'struct', fields: [] }, payload: event })) as unknown;
  }
}
