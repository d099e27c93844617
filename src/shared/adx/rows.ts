/**
 * Change event → ADX rows. Pure functions: one table row per change (the row image plus the CDC
 * columns), the change-history table's rows (the shared pivot, `historyRows`) and the truncates
 * table's row. Version = `rowVersion`, commit time = `commitTime`, as in every sink.
 */
import { tableId, type ChangeEvent, type RowImage } from '../events/changeEvent.js';
import { commitTime } from '../events/commitTime.js';
import { PermanentRecordError } from '../core/errors.js';
import { keyOf } from '../events/documentId.js';
import { adxColumnName } from '../events/fieldNames.js';
import { rowVersion } from '../events/rowVersion.js';
import { historyRows, type HistoryRow } from '../history/pivot.js';
import { adxValue, kqlTypeOf, rawColumnName, rawText, UNFIT } from './columnTypes.js';
import type { ControlMessage } from '../events/controlMessage.js';
import type { MarkKind } from './schema.js';
import type { AdxTableRoute, KqlType } from './types.js';

export type AdxRow = Record<string, unknown>;

/**
 * The table row of a change, or null for events that are not row changes (truncate, logical
 * messages). Deletes carry the before image (only the key columns unless REPLICA IDENTITY FULL) and
 * `__deleted: true`, so the latest-state view sees the delete as the key's last version. (Pointer
 * events never get here: the batch core replaces them by the full event first.) Columns go by their
 * ADX names (`adxColumnName`), so a column ADX cannot name, or named like a CDC column, neither fails
 * the table's commands nor overwrites the CDC column. A column whose type is known (declared in the
 * route, else from `source.types`) gets the value `adxValue` makes of it; one its type cannot hold is
 * null, with its text in `__raw_<column>`. A key column cannot be null (the latest-state view groups
 * by the key), so such a key is a permanent failure of the record.
 */
export function toTableRow(event: ChangeEvent, route: Pick<AdxTableRoute, 'source' | 'columns'>): AdxRow | null {
  if (event.op === 't' || event.op === 'm') return null;
  const image: RowImage | null = event.op === 'd' ? event.before : event.after;
  const toast = event.source.unchanged_toast;
  const row: AdxRow = {};
  const declared = declaredTypes(route);
  const types = event.source.types;
  /** The column's ADX type, if known. */
  const typeOf = (column: string, name: string): KqlType | undefined => {
    const pgType = types?.[column];
    return declared.get(name) ?? (pgType === undefined ? undefined : kqlTypeOf(pgType));
  };
  /** The JSON value for the column (`UNFIT` when its type cannot hold it). */
  const shape = (column: string, name: string, value: unknown): unknown => {
    const type = typeOf(column, name);
    return type === undefined ? value : adxValue(type, value);
  };
  // Per column on the hot path: no [name, value, type] tuples, no entries pairs.
  const put = (columns: RowImage | null): void => {
    if (columns === null) return;
    for (const column of Object.keys(columns)) {
      const value = columns[column];
      const name = adxColumnName(column);
      const shaped = shape(column, name, value);
      if (shaped !== UNFIT) {
        row[name] = shaped;
        continue;
      }
      if (event.key !== null && column in event.key) {
        throw new PermanentRecordError(
          'REJECTED_BY_SINK',
          `Key column ${JSON.stringify(column)} of ${route.source} holds ${JSON.stringify(rawText(value))}, which its ADX type ${String(typeOf(column, name))} cannot hold ` +
            '(the latest-state view groups by the key): declare the column as string in CDC_ROUTES',
        );
      }
      row[name] = null;
      row[rawColumnName(name)] = rawText(value);
    }
  };
  put(event.key);
  put(image);
  let oldKey: RowImage | null = null;
  if (event.old_key !== undefined) {
    oldKey = {};
    for (const [column, value] of Object.entries(event.old_key)) {
      const name = adxColumnName(column);
      const shaped = shape(column, name, value);
      oldKey[name] = shaped === UNFIT ? value : shaped;
    }
  }
  return Object.assign(row, {
    __op: event.op,
    __lsn: rowVersion(event),
    __commit_lsn: event.source.commit_lsn ?? null,
    __commit_time: commitTime(event),
    __deleted: event.op === 'd',
    __table: tableId(event.source),
    __txid: event.source.txId,
    __snapshot: event.source.snapshot,
    __unchanged_toast: toast && toast.length > 0 ? toast.map(adxColumnName) : null,
    // On the create of a primary-key change, the old key by its ADX columns: the current-rows
    // function takes the values the create lacks (unchanged TOAST) from that key's rows.
    __old_key: oldKey,
    __key: keyJson(keyOf(event)),
    __from_key: event.old_key === undefined ? null : keyJson(event.old_key),
  });
}

/**
 * `__key`: the key the row's event carries, as one string (`{"code":"c1"}`: names and values as
 * JSON, in the key's column order). The latest-state view groups by it, so it keys by whatever the
 * table's key is at each row's point in the WAL: after a primary-key change the rows carry the new
 * key, and an old-key row never merges with a new-key row whose values print the same (`{"id":5}`
 * vs `{"code":"5"}`). Values as the event has them (an exact number stays its text), so every event
 * of a row gives the same string.
 */
export function keyJson(key: RowImage): string {
  return jsonLine(key);
}

const declaredByRoute = new WeakMap<object, ReadonlyMap<string, KqlType>>();

