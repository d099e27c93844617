/**
 * The ADX table layout: the source row's columns plus the CDC columns, the change-history table and
 * the truncates table; and how a table's schema grows when new source columns arrive.
 */
import { createHash } from 'node:crypto';
import { KQL_TYPES } from './types.js';
import type { AdxTableRoute, ColumnDef, KqlType } from './types.js';

/** CDC columns appended to every routed table (prefix `__` keeps them clear of source columns). */
export const CDC_COLUMNS: readonly ColumnDef[] = [
  { name: '__op', type: 'string' },
  { name: '__lsn', type: 'long' },
  { name: '__commit_lsn', type: 'long' },
  { name: '__commit_time', type: 'datetime' },
  { name: '__deleted', type: 'bool' },
  { name: '__table', type: 'string' },
  { name: '__txid', type: 'long' },
  { name: '__snapshot', type: 'string' },
  { name: '__unchanged_toast', type: 'dynamic' },
  { name: '__old_key', type: 'dynamic' },
  { name: '__key', type: 'string' },
  { name: '__from_key', type: 'string' },
];

export const CDC_COLUMN_NAMES: ReadonlySet<string> = new Set(CDC_COLUMNS.map((c) => c.name));

/** One row per changed column (after the `holding_pivot` of the Debezium per-field history demo, plus LSN and flags). */
export const HISTORY_COLUMNS: readonly ColumnDef[] = [
  { name: 'SourceTable', type: 'string' },
  { name: 'Key', type: 'dynamic' },
  { name: 'Column', type: 'string' },
  { name: 'OldValue', type: 'dynamic' },
  { name: 'NewValue', type: 'dynamic' },
  /** False when the event had no before image for this column (REPLICA IDENTITY other than FULL). */
  { name: 'OldValueKnown', type: 'bool' },
  { name: 'Op', type: 'string' },
  { name: 'CommitTime', type: 'datetime' },
  { name: 'Lsn', type: 'long' },
  { name: 'TxId', type: 'long' },
  { name: 'Context', type: 'dynamic' },
];

/**
 * The per-database truncates table: the marks that hide a routed table's older rows in its
 * current-rows function (`Kind`, see `MARK_KINDS`). A `truncate` row (empty `Kind`: written before
 * the column existed) hides the rows of `Table` whose `__lsn` is below its `Lsn` (the versioning
 * contract: a truncate removes the rows whose version is below its `source.lsn`); a `key_change` at
 * `Lsn` does the same once a full incremental snapshot started after it is done on all its
 * `Partitions` (`snapshot_started` / `snapshot_done` rows, one per `Partition` of the topic, by
 * `Snapshot` id): docs/adx.md "Key changes".
 */
export const TRUNCATE_COLUMNS: readonly ColumnDef[] = [
  { name: 'SourceTable', type: 'string' },
  { name: 'Table', type: 'string' },
  { name: 'Lsn', type: 'long' },
  { name: 'CommitTime', type: 'datetime' },
  { name: 'TxId', type: 'long' },
  { name: 'Kind', type: 'string' },
  { name: 'Snapshot', type: 'string' },
  { name: 'Partition', type: 'string' },
  { name: 'Partitions', type: 'long' },
];

/** What a truncates-table row marks (`Kind`). */
export const MARK_KINDS = ['truncate', 'key_change', 'snapshot_started', 'snapshot_done'] as const;
export type MarkKind = (typeof MARK_KINDS)[number];

/**
 * Name of the truncates table's JSON mapping. Not `<table>Mapping` (the mapping of the five columns
 * before `Kind`): a sink of this version ingesting marks through that mapping would lose `Kind`, and
 * a key-change or snapshot mark read as a truncate hides every older row; with a new name the
 * ingestion fails visibly until `adx:setup` has created the mapping.
 */
export function truncatesMapping(truncatesTable: string): string {
  return `${truncatesTable}MarksMapping`;
}

/** All columns of a routed table, in table order: declared source columns, then the CDC columns. */
export function tableColumns(route: AdxTableRoute, extra: readonly ColumnDef[] = []): ColumnDef[] {
  const seen = new Set<string>();
  const out: ColumnDef[] = [];
  for (const column of [...route.columns, ...extra, ...CDC_COLUMNS]) {
    if (seen.has(column.name)) continue;
    seen.add(column.name);
    out.push(column);
  }
  return out;
}

/**
 * The ADX type for a value of a column neither the configuration nor `source.types` types (events of
 * another producer; columns the reader does not list: boolean, int2/int4/oid, text-like, enums).
 * Conservative: whole numbers become `long`, other numbers `real`, objects and arrays `dynamic`, and
 * strings stay `string` (a string that looks like a date is not guessed: declare the column to get
 * `datetime`). Returns undefined for null/undefined: the type is decided by the first non-null value.
 */
export function inferKqlType(value: unknown): KqlType | undefined {
  if (value === null || value === undefined) return undefined;
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(value) ? 'long' : 'real';
    case 'bigint':
      return 'long';
    case 'string':
      return 'string';
    default:
      return 'dynamic';
  }
}

/**
 * Columns of `rows` that `known` lacks, typed by `types` (the PostgreSQL column types, `columnTypes`),
 * else from their first non-null value (a column without a known type whose values are all null waits).
 */
export function findNewColumns(
  rows: readonly Record<string, unknown>[],
  known: ReadonlySet<string>,
  types: ReadonlyMap<string, KqlType> = new Map(),
): ColumnDef[] {
  const found = new Map<string, ColumnDef>();
  for (const row of rows) {
    for (const [name, value] of Object.entries(row)) {
      if (known.has(name) || found.has(name) || CDC_COLUMN_NAMES.has(name)) continue;
      const type = types.get(name) ?? inferKqlType(value);
      if (type !== undefined) found.set(name, { name, type });
    }
  }
  return [...found.values()];
}

/** Columns from the result of `.show table T schema as json` (empty if it cannot be read). */
export function parseSchemaRows(rows: readonly Record<string, unknown>[]): ColumnDef[] {
  const schema = rows[0]?.Schema;
  if (typeof schema !== 'string') return [];
  try {
    const parsed = JSON.parse(schema) as { OrderedColumns?: { Name?: unknown; CslType?: unknown }[] };
    const columns: ColumnDef[] = [];
    for (const c of parsed.OrderedColumns ?? []) {
      if (typeof c.Name !== 'string' || !(KQL_TYPES as readonly unknown[]).includes(c.CslType)) return [];
      columns.push({ name: c.Name, type: c.CslType as ColumnDef['type'] });
    }
    return columns;
  } catch {
    return [];
  }
}

/**
 * The mapping name for a column set: `<mapping>_<12 hex of the columns' names and types>`. A name
 * always denotes the same mapping, so instances that add different columns at the same moment never
 * overwrite a mapping another one ingests with (each ingests with the mapping of the schema it read).
 */
export function versionedMappingName(mapping: string, columns: readonly ColumnDef[]): string {
  const hash = createHash('sha256')
    .update(columns.map((c) => `${c.name}:${c.type}`).join('\n'))
    .digest('hex');
  return `${mapping}_${hash.slice(0, 12)}`;
}
