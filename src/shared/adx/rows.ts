/**
 * Change event → ADX rows. Pure functions: one table row per change (the row image plus the CDC
 * columns), the change-history table's rows (the shared pivot, `historyRows`) and the truncates
 * table's row. Version = `rowVersion`, commit time = `commitTime`, as in every sink.
 */
import { tableId, type ChangeEvent, type RowImage } from '../events/changeEvent.js';
import { commitTime } from '../events/commitTime.js';
import { adxColumnName, adxColumnNames } from '../events/fieldNames.js';
import { rowVersion } from '../events/rowVersion.js';
import { historyRows, type HistoryRow } from '../history/pivot.js';
import type { AdxTableRoute } from './types.js';

export type AdxRow = Record<string, unknown>;

/**
 * The table row of a change, or null for events that are not row changes (truncate, logical
 * messages). Deletes carry the before image (only the key columns unless REPLICA IDENTITY FULL) and
 * `__deleted: true`, so the latest-state view sees the delete as the key's last version. (Pointer
 * events never get here: the batch core replaces them by the full event first.) Columns go by their
 * ADX names (`adxColumnName`), so a column ADX cannot name, or named like a CDC column, neither fails
 * the table's commands nor overwrites the CDC column.
 */
export function toTableRow(event: ChangeEvent): AdxRow | null {
  if (event.op === 't' || event.op === 'm') return null;
  const image: RowImage | null = event.op === 'd' ? event.before : event.after;
  const toast = event.source.unchanged_toast;
  return {
    ...adxColumnNames(event.key ?? {}),
    ...adxColumnNames(image ?? {}),
    __op: event.op,
    __lsn: rowVersion(event),
    __commit_lsn: event.source.commit_lsn ?? null,
    __commit_time: commitTime(event),
    __deleted: event.op === 'd',
    __table: tableId(event.source),
    __txid: event.source.txId,
    __snapshot: event.source.snapshot,
    __unchanged_toast: toast && toast.length > 0 ? toast.map(adxColumnName) : null,
  };
}

/**
 * The truncates-table row of a `t` event (null for any other event): the ADX table whose rows it
 * removes and the truncate's version. Rows of that table with a lower `__lsn` are left out by the
 * route's current-rows function (see `currentFunctionCommand`); the append-only table keeps them.
 */
export function toTruncateRow(event: ChangeEvent, route: AdxTableRoute): AdxRow | null {
  if (event.op !== 't') return null;
  return {
    SourceTable: tableId(event.source),
    Table: route.table,
    Lsn: rowVersion(event),
    CommitTime: commitTime(event),
    TxId: event.source.txId,
  };
}

/**
 * A pivot row as the ADX history table has it (`HISTORY_COLUMNS`): the same fields without `KeyText`
 * (the Elasticsearch index's exact-filter copy of `Key`; KQL filters on the dynamic `Key` itself).
 */
export function toHistoryRow(row: HistoryRow): AdxRow {
  const { SourceTable, Key, Op, CommitTime, Lsn, TxId, Context, Column, OldValue, NewValue, OldValueKnown } = row;
  return { SourceTable, Key, Op, CommitTime, Lsn, TxId, Context, Column, OldValue, NewValue, OldValueKnown };
}

/** The history-table rows of a change: the shared pivot with the route's history section and declared columns. */
export function toHistoryRows(event: ChangeEvent, route: AdxTableRoute): AdxRow[] {
  if (route.historyTable === null) return [];
  return historyRows(event, route.history, route.sourceColumns).map(toHistoryRow);
}

/** JSON lines; bigint values (int8 beyond 2^53, if a producer sends them) become strings. */
export function toJsonLines(rows: readonly AdxRow[]): Buffer {
  let text = '';
  for (const row of rows) {
    let line: string;
    try {
      // No replacer on the fast path: a replacer function makes JSON.stringify several times slower.
      line = JSON.stringify(row);
    } catch {
      line = JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    }
    text += line + '\n';
  }
  return Buffer.from(text, 'utf8');
}
