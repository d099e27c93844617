/**
 * The worker's bookkeeping per sink, served as JSON on /metrics: batches, records by outcome,
 * committed offsets and lag per partition, rebalances and reconnects. Plain counters, read by the
 * health server; nothing here blocks the batches.
 */
import type { BatchReport, RecordOutcome } from '../shared/batch/types.js';

export type SinkState = 'starting' | 'running' | 'reconnecting' | 'stopping' | 'stopped';

export interface PartitionMetrics {
  /** The offset last committed by this worker (the next record to read). */
  committedOffset: number | null;
  /** Records on the topic after the committed offset (refreshed every few seconds). */
  lag: number | null;
  queued: number;
  /** The batch being handled: its offsets and how many times it was tried. */
  inFlight: { firstOffset: string; lastOffset: string; attempts: number } | null;
}

export class SinkMetrics {
  state: SinkState = 'starting';
  /** Batches handled completely (written or dead-lettered), and attempts that must be retried. */
  batches = 0;
  batchAttemptsFailed = 0;
  /** Of those, attempts whose retries only waited for another partition (retried after a short delay). */
  batchAttemptsAwaiting = 0;
  records = { ok: 0, skipped: 0, deadLettered: 0, retried: 0 };
  /** Records read again after a rebalance or reconnect and dropped because they were already taken. */
  redelivered = 0;
  /**
   * Records dropped from the queue of a partition whose batch waited for another partition while the
   * fetch bounds were reached, and read again later (`refetches`: new streams for them).
   */
  shedRecords = 0;
  refetches = 0;
  /** Batches given up without a commit (partition revoked, shutdown deadline, lost connection). */
  abandonedBatches = 0;
  rebalances = 0;
  reconnects = 0;
  lastError: string | null = null;
  readonly partitions = new Map<number, PartitionMetrics>();

  constructor(
    readonly sink: string,
    readonly consumerGroup: string,
  ) {}

  partition(id: number): PartitionMetrics {
    let p = this.partitions.get(id);
    if (!p) {
      p = { committedOffset: null, lag: null, queued: 0, inFlight: null };
      this.partitions.set(id, p);
    }
    return p;
  }

  recordReport(report: BatchReport): void {
    this.batches++;
    this.records.ok += report.ok;
    this.records.skipped += report.skipped;
    this.records.deadLettered += report.deadLettered;
  }

  /** Records a batch attempt settled for good before the batch's remainder is retried (see `SinkConsumer.runBatch`). */
  recordSettled(outcomes: readonly RecordOutcome[]): void {
    for (const o of outcomes) {
      if (o.status === 'ok') this.records.ok++;
      else if (o.status === 'skipped') this.records.skipped++;
      else if (o.status === 'deadLetter') this.records.deadLettered++;
    }
  }

  recordFailedAttempt(retried: number, error: string, awaitingPartition = false): void {
    this.batchAttemptsFailed++;
    if (awaitingPartition) this.batchAttemptsAwaiting++;
    this.records.retried += retried;
    this.lastError = error;
  }

  toJSON(): Record<string, unknown> {
    return {
      sink: this.sink,
      consumerGroup: this.consumerGroup,
      state: this.state,
      batches: this.batches,
      batchAttemptsFailed: this.batchAttemptsFailed,
      batchAttemptsAwaiting: this.batchAttemptsAwaiting,
      records: { ...this.records },
      redelivered: this.redelivered,
      shedRecords: this.shedRecords,
      refetches: this.refetches,
      abandonedBatches: this.abandonedBatches,
      rebalances: this.rebalances,
      reconnects: this.reconnects,
      lastError: this.lastError,
      partitions: Object.fromEntries([...this.partitions].sort(([a], [b]) => a - b).map(([id, p]) => [String(id), { ...p }])),
    };
  }
}
