/**
 * Ordered, bounded, retrying delivery. Records are queued in WAL order and sent in batches with one
 * request in flight; a failed batch is retried (with backoff, forever, until shutdown) before anything
 * after it, so per-key order holds and nothing is skipped. Memory is bounded by `maxInflightBytes`:
 * `waitForCapacity()` is what the replication stream awaits before taking the next message.
 */
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import type { OutRecord, Publisher } from './publisher.js';
import { TxEntry } from './ackTracker.js';
import type { AckTracker } from './ackTracker.js';
import type { RecordBuilder } from '../encode/toRecord.js';
import type { TypeRegistry } from '../../shared/events/typeRegistry.js';
import { chunkRecord, chunkRecordBytes } from '../encode/chunkRecords.js';
import type { EncodedChunk } from '../encode/chunkRecords.js';

/**
 * Records `from`..`to` (exclusive) of a snapshot chunk, every one with a record (`chunkHasRecord`), to
 * `topic`. Queued as one object and made into `OutRecord`s only as their batch is sent: three objects
 * a record (two views and the record), held until the broker confirmed it, were promoted to the old
 * generation; queued as spans the wide snapshot peaked at 170–171 MB against 174–185 (docs/reader.md,
 * snapshot run 17; the mark-compacts' cadence was the heap limit's, `heapGrowth.ts`).
 */
export interface ChunkSpan {
  chunk: EncodedChunk;
  from: number;
  to: number;
  topic: string;
}

interface Queued {
  /** One record, or (null) the records of `span`. */
  record: OutRecord | null;
  span: ChunkSpan | null;
  /** Records: 1, or the span's. */
  count: number;
  bytes: number;
  entry: TxEntry;
}

/** In the queue where a sent record was (`loop`). */
const SENT: Queued = { record: null, span: null, count: 0, bytes: 0, entry: new TxEntry() };

/** What the in-flight bound counts for a record besides its key and value. */
const RECORD_OVERHEAD_BYTES = 64;

/** What every producer of events (the snapshot and the change stream) needs to encode and publish them. */
export interface EventOutputDeps {
  types: TypeRegistry;
  records: RecordBuilder;
  pipeline: Pipeline;
  tracker: AckTracker;
  log: Logger;
  /** Logical server name: `source.name`. */
  serverName: string;
  db: string;
}

export interface PipelineOptions {
  maxInflightBytes: number;
  maxBatchBytes?: number;
  maxBatchRecords?: number;
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Called when the acknowledged LSN advanced. */
  onAck?: () => void;
}

export class Pipeline {
  private queue: Queued[] = [];
  private qHead = 0;
  /** Records queued and not yet confirmed (a span counts its records). */
  private pending = 0;
  private inflightBytes = 0;
  private peakInflightBytes = 0;
  private sending = false;
  private stopped = false;
  private capacityWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  private consecutiveFailures = 0;
  /** Ends the backoff wait between retries early (`stop()`). */
  private wakeRetry: (() => void) | null = null;
  private readonly maxBatchBytes: number;
  private readonly maxBatchRecords: number;

  constructor(
    private readonly publisher: Publisher,
    private readonly tracker: AckTracker,
    private readonly log: Logger,
    private readonly opts: PipelineOptions,
  ) {
    this.maxBatchBytes = opts.maxBatchBytes ?? 900_000;
    this.maxBatchRecords = opts.maxBatchRecords ?? 2_000;
  }

  /** Queues a record for `entry` (the transaction it belongs to). */
  enqueue(record: OutRecord, entry: TxEntry): void {
    this.push({ record, span: null, count: 1, bytes: (record.value?.length ?? 0) + (record.key?.length ?? 0) + RECORD_OVERHEAD_BYTES, entry });
  }

  /**
   * Queues the records of `span` for `entry`, in order, as pieces that each fit one batch. The in-flight
   * bound is checked by the caller after the call, so it may be passed by up to the span's bytes.
   */
  enqueueSpan(span: ChunkSpan, entry: TxEntry): void {
    let from = span.from;
    let bytes = 0;
    for (let j = span.from; j < span.to; j++) {
      const b = chunkRecordBytes(span.chunk, j) + RECORD_OVERHEAD_BYTES;
      if (j > from && (bytes + b > this.maxBatchBytes || j - from >= this.maxBatchRecords)) {
        this.push({ record: null, span: { ...span, from, to: j }, count: j - from, bytes, entry });
        from = j;
        bytes = 0;
      }
      bytes += b;
    }
    if (span.to > from) this.push({ record: null, span: { ...span, from }, count: span.to - from, bytes, entry });
  }

