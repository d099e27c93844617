/**
 * What the reader knows about each published table: columns with decoders, and the event key (see
 * `eventKeyColumns`). Refreshed whenever pgoutput sends a Relation message (schema change).
 */
import type { Decoder } from '../../shared/events/pgTypes.js';
import { eventKeyColumns, indexColumnsSql, type ReplicaIdentity } from '../../shared/events/pgTables.js';
import type { TypeRegistry, Query } from '../../shared/events/typeRegistry.js';
import type { RowImage } from '../../shared/events/changeEvent.js';
import type { DebeziumColumn } from '../encode/debezium.js';
import { rowJsonEncoder, type RowJsonEncoder } from '../encode/rowJson.js';
import type { TupleValue } from './plugin.js';

export interface RelationInfo {
  oid: number;
  /** The name the table was captured under (`CapturedTables`): its events' `source.schema`/`source.table`. */
  schema: string;
  table: string;
  /** Its name in this Relation message, when it differs from the captured one: `source.renamed_to`. */
  renamedTo?: string;
  replicaIdentity: ReplicaIdentity;
  /** `typmod`: the Relation message's type modifier (atttypmod, −1 for none). */
  columns: { name: string; typeOid: number; typmod: number; decode: Decoder }[];
  /** The columns as the Debezium format's encoder needs them (built once per Relation message). */
  debeziumColumns: DebeziumColumn[];
  keyColumns: string[];
  /** The key is every column (no unique key): a NULL is then a legitimate key value. */
  wholeRowKey: boolean;
  /**
   * Two rows can hold the key at one moment of a transaction: it is a DEFERRABLE primary key (possible
   * only with REPLICA IDENTITY FULL: PostgreSQL never uses a deferrable index as the identity). Any
   * other unique key is checked row by row by a non-deferrable index. (A whole-row key is not unique at
   * all, but there a row equal to another is a duplicate the sinks cannot hold apart anyway.)
   */
  keyMayRepeat: boolean;
  /** `source.types` of the relation's events. */
  types: Record<string, string>;
  /**
   * The row's and key's JSON straight from the column texts (rowJson.ts), for the stream's inserts;
   * null when a column name rules it out: the row object's path then.
   */
  rowJson: RowJsonEncoder | null;
}

/** The primary key and the replica identity index of a table from the catalog, each in index key order. */
export async function catalogKeys(query: Query, relOid: number): Promise<{ primaryKey: string[]; primaryKeyDeferrable: boolean; identityIndex: string[] }> {
  const { rows } = await query(
    `SELECT ${indexColumnsSql('$1', 'i.indisprimary')} AS pk, ${indexColumnsSql('$1', 'i.indisreplident')} AS ri,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1 AND i.indisprimary AND NOT i.indimmediate) AS pk_deferrable`,
    [relOid],
  );
  const r = rows[0] as { pk: string[] | null; ri: string[] | null; pk_deferrable: boolean } | undefined;
  return { primaryKey: r?.pk ?? [], primaryKeyDeferrable: r?.pk_deferrable ?? false, identityIndex: r?.ri ?? [] };
}

/**
 * The column details only Debezium's schema needs (`optional` from NOT NULL, an enum's `allowed`
 * labels, also through a domain), from the catalog as it is now (like `catalogKeys`).
 */
export async function withDebeziumDetails(query: Query, relOid: number, columns: readonly DebeziumColumn[]): Promise<DebeziumColumn[]> {
  // Text results: the snapshot's connection parses no types (every value arrives as its text).
  const { rows } = await query(
    `SELECT a.attname AS name, a.attnotnull::text AS not_null,
            (SELECT pg_catalog.json_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
              WHERE e.enumtypid = COALESCE(NULLIF(t.typbasetype, 0), a.atttypid))::text AS labels
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`,
    [relOid],
  );
  const byName = new Map((rows as { name: string; not_null: string; labels: string | null }[]).map((r) => [r.name, r]));
  return columns.map((c) => {
    const r = byName.get(c.name);
    return { ...c, notNull: r?.not_null === 'true', ...(r?.labels ? { enumLabels: JSON.parse(r.labels) as string[] } : {}) };
  });
}

