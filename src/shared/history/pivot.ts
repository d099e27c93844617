/**
 * The change history (the `holding_pivot` of the Debezium per-field history demo, generalised): one row per changed
 * column, the one pivot both stores write (the Elasticsearch history index as is; the ADX history
 * table without `KeyText`, see `toHistoryRow` in src/shared/adx/rows.ts), so the same questions read
 * the same in KQL and in Elasticsearch. Version = `rowVersion`, key = the event's key.
 * - insert: one row per tracked column, no old value (`OldValueKnown: true`: there was none);
 * - update: one row per tracked column whose value changed; without a before image (REPLICA IDENTITY
 *   other than FULL) every tracked column gets a row with `OldValueKnown: false` and no old value:
 *   the row says the old value is unknown rather than inventing one;
 * - delete: one row per tracked column with the old value (or `OldValueKnown: false`) and no new value;
 *   when no column is tracked (a key-only before image, no `history.columns`, no declared columns),
 *   one row with `Column` null and `OldValueKnown: false`, like a truncate's: every delete leaves a trace;
 * - truncate: one row with `Column` (and `Key`) null, marking that every row of the table went;
 * - schema change (the reader's `schema_change` control event): one row with `Op: 's'`, `Column` and
 *   `Key` null, `OldValue` the previous `{columns, key}` and `NewValue` the new one with what was
 *   added, dropped and retyped (`schemaChangeRow`);
 * - snapshot reads, heartbeats: not changes, no rows. Unchanged TOAST columns are skipped.
 * Tracked columns: the route's `history.columns`, default the table's declared columns plus those the
 * images carry, without the key columns.
 */
import { tableId, type ChangeEvent, type RowImage } from '../events/changeEvent.js';
import { commitTime } from '../events/commitTime.js';
import { keyText } from '../events/documentId.js';
import { rowVersion } from '../events/rowVersion.js';
import type { HistoryRoute } from '../routing/routes.js';
import type { ControlMessage } from '../events/controlMessage.js';

export interface HistoryRow {
  SourceTable: string;
  Key: RowImage | null;
  /** The key as one string (`_id`-style), for exact filters. */
  KeyText: string | null;
  Column: string | null;
  OldValue: unknown;
  NewValue: unknown;
  OldValueKnown: boolean;
  /** `s`: a schema change of the table (README "Schema changes"). */
  Op: 'c' | 'u' | 'd' | 't' | 's';
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

/** `declared`: the table's declared columns (`declaredColumns` of its catalogue entry), tracked by default. */
export function historyRows(event: ChangeEvent, route: HistoryRoute = {}, declared: readonly string[] = []): HistoryRow[] {
  if (route.enabled === false) return [];
  const { op, before, after } = event;
  if (op !== 'c' && op !== 'u' && op !== 'd' && op !== 't') return [];
  const key = event.key ?? null;
  const base = {
    SourceTable: tableId(event.source),
    Key: key,
    KeyText: key && Object.keys(key).length > 0 ? keyText(key) : null,
    Op: op,
    CommitTime: commitTime(event),
    Lsn: rowVersion(event),
    TxId: event.source.txId,
    Context: pick(after ?? before, route.context),
  };
  if (op === 't') return [{ ...base, Column: null, OldValue: null, NewValue: null, OldValueKnown: false }];

  const tracked = route.columns ?? trackedColumns(declared, after, before, key);
  const changes = columnChanges(event, tracked);
  // A row that went away is a change even when no column of it is followed (the key is all a
  // default-identity delete carries): one row for the row itself, as a truncate has one for the table.
  if (op === 'd' && changes.length === 0) return [{ ...base, Column: null, OldValue: null, NewValue: null, OldValueKnown: false }];
  return changes.map((change) => ({ ...base, ...change }));
}

/**
 * The default tracked columns: the declared ones, then those of `after`, then of `before`, each once,
 * without the key columns and the `__` metadata. One pass (this runs for every change on the sinks'
 * hot path).
 */
function trackedColumns(declared: readonly string[], after: RowImage | null, before: RowImage | null, key: RowImage | null): string[] {
  const seen = new Set<string>(key === null ? undefined : Object.keys(key));
  const tracked: string[] = [];
  const add = (columns: readonly string[]): void => {
    for (const column of columns) {
      if (seen.has(column)) continue;
      seen.add(column);
      if (!column.startsWith('__')) tracked.push(column);
    }
  };
  add(declared);
  if (after) add(Object.keys(after));
  if (before) add(Object.keys(before));
  return tracked;
}

interface ColumnChange {
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
function columnChanges(event: Pick<ChangeEvent, 'op' | 'before' | 'after' | 'source'>, tracked: readonly string[]): ColumnChange[] {
  const { op, before, after } = event;
  const unchanged = event.source.unchanged_toast;
  const toast = unchanged !== undefined && unchanged.length > 0 ? new Set(unchanged) : undefined;
  const changes: ColumnChange[] = [];
  for (const column of tracked) {
    if (toast?.has(column) === true) continue;
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

/** The history row of a schema change: the table's shape before and after, at the change's version. */
export function schemaChangeRow(event: ChangeEvent, message: Extract<ControlMessage, { kind: 'schema_change' }>, route: HistoryRoute = {}): HistoryRow[] {
  if (route.enabled === false) return [];
  const { columns, key, previous, added, dropped, retyped } = message.content;
  return [
    {
      SourceTable: tableId(event.source),
      Key: null,
      KeyText: null,
      Column: null,
      OldValue: previous,
      NewValue: { columns, key, added, dropped, retyped },
      OldValueKnown: true,
      Op: 's',
      CommitTime: commitTime(event),
      Lsn: message.lsn,
      TxId: event.source.txId ?? null,
      Context: null,
    },
  ];
}
