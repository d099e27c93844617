/**
 * Start-up checks. Each failure is a StartupError whose message says what is wrong and how to fix it.
 */
import type { Client } from 'pg';
import type { TableRef } from '../config.js';
import { StartupError } from '../errors.js';
import { catalogKeyColumns, tableCatalog } from '../../shared/events/pgTables.js';
import { qualified, quoteIdent } from '../../shared/core/sql.js';

export interface CheckedTable extends TableRef {
  oid: number;
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
  primaryKey: string[];
  /**
   * The event key, by the rule the stream applies to the Relation message (`eventKeyColumns`): DEFAULT the
   * primary key, USING INDEX the identity index's columns, FULL the primary key or else every column.
   */
  keyColumns: string[];
  /** No unique key: the key is every column (the snapshot then reads the table in one pass). */
  wholeRowKey: boolean;
}

export async function checkWalLevel(client: Client): Promise<void> {
  const { rows } = await client.query<{ wal_level: string }>('SHOW wal_level');
  const level = rows[0]?.wal_level;
  if (level !== 'logical') {
    throw new StartupError(
      'WAL_LEVEL_NOT_LOGICAL',
      `wal_level is '${level}', logical replication needs 'logical'. ` +
        'Azure Database for PostgreSQL Flexible Server: set the server parameter wal_level to LOGICAL ' +
        '(portal: Server parameters, or `az postgres flexible-server parameter set --name wal_level --value logical ' +
        '--resource-group <rg> --server-name <server>`) and restart the server. ' +
        "Plain PostgreSQL: `ALTER SYSTEM SET wal_level = 'logical';` (or wal_level = logical in postgresql.conf), " +
        'make sure max_replication_slots and max_wal_senders are > 0, then restart PostgreSQL.',
    );
  }
}

export async function checkReplicationPrivilege(client: Client): Promise<void> {
  const { rows } = await client.query<{ rolname: string; rolreplication: boolean; rolsuper: boolean }>(
    'SELECT rolname::text, rolreplication, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user',
  );
  const r = rows[0];
  if (!r || (!r.rolreplication && !r.rolsuper)) {
    const user = r?.rolname ?? 'current_user';
    throw new StartupError(
      'MISSING_REPLICATION_PRIVILEGE',
      `role ${quoteIdent(user)} lacks the REPLICATION attribute needed to create and read a replication slot. ` +
        `Fix: ALTER ROLE ${quoteIdent(user)} WITH REPLICATION; (on Azure Flexible Server run it as the admin user, ` +
        'a member of azure_pg_admin).',
    );
  }
}

/** Resolves and checks the tables to capture: existence, SELECT privilege, key / replica identity. */
export async function checkTables(client: Client, tables: TableRef[] | null, excludeSchema?: string): Promise<CheckedTable[]> {
  let refs: TableRef[];
  if (tables === null) {
    const { rows } = await client.query<{ schema: string; table: string }>(
      `SELECT n.nspname::text AS schema, c.relname::text AS table
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
        ORDER BY 1, 2`,
    );
    refs = rows.filter((r) => r.schema !== excludeSchema);
  } else refs = tables;
  const out: CheckedTable[] = [];
  for (const t of refs) {
    const r = await tableCatalog((sql, params) => client.query(sql, params), t.schema, t.table);
    const name = qualified(t.schema, t.table);
    if (!r)
      throw new StartupError(
        'TABLE_NOT_FOUND',
        `table ${name} does not exist (CDC_TABLES lists it). Check the name; quote parts with upper case or punctuation: "My Schema"."My Table".`,
      );
    if (!r.canSelect) {
      throw new StartupError(
        'MISSING_SELECT_PRIVILEGE',
        `no SELECT privilege on ${name} (needed for the snapshot and TOAST handling). Fix: GRANT SELECT ON ${name} TO current_user's role, e.g. GRANT SELECT ON ${name} TO ${quoteIdent('<reader role>')};`,
      );
    }
    const pk = r.primaryKey;
    const ident = r.relreplident;
    if (ident === 'n' || (ident === 'd' && pk.length === 0)) {
      throw new StartupError(
        'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY',
        `table ${name} has ${ident === 'n' ? 'REPLICA IDENTITY NOTHING' : 'no primary key'}, so updates and deletes cannot be captured by key. ` +
          `Fix: add a primary key (ALTER TABLE ${name} ADD PRIMARY KEY (...)), or ALTER TABLE ${name} REPLICA IDENTITY FULL (or USING INDEX <unique index>).`,
      );
    }
    if (ident === 'd' && r.primaryKeyDeferrable) {
      // PostgreSQL cannot use a deferrable key as replica identity: once the table is published, the
      // application's own UPDATE and DELETE on it fail ("does not have a replica identity").
      throw new StartupError(
        'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY',
        `table ${name} has a DEFERRABLE primary key, which PostgreSQL cannot use as replica identity: publishing it would make every UPDATE and DELETE on it fail. ` +
          `Fix: ALTER TABLE ${name} REPLICA IDENTITY FULL (or USING INDEX <a non-deferrable unique index on NOT NULL columns>).`,
      );
    }
    // The columns the server will flag as the replica identity in its Relation message, so the snapshot
    // keys rows exactly as the stream will (eventKeyColumns).
    const { keyColumns, wholeRowKey } = catalogKeyColumns(r);
    out.push({ schema: t.schema, table: t.table, oid: r.oid, replicaIdentity: ident, primaryKey: pk, keyColumns, wholeRowKey });
  }
  return out;
}

