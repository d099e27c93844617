/**
 * Change event → ADX rows. Pure functions: one table row per change (the row image plus the CDC
 * columns) and, for the change-history table, one row per changed column.
 */
import { tableId, type ChangeEvent, type RowImage } from '../events/changeEvent.js';
import { columnChanges } from '../history/pivot.js';
import type { AdxTableRoute } from './types.js';

export type AdxRow = Record<string, unknown>;

/** Whether a record handed to the sink is a change event (as opposed to an already flattened row). */
export function isChangeEvent(value: unknown): value is ChangeEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.op === 'string' && typeof v.source === 'object' && v.source !== null && 'before' in v && 'after' in v;
}

function lsnOf(event: ChangeEvent): number {
  // Snapshot rows may carry no LSN: 0 makes any later change of the key win in arg_max.
  return event.source.lsn ?? event.source.commit_lsn ?? 0;
}

function commitTime(event: ChangeEvent): string {
  return new Date(event.source.ts_ms).toISOString();
}

/**
 * A pointer event: the reader stored the full event (too large for the hub) in a Blob and published
 * it without row images. For an insert/update the new values are not in it, so writing it would put
 * a row of nulls on top of the key's latest state; a delete still says everything (key + op).
 */
export function isPointerWithoutImage(event: ChangeEvent): boolean {
  return event.deadletter !== undefined && event.op !== 'd' && event.after === null;
}

/**
 * The table row of a change, or null for events that are not row changes (truncate, logical
 * messages) and for insert/update pointer events without their row image (`isPointerWithoutImage`). Deletes carry the before image (only the key columns unless REPLICA IDENTITY FULL) and
 * `__deleted: true`, so the latest-state view sees the delete as the key's last version.
 */
export function toTableRow(event: ChangeEvent): AdxRow | null {
  if (event.op === 't' || event.op === 'm' || isPointerWithoutImage(event)) return null;
  const image: RowImage | null = event.op === 'd' ? event.before : event.after;
  return {
    ...(event.key ?? {}),
    ...(image ?? {}),
    __op: event.op,
    __lsn: lsnOf(event),
    __commit_lsn: event.source.commit_lsn ?? null,
    __commit_time: commitTime(event),
    __deleted: event.op === 'd',
    __table: tableId(event.source),
    __txid: event.source.txId,
    __snapshot: event.source.snapshot,
    __unchanged_toast: event.source.unchanged_toast && event.source.unchanged_toast.length > 0 ? event.source.unchanged_toast : null,
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
    Lsn: lsnOf(event),
    CommitTime: commitTime(event),
    TxId: event.source.txId,
  };
}

function pick(image: RowImage | null, columns: readonly string[]): Record<string, unknown> | null {
  if (image === null || columns.length === 0) return null;
  const out: Record<string, unknown> = {};
  for (const c of columns) out[c] = image[c] ?? null;
  return out;
}

/**
 * Per-column history of a change (the `holding_pivot` of the source document). Inserts record the
 * new values (old value known to be absent); updates record the columns whose value changed, or every
 * tracked column when there is no before image (`OldValueKnown: false`: REPLICA IDENTITY DEFAULT
 * sends no old values); deletes record the old values they carry. A truncate gives one row with
 * `Column` and `Key` null (as the Elasticsearch history, src/shared/history/pivot.ts): every row of
 * the table went, old values unknown. Snapshot reads and logical messages are not changes and give
 * no rows; unchanged TOAST columns are skipped (their new value is not in the event).
 */
export function toHistoryRows(event: ChangeEvent, route: AdxTableRoute): AdxRow[] {
  if (event.op === 't') {
    return [
      {
        SourceTable: tableId(event.source),
        Key: null,
        Op: 't',
        CommitTime: commitTime(event),
        Lsn: lsnOf(event),
        TxId: event.source.txId,
        Context: null,
        Column: null,
        OldValue: null,
        NewValue: null,
        OldValueKnown: false,
      },
    ];
  }
  if ((event.op !== 'c' && event.op !== 'u' && event.op !== 'd') || isPointerWithoutImage(event)) return [];
  const { before, after } = event;
  const keys = new Set(route.keys);
  // Default: the declared columns plus any the images carry, so a key-only delete still records
  // (as unknown old values) which columns went away.
  const tracked =
    route.historyColumns ??
    [...new Set([...route.columns.map((c) => c.name), ...Object.keys(after ?? {}), ...Object.keys(before ?? {})])].filter(
      (c) => !keys.has(c) && !c.startsWith('__'),
    );
  const key = event.key ?? pick(after ?? before, route.keys);
  const base = {
    SourceTable: tableId(event.source),
    Key: key,
    Op: event.op,
    CommitTime: commitTime(event),
    Lsn: lsnOf(event),
    TxId: event.source.txId,
    Context: pick(after ?? before, route.historyContext),
  };
  return columnChanges(event, tracked).map((change) => ({ ...base, ...change }));
}
