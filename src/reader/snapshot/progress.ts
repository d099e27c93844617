/**
 * Snapshot progress, kept in PostgreSQL next to the data (`<CDC_STATE_SCHEMA>.snapshot_progress`),
 * written only after the broker acknowledged a chunk, so a restarted reader resumes after the last
 * delivered chunk.
 */
import type { Client } from 'pg';
import { qualified, quoteIdent } from '../../shared/core/sql.js';

export interface TableProgress {
  schema: string;
  table: string;
  /** Text values of the last delivered key (key-column order); null = not started. */
  lastKey: string[] | null;
  rows: number;
  done: boolean;
}

export interface SnapshotState {
  /** Version given to every snapshot row (see docs/reader.md "Versioning contract for sinks"). */
  versionLsn: string | null;
  tables: TableProgress[];
}

export class ProgressStore {
  private readonly t: string;
  constructor(
    private readonly client: Client,
    private readonly schema: string,
    private readonly slot: string,
  ) {
    this.t = qualified(schema, 'snapshot_progress');
  }

  async init(): Promise<void> {
    await this.client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
    await this.client.query(
      `CREATE TABLE IF NOT EXISTS ${this.t} (
         slot_name text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL,
         last_key jsonb, rows bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false,
         version_lsn pg_lsn, updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (slot_name, schema_name, table_name))`,
    );
  }

  async load(): Promise<SnapshotState | null> {
    const { rows } = await this.client.query<{
      schema_name: string;
      table_name: string;
      last_key: string[] | null;
      rows: string;
      done: boolean;
      version_lsn: string | null;
    }>(`SELECT schema_name, table_name, last_key, rows::text, done, version_lsn::text FROM ${this.t} WHERE slot_name = $1 ORDER BY schema_name, table_name`, [
      this.slot,
    ]);
    if (rows.length === 0) return null;
    return {
      versionLsn: rows.find((r) => r.version_lsn !== null)?.version_lsn ?? null,
      tables: rows.map((r) => ({ schema: r.schema_name, table: r.table_name, lastKey: r.last_key, rows: Number(r.rows), done: r.done })),
    };
  }

  /** Plans a fresh snapshot (before the slot exists, so a crash in between is seen as "redo"). */
  async plan(tables: { schema: string; table: string }[]): Promise<void> {
    await this.client.query('BEGIN');
    try {
      await this.client.query(`DELETE FROM ${this.t} WHERE slot_name = $1`, [this.slot]);
      for (const t of tables) {
        await this.client.query(`INSERT INTO ${this.t} (slot_name, schema_name, table_name) VALUES ($1, $2, $3)`, [this.slot, t.schema, t.table]);
      }
      await this.client.query('COMMIT');
    } catch (err) {
      await this.client.query('ROLLBACK');
      throw err;
    }
  }

  async setVersion(versionLsn: string): Promise<void> {
    await this.client.query(`UPDATE ${this.t} SET version_lsn = $2::pg_lsn WHERE slot_name = $1`, [this.slot, versionLsn]);
  }

  async save(p: TableProgress): Promise<void> {
    await this.client.query(
      `UPDATE ${this.t} SET last_key = $4::jsonb, rows = $5, done = $6, updated_at = now() WHERE slot_name = $1 AND schema_name = $2 AND table_name = $3`,
      [this.slot, p.schema, p.table, JSON.stringify(p.lastKey), p.rows, p.done],
    );
  }

  async clear(): Promise<void> {
    await this.client.query(`DELETE FROM ${this.t} WHERE slot_name = $1`, [this.slot]);
  }
}
