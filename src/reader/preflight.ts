/**
 * Phase 1 of the reader: everything checked and set up before the slot is touched. Start-up checks
 * (each failure a StartupError naming the fix), the publication, the slot's state, and the stored
 * snapshot progress that the snapshot plan (snapshot/plan.ts) decides from.
 */
import type pg from 'pg';
import type { ReaderConfig } from './config.js';
import type { Logger } from './logger.js';
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

/** Runs the checks on `meta` (connected here) and prepares the publication and the progress table. */
export async function preflight(meta: pg.Client, config: ReaderConfig, log: Logger): Promise<Preflight> {
  await meta.connect();
  await checkWalLevel(meta);
  await checkReplicationPrivilege(meta);
  const tables = await checkTables(meta, config.tables, config.stateSchema);
  const slot = await slotState(meta, config.slotName);
  checkSlotUsable(config.slotName, slot);
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