function declaredTypes(route: Pick<AdxTableRoute, 'columns'>): ReadonlyMap<string, KqlType> {
  let types = declaredByRoute.get(route);
  if (types === undefined) {
    types = new Map(route.columns.map((c) => [c.name, c.type]));
    declaredByRoute.set(route, types);
  }
  return types;
}

/**
 * The ADX types of the event's columns that `source.types` names, by ADX column name: what a new
 * column gets (`findNewColumns`) instead of a type guessed from its first value.
 */
export function columnTypes(event: ChangeEvent): ReadonlyMap<string, KqlType> {
  const types = event.source.types;
  if (types === undefined) return NO_TYPES;
  const out = new Map<string, KqlType>();
  for (const [column, pgType] of Object.entries(types)) out.set(adxColumnName(column), kqlTypeOf(pgType));
  return out;
}

const NO_TYPES: ReadonlyMap<string, KqlType> = new Map();

/**
 * The truncates-table row of a `t` event (null for any other event): the ADX table whose rows it
 * removes and the truncate's version. Rows of that table with a lower `__lsn` are left out by the
 * route's current-rows function (see `currentFunctionCommand`); the append-only table keeps them.
 */
export function toTruncateRow(event: ChangeEvent, route: AdxTableRoute): AdxRow | null {
  if (event.op !== 't') return null;
  return markRow(event, route, 'truncate', { Snapshot: null, Partition: null, Partitions: null });
}

/**
 * The truncates-table mark of a control event (`TRUNCATE_COLUMNS`), or null: a `schema_change` whose
 * key differs from the previous one (`key_change`, with the topic's partition count), and the start
 * and end of a full incremental snapshot (`snapshot_started` / `snapshot_done`, by snapshot id and
 * the partition whose copy this is; a snapshot with a WHERE condition reads part of the table and
 * marks nothing). `<Table>Current()` hides the rows below a key change once a snapshot started after
 * it is done on every partition (docs/adx.md "Key changes").
 */
export function toMarkRow(event: ChangeEvent, route: AdxTableRoute, message: ControlMessage, partition: string): AdxRow | null {
  if (message.kind === 'schema_change') {
    const { key, previous, partitions } = message.content;
    if (key.join('\u0000') === previous.key.join('\u0000')) return null;
    return markRow(event, route, 'key_change', { Snapshot: null, Partition: partition, Partitions: partitions });
  }
  if (message.content.where !== null) return null;
  return markRow(event, route, message.kind, { Snapshot: message.content.id, Partition: partition, Partitions: null });
}

function markRow(
  event: ChangeEvent,
  route: AdxTableRoute,
  kind: MarkKind,
  rest: { Snapshot: string | null; Partition: string | null; Partitions: number | null },
): AdxRow {
  return {
    SourceTable: tableId(event.source),
    Table: route.table,
    Lsn: rowVersion(event),
    CommitTime: commitTime(event),
    TxId: event.source.txId,
    Kind: kind,
    ...rest,
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
  const out = new LineWriter(rows.length);
  for (const row of rows) out.line(jsonLine(row));
  return out.done();
}

/**
 * `toJsonLines` of `toHistoryRow`'s rows, byte for byte, for less: the rows of one change share their
 * first seven fields (`SourceTable` to `Context`, the same values), so those are written once per
 * change and each row adds only its column's four (`Column` to `OldValueKnown`). A change of several
 * columns is several rows, so this is most of the history table's text.
 */
export function toHistoryJsonLines(rows: readonly AdxRow[]): Buffer {
  const out = new LineWriter(rows.length);
  let shared: AdxRow | undefined;
  /** `{"SourceTable":...,"Context":...` (no closing brace), or '{' when every shared field is undefined. */
  let head = '';
  for (const row of rows) {
    if (
      shared === undefined ||
      row.Key !== shared.Key ||
      row.Context !== shared.Context ||
      row.SourceTable !== shared.SourceTable ||
      row.Op !== shared.Op ||
      row.CommitTime !== shared.CommitTime ||
      row.Lsn !== shared.Lsn ||
      row.TxId !== shared.TxId
    ) {
      const { SourceTable, Key, Op, CommitTime, Lsn, TxId, Context } = row;
      head = jsonLine({ SourceTable, Key, Op, CommitTime, Lsn, TxId, Context }).slice(0, -1);
      shared = row;
    }
    const { Column, OldValue, NewValue, OldValueKnown } = row;
    const tail = jsonLine({ Column, OldValue, NewValue, OldValueKnown }).slice(1);
    // JSON.stringify leaves out undefined fields, so either part may be empty (`{`, `}`).
    out.line(head === '{' || tail === '}' ? head + tail : `${head},${tail}`);
  }
  return out.done();
}

/** One row (or key) as JSON; a bigint (which JSON.stringify refuses) as its decimal string. */
function jsonLine(row: AdxRow): string {
  try {
    // No replacer on the fast path: a replacer function makes JSON.stringify several times slower.
    return JSON.stringify(row);
  } catch {
    return JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/**
 * JSON lines written straight into one buffer: building the text first and then `Buffer.from` makes
 * two more passes over it (flattening the concatenated string, then encoding it).
 */
class LineWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(rows: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(1024, rows * 256));
  }

  line(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 code unit; + 1 for the newline.
    const needed = this.length + text.length * 3 + 1;
    if (needed > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    this.length += this.buffer.write(text, this.length, 'utf8');
    this.buffer[this.length++] = 0x0a;
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}
