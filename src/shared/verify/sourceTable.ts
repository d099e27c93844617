/**
 * A source table read the way the reader's snapshot reads it, in chunks: the captured columns
 * (`CAPTURED_COLUMN`), text values decoded by the reader's decoders (`TypeRegistry`, in a session
 * with `SESSION_OPTIONS`), keyed by the event-key rule (`catalogKeyColumns`). Each row comes out as
 * the row image a snapshot event of it would carry, with the `source.types` of its columns, so a
 * sink's own `prepare` can render it exactly as it would have stored it.
 *
 * Streaming, never the whole table: keyset pagination by the event key (`ORDER BY key LIMIT n`), or
 * for a table keyed by every column (no unique key) by `(tableoid, ctid)`, which is unique across the
 * partitions of a partitioned table too. The whole table is read in one REPEATABLE READ READ ONLY
 * transaction, so the chunks are one consistent snapshot (and ctids stay put while it is read).
 */
import type pg from 'pg';
import { qualified, quoteIdent } from '../core/sql.js';
import type { RowImage } from '../events/changeEvent.js';
import { catalogKeyColumns, tableCatalog } from '../events/pgTables.js';
import type { TypeRegistry } from '../events/typeRegistry.js';

export interface SourceTable {
  schema: string;
  table: string;
  keyColumns: string[];
  /** Keyed by every column (no primary key or identity index): identical rows share one key. */
  wholeRowKey: boolean;
  columns: string[];
}

export interface SourceChunk {
  /** Rows as event row images (README "Type mapping"). */
  rows: RowImage[];
  /** `source.types` of the chunk's columns. */
  types: Record<string, string>;
}

/** The table's captured columns and event key, or undefined when PostgreSQL has no such table. */
export async function describeSourceTable(client: pg.Client, schema: string, table: string): Promise<SourceTable | undefined> {
  const catalog = await tableCatalog((sql, params) => client.query(sql, params), schema, table);
  if (catalog === undefined) return undefined;
  const { keyColumns, wholeRowKey } = catalogKeyColumns(catalog);
  return { schema, table, keyColumns, wholeRowKey, columns: catalog.columns };
}

/**
 * The rows of `table` in chunks of `chunkRows`. `client` must be a session opened with
 * `SESSION_OPTIONS` and `textTypes` (every value as PostgreSQL's text), as the reader's snapshot is.
 */
export async function* readSourceTable(client: pg.Client, types: TypeRegistry, table: SourceTable, chunkRows: number): AsyncGenerator<SourceChunk> {
  const name = qualified(table.schema, table.table);
  const position = table.wholeRowKey ? ['tableoid', 'ctid'] : table.keyColumns.map(quoteIdent);
  const order = position.join(', ');
  // Rows as arrays: the captured columns, then (without a unique key) the row's position.
  const select = [...table.columns.map(quoteIdent), ...(table.wholeRowKey ? position : [])].join(', ');
  const positionAt = table.wholeRowKey ? [table.columns.length, table.columns.length + 1] : table.keyColumns.map((k) => table.columns.indexOf(k));
  const casts = table.wholeRowKey ? ['::oid', '::tid'] : position.map(() => '');
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    let last: (string | null)[] | null = null;
    for (;;) {
      const where: string = last === null ? '' : ` WHERE (${order}) > (${last.map((_, i) => `$${i + 1}${casts[i]}`).join(', ')})`;
      const res: pg.QueryArrayResult<(string | null)[]> = await client.query<(string | null)[]>({
        text: `SELECT ${select} FROM ${name}${where} ORDER BY ${order} LIMIT ${chunkRows}`,
        values: last ?? [],
        rowMode: 'array',
      });
      const fields = res.fields.slice(0, table.columns.length);
      await types.ensure(fields.map((f) => f.dataTypeID));
      const decoders = fields.map((f) => types.decoder(f.dataTypeID));
      const rows = res.rows.map((raw) => {
        const row: RowImage = {};
        fields.forEach((f, i) => {
          const v = raw[i];
          row[f.name] = v === null || v === undefined ? null : decoders[i]!(v);
        });
        return row;
      });
      if (rows.length > 0) yield { rows, types: types.columnTypes(fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID }))) };
      if (res.rows.length < chunkRows) return;
      const tail: (string | null)[] = res.rows[res.rows.length - 1]!;
      last = positionAt.map((i): string | null => tail[i] ?? null);
    }
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
}

/** The event key of a row image (the key columns' values, in key order). */
export function rowKey(table: SourceTable, row: RowImage): RowImage {
  const key: RowImage = {};
  for (const column of table.keyColumns) key[column] = row[column] ?? null;
  return key;
}