  private push(q: Queued): void {
    q.entry.pending += q.count;
    this.pending += q.count;
    this.queue.push(q);
    this.inflightBytes += q.bytes;
    if (this.inflightBytes > this.peakInflightBytes) this.peakInflightBytes = this.inflightBytes;
    this.kick();
  }

  /** Queues what RecordBuilder built for one event: one record (native format), or 0–2 (Debezium format). */
  enqueueBuilt(built: OutRecord | readonly OutRecord[], entry: TxEntry): void {
    if (!Array.isArray(built)) this.enqueue(built as OutRecord, entry);
    else for (const r of built as readonly OutRecord[]) this.enqueue(r, entry);
  }

  /** True while queued + in-flight bytes exceed the bound. */
  get saturated(): boolean {
    return this.inflightBytes >= this.opts.maxInflightBytes;
  }

  /** Resolves when there is room under the in-flight bound. */
  waitForCapacity(): Promise<void> {
    if (!this.saturated || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.capacityWaiters.push(resolve));
  }

  /**
   * Resolves when every queued record was confirmed by the broker, or when the pipeline was stopped
   * first: callers check `pendingRecords` before treating what they queued as delivered.
   */
  drain(): Promise<void> {
    if (this.pendingRecords === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  get pendingRecords(): number {
    return this.pending;
  }

  get bytesInFlight(): number {
    return this.inflightBytes;
  }

  /** Highest in-flight byte count seen: the reader's own memory-bound evidence. */
  get peakBytesInFlight(): number {
    return this.peakInflightBytes;
  }

  /** True while the broker has failed the last request(s). */
  get brokerHealthy(): boolean {
    return this.consecutiveFailures === 0;
  }

  /**
   * Stops sending and retrying; pending records stay unconfirmed (their LSNs are never acknowledged).
   * Every waiter is released, `drain()` ones included, so a stop never hangs on a broker that is down.
   */
  stop(): void {
    this.stopped = true;
    this.wakeRetry?.();
    for (const w of this.capacityWaiters.splice(0)) w();
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private kick(): void {
    if (this.sending || this.stopped || this.pendingRecords === 0) return;
    this.sending = true;
    // Let the current burst of synchronous enqueues finish first so it goes out as one batch.
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    while (!this.stopped && this.pendingRecords > 0) {
      let bytes = 0;
      let count = 0;
      let end = this.qHead;
      while (end < this.queue.length) {
        const q = this.queue[end]!;
        if (end > this.qHead && (bytes + q.bytes > this.maxBatchBytes || count + q.count > this.maxBatchRecords)) break;
        bytes += q.bytes;
        count += q.count;
        end++;
      }
      const batch = this.queue.slice(this.qHead, end);
      const records: OutRecord[] = [];
      for (const q of batch) {
        if (q.record !== null) records.push(q.record);
        else for (let j = q.span!.from; j < q.span!.to; j++) records.push(chunkRecord(q.span!.chunk, j, q.span!.topic)!);
      }
      try {
        await this.publisher.send(records);
      } catch (err) {
        this.consecutiveFailures++;
        const delay = Math.min(this.opts.retryMaxMs ?? 30_000, (this.opts.retryInitialMs ?? 200) * 2 ** Math.min(this.consecutiveFailures - 1, 10));
        this.log.warn('broker send failed; retrying the same batch', {
          ...errorFields(err),
          records: count,
          attempt: this.consecutiveFailures,
          retryInMs: delay,
        });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRetry = null;
        continue;
      }
      if (this.consecutiveFailures > 0) this.log.info('broker send recovered', { afterFailures: this.consecutiveFailures });
      this.consecutiveFailures = 0;
      for (const q of batch) this.tracker.confirm(q.entry, q.count);
      this.pending -= count;
      // Let go of what was sent now (a span holds its chunk's index), not when the queue is next cut.
      for (let k = this.qHead; k < end; k++) this.queue[k] = SENT;
      this.qHead = end;
      this.inflightBytes -= bytes;
      if (this.qHead > 4096 && this.qHead * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.qHead);
        this.qHead = 0;
      }
      const before = this.tracker.ackedLsn;
      if (this.tracker.advance() !== before) this.opts.onAck?.();
      if (!this.saturated) for (const w of this.capacityWaiters.splice(0)) w();
    }
    this.sending = false;
    if (this.pendingRecords === 0) for (const w of this.drainWaiters.splice(0)) w();
  }
}
