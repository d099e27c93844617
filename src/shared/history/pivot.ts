/**
 * The change history (the source document's `holding_pivot`, generalised): one row per changed
 * column. Same columns as the ADX history table (`HISTORY_COLUMNS` in src/shared/adx/schema.ts) so the
 * same questions read the same in KQL and in Elasticsearch.
 * - insert: one row per tracked column, no old value (`OldValueKnown: true`: there was none);
 * - update: one row per tracked column whose value changed; without a before image (REPLICA IDENTITY
 *   other than FULL) every tracked column gets a row with `OldValueKnown: false` and no old value:
 *   the row says the old value is unknown rather than inventing one;
 * - delete: one row per tracked column with the old value (or `OldValueKnown: false`) and no new value;
 * - truncate: one row with `Column: null`, marking that every row of the table went;
 * - snapshot reads, heartbeats: not changes, no rows. Unchanged TOAST columns are skipped.
 */
import { tableId, type ChangeEvent, type RowImage } from '../events/changeEvent.js';
import { keyText } from '../events/documentId.js';
import { rowVersion } from '../events/rowVersion.js';
import type { HistoryRoute } from '../routing/routes.js';

export interface HistoryRow {
  SourceTable: string;
  Key: RowImage | null;
  /** The key as one string (`_id`-style), for exact filters. */
  KeyText: string | null;
  Column: string | null;
  OldValue: unknown;
  NewValue: unknown;
  OldValueKnown: boolean;
  Op: 'c' | 'u' | 'd' | 't';
  /** Commit time, ISO 8601. */
  CommitTime: string;
  Lsn: number;
  TxId: number | null;
  Context: RowImage | null;
}

function sameValue(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

function pick(image: RowImage | null, columns: readonly string[] | undefined): RowImage | null {
  if (!image || !columns || columns.length === 0) return null;
  const out: RowImage = {};
  for (const c of columns) out[c] = image[c] ?? null;
  return out;
}

export function historyRows(event: ChangeEvent, route: HistoryRoute = {}): HistoryRow[] {
  if (route.enabled === false) return [];
  const { op, before, after } = event;
  if (op !== 'c' && op !== 'u' && op !== 'd' && op !== 't') return [];
  const key = event.key ?? null;
  const base = {
    SourceTable: tableId(event.source),
    Key: key,
    KeyText: key && Object.keys(key).length > 0 ? keyText(key) : null,
    Op: op,
    CommitTime: new Date(event.source.ts_ms).toISOString(),
    Lsn: rowVersion(event),
    TxId: event.source.txId,
    Context: pick(after ?? before, route.context),
  };
  if (op === 't') return [{ ...base, Column: null, OldValue: null, NewValue: null, OldValueKnown: false }];

  const keyColumns = new Set(Object.keys(key ?? {}));
  const tracked =
    route.columns ?? [...new Set([...Object.keys(after ?? {}), ...Object.keys(before ?? {})])].filter((c) => !keyColumns.has(c) && !c.startsWith('__'));
  return columnChanges(event, tracked).map((change) => ({ ...base, ...change }));
}

/** One changed column of one event: the part of a history row both sinks (ES and ADX) share. */
export interface ColumnChange {
  Column: string;
  OldValue: unknown;
  NewValue: unknown;
  OldValueKnown: boolean;
}

/**
 * The pivot itself, for an insert, update or delete: one entry per tracked column that the event
 * changed (rules in the header comment). Unchanged TOAST columns are skipped: their new value is not
 * in the event.
 */
export function columnChanges(event: Pick<ChangeEvent, 'op' | 'before' | 'after' | 'source'>, tracked: readonly string[]): ColumnChange[] {
  const { op, before, after } = event;
  const toast = new Set(event.source.unchanged_toast ?? []);
  const changes: ColumnChange[] = [];
  for (const column of tracked) {
    if (toast.has(column)) continue;
    if (op === 'c') {
      if (!after || !(column in after)) continue;
      changes.push({ Column: column, OldValue: null, NewValue: after[column], OldValueKnown: true });
    } else if (op === 'u') {
      if (!after || !(column in after)) continue;
      const known = before !== null && column in before;
      if (known && sameValue(before[column], after[column])) continue;
      changes.push({ Column: column, OldValue: known ? before[column] : null, NewValue: after[column], OldValueKnown: known });
    } else if (op === 'd') {
      const known = before !== null && column in before;
      changes.push({ Column: column, OldValue: known ? before[column] : null, NewValue: null, OldValueKnown: known });
    }
  }
  return changes;
}
