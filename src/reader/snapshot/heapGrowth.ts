/**
 * The collector's heap growth while an initial snapshot runs.
 *
 * Why: V8 starts incremental marking once the old generation's room below its next limit is less than
 * the young generation's capacity. The reader's old generation is about 30 MB of mostly its own code and
 * metadata; the growing factor V8 allows a heap capped at `--max-old-space-size=128` is about 1.3–1.5,
 * which leaves 10–15 MB of room, less than the 16 MB of two 8 MB semi-spaces. So during a snapshot,
 * whose young objects are many and short-lived, a mark-compact ran every 90–140 ms (60–100 per 500,000
 * wide rows), and each one promoted the young survivors that fed the next. A factor of 1.85 for the
 * snapshot alone cut them to about 10 and the reader's CPU per wide row from 13–20 µs to 8–9
 * (docs/reader.md, snapshot run 17).
 *
 * Only for the snapshot: on the change stream the same factor made fewer but longer pauses, and the
 * commit-to-ack p99 at 5,000 changes/s rose from 12 ms to 52 ms, with 20 MB more peak RSS.
 *
 * `v8.setFlagsFromString` after start-up: V8 reads this flag each time it computes a heap limit
 * (`MemoryController::GrowingFactor`), so it takes effect at the next collection. A process started
 * with its own `--heap-growing-percent` keeps it.
 */
import { setFlagsFromString } from 'node:v8';

export const SNAPSHOT_HEAP_GROWING_PERCENT = 85;

const FLAG = '--heap-growing-percent';

/** Whether the process was started with its own growing factor (node's flags or NODE_OPTIONS). */
export function ownHeapGrowth(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const named = (a: string) => a === FLAG || a.startsWith(`${FLAG}=`) || a === '--heap_growing_percent' || a.startsWith('--heap_growing_percent=');
  return execArgv.some(named) || (nodeOptions ?? '').split(/\s+/).some(named);
}

/** The snapshot's growing factor (`on`), or V8's own again (0: computed from the collector's speed). */
export function snapshotHeapGrowth(on: boolean): void {
  if (ownHeapGrowth(process.execArgv, process.env.NODE_OPTIONS)) return;
  setFlagsFromString(`${FLAG}=${on ? SNAPSHOT_HEAP_GROWING_PERCENT : 0}`);
}