export interface SlotState {
  exists: boolean;
  active: boolean;
  activePid: number | null;
  plugin: string | null;
  restartLsn: string | null;
  confirmedFlushLsn: string | null;
}

export async function slotState(client: Client, slot: string): Promise<SlotState> {
  const { rows } = await client.query<{
    active: boolean;
    active_pid: number | null;
    plugin: string | null;
    restart_lsn: string | null;
    confirmed_flush_lsn: string | null;
    database: string | null;
  }>(
    'SELECT active, active_pid, plugin::text, restart_lsn::text, confirmed_flush_lsn::text, database::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const r = rows[0];
  if (!r) return { exists: false, active: false, activePid: null, plugin: null, restartLsn: null, confirmedFlushLsn: null };
  return { exists: true, active: r.active, activePid: r.active_pid, plugin: r.plugin, restartLsn: r.restart_lsn, confirmedFlushLsn: r.confirmed_flush_lsn };
}

export function checkSlotUsable(slot: string, state: SlotState): void {
  if (!state.exists) return;
  if (state.active) {
    throw new StartupError(
      'SLOT_IN_USE',
      `replication slot ${quoteIdent(slot)} is in use by another process (PID ${state.activePid ?? '?'}), probably another reader instance. ` +
        `Run one reader per slot (set CDC_SLOT to a different name for a second pipeline), or stop the other one; to force it off: SELECT pg_terminate_backend(${state.activePid ?? '<pid>'});`,
    );
  }
  if (state.plugin !== 'pgoutput') {
    throw new StartupError(
      'SLOT_WRONG_PLUGIN',
      `replication slot ${quoteIdent(slot)} uses output plugin '${state.plugin ?? '?'}', not pgoutput. Choose another CDC_SLOT or drop it: SELECT pg_drop_replication_slot('${slot}');`,
    );
  }
}

/**
 * Creates the publication when missing; adds listed tables missing from an existing one.
 *
 * Always with `publish_via_partition_root = true` (an existing publication without it is altered): a
 * partitioned table's changes are then published under the parent's name, as its snapshot rows are
 * (`SELECT` from the parent), instead of under each partition's name, so every event of the table has one
 * schema.table and sinks route them together. (PostgreSQL 13+.)
 */
export async function ensurePublication(
  client: Client,
  name: string,
  tables: CheckedTable[],
  allTables: boolean,
): Promise<'created' | 'updated' | 'unchanged'> {
  const { rows } = await client.query<{ puballtables: boolean; pubviaroot: boolean }>(
    'SELECT puballtables, pubviaroot FROM pg_catalog.pg_publication WHERE pubname = $1',
    [name],
  );
  const list = tables.map((t) => qualified(t.schema, t.table)).join(', ');
  const options = 'WITH (publish_via_partition_root = true)';
  if (!rows[0]) {
    if (allTables) await client.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR ALL TABLES ${options}`);
    else await client.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list} ${options}`);
    return 'created';
  }
  let state: 'updated' | 'unchanged' = 'unchanged';
  if (!rows[0].pubviaroot) {
    await client.query(`ALTER PUBLICATION ${quoteIdent(name)} SET (publish_via_partition_root = true)`);
    state = 'updated';
  }
  if (rows[0].puballtables) return state;
  // Read after the option is set: pg_publication_tables then lists a published partitioned table itself,
  // not its partitions (before, a listed parent looked missing and ADD TABLE failed: already a member).
  const existing = await client.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables WHERE pubname = $1',
    [name],
  );
  const have = new Set(existing.rows.map((r) => `${r.schemaname}\u0000${r.tablename}`));
  const missing = tables.filter((t) => !have.has(`${t.schema}\u0000${t.table}`));
  if (missing.length === 0) return state;
  await client.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLE ${missing.map((t) => qualified(t.schema, t.table)).join(', ')}`);
  return 'updated';
}
