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
import { connectPg, PgConnectError, type PgSettings, type PgSsl } from '../shared/core/postgres.js';
import type { Logger } from '../shared/core/logger.js';
import { BrokerError, brokerCheckTopics } from './publish/brokerCheck.js';
import type { BrokerCheck } from './publish/brokerCheck.js';
import type { CheckedTable, SlotState } from './replication/checks.js';
import { checkReplicationPrivilege, checkSlotUsable, checkTables, checkWalLevel, slotState } from './replication/checks.js';
import { CapturedTables } from './replication/captured.js';
import { ensurePublication, publicationMembers, PublicationKeeper } from './replication/publication.js';
import { ProgressStore } from './snapshot/progress.js';
import type { SnapshotState } from './snapshot/progress.js';
import { IncrementalStore } from './snapshot/incremental.js';
import { ensureSignalTable, SIGNALS_TABLE } from './snapshot/signals.js';
import { qualified, quoteIdent } from '../shared/core/sql.js';
import { errorFields } from '../shared/core/logger.js';

export interface Preflight {
  tables: CheckedTable[];
  slot: SlotState;
  /** The snapshot-progress table (null in mode `never`, which keeps none). */
  progress: ProgressStore | null;
  /** What `progress` holds for this slot (null when nothing, or in mode `never`). */
  stored: SnapshotState | null;
  /** The tables the slot captures, by relation id: their captured names and last shapes. */
  captured: CapturedTables;
  /** Keeps the publication current while streaming (`refresh()`). */
  keeper: PublicationKeeper;
  /**
   * Tables captured for the first time by an existing slot (added to CDC_TABLES since): streamed from
   * now on, and due an incremental snapshot (none in mode `never`, or when the slot is fresh: its
   * initial snapshot reads them).
   */
  newTables: CheckedTable[];
  /** The incremental snapshots' state table. */
  incremental: IncrementalStore;
}

/** Runs the checks on `meta` (connected by `connectDatabase`) and on `broker`, and prepares the publication and the progress table. */
export async function preflight(meta: pg.Client, broker: BrokerCheck, config: ReaderConfig, log: Logger): Promise<Preflight> {
  await checkWalLevel(meta);
  await checkReplicationPrivilege(meta);
  const slot = await slotState(meta, config.slotName);
  checkSlotUsable(config.slotName, slot);
  const captured = new CapturedTables((sql, params) => meta.query(sql, params), config.stateSchema, config.slotName, log);
  await captured.init(!slot.exists);
  const capturedBefore = new Set(captured.oids());
  const { tables, candidates } = await checkTables(meta, config.tables, {
    excludeSchema: config.stateSchema,
    mode: config.publicationMode,
    captured,
    log,
  });
  await checkBroker(broker, config);
  // The signal table is published with the tables, so signals come through the WAL (snapshot/signals.ts).
  const query = (sql: string, params: unknown[]) => meta.query(sql, params);
  await ensureSignalTable(query, config.stateSchema);
  const signalsRelation = qualified(config.stateSchema, SIGNALS_TABLE);
  const signalsOid = Number((await meta.query<{ oid: number }>('SELECT $1::regclass::oid::int AS oid', [signalsRelation])).rows[0]!.oid);
  const publicationState = await ensurePublication(meta, config.publicationName, config.publicationMode, tables);
  const signalsPublished = await publishSignals(meta, config, signalsOid, signalsRelation, log);
  if (publicationState === 'converted')
    log.warn(`publication converted to ${config.publicationMode === 'all-tables' ? 'FOR ALL TABLES' : 'a table list'} (CDC_PUBLICATION_MODE)`, {
      publication: config.publicationName,
      mode: config.publicationMode,
    });
  const keeper = new PublicationKeeper({
    client: meta,
    log,
    publication: config.publicationName,
    mode: config.publicationMode,
    configured: config.tables === null ? null : [...tables.map((t) => t.oid), ...(signalsPublished ? [signalsOid] : [])],
    stateSchema: config.stateSchema,
    captured,
  });
  await keeper.startUp(candidates);
  log.info('start-up checks passed', {
    tables: tables.map((t) => `${t.schema}.${t.table}`),
    publication: config.publicationName,
    publicationMode: config.publicationMode,
    publicationState,
    slot: config.slotName,
    slotExists: slot.exists,
  });
  const progress = config.snapshotMode === 'never' ? null : new ProgressStore(meta, config.stateSchema, config.slotName);
  if (progress) await progress.init();
  // Loaded only for an existing slot: a fresh slot plans its progress anew.
  const stored = progress && slot.exists ? await progress.load() : null;
  const incremental = new IncrementalStore(query, config.stateSchema, config.slotName);
  await incremental.init();
  // Without the captured-tables state every table would look new at every start.
  const newTables =
    slot.exists && config.snapshotMode !== 'never' && captured.kept
      ? tables.filter((t) => !capturedBefore.has(t.oid) && !(stored?.tables ?? []).some((p) => p.schema === t.schema && p.table === t.table))
      : [];
  return { tables, slot, progress, stored, captured, keeper, newTables, incremental };
}

/**
 * Puts the signal table in the publication (a `FOR ALL TABLES` one covers it). Best effort: a
 * publication made by another role (Azure: by the tables' owner) cannot be altered by the reader; then
 * signals (and `npm run snapshot`) do not reach it, which is logged with the fix, and everything else works.
 */
async function publishSignals(meta: pg.Client, config: ReaderConfig, oid: number, relation: string, log: Logger): Promise<boolean> {
  if (config.publicationMode === 'all-tables') return true;
  if ((await publicationMembers(meta, config.publicationName)).has(oid)) return true;
  try {
    await meta.query(`ALTER PUBLICATION ${quoteIdent(config.publicationName)} ADD TABLE ${relation}`);
    return true;
  } catch (err) {
    log.warn('the signal table is not in the publication: incremental snapshots by signal (and npm run snapshot) do not reach the reader', {
      ...errorFields(err),
      table: relation,
      publication: config.publicationName,
      fix: `as the publication's owner: ALTER PUBLICATION ${quoteIdent(config.publicationName)} ADD TABLE ${relation}; then restart the reader`,
      note: 'new tables and schema changes are still snapshotted incrementally',
    });
    return false;
  }
}

/** The broker connection and authentication (with the configured security protocol and SASL), and the topic. */
async function checkBroker(broker: BrokerCheck, config: ReaderConfig): Promise<void> {
  try {
    await broker.check(brokerCheckTopics(config));
  } catch (err) {
    if (err instanceof BrokerError && err.code !== 'BROKER_REQUEST_FAILED') throw new StartupError(err.code, err.message, err.cause);
    throw err;
  }
}

const START_UP_CODES = { auth: 'PG_AUTH_FAILED', unreachable: 'PG_UNREACHABLE', tls: 'PG_TLS_FAILED', other: 'PG_UNREACHABLE' } as const;

/**
 * The reader's first PostgreSQL connection, with PGSSLMODE's TLS choices (connectPg); a failure is a
 * StartupError naming the variables to check (PGUSER, PGHOST, PGPORT, PGPASSWORD — the password's
 * name, never its value — PGSSLMODE, PGSSLROOTCERT).
 */
export async function connectDatabase(settings: PgSettings, open: (ssl: PgSsl) => Promise<pg.Client>): Promise<pg.Client> {
  try {
    return (await connectPg(settings, open)).connection;
  } catch (err) {
    if (err instanceof PgConnectError) throw new StartupError(START_UP_CODES[err.failure], err.message, err.cause);
    throw err;
  }
}
