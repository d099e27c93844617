/** Change events for the ADX tests (deterministic LSNs and times, so expected rows can be written out). */
import type { ChangeEvent, ChangeOp, RowImage } from '../../../../src/shared/events/changeEvent.js';

export interface AdxEventInit {
  table?: string;
  op?: ChangeOp;
  before?: RowImage | null;
  after?: RowImage | null;
  key?: RowImage | null;
  lsn: number;
  tsMs?: number;
  unchangedToast?: string[];
}

export function adxEvent(init: AdxEventInit): ChangeEvent {
  const [schema = 'retail', table = 'orders_info'] = (init.table ?? 'retail.orders_info').split('.');
  const op = init.op ?? 'c';
  const tsMs = init.tsMs ?? 1_602_057_392_691;
  const image = init.after ?? init.before ?? null;
  const keyColumn = schema === 'bank' ? 'holding_id' : 'orderid';
  return {
    before: init.before ?? null,
    after: init.after ?? null,
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
      lsn: init.lsn,
      sequence: null,
      commit_lsn: init.lsn + 8,
      ...(init.unchangedToast ? { unchanged_toast: init.unchangedToast } : {}),
    },
    op,
    ts_ms: tsMs + 5,
    key: init.key !== undefined ? init.key : op === 't' || image === null ? null : { [keyColumn]: image[keyColumn] },
    transaction: null,
  };
}

export const orderRow = (orderid: string, amount = 183, city = 'Austin'): RowImage => ({
  orderid,
  custid: '306',
  city,
  amount,
  purchase_time: '2020-10-09 07:23:10',
});

export const holdingRow = (holdingId: number, stock: string, quantity: number, userId = 1): RowImage => ({
  holding_id: holdingId,
  user_id: userId,
  holding_stock: stock,
  holding_quantity: quantity,
  datetime_created: '2021-06-26T21:52:07.000000Z',
  datetime_updated: '2021-06-26T21:52:07.000000Z',
});
