/**
 * Debezium's ExtractNewRecordState, for sinks that want rows rather than envelopes: the row state
 * (`after`, or for a delete `before`/`key`) plus configurable metadata fields prefixed with `__`
 * (Debezium's `add.fields` and `delete.handling.mode=rewrite`). Deletes and truncates are explicit
 * results; tombstones never get here (see `decodeBody`).
 */
import { ConfigError } from '../core/errors.js';
import { tableId, type ChangeEvent, type RowImage } from './changeEvent.js';
import { rowVersion } from './rowVersion.js';

/** Metadata fields that can be added; each becomes `__<name>` in the row. */
const METADATA_FIELDS = {
  op: (e: ChangeEvent) => e.op,
  /** Table name only, as Debezium's `__table`. */
  table: (e: ChangeEvent) => e.source.table,
  schema: (e: ChangeEvent) => e.source.schema,
  /** `schema.table`. */
  table_id: (e: ChangeEvent) => tableId(e.source),
  db: (e: ChangeEvent) => e.source.db,
  lsn: (e: ChangeEvent) => e.source.lsn,
  commit_lsn: (e: ChangeEvent) => e.source.commit_lsn ?? null,
  source_ts_ms: (e: ChangeEvent) => e.source.ts_ms,
  ts_ms: (e: ChangeEvent) => e.ts_ms,
  txId: (e: ChangeEvent) => e.source.txId,
  snapshot: (e: ChangeEvent) => e.source.snapshot,
  /** The row version sinks order by (see `rowVersion`). */
  version: (e: ChangeEvent) => rowVersion(e),
  deleted: (e: ChangeEvent) => e.op === 'd',
} as const satisfies Record<string, (e: ChangeEvent) => unknown>;

export type MetadataField = keyof typeof METADATA_FIELDS;

export const DEFAULT_METADATA_FIELDS: readonly MetadataField[] = ['op', 'table', 'lsn', 'source_ts_ms', 'deleted'];

export interface UnwrapOptions {
  /** Metadata fields to add, each as `__<name>`. */
  fields: readonly MetadataField[];
}

export type Unwrapped = { kind: 'upsert'; row: RowImage } | { kind: 'delete'; row: RowImage } | { kind: 'truncate' };

export function parseMetadataFields(list: readonly string[], settingName = 'CDC_UNWRAP_FIELDS'): MetadataField[] {
  return list.map((name) => {
    const key = name.trim().replace(/^__/, '').replace('.', '_');
    if (!Object.hasOwn(METADATA_FIELDS, key)) {
      throw new ConfigError(settingName, `metadata fields among ${Object.keys(METADATA_FIELDS).join(', ')}`, name);
    }
    return key as MetadataField;
  });
}

/** `__<field>` of every metadata field, made once rather than per row. */
const FIELD_NAMES = Object.fromEntries(Object.keys(METADATA_FIELDS).map((field) => [field, `__${field}`])) as Record<MetadataField, string>;

/** Sets the metadata fields on `row` (a fresh copy: the row image of the event is never changed). */
function withMetadata(row: RowImage, event: ChangeEvent, fields: readonly MetadataField[]): RowImage {
  for (const field of fields) row[FIELD_NAMES[field]] = METADATA_FIELDS[field](event);
  return row;
}

/** The row of `event` with its metadata fields; a new object each call, which the caller may extend. */
export function unwrap(event: ChangeEvent, options: UnwrapOptions = { fields: DEFAULT_METADATA_FIELDS }): Unwrapped {
  switch (event.op) {
    case 'c':
    case 'r':
    case 'u':
      return { kind: 'upsert', row: withMetadata({ ...(event.after ?? {}) }, event, options.fields) };
    case 'd':
      // With REPLICA IDENTITY DEFAULT `before` holds the key columns only; `key` is always there.
      return { kind: 'delete', row: withMetadata({ ...(event.key ?? {}), ...(event.before ?? {}) }, event, options.fields) };
    case 't':
      return { kind: 'truncate' };
    case 'm':
      throw new Error('unwrap: logical messages carry no row');
  }
}
