/**
 * What the reader knows about each published table: columns with decoders, and the key (the primary
 * key; else the replica identity index columns; else, for REPLICA IDENTITY FULL without a primary
 * key, every column). Refreshed whenever pgoutput sends a Relation message (schema change).
 */
import type { Decoder } from '../encode/pgTypes.js';
import type { TypeRegistry, Query } from '../encode/typeRegistry.js';
import type { RowImage } from '../../shared/events/changeEvent.js';

export interface RelationInfo {
  oid: number;
  schema: string;
  table: string;
  replicaIdentity: 'default' | 'nothing' | 'full' | 'index';
  columns: { name: string; typeOid: number; decode: Decoder }[];
  keyColumns: string[];
  /** `source.types` of the relation's events. */
  types: Record<string, string>;
}

/** Primary key columns of a table, in key order. */
export async function primaryKeyColumns(query: Query, relOid: number): Promise<string[]> {
  const { rows } = await query(
    `SELECT a.attname::text AS name
       FROM pg_catalog.pg_index i
       JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
       JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisprimary
      ORDER BY k.ord`,
    [relOid],
  );
  return rows.map((r) => String(r.name));
}

export async function describeRelation(
  query: Query,
  types: TypeRegistry,
  msg: {
    relationOid: number;
    schema: string;
    name: string;
    replicaIdentity: RelationInfo['replicaIdentity'];
    columns: { name: string; typeOid: number; flags: number }[];
  },
): Promise<RelationInfo> {
  await types.ensure(msg.columns.map((c) => c.typeOid));
  let keyColumns = await primaryKeyColumns(query, msg.relationOid);
  // Without a primary key: the replica identity index columns (flagged), or for FULL every column.
  if (keyColumns.length === 0) keyColumns = msg.columns.filter((c) => (c.flags & 1) === 1).map((c) => c.name);
  if (keyColumns.length === 0) keyColumns = msg.columns.map((c) => c.name);
  return {
    oid: msg.relationOid,
    schema: msg.schema,
    table: msg.name,
    replicaIdentity: msg.replicaIdentity,
    columns: msg.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, decode: types.decoder(c.typeOid) })),
    keyColumns,
    types: types.columnTypes(msg.columns),
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

export function keyOf(rel: RelationInfo, row: RowImage | null): RowImage | null {
  if (row === null) return null;
  const key: RowImage = {};
  for (const k of rel.keyColumns) key[k] = row[k] ?? null;
  return key;
}
