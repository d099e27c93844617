/**
 * Debezium-compatible envelope. Pure: the caller supplies every value, including the clock.
 */
import type { ChangeEvent, ChangeOp, RowImage, SnapshotMarker } from '../../shared/events/changeEvent.js';
import type { Lsn } from '../lsn.js';

export const READER_VERSION = '0.1.0';

export interface EnvelopeInput {
  op: ChangeOp;
  serverName: string;
  db: string;
  schema: string;
  table: string;
  before: RowImage | null;
  after: RowImage | null;
  key: RowImage | null;
  /** The change's own WAL position (snapshot rows: the snapshot version, see docs/reader.md). */
  lsn: Lsn;
  commitLsn: Lsn | null;
  /** Commit LSN of the previous transaction, for Debezium's `source.sequence`. */
  lastCommitLsn: Lsn | null;
  txId: number | null;
  sourceTsMs: number;
  snapshot: SnapshotMarker;
  nowMs: number;
  unchangedToast?: string[];
}

export function buildEnvelope(input: EnvelopeInput): ChangeEvent {
  const event: ChangeEvent = {
    before: input.before,
    after: input.after,
    source: {
      version: READER_VERSION,
      connector: 'postgresql',
      name: input.serverName,
      ts_ms: input.sourceTsMs,
      snapshot: input.snapshot,
      db: input.db,
      schema: input.schema,
      table: input.table,
      txId: input.txId,
      lsn: Number(input.lsn),
      sequence: `[${input.lastCommitLsn === null ? 'null' : `"${input.lastCommitLsn}"`},"${input.lsn}"]`,
      commit_lsn: input.commitLsn === null ? null : Number(input.commitLsn),
    },
    op: input.op,
    ts_ms: input.nowMs,
    key: input.key,
  };
  if (input.unchangedToast && input.unchangedToast.length > 0) event.source.unchanged_toast = input.unchangedToast;
  return event;
}

/** The Kafka record key: the key columns as JSON, in key-column order (Debezium's key without schema). */
export function recordKey(key: RowImage | null): Buffer | undefined {
  return key === null ? undefined : Buffer.from(JSON.stringify(key));
}

/**
 * Resolves the destination topic for a table. Kafka topic and event hub names allow letters, digits,
 * `.`, `_` and `-` only: any other character of a schema or table name becomes `_` (as Debezium does).
 */
export function topicFor(schema: string, table: string, opts: { topic: string; template: string | null; prefix: string }): string {
  if (opts.template === null) return opts.topic;
  const safe = (x: string) => x.replace(/[^A-Za-z0-9._-]/g, '_');
  return opts.template.replaceAll('{prefix}', safe(opts.prefix)).replaceAll('{schema}', safe(schema)).replaceAll('{table}', safe(table)).slice(0, 249);
}
