/**
 * The one status model of the pipeline (PostgreSQL → reader → hub → sinks), computed from the real
 * sources. Every part is either its figures or `{ error }`: a source that is down, refuses the
 * request, takes longer than the per-source timeout or is not configured shows so in its own part
 * and never fails the whole status.
 */

/** A part that could not be collected: the message names the source and, where it can, the setting to fix. */
export interface PartError {
  error: string;
  /** false when the source is not configured at all (the message names the setting that turns it on). */
  configured?: false;
}

export type Part<T> = T | PartError;

export function isPartError<T>(part: Part<T> | undefined): part is PartError {
  return typeof part === 'object' && part !== null && typeof (part as { error?: unknown }).error === 'string';
}

/** The value of a part, or undefined when it failed. */
export function partValue<T>(part: Part<T>): T | undefined {
  return isPartError(part) ? undefined : part;
}

export interface SlotStatus {
  name: string;
  plugin: string | null;
  active: boolean;
  /** Where the reader's acknowledgements reached (`confirmed_flush_lsn`). */
  confirmedFlushLsn: string | null;
  /** The oldest WAL the slot still needs (`restart_lsn`). */
  restartLsn: string | null;
  currentWalLsn: string;
  /** `pg_current_wal_lsn() - confirmed_flush_lsn`: WAL written that the reader has not acknowledged. */
  lagBytes: number | null;
  /** `pg_current_wal_lsn() - restart_lsn`: WAL the server keeps for this slot. */
  retainedBytes: number | null;
  /** `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+). */
  walStatus: string | null;
  /** Bytes that can still be written before the slot is in danger of losing WAL; null = no limit (`max_slot_wal_keep_size = -1`). */
  safeWalSizeBytes: number | null;
}

export interface PostgresStatus {
  slot: SlotStatus;
  /** The publication the reader streams, if it exists. */
  publication: { name: string; allTables: boolean; tables: number } | null;
}

/** The reader's own figures, from GET /metrics of its health port (src/reader/metrics.ts). */
export interface ReaderStatus {
  url: string;
  changes: number;
  changesPerSec: number;
  snapshotRows: number;
  snapshotDone: boolean;
  claimChecked: number;
  slotLagBytes: number | null;
  slotLagSeconds: number;
  inflightBytes: number;
  /** Commit time of the newest transaction the broker confirmed (ISO), null before the first. */
  lastPublishedCommitTime: string | null;
  commitToAckMs: { count: number; p50: number | null; p99: number | null };
  /** Schema changes the reader saw (Relation messages differing from the previous one of their table). */
  schemaChanges: number;
  /** The latest of them, newest last (what changed; the reader's log line has the old and new columns). */
  recentSchemaChanges: ReaderSchemaChange[];
  /** Incremental snapshots of this run, per table (the latest one of each; docs/reader.md "Incremental snapshots"). */
  incrementalSnapshots: ReaderIncrementalSnapshot[];
}

export interface ReaderIncrementalSnapshot {
  /** The table as its events name it. */
  table: string;
  rowsDone: number;
  /** The planner's estimate while it runs, the rows emitted once done. */
  rowsTotal: number;
  done: boolean;
  rowsPerSec: number;
  /** Seconds left at the current rate; null before a rate is known. */
  etaSec: number | null;
}

export interface ReaderSchemaChange {
  /** The table as its events name it. */
  table: string;
  /** When the reader read it (ISO). */
  at: string | null;
  /** Of `name`, `columns`, `types`, `key`, `identity`. */
  changed: string[];
  added: string[];
  dropped: string[];
  retyped: string[];
  keyBefore: string[];
  keyAfter: string[];
}

export interface HubPartition {
  partition: string;
  /** Kafka: the earliest retained offset; Event Hubs: the beginning sequence number. */
  start: number;
  /**
   * Kafka: the log end offset (the offset the next record gets); Event Hubs: the last enqueued
   * sequence number + 1. Either way the number of events ever published to the partition.
   */
  end: number;
}

export interface GroupPartition {
  partition: string;
  /**
   * Kafka: the committed offset (the next record the group reads); Event Hubs: the checkpoint's
   * sequence number (the last event handled). null = nothing committed yet.
   */
  committed: number | null;
  /** Events published and not yet handled by the group. */
  lag: number;
}

export interface ConsumerGroupStatus {
  sink: string;
  consumerGroup: string;
  /** Sum of the partitions' lag. */
  lag: number;
  partitions: GroupPartition[];
}

export interface HubStatus {
  kind: 'kafka' | 'eventhubs';
  /** The topic / event hub (`CDC_TOPIC`). */
  topic: string;
  partitions: HubPartition[];
  /** Events ever published to the hub (sum of the partitions' `end`). */
  published: number;
  /** Newest publish time on the hub (Kafka: the newest record timestamp; Event Hubs: the last enqueued time), ISO. */
  newestEventTime: string | null;
  groups: Part<ConsumerGroupStatus>[];
}

export interface IndexStatus {
  /** The `CDC_ROUTES` key (`schema.table`, or `*` for the wildcard route's indices). */
  table: string;
  index: string;
  exists: boolean;
  /** Every document, soft-deleted ones included. */
  documents: number;
  /** The `<index>-live` alias: documents not soft-deleted. */
  liveAlias: string;
  liveDocuments: number;
  /** Commit time of the newest change the index holds (max `__source_ts_ms`), ISO; the last write the sink made. */
  newestCommitTime: string | null;
}

export interface ElasticsearchStatus {
  indices: IndexStatus[];
  /** The change-history index (`HISTORY_INDEX`). */
  history: { index: string; exists: boolean; documents: number };
  /** Documents in the table indices. */
  documents: number;
  newestCommitTime: string | null;
}

export interface DeadLetterEntry {
  blob: string;
  /** The sink that dead-lettered it (from the blob's name). */
  sink: string;
  reason: string;
  deadLetteredAt: string | null;
  partition: string | null;
  offset: string | null;
}

export interface DeadLetterContainerStatus {
  container: string;
  exists: boolean;
  count: number;
  /** true when the listing stopped at its bound: `count` is then a lower bound. */
  truncated: boolean;
  bySink: Record<string, number>;
  /** The newest few, newest first. */
  newest: DeadLetterEntry[];
}

export interface DeadLetterStatus {
  containers: DeadLetterContainerStatus[];
  total: number;
}

export interface EndToEndStatus {
  /** Commit time of the newest change that left PostgreSQL (ISO). */
  newestCommitted: string | null;
  /** Where `newestCommitted` comes from: the reader's metrics (commit time) or the hub (publish time, an upper bound). */
  newestCommittedSource: 'reader' | 'hub' | null;
  /** Commit time of the newest change in Elasticsearch (ISO). */
  newestIndexed: string | null;
  /** `newestCommitted - newestIndexed`, at least 0; null when either is unknown. */
  lagMs: number | null;
}

export interface PipelineStatus {
  collectedAt: string;
  postgres: Part<PostgresStatus>;
  reader: Part<ReaderStatus>;
  hub: Part<HubStatus>;
  elasticsearch: Part<ElasticsearchStatus>;
  deadLetters: Part<DeadLetterStatus>;
  endToEnd: EndToEndStatus;
}