export async function describeRelation(
  query: Query,
  types: TypeRegistry,
  msg: {
    relationOid: number;
    schema: string;
    name: string;
    replicaIdentity: RelationInfo['replicaIdentity'];
    columns: { name: string; typeOid: number; typeMod: number; flags: number }[];
  },
  /** The captured name (the message's own when not given). */
  captured: { schema: string; table: string } = { schema: msg.schema, table: msg.name },
  /** The Debezium format: the columns' catalog details for its schema (`withDebeziumDetails`). */
  debezium = false,
): Promise<RelationInfo> {
  await types.ensure(msg.columns.map((c) => c.typeOid));
  const { primaryKey, primaryKeyDeferrable, identityIndex } = await catalogKeys(query, msg.relationOid);
  const { keyColumns, wholeRowKey } = eventKeyColumns({
    replicaIdentity: msg.replicaIdentity,
    // Flag bit 1: the column is part of the replica identity (protocol-logicalrep-message-formats).
    identity: msg.columns.filter((c) => (c.flags & 1) === 1).map((c) => c.name),
    columns: msg.columns.map((c) => c.name),
    primaryKey,
    identityIndex,
  });
  const renamed = captured.schema !== msg.schema || captured.table !== msg.name;
  const dbzColumns: DebeziumColumn[] = msg.columns.map((c) => ({ name: c.name, type: types.baseTypeName(c.typeOid), typmod: c.typeMod }));
  const columns = msg.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, typmod: c.typeMod, decode: types.decoder(c.typeOid) }));
  return {
    oid: msg.relationOid,
    schema: captured.schema,
    table: captured.table,
    ...(renamed ? { renamedTo: `${msg.schema}.${msg.name}` } : {}),
    replicaIdentity: msg.replicaIdentity,
    columns,
    debeziumColumns: debezium ? await withDebeziumDetails(query, msg.relationOid, dbzColumns) : dbzColumns,
    keyColumns,
    wholeRowKey,
    keyMayRepeat: msg.replicaIdentity === 'full' && !wholeRowKey && primaryKeyDeferrable,
    types: types.columnTypes(msg.columns),
    rowJson: rowJsonEncoder(
      columns.map((c, i) => ({ name: c.name, decoder: c.decode, baseType: dbzColumns[i]!.type })),
      keyColumns,
      wholeRowKey,
    ),
  };
}

export const UNCHANGED_TOAST = Symbol('unchanged-toast');

/**
 * Decodes a pgoutput tuple (raw text values, null, or undefined for an unchanged TOAST value) into a
 * row image. Unchanged TOAST columns are omitted and returned in `unchanged`.
 */
export function decodeTuple(rel: RelationInfo, tuple: Record<string, unknown>): { row: RowImage; unchanged: string[] } {
  const row: RowImage = {};
  const unchanged: string[] = [];
  for (const c of rel.columns) {
    if (!(c.name in tuple)) continue;
    const v = tuple[c.name];
    if (v === undefined) {
      unchanged.push(c.name);
      continue;
    }
    if (v === null) {
      row[c.name] = null;
      continue;
    }
    row[c.name] = c.decode(typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : JSON.stringify(v));
  }
  return { row, unchanged };
}

/**
 * `decodeTuple` for a tuple read as an array of column values in the relation's column order
 * (`InsertMessage.values`): the same row image and unchanged columns, without the library's
 * name-keyed tuple. `unchanged` is undefined when no column is (the common case: no array per row).
 */
export function decodeValues(rel: RelationInfo, values: readonly TupleValue[]): { row: RowImage; unchanged: string[] | undefined } {
  const row: RowImage = {};
  let unchanged: string[] | undefined;
  const columns = rel.columns;
  if (values.length > columns.length) throw new Error(`a change of ${rel.schema}.${rel.table} has ${values.length} columns, its relation ${columns.length}`);
  for (let i = 0; i < values.length; i++) {
    const c = columns[i]!;
    const v = values[i];
    if (v === undefined) (unchanged ??= []).push(c.name);
    else row[c.name] = v === null ? null : c.decode(typeof v === 'string' ? v : v.toString('utf8'));
  }
  return { row, unchanged };
}

/**
 * The key of a row image. A key column missing from the image (not sent by the server) means the key
 * columns do not match what the server sends: a bug, so it fails loudly, naming the table, instead of
 * emitting a null key column that would address the wrong row (or none) in every sink.
 */
export function keyFrom(table: { schema: string; table: string }, keyColumns: string[], wholeRowKey: boolean, row: RowImage): RowImage {
  const key: RowImage = {};
  for (const k of keyColumns) {
    const v = row[k];
    if (v === undefined || (v === null && !wholeRowKey)) {
      throw new Error(
        `key column "${k}" of ${table.schema}.${table.table} is ${v === undefined ? 'missing from' : 'NULL in'} the row the server sent ` +
          `(key columns: ${keyColumns.join(', ')}; columns sent: ${Object.keys(row).join(', ')}); refusing to emit an event with a wrong key`,
      );
    }
    key[k] = v;
  }
  return key;
}

export function relationKey(rel: RelationInfo, row: RowImage): RowImage {
  return keyFrom(rel, rel.keyColumns, rel.wholeRowKey, row);
}
