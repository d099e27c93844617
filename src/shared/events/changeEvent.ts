/**
 * The change-event model shared by the reader (which produces it) and the sinks (which consume it).
 *
 * The JSON is Debezium-compatible (the `io.debezium.connector.postgresql` envelope without the
 * `schema` part, as Debezium emits with `value.converter.schemas.enable=false`), so existing Debezium
 * consumers can read it. Two additions, both optional for Debezium readers:
 * - `key`: the primary key columns, because Event Hubs does not surface the Kafka record key to AMQP
 *   consumers (Azure/azure-event-hubs-for-kafka#114);
 * - `source.commit_lsn`: the LSN of the transaction's commit record;
 * - `source.types`: the type names of the columns whose JSON value does not tell their type;
 * - `old_key`: on the create of a primary-key change, the previous key;
 * - `source.renamed_to`: the table's current name when it was renamed since the reader captured it.
 */
import type { SchemaChangeMessage, SnapshotMessage } from './controlMessage.js';

/** c = create, u = update, d = delete, r = read (snapshot), t = truncate, m = logical message (heartbeat). */
export type ChangeOp = 'c' | 'u' | 'd' | 'r' | 't' | 'm';

/** Debezium's `source.snapshot` values. `last` marks the final row of a snapshot. */
export type SnapshotMarker = 'true' | 'first' | 'last' | 'false' | 'incremental';

/** A row image: column name to JSON value (see README "Type mapping" for how each PG type is encoded). */
export type RowImage = Record<string, unknown>;

export interface SourceInfo {
  /** Version of pg-cdc-functions that produced the event. */
  version: string;
  connector: 'postgresql';
  /** Logical server name (topic prefix), from configuration. */
  name: string;
  /** Commit time of the transaction (snapshot: time of the read), ms since the epoch. */
  ts_ms: number;
  snapshot: SnapshotMarker;
  db: string;
  schema: string;
  table: string;
  txId: number | null;
  /**
   * WAL position of this change as a decimal number (Debezium does the same). Exact up to 2^53 bytes
   * of WAL (8 PiB); sinks use it as the version of the row (see `rowVersion`).
   */
  lsn: number | null;
  /** Debezium's `["<last commit lsn>","<lsn>"]` as a JSON string. */
  sequence: string | null;
  /** LSN of this transaction's commit record (extension; absent on snapshot rows). */
  commit_lsn?: number | null;
  /** Unchanged TOASTed columns that could not be filled in (extension; see README "TOAST"). */
  unchanged_toast?: string[];
  /**
   * PostgreSQL type names of the columns whose JSON value does not tell their type (extension; see
   * docs/reader.md "Column types"): `{"price": "numeric", "doc": "jsonb", "at": "timestamptz"}`.
   * Absent columns are boolean, int2/int4/oid, text-like or enum columns.
   */
  types?: Record<string, string>;
  /**
   * The table's name (`schema.table`) at this change, when it differs from `schema` and `table` (extension):
   * the table was renamed (or moved to another schema) after the reader captured it, and its events keep
   * the name it was captured under, so routes and indices do not split (docs/reader.md "Renames").
   */
  renamed_to?: string;
}

export interface ChangeEvent {
  before: RowImage | null;
  after: RowImage | null;
  source: SourceInfo;
  op: ChangeOp;
  /** When the reader produced the event, ms since the epoch. */
  ts_ms: number;
  /** Primary key (or replica identity) columns and values (extension; null for truncate). */
  key: RowImage | null;
  /**
   * On the `c` of a primary-key change (emitted as `d` of the old key + `c` of the new one), the old
   * key (extension): a sink can take the values the `c` lacks (`source.unchanged_toast`) from the
   * old key's row. Absent otherwise.
   */
  old_key?: RowImage;
  transaction?: null | { id: string; total_order: number; data_collection_order: number };
  /**
   * Set on a pointer event whose full event was too large for the hub (extension, written by the
   * reader): `before`/`after` are null here; read the full event (same JSON) from this Blob.
   */
  deadletter?: { container: string; blob: string; bytes: number };
  /**
   * On a control event (`op: 'm'`, no row: `before`, `after` and `key` null; extension, native format
   * only), what it tells the sinks; published to every partition of the table's topic
   * (src/shared/events/controlMessage.ts, README "Schema changes"):
   * - `schema_change`: the table's relation changed (`source.lsn` just below the first change with the
   *   new shape);
   * - `snapshot_started` / `snapshot_done`: an incremental snapshot of the table started (`source.lsn` =
   *   the first chunk's low watermark) / delivered its last row (the last chunk's high watermark), with
   *   `source.snapshot: 'incremental'` (docs/reader.md "Incremental snapshots").
   * Sinks that do not know it skip `op: 'm'`.
   */
  message?: SchemaChangeMessage | SnapshotMessage;
}

/** Fully qualified `schema.table` of an event. */
export function tableId(source: Pick<SourceInfo, 'schema' | 'table'>): string {
  return `${source.schema}.${source.table}`;
}
