/**
 * Schema changes as the reader sees them: a Relation message whose name, columns, types, key or
 * replica identity differ from the previous one for that relation id (in this run, or, on the first
 * message after a restart, the last one the slot's reader saw: `CapturedTables`). Each is logged with
 * the old and new shape, counted in the metrics (`ReaderMetrics.schemaChange`) and shown by the status
 * (docs/reader.md "Schema changes").
 */
import type { Query } from '../../shared/events/typeRegistry.js';
import type { ReplicaIdentity } from '../../shared/events/pgTables.js';
import type { RelationShape } from './captured.js';

export type SchemaChangeKind = 'name' | 'columns' | 'types' | 'key' | 'identity';

export interface SchemaChange {
  /** The captured name (the events' `source.schema`.`source.table`). */
  table: string;
  oid: number;
  /** Commit LSN of the transaction whose change came with the new Relation message. */
  lsn: string | null;
  /** When the reader read it (ISO). */
  at: string;
  changed: SchemaChangeKind[];
  /** Compared with what the reader saw before it was restarted (the change was made while it was stopped or lagging). */
  acrossRestart: boolean;
  before: RelationShape;
  after: RelationShape;
}

/** The shape of a Relation message: column types as PostgreSQL writes them (`format_type`), the event key and the identity. */
export async function relationShape(
  query: Query,
  msg: { schema: string; name: string; columns: { name: string; typeOid: number; typeMod: number }[] },
  key: string[],
  identity: ReplicaIdentity,
): Promise<RelationShape> {
  const { rows } = await query('SELECT pg_catalog.format_type(t, m) AS type FROM unnest($1::oid[], $2::int[]) WITH ORDINALITY AS u(t, m, i) ORDER BY i', [
    msg.columns.map((c) => c.typeOid),
    msg.columns.map((c) => c.typeMod),
  ]);
  return {
    name: `${msg.schema}.${msg.name}`,
    columns: msg.columns.map((c, i) => ({
      name: c.name,
      type: typeof rows[i]?.type === 'string' ? rows[i].type : String(c.typeOid),
      typmod: c.typeMod,
    })),
    key,
    identity,
  };
}

/** What differs between two shapes of one relation (empty: the same). */
export function schemaDiff(before: RelationShape, after: RelationShape): SchemaChangeKind[] {
  const out: SchemaChangeKind[] = [];
  if (before.name !== after.name) out.push('name');
  const names = (s: RelationShape) => s.columns.map((c) => c.name).join('\u0000');
  if (names(before) !== names(after)) out.push('columns');
  const types = new Map(before.columns.map((c) => [c.name, c.type]));
  if (after.columns.some((c) => types.has(c.name) && types.get(c.name) !== c.type)) out.push('types');
  if (before.key.join('\u0000') !== after.key.join('\u0000')) out.push('key');
  if (before.identity !== after.identity) out.push('identity');
  return out;
}

/** The log line's fields: old and new columns with types, key and identity, and what was added, dropped or retyped. */
export function schemaChangeFields(c: SchemaChange): Record<string, unknown> {
  const cols = (s: RelationShape) => Object.fromEntries(s.columns.map((col) => [col.name, col.type]));
  const had = new Map(c.before.columns.map((col) => [col.name, col.type]));
  const has = new Set(c.after.columns.map((col) => col.name));
  return {
    table: c.table,
    oid: c.oid,
    lsn: c.lsn,
    changed: c.changed,
    acrossRestart: c.acrossRestart,
    added: c.after.columns.filter((col) => !had.has(col.name)).map((col) => col.name),
    dropped: c.before.columns.filter((col) => !has.has(col.name)).map((col) => col.name),
    retyped: c.after.columns
      .filter((col) => had.has(col.name) && had.get(col.name) !== col.type)
      .map((col) => `${col.name}: ${had.get(col.name)} -> ${col.type}`),
    before: { name: c.before.name, columns: cols(c.before), key: c.before.key, identity: c.before.identity },
    after: { name: c.after.name, columns: cols(c.after), key: c.after.key, identity: c.after.identity },
  };
}

/**
 * Whether a schema change leaves documents that only an incremental snapshot brings up to date
 * (CDC_SCHEMA_CHANGE_SNAPSHOT): anything but a rename of the table or columns appended without a
 * default. A dropped, renamed or retyped column, a new key or identity change what existing rows'
 * documents should hold; so does an added column with a default (or a volatile one that rewrote the
 * table), which pgoutput does not tell: the catalog is asked (`atthasdef`, `atthasmissing`), and a
 * column it no longer finds counts as one with a default (the safe side).
 */
export async function needsReconcile(query: Query, change: Pick<SchemaChange, 'oid' | 'changed' | 'before' | 'after'>): Promise<boolean> {
  if (change.changed.some((k) => k !== 'name' && k !== 'columns')) return true;
  if (!change.changed.includes('columns')) return false;
  const before = change.before.columns.map((c) => c.name);
  const after = change.after.columns.map((c) => c.name);
  // Purely additive: the old columns unchanged, in order, the new ones after them.
  if (after.length <= before.length || before.some((name, i) => after[i] !== name)) return true;
  const added = after.slice(before.length);
  const { rows } = await query(
    'SELECT count(*)::int AS n FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = ANY($2::text[]) AND NOT attisdropped AND NOT atthasdef AND NOT atthasmissing',
    [change.oid, added],
  );
  return Number((rows[0] as { n?: number } | undefined)?.n ?? 0) !== added.length;
}
