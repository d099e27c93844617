/**
 * Start-up checks. Each failure is a StartupError whose message says what is wrong and how to fix it.
 */
import type { Client } from 'pg';
import type { PublicationMode, TableRef } from '../config.js';
import { StartupError } from '../errors.js';
import { catalogKeyColumns, tableCatalog, tableCatalogByOid } from '../../shared/events/pgTables.js';
import type { TableCatalog } from '../../shared/events/pgTables.js';
import { qualified, quoteIdent } from '../../shared/core/sql.js';
import type { Logger } from '../../shared/core/logger.js';
import type { CapturedTables } from './captured.js';
import { discoverTables, identityProblems, skipFix } from './publication.js';
import type { CandidateTable } from './publication.js';

export interface CheckedTable extends TableRef {
  /**
   * `schema`/`table`: the name the slot captured the table under (`CapturedTables`), the name of its
   * events; the table's current name when it was not renamed since.
   */
  oid: number;
  /** The table's current name, quoted, for SQL. */
  relation: string;
  /** Its current `schema.table` when it differs from the captured name (renamed): `source.renamed_to`. */
  renamedTo?: string;
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

export interface TableSelection {
  tables: CheckedTable[];
  /** Without CDC_TABLES: every table considered, with why each skipped one is (null with a list). */
  candidates: CandidateTable[] | null;
}

/**
 * Resolves and checks the tables to capture. With CDC_TABLES: each must exist (a name the slot captured
 * a renamed table under is found by its relation id), be readable and have a usable replica identity,
 * or the reader does not start. Without: every table that qualifies (`discoverTables`); the others are
 * skipped and named by the caller.
 */
export async function checkTables(
  client: Client,
  tables: TableRef[] | null,
  opts: { excludeSchema: string; mode: PublicationMode; captured: CapturedTables; log: Logger },
): Promise<TableSelection> {
  const query = (sql: string, params: unknown[]) => client.query(sql, params);
  if (tables === null) {
    const candidates = await discoverTables(client, opts.excludeSchema, opts.mode === 'tables');
    const out: CheckedTable[] = [];
    for (const t of candidates.filter((c) => c.skip === null)) {
      const r = await tableCatalogByOid(query, t.oid);
      if (r) out.push(await checked(r, opts.captured, opts.log));
    }
    return { tables: out, candidates };
  }
  const out: CheckedTable[] = [];
  for (const t of tables) {
    const name = qualified(t.schema, t.table);
    let r = await tableCatalog(query, t.schema, t.table);
    if (!r) {
      // Renamed since this slot captured it: the publication and the slot follow it by its relation id.
      const oid = opts.captured.oidOf(t.schema, t.table);
      r = oid === undefined ? undefined : await tableCatalogByOid(query, oid);
      if (r)
        opts.log.warn('CDC_TABLES names a table that was renamed: following it by its relation id', {
          configured: `${t.schema}.${t.table}`,
          now: `${r.schema}.${r.table}`,
          oid: r.oid,
          events: `keep source.schema/source.table ${t.schema}.${t.table} (the name it was captured under), with source.renamed_to ${r.schema}.${r.table}`,
          fix: `put ${qualified(r.schema, r.table)} in CDC_TABLES in place of ${name} (the events keep their name either way)`,
        });
    }
    if (!r)
      throw new StartupError(
        'TABLE_NOT_FOUND',
        `table ${name} does not exist (CDC_TABLES lists it), and this slot has captured no table of that name that was renamed since. ` +
          `Check the name; quote parts with upper case or punctuation: "My Schema"."My Table". If it was renamed before this slot captured it, put its new name in CDC_TABLES.`,
      );
    const current = qualified(r.schema, r.table);
    if (!r.canSelect) {
      throw new StartupError(
        'MISSING_SELECT_PRIVILEGE',
        `no SELECT privilege on ${current} (needed for the snapshot and TOAST handling). Fix: GRANT SELECT ON ${current} TO current_user's role, e.g. GRANT SELECT ON ${current} TO ${quoteIdent('<reader role>')};`,
      );
    }
    const pk = r.primaryKey;
    const ident = r.relreplident;
    if (ident === 'n' || (ident === 'd' && pk.length === 0)) {
      throw new StartupError(
        'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY',
        `table ${current} has ${ident === 'n' ? 'REPLICA IDENTITY NOTHING' : 'no primary key'}, so updates and deletes cannot be captured by key. ` +
          `Fix: add a primary key (ALTER TABLE ${current} ADD PRIMARY KEY (...)), or ALTER TABLE ${current} REPLICA IDENTITY FULL (or USING INDEX <unique index>).`,
      );
    }
    // PostgreSQL cannot use a deferrable key as replica identity, nor a dropped identity index, and checks
    // each partition's own identity: once published, the application's UPDATE and DELETE there would fail.
    const problem = (await identityProblems(client, [r.oid])).get(r.oid);
    if (problem !== undefined) {
      throw new StartupError(
        'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY',
        `table ${current} has ${problem}: publishing it would make PostgreSQL refuse every UPDATE and DELETE on it. ` +
          `Fix: ${skipFix(current, problem)} (for a partition: on that partition; USING INDEX <a non-deferrable unique index on NOT NULL columns> also works).`,
      );
    }
    out.push(await checked(r, opts.captured, opts.log));
  }
  return { tables: out, candidates: null };
}

/** A checked table under the name the slot captured it (registered now when it is new). */
async function checked(r: TableCatalog, captured: CapturedTables, log: Logger): Promise<CheckedTable> {
  const name = await captured.register(r.oid, r.schema, r.table);
  const renamed = name.schema !== r.schema || name.table !== r.table;
  if (renamed)
    log.info('table renamed since it was captured: its events keep the captured name', {
      captured: `${name.schema}.${name.table}`,
      now: `${r.schema}.${r.table}`,
      oid: r.oid,
    });
  // The columns the server will flag as the replica identity in its Relation message, so the snapshot
  // keys rows exactly as the stream will (eventKeyColumns).
  const { keyColumns, wholeRowKey } = catalogKeyColumns(r);
  return {
    schema: name.schema,
    table: name.table,
    oid: r.oid,
    relation: qualified(r.schema, r.table),
    ...(renamed ? { renamedTo: `${r.schema}.${r.table}` } : {}),
    replicaIdentity: r.relreplident,
    primaryKey: r.primaryKey,
    keyColumns,
    wholeRowKey,
  };
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
