/**
 * Phase 1 of the reader: everything checked and set up before the slot is touched. Start-up checks
 * (each failure a StartupError naming the fix) of the database and of the broker connection, the
 * publication, the slot's state, and the stored snapshot progress that the snapshot plan
 * (snapshot/plan.ts) decides from. The broker is checked before any slot exists: a slot retains WAL
 * from its creation on, which a reader that cannot publish must not start.
 */
import type pg from 'pg';
import type { ReaderConfig } from './config.js';
import { StartupError } from './errors.js';
import type { Logger } from '../shared/core/logger.js';
import { BrokerError, brokerCheckTopics } from './publish/brokerCheck.js';
import type { BrokerCheck } from './publish/brokerCheck.js';
import type { CheckedTable, SlotState } from './replication/checks.js';
import { checkReplicationPrivilege, checkSlotUsable, checkTables, checkWalLevel, ensurePublication, slotState } from './replication/checks.js';
import { ProgressStore } from './snapshot/progress.js';
import type { SnapshotState } from './snapshot/progress.js';

export interface Preflight {
  tables: CheckedTable[];
  slot: SlotState;
  /** The snapshot-progress table (null in mode `never`, which keeps none). */
  progress: ProgressStore | null;
  /** What `progress` holds for this slot (null when nothing, or in mode `never`). */
  stored: SnapshotState | null;
}

/** Runs the checks on `meta` (connected here) and on `broker`, and prepares the publication and the progress table. */
export async function preflight(meta: pg.Client, broker: BrokerCheck, config: ReaderConfig, log: Logger): Promise<Preflight> {
  try {
    await meta.connect();
  } catch (err) {
    throw pgConnectError(err, config.pg) ?? err;
  }
  await checkWalLevel(meta);
  await checkReplicationPrivilege(meta);
  const tables = await checkTables(meta, config.tables, config.stateSchema);
  const slot = await slotState(meta, config.slotName);
  checkSlotUsable(config.slotName, slot);
  await checkBroker(broker, config);
  const publicationState = await ensurePublication(meta, config.publicationName, tables, config.tables === null);
  log.info('start-up checks passed', {
    tables: tables.map((t) => `${t.schema}.${t.table}`),
    publication: config.publicationName,
    publicationState,
    slot: config.slotName,
    slotExists: slot.exists,
  });
  const progress = config.snapshotMode === 'never' ? null : new ProgressStore(meta, config.stateSchema, config.slotName);
  if (progress) await progress.init();
  // Loaded only for an existing slot: a fresh slot plans its progress anew.
  const stored = progress && slot.exists ? await progress.load() : null;
  return { tables, slot, progress, stored };
}

/** The broker connection and authentication (with the configured security protocol and SASL), and the topic. */
async function checkBroker(broker: BrokerCheck, config: ReaderConfig): Promise<void> {
  try {
    await broker.check(brokerCheckTopics(config));
  } catch (err) {
    if (err instanceof BrokerError && err.code !== 'BROKER_REQUEST_FAILED') throw new StartupError(err.code, err.message);
    throw err;
  }
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/**
 * A failed connection to PostgreSQL as a StartupError naming the variables to check (PGUSER, PGHOST,
 * PGPORT, PGPASSWORD: the password's name, never its value); null when it is neither an
 * authentication nor a network failure (the driver's own error says more then).
 */
export function pgConnectError(err: unknown, c: ReaderConfig['pg']): StartupError | null {
  const code = (err as { code?: unknown }).code;
  const reason = err instanceof Error ? err.message : String(err);
  const who = `PGUSER=${c.user} at PGHOST=${c.host} PGPORT=${c.port} PGDATABASE=${c.database}`;
  const passwordState = c.password === undefined ? 'PGPASSWORD is not set' : 'PGPASSWORD is set but was rejected';
  if (code === '28P01') {
    return new StartupError(
      'PG_AUTH_FAILED',
      `PostgreSQL refused the password for ${who} (${reason}); ${passwordState}. ` +
        "Fix: set PGPASSWORD to this role's password, or PGUSER to the role it belongs to (Azure Flexible Server: the server admin or a role created with LOGIN PASSWORD).",
    );
  }
  if (/client password must be a (non-empty )?string/.test(reason)) {
    return new StartupError(
      'PG_AUTH_FAILED',
      `PostgreSQL asks ${who} for a password, but PGPASSWORD is not set (or empty). Fix: set PGPASSWORD to this role's password.`,
    );
  }
  if (code === '28000') {
    return new StartupError(
      'PG_AUTH_FAILED',
      `PostgreSQL does not let ${who} connect (${reason}). ` +
        'Fix: check PGUSER (the role needs LOGIN) and that the server allows it from this host: pg_hba.conf on plain PostgreSQL; ' +
        'on Azure Flexible Server the firewall rules, and PGSSLMODE=require (the server refuses connections without TLS).',
    );
  }
  if (typeof code === 'string' && NETWORK_ERRORS.has(code)) {
    return new StartupError(
      'PG_UNREACHABLE',
      `cannot reach PostgreSQL at PGHOST=${c.host} PGPORT=${c.port} (${reason}). ` +
        'Fix: check PGHOST and PGPORT, and that the server accepts connections from this host (Azure Flexible Server: <server>.postgres.database.azure.com, port 5432, firewall or private access).',
    );
  }
  return null;
}
