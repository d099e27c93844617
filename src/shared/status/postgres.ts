/**
 * The slot's part of the status: where the reader's acknowledgements reached, how much WAL it has not
 * acknowledged (`pg_current_wal_lsn() - confirmed_flush_lsn`), how much WAL the server keeps for it
 * and whether that is in danger (`wal_status`, `safe_wal_size`), and the publication it streams.
 */
import { connectPgClient, type PgSettings } from '../core/postgres.js';
import type { PostgresStatus } from './types.js';

/** One query on a PostgreSQL connection (node-postgres' `client.query`). */
export type PgQuery = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

const SLOT_SQL = `SELECT slot_name, plugin, active, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, wal_status,
  safe_wal_size::text AS safe, pg_catalog.pg_current_wal_lsn()::text AS current,
  (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS lag,
  (pg_catalog.pg_current_wal_lsn() - restart_lsn)::bigint::text AS retained
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`;

/**
 * The publication's tables without the reader's own (`<CDC_STATE_SCHEMA>.signals`, published so that
 * snapshot signals are read in WAL order): the count is the user's captured tables.
 */
const PUBLICATION_SQL = `SELECT p.puballtables AS all_tables,
  (SELECT count(*) FROM pg_catalog.pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname <> $2)::int AS tables
FROM pg_catalog.pg_publication p WHERE p.pubname = $1`;

const num = (v: unknown): number | null => (typeof v === 'string' && v !== '' ? Number(v) : typeof v === 'number' ? v : null);
const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The reader's settings `CDC_SLOT`, `CDC_PUBLICATION` and `CDC_STATE_SCHEMA` (its own tables, left out of the publication's count). */
export interface ReaderNames {
  slotName: string;
  publicationName: string;
  stateSchema: string;
}

/** The error names `CDC_SLOT` when the slot is missing. */
export async function collectPostgres(query: PgQuery, names: ReaderNames): Promise<PostgresStatus> {
  const [slots, publications] = await Promise.all([query(SLOT_SQL, [names.slotName]), query(PUBLICATION_SQL, [names.publicationName, names.stateSchema])]);
  const row = slots.rows[0];
  if (row === undefined) {
    throw new Error(`PostgreSQL has no replication slot ${names.slotName} (CDC_SLOT): the reader creates it on its first start; is CDC_SLOT the reader's?`);
  }
  const pub = publications.rows[0];
  return {
    slot: {
      name: names.slotName,
      plugin: text(row.plugin),
      active: row.active === true,
      confirmedFlushLsn: text(row.confirmed),
      restartLsn: text(row.restart),
      currentWalLsn: text(row.current) ?? '',
      lagBytes: num(row.lag),
      retainedBytes: num(row.retained),
      walStatus: text(row.wal_status),
      safeWalSizeBytes: num(row.safe),
    },
    publication: pub === undefined ? null : { name: names.publicationName, allTables: pub.all_tables === true, tables: num(pub.tables) ?? 0 },
  };
}

/** Opens a connection for one collection (with the TLS choice `PGSSLMODE` makes), runs `collectPostgres`, closes it. */
export async function collectPostgresWith(settings: PgSettings, names: ReaderNames): Promise<PostgresStatus> {
  const connection = await connectPgClient(settings, 'pg-cdc-status', { extra: { connectionTimeoutMillis: 10_000 } });
  try {
    return await collectPostgres((sql, params) => connection.query(sql, params), names);
  } finally {
    await connection.end().catch(() => undefined);
  }
}
