/**
 * The snapshot plan: what the reader does between its start-up checks and streaming, decided from the
 * slot's state, the stored snapshot progress and the snapshot mode alone. Pure (no I/O), so every case
 * is unit-tested without PostgreSQL; `reader.ts` carries the plan out.
 */
import type { SnapshotMode } from '../config.js';
import type { Lsn } from '../lsn.js';
import { parseLsn } from '../lsn.js';
import type { SlotState } from '../replication/checks.js';
import type { SnapshotState } from './progress.js';

export interface SnapshotPlanInput {
  mode: SnapshotMode;
  slot: Pick<SlotState, 'exists' | 'restartLsn'>;
  /** Progress stored for this slot; null when none is stored (and in mode `never`, which keeps none). */
  stored: SnapshotState | null;
}

export type SnapshotStep =
  /**
   * No slot yet: create it. With `exportSnapshot` (every mode but `never`) the progress rows are planned
   * first, then the tables are read in the slot's exported snapshot, so streaming continues exactly
   * where the snapshot ends.
   */
  | { kind: 'fresh'; exportSnapshot: boolean }
  /**
   * The slot exists and an earlier snapshot did not finish (the reader crashed or was stopped): read
   * the unfinished tables after their last delivered key, in a fresh snapshot, with the version of the
   * first run (docs/reader.md "Versioning contract for sinks").
   */
  | { kind: 'resume'; versionLsn: Lsn; tablesDone: number; tablesTotal: number }
  /** The slot exists and no snapshot is due: stream from the slot's position. */
  | { kind: 'none' };

export interface SnapshotPlan {
  step: SnapshotStep;
  /** `initial_only` drops the slot and exits once the snapshot is delivered; the other modes stream. */
  afterwards: 'stream' | 'drop-slot-and-exit';
}

export function planSnapshot({ mode, slot, stored }: SnapshotPlanInput): SnapshotPlan {
  const afterwards = mode === 'initial_only' ? 'drop-slot-and-exit' : 'stream';
  if (!slot.exists) return { step: { kind: 'fresh', exportSnapshot: mode !== 'never' }, afterwards };
  if (mode !== 'never' && stored !== null && stored.tables.some((t) => !t.done)) {
    // A crash between creating the slot and storing the version leaves progress without one; the
    // slot has not streamed yet, so its restart point still gives the version a fresh run stores.
    const versionLsn = stored.versionLsn !== null ? parseLsn(stored.versionLsn) : parseLsn(slot.restartLsn ?? '0/1') - 1n;
    return {
      step: { kind: 'resume', versionLsn, tablesDone: stored.tables.filter((t) => t.done).length, tablesTotal: stored.tables.length },
      afterwards,
    };
  }
  return { step: { kind: 'none' }, afterwards };
}

/**
 * The version of every row of a fresh snapshot: just below the slot's first streamed position, so
 * each streamed change of a row (always at or after it) supersedes the row's snapshot event.
 */
export function freshSnapshotVersion(restartLsn: string | null, consistentPoint: string): Lsn {
  return parseLsn(restartLsn ?? consistentPoint) - 1n;
}
