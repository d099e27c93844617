/**
 * PostgreSQL tables as the reader captures them, for every reader of the source: the session its
 * values are read in (text form, UTC, ISO), the columns pgoutput sends, and the event key's columns.
 * The reader's snapshot, stream and start-up checks use them, and so does the checker
 * (src/shared/verify), which reads a table the way the snapshot does and renders its rows with the
 * same decoders (pgTypes.ts), so "what the sink should hold" is computed by the reader's own rules.
 */
import type { Query } from './typeRegistry.js';

/**
 * Session settings under which text values are decoded (pgTypes.ts relies on them), and under which
 * `quoteLiteral`'s literals mean their text (the snapshot's COPY ranges carry their key bounds as
 * literals, since COPY takes no parameters; a server configured with standard_conforming_strings off
 * would otherwise read a backslash in a key as an escape).
 */
export const SESSION_OPTIONS = '-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c standard_conforming_strings=on';

/** pg type overrides: every column arrives as PostgreSQL text. */
export const textTypes = { getTypeParser: () => (v: string | Buffer) => (typeof v === 'string' ? v : v.toString('utf8')) };

/**
 * SQL condition on `pg_attribute a`: the columns pgoutput sends (PostgreSQL ≤ 17 skips dropped and
 * generated columns; PostgreSQL 18 sends stored generated ones only with `publish_generated_columns`,
 * which the reader does not set). The snapshot reads exactly these, in attribute order, so snapshot rows
 * and streamed rows have one column set and a whole-row key is the same in both.
 */
export const CAPTURED_COLUMN = "a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''";

/** SQL: the columns of the index of relation `rel` matching `cond`, in index key order (null when there is none). */
export const indexColumnsSql = (rel: string, cond: string): string =>
  `(SELECT array_agg(a.attname::text ORDER BY k.ord)
      FROM pg_catalog.pg_index i
      JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = ${rel} AND ${cond})`;

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

/**
 * The event key's columns: one rule for the snapshot (from the catalog, `catalogKeyColumns`) and the stream
 * (from the Relation message), so both key a row the same way, and the key can always be taken from what
 * the server sends for a change (the new tuple; for an update of the key or a delete the old key tuple,
 * which holds exactly the replica identity columns).
 * - DEFAULT and USING INDEX: the replica identity columns (`identity`: the columns pgoutput flags, i.e.
 *   the primary key, or the identity index's columns), in the catalog index's key order when it has the
 *   same columns (the order of the record key's JSON and of a composite document id), else in attribute
 *   order. The catalog only orders: the columns themselves come from the WAL, which stays right when the
 *   reader lags behind a schema change.
 * - FULL (every column flagged; old tuples carry the whole row): the primary key when the table has one
 *   and all its columns are sent, else every column (`wholeRowKey`).
 * - no identity (NOTHING, DEFAULT without a primary key, a dropped identity index): the server publishes
 *   only inserts for such a table; keyed as FULL.
 */
export function eventKeyColumns(k: {
  replicaIdentity: ReplicaIdentity;
  /** Replica identity columns as the server flags them, in attribute order. */
  identity: string[];
  /** Every column the stream carries, in attribute order. */
  columns: string[];
  primaryKey: string[];
  identityIndex: string[];
}): { keyColumns: string[]; wholeRowKey: boolean } {
  if (k.replicaIdentity !== 'full' && k.identity.length > 0) {
    const catalog = k.replicaIdentity === 'index' ? k.identityIndex : k.primaryKey;
    const same = catalog.length === k.identity.length && catalog.every((c) => k.identity.includes(c));
    return { keyColumns: same ? catalog : k.identity, wholeRowKey: false };
  }
  if (k.primaryKey.length > 0 && k.primaryKey.every((c) => k.columns.includes(c))) return { keyColumns: k.primaryKey, wholeRowKey: false };
  return { keyColumns: k.columns, wholeRowKey: true };
}

/** What the catalog says about a table: its identity, keys and captured columns. */
export interface TableCatalog {
  oid: number;
  /** Its current name. */
  schema: string;
  table: string;
  /** `pg_class.relreplident`: d(efault), n(othing), f(ull), i(ndex). */
  relreplident: 'd' | 'n' | 'f' | 'i';
  canSelect: boolean;
  primaryKey: string[];
  primaryKeyDeferrable: boolean;
  identityIndex: string[];
  /** The captured columns (`CAPTURED_COLUMN`), in attribute order. */
  columns: string[];
}

const IDENTITY = { d: 'default', n: 'nothing', f: 'full', i: 'index' } as const;

/** The catalog entry of `schema.table` (a table or partitioned table), or undefined when there is none. */
export async function tableCatalog(query: Query, schema: string, table: string): Promise<TableCatalog | undefined> {
  return catalogWhere(query, 'n.nspname = $1 AND c.relname = $2', [schema, table]);
}

/** The catalog entry of the table with relation id `oid` (whatever its name now), or undefined when there is none. */
export async function tableCatalogByOid(query: Query, oid: number): Promise<TableCatalog | undefined> {
  return catalogWhere(query, 'c.oid = $1', [oid]);
}

async function catalogWhere(query: Query, where: string, params: unknown[]): Promise<TableCatalog | undefined> {
  // One json value: the same result whether the session parses types or reads every value as text (`textTypes`).
  const { rows } = await query(
    `SELECT json_build_object(
              'oid', c.oid::int, 'schema', n.nspname::text, 'table', c.relname::text, 'relreplident', c.relreplident::text,
              'can_select', has_table_privilege(c.oid, 'SELECT'),
              'pk', ${indexColumnsSql('c.oid', 'i.indisprimary')},
              'ri', ${indexColumnsSql('c.oid', 'i.indisreplident')},
              'cols', (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                        WHERE a.attrelid = c.oid AND ${CAPTURED_COLUMN}),
              'pk_deferrable', EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND NOT i.indimmediate)) AS j
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE ${where} AND c.relkind IN ('r', 'p')`,
    params,
  );
  const j = rows[0]?.j;
  const r = (typeof j === 'string' ? JSON.parse(j) : j) as
    | {
        oid: number;
        schema: string;
        table: string;
        relreplident: TableCatalog['relreplident'];
        can_select: boolean;
        pk: string[] | null;
        ri: string[] | null;
        cols: string[] | null;
        pk_deferrable: boolean;
      }
    | undefined;
  if (!r) return undefined;
  return {
    oid: Number(r.oid),
    schema: r.schema,
    table: r.table,
    relreplident: r.relreplident,
    canSelect: r.can_select,
    primaryKey: r.pk ?? [],
    primaryKeyDeferrable: r.pk_deferrable,
    identityIndex: r.ri ?? [],
    columns: r.cols ?? [],
  };
}

/**
 * The event key of a table from its catalog entry: the columns the server will flag as the replica
 * identity in its Relation message, through `eventKeyColumns`, so a row read from the table is keyed
 * exactly as the stream keys its changes.
 */
export function catalogKeyColumns(t: TableCatalog): { keyColumns: string[]; wholeRowKey: boolean } {
  const ident = t.relreplident;
  const identity = ident === 'd' ? t.primaryKey : ident === 'i' ? t.identityIndex : ident === 'f' ? t.columns : [];
  return eventKeyColumns({
    replicaIdentity: IDENTITY[ident],
    identity: t.columns.filter((c) => identity.includes(c)), // flagged in attribute order, as the server sends them
    columns: t.columns,
    primaryKey: t.primaryKey,
    identityIndex: t.identityIndex,
  });
}
