/**
 * The tables a slot captures, by relation id (pg_class oid), kept in `<CDC_STATE_SCHEMA>.captured_tables`
 * for the life of the slot: the name each was first captured under, and the shape of the last Relation
 * message the reader saw for it.
 *
 * - The captured name is the table's name in every event (`source.schema`, `source.table`, hence the
 *   topic and the sinks' routes and indices), also after `ALTER TABLE … RENAME` or `SET SCHEMA`; the
 *   current name goes in `source.renamed_to` (docs/reader.md "Renames"). A restart with the old name in
 *   CDC_TABLES finds the table by its oid here.
 * - The shape lets a schema change made while the reader was stopped show as one on its first Relation
 *   message after the restart (docs/reader.md "Schema changes").
 *
 * A fresh slot starts afresh (a new slot snapshots and names every table as it is now).
 */
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import type { ReplicaIdentity } from '../../shared/events/pgTables.js';
import type { Query } from '../../shared/events/typeRegistry.js';
import { qualified, quoteIdent } from '../../shared/core/sql.js';
import type { Lsn } from '../lsn.js';
import { formatLsn, parseLsn } from '../lsn.js';

/** What a Relation message says about a table: what a schema change is a change of. */
export interface RelationShape {
  /** The table's name at that point of the WAL, `schema.table`. */
  name: string;
  columns: { name: string; type: string; typmod: number }[];
  key: string[];
  identity: ReplicaIdentity;
}

interface Entry {
  schema: string;
  table: string;
  shape: RelationShape | null;
  /** Commit LSN of the transaction the shape was seen in. */
  shapeLsn: Lsn | null;
}

export class CapturedTables {
  private readonly byOid = new Map<number, Entry>();
  private readonly t: string;
  /** False when the state table cannot be written (no CREATE privilege): renames are then followed within a run only. */
  private persistent = true;

  constructor(
    private readonly query: Query,
    private readonly schema: string,
    private readonly slot: string,
    private readonly log: Logger,
  ) {
    this.t = qualified(schema, 'captured_tables');
  }

  /** Creates the table, forgets what an earlier slot of this name captured when `freshSlot`, loads the rest. */
  async init(freshSlot: boolean): Promise<void> {
    try {
      await this.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`, []);
      await this.query(
        `CREATE TABLE IF NOT EXISTS ${this.t} (
           slot_name text NOT NULL, relid oid NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
           shape jsonb, shape_lsn pg_lsn, updated_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (slot_name, relid))`,
        [],
      );
      if (freshSlot) await this.query(`DELETE FROM ${this.t} WHERE slot_name = $1`, [this.slot]);
      const { rows } = await this.query(
        `SELECT relid::int AS relid, schema_name, table_name, shape, shape_lsn::text AS shape_lsn FROM ${this.t} WHERE slot_name = $1`,
        [this.slot],
      );
      for (const r of rows as { relid: number; schema_name: string; table_name: string; shape: RelationShape | null; shape_lsn: string | null }[]) {
        this.byOid.set(Number(r.relid), {
          schema: r.schema_name,
          table: r.table_name,
          shape: r.shape,
          shapeLsn: r.shape_lsn === null ? null : parseLsn(r.shape_lsn),
        });
      }
    } catch (err) {
      this.persistent = false;
      this.log.warn(
        `cannot keep ${this.t}: a renamed table is followed within this run only, and a schema change made while the reader is stopped is not reported`,
        {
          ...errorFields(err),
          fix: `GRANT CREATE ON DATABASE <db> TO <the reader's role>, or create schema ${quoteIdent(this.schema)} for it (CDC_STATE_SCHEMA)`,
        },
      );
    }
  }

  /** Whether the state table is kept (false: what is captured is known within this run only). */
  get kept(): boolean {
    return this.persistent;
  }

  /** Every relation id captured so far. */
  oids(): number[] {
    return [...this.byOid.keys()];
  }

  /** The name the table was captured under, if it was. */
  nameOf(oid: number): { schema: string; table: string } | undefined {
    const e = this.byOid.get(oid);
    return e && { schema: e.schema, table: e.table };
  }

  /** The oid of the table captured under `schema.table` (a stale name after a rename), if any. */
  oidOf(schema: string, table: string): number | undefined {
    for (const [oid, e] of this.byOid) if (e.schema === schema && e.table === table) return oid;
    return undefined;
  }

  /** Records the table under `schema.table` unless it is captured already; returns the captured name. */
  async register(oid: number, schema: string, table: string): Promise<{ schema: string; table: string }> {
    const known = this.nameOf(oid);
    if (known) return known;
    this.byOid.set(oid, { schema, table, shape: null, shapeLsn: null });
    if (this.persistent)
      await this.query(`INSERT INTO ${this.t} (slot_name, relid, schema_name, table_name) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, [
        this.slot,
        oid,
        schema,
        table,
      ]);
    return { schema, table };
  }

  /** The last shape seen for the table, and the commit LSN it was seen at. */
  shapeOf(oid: number): { shape: RelationShape; lsn: Lsn | null } | undefined {
    const e = this.byOid.get(oid);
    return e?.shape ? { shape: e.shape, lsn: e.shapeLsn } : undefined;
  }

  async saveShape(oid: number, shape: RelationShape, lsn: Lsn | null): Promise<void> {
    const e = this.byOid.get(oid);
    if (!e) return;
    e.shape = shape;
    e.shapeLsn = lsn;
    if (this.persistent)
      await this.query(`UPDATE ${this.t} SET shape = $3::jsonb, shape_lsn = $4::pg_lsn, updated_at = now() WHERE slot_name = $1 AND relid = $2`, [
        this.slot,
        oid,
        JSON.stringify(shape),
        lsn === null ? null : formatLsn(lsn),
      ]);
  }
}
