/**
 * One sink run from one Kafka consumer group: the records of each assigned partition are batched
 * (at most `maxBatchSize` records and `maxBatchBytes`, the first record waiting at most `maxWaitMs`), handed to the batch core
 * one batch per partition at a time (partitions in parallel), and the offset after a batch is
 * committed only once the batch is fully handled: written or dead-lettered by `processBatch`. A
 * batch that must be retried is retried as the same records, with the shared retry policy, forever;
 * nothing after it in its partition is handled or committed meanwhile. An attempt whose retries only
 * wait for another partition's earlier change (a key change's old-key delete) is retried after a
 * short delay instead (100 ms doubling to the policy's minimum): that partition usually catches up
 * within one of its batches, and the policy's delay would cap the partition at a batch per interval.
 *
 * Rebalances: the client (classic protocol, eager) reports each new assignment on
 * `consumer:group:join`. A revoked partition's queued records are dropped and its in-flight batch
 * finishes or is abandoned, without a commit either way (the new owner starts from the last commit;
 * the sinks absorb the duplicates). After every assignment the worker reads through a fresh stream:
 * the client's stream keeps the fetch position of a partition it owned before when the group has no
 * commit for it, and an older stream's in-flight fetch can deliver records from before the
 * rebalance, either of which could skip records of a partition that comes back. A fresh stream
 * starts every partition at its committed offset (the oldest record without one, like the
 * Functions host's `initialOffsetOptions: fromStart`); records a kept partition already has are
 * recognised by offset and dropped.
 *
 * A failed stream or group membership closes the session without committing anything further and
 * opens a new one (backoff 1 s doubling to 30 s); `/readyz` says so meanwhile.
 */
import { settlesWithin } from '../shared/core/async.js';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type ConsumeOptions, type ConsumerOptions, type GroupAssignment, type MessagesStream } from '@platformatic/kafka';
import { processBatch } from '../shared/batch/processBatch.js';
import type { BatchReport, EventRecord } from '../shared/batch/types.js';
import { BatchProcessingError, describeError } from '../shared/core/errors.js';
import { describeKafkaConnectError, kafkaClientOptions, type KafkaSettings, type TokenSource } from '../shared/core/kafka.js';
import { errorFields, type Logger } from '../shared/core/logger.js';
import type { SinkDeps } from '../shared/sinks/registry.js';
import { awaitingRetryDelayMs, onlyAwaitingPartitions, retryDelayMs, type RetryPolicy } from '../shared/sinks/retryPolicy.js';
import { SinkMetrics } from './metrics.js';
import { batchInfo, toEventRecord, type BatchOrigin, type KafkaMessage } from './records.js';

type Stream = MessagesStream<Buffer, Buffer, Buffer, Buffer>;

export interface SinkConsumerOptions {
  origin: BatchOrigin;
  kafka: KafkaSettings;
  deps: SinkDeps;
  maxBatchSize: number;
  /** Most bytes of record values and keys per batch (a record larger than this is a batch of its own). */
  maxBatchBytes: number;
  maxWaitMs: number;
  retry: RetryPolicy;
  sessionTimeoutMs: number;
  logger: Logger;
  /** The OAUTHBEARER credential (default `DefaultAzureCredential`). */
  credential?: TokenSource;
}

/**
 * Bytes of records queued (fetched, not yet in a batch) above which fetching pauses; records are
 * bounded as well, to QUEUED_BATCHES_PER_PARTITION batches per assigned partition. Together with the
 * fetch size below this bounds a sink's memory whatever the event sizes (Event Hubs allows 1 MB
 * events). 8 MiB, for three sinks in one worker under the image's memory target (256 MB RSS): bench:e2e
 * measured 268 MB at 64 MiB and 255–259 MB at 16 MiB with the image's heap flags (docs/e2e.md). Small
 * events reach the record bound first (4,000 records of ~500 bytes are 2 MB), so this costs them no
 * throughput.
 */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/**
 * One full batch waiting per partition while its batch in flight is written: enough that the next batch
 * starts at once. Two (the bound before) kept another 4,000 records per sink in memory, whose Kafka
 * messages (offset and timestamp bigints, a headers Map, a bound commit function each) and decoded
 * batches took a three-sink worker past 256 MB under a backlog (docs/worker.md "Memory").
 */
const QUEUED_BATCHES_PER_PARTITION = 1;
const FETCH_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Most bytes one fetch returns for one partition (Kafka's own `max.partition.fetch.bytes` default), so
 * a fetch shares out `FETCH_MAX_BYTES` among the partitions instead of filling it from the first one,
 * and re-reading a shed partition (see `shed`) costs little. The broker still returns a record larger
 * than this whole.
 */
const FETCH_MAX_BYTES_PER_PARTITION = 1024 * 1024;
/** How long the broker holds a fetch when nothing is new: also bounds how long a close waits for one. */
const FETCH_MAX_WAIT_MS = 500;
const LAG_INTERVAL_MS = 10_000;
const CLOSE_TIMEOUT_MS = 5_000;

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}

/**
 * A record waiting for its batch: the sink's record, built on arrival, instead of the client's message,
 * which also holds a headers Map and array, a bound commit function, a metadata object and a timestamp
 * bigint that nothing reads afterwards (a few hundred bytes per queued record, per sink).
 */
interface Queued {
  record: EventRecord;
  offset: bigint;
  /** Of the record's batch, for the commit (KIP-320). */
  leaderEpoch: number;
  /** When it arrived, for `maxWaitMs`. */
  at: number;
  bytes: number;
}

class Partition {
  readonly queue: Queued[] = [];
  queuedBytes = 0;
  /** One past the last offset taken from the stream: anything below is already queued, in flight or done. */
  nextOffset: bigint | undefined;
  /** One past the last offset fully handled, and the leader epoch of that record (for the commit). */
  doneOffset: bigint | undefined;
  leaderEpoch = -1;
  committedOffset: bigint | undefined;
  /** The stream this partition reads from (set when a stream created after its assignment is attached). */
  stream: Stream | undefined;
  running: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  revoked = false;
  /** Its batch in flight is being retried only because it waits for another partition (AwaitingPartitionError). */
  awaiting = false;
  /**
   * The first offset of records dropped from the queue while the batch in flight waits for another
   * partition (see `Session.shed`): the partition takes nothing from the stream until a new stream
   * reads it again from here.
   */
  shedFrom: bigint | undefined;
  /** Aborts a retry's wait when the partition is revoked or the worker stops. */
  readonly abort = new AbortController();

  constructor(
    readonly id: number,
    /** The in-flight batch of this partition's previous, revoked incarnation: one batch at a time. */
    public blockedBy: Promise<void> | undefined,
  ) {}
}

/** One consumer instance and its group membership; replaced by a new one after a failure. */
class Session {
  stream: Stream | undefined;
  readonly partitions = new Map<number, Partition>();
  /** In-flight batches of revoked partitions, by partition: a new assignment waits for them. */
  private readonly draining = new Map<number, Promise<void>>();
  private queued = 0;
  private queuedBytes = 0;
  private paused = false;
  /** No new batches and no retries (shutdown); batches already in `processBatch` may still finish and commit. */
  private stopping = false;
  /** Nothing is committed any more (shutdown deadline passed, or the session failed). */
  private commitsClosed = false;
  private closing = false;
  private replacing: Promise<void> = Promise.resolve();
  private lagTimer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | undefined;
  /** Resolves with the error when the session fails (the owner then opens a new one). */
  readonly failed: Promise<unknown>;
  private resolveFailed!: (error: unknown) => void;

  private constructor(
    private readonly options: SinkConsumerOptions,
    private readonly metrics: SinkMetrics,
    readonly consumer: Consumer<Buffer, Buffer, Buffer, Buffer>,
  ) {
    this.failed = new Promise((resolve) => (this.resolveFailed = resolve));
    const { logger } = options;
    consumer.on('consumer:group:join', (payload) => this.onAssignment(payload.assignments, payload.generationId));
    consumer.on('consumer:group:rebalance', () => logger.info(`${this.name}: the group is rebalancing`));
    consumer.on('consumer:heartbeat:error', ({ error }) => logger.warn(`${this.name}: heartbeat failed (retried)`, errorFields(error)));
    // An 'error' is what the client emits when it could not rejoin the group: it stops heartbeating.
    consumer.on('error', (error) => this.fail(error));
    // No heartbeat got through for the rebalance timeout: the group has dropped this member.
    consumer.on('consumer:heartbeat:stalled', ({ stalledFor, lastError }) =>
      this.fail(new Error(`no heartbeat reached the group coordinator for ${stalledFor} ms`, { cause: lastError })),
    );
  }

  static async open(options: SinkConsumerOptions, metrics: SinkMetrics): Promise<Session> {
    const heartbeatInterval = Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3));
    const consumerOptions: ConsumerOptions<Buffer, Buffer, Buffer, Buffer> = {
      ...(await kafkaClientOptions(options.kafka, options.credential)),
      groupId: options.origin.consumerGroup,
      autocommit: false,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval,
      rebalanceTimeout: Math.max(options.sessionTimeoutMs, 60_000),
      maxBytes: FETCH_MAX_BYTES,
      maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
      maxWaitTime: FETCH_MAX_WAIT_MS,
    };
    const session = new Session(options, metrics, new Consumer<Buffer, Buffer, Buffer, Buffer>(consumerOptions));
    try {
      session.attach(await session.consumer.consume(session.streamOptions()));
    } catch (error) {
      await settlesWithin(session.consumer.close(true), CLOSE_TIMEOUT_MS);
      throw describeKafkaConnectError(error, options.kafka, { name: options.origin.topic, setting: 'CDC_TOPIC' });
    }
    session.lagTimer = setInterval(() => void session.refreshLag(), LAG_INTERVAL_MS).unref();
    return session;
  }

  private get name(): string {
    return this.options.origin.functionName;
  }

  get ready(): boolean {
    return !this.closing && this.stream !== undefined && this.stream.isActive();
  }

  private streamOptions(): ConsumeOptions<Buffer, Buffer, Buffer, Buffer> {
    return { topics: [this.options.origin.topic], mode: 'committed', fallbackMode: 'earliest', autocommit: false };
  }

  private attach(stream: Stream): void {
    this.stream = stream;
    for (const p of this.partitions.values()) {
      p.stream = stream;
      // A new stream starts at the committed offsets: the shed records come again, from here on.
      if (p.shedFrom !== undefined) {
        p.nextOffset = p.shedFrom;
        p.shedFrom = undefined;
      }
    }
    stream.on('data', (message) => this.onRecord(stream, message));
    stream.on('error', (error) => {
      if (stream === this.stream) this.fail(error);
    });
    stream.on('close', () => {
      if (stream === this.stream && !this.closing) this.fail(new Error('the consumer stream closed'));
    });
    if (this.paused) stream.pause();
  }

  private onAssignment(assignments: GroupAssignment[] | undefined, generationId: number | undefined): void {
    if (this.closing) return;
    const mine = new Set(assignments?.find((a) => a.topic === this.options.origin.topic)?.partitions ?? []);
    const revoked = [...this.partitions.values()].filter((p) => !mine.has(p.id));
    for (const p of revoked) this.revoke(p);
    for (const id of mine) {
      if (this.partitions.has(id)) continue;
      const p = new Partition(id, this.draining.get(id));
      void p.blockedBy?.finally(() => {
        p.blockedBy = undefined;
        this.schedule(p);
      });
      this.partitions.set(id, p);
      this.metrics.partition(id);
    }
    if (this.stream !== undefined) this.metrics.rebalances++;
    this.options.logger.info(`${this.name}: assigned partitions ${[...mine].sort((a, b) => a - b).join(',') || '(none)'}`, {
      generationId,
      revoked: revoked.map((p) => p.id),
    });
    if (this.stream === undefined) return;
    this.replaceStreamSoon();
  }

  private async replaceStream(): Promise<void> {
    if (this.stopping) return;
    const old = this.stream;
    const next = await this.consumer.consume(this.streamOptions());
    if (this.closing) {
      await next.close().catch(() => undefined);
      return;
    }
    this.attach(next);
    await old?.close().catch((error: unknown) => this.options.logger.debug(`${this.name}: closing the previous stream failed`, errorFields(error)));
  }

  private revoke(p: Partition): void {
    p.revoked = true;
    clearTimeout(p.timer);
    p.abort.abort();
    this.queued -= p.queue.length;
    this.queuedBytes -= p.queuedBytes;
    p.queue.length = 0;
    p.queuedBytes = 0;
    this.partitions.delete(p.id);
    this.metrics.partitions.delete(p.id);
    const running = p.running;
    if (running) {
      this.draining.set(p.id, running);
      void running.finally(() => {
        if (this.draining.get(p.id) === running) this.draining.delete(p.id);
      });
    }
    this.options.logger.info(`${this.name}: partition ${p.id} revoked${running ? ': its batch in flight will not be committed' : ''}`);
    this.flowControl();
  }

  private onRecord(stream: Stream, message: KafkaMessage): void {
    const p = this.partitions.get(message.partition);
    // Not ours (revoked), or read by an older stream than the partition's assignment.
    if (p === undefined || p.stream !== stream || message.topic !== this.options.origin.topic) return;
    if (p.nextOffset !== undefined && message.offset < p.nextOffset) {
      this.metrics.redelivered++;
      return;
    }
    if (p.shedFrom !== undefined) {
      this.metrics.shedRecords++;
      return;
    }
    p.nextOffset = message.offset + 1n;
    const bytes = (message.value?.length ?? 0) + (message.key?.length ?? 0);
    p.queue.push({ record: toEventRecord(message), offset: message.offset, leaderEpoch: message.leaderEpoch, at: Date.now(), bytes });
    p.queuedBytes += bytes;
    this.queued++;
    this.queuedBytes += bytes;
    this.metrics.partition(p.id).queued = p.queue.length;
    this.flowControl();
    this.schedule(p);
  }

  /**
   * Pauses fetching above the bounds and resumes below half of them (see MAX_QUEUED_BYTES). The
   * client pauses the whole stream, not a partition, so a partition whose batch waits for another
   * one (a key change waiting for its old key's delete) would fill the bounds with records it cannot
   * take and starve the very partition it waits for: at the bounds, such a partition's queue is shed
   * instead (read again later), and fetching goes on for the others.
   */
  private flowControl(): void {
    const limit = QUEUED_BATCHES_PER_PARTITION * this.options.maxBatchSize * Math.max(1, this.partitions.size);
    const over = () => this.queued >= limit || this.queuedBytes >= MAX_QUEUED_BYTES;
    if ((this.paused || over()) && !this.stopping) {
      for (const p of this.partitions.values()) if (p.awaiting && p.shedFrom === undefined && p.queue.length > 0) this.shed(p);
    }
    if (!this.paused && over()) {
      this.paused = true;
      this.stream?.pause();
    } else if (this.paused && !this.stopping && this.queued < limit / 2 && this.queuedBytes < MAX_QUEUED_BYTES / 2) {
      this.paused = false;
      this.stream?.resume();
    }
  }

  /**
   * Drops the queue of a partition whose batch in flight waits for another partition, and takes
   * nothing more of it from this stream; once that batch is done, a new stream reads the partition
   * again from the first dropped offset (`refetch`). Nothing is committed past what was handled, so
   * nothing is skipped: the records are only read twice.
   */
  private shed(p: Partition): void {
    const first = p.queue[0]!.offset;
    clearTimeout(p.timer);
    p.timer = undefined;
    this.queued -= p.queue.length;
    this.queuedBytes -= p.queuedBytes;
    this.metrics.shedRecords += p.queue.length;
    p.queue.length = 0;
    p.queuedBytes = 0;
    p.shedFrom = first;
    this.metrics.partition(p.id).queued = 0;
    this.options.logger.info(
      `${this.name}: partition ${p.id}: its batch waits for another partition and its queue fills the fetch bounds: ` +
        `records from offset ${first} are dropped and read again once that batch is done, so the other partitions keep being fetched`,
    );
  }

  /** A new stream, from the committed offsets, for the partitions shed meanwhile. */
  private refetch(): void {
    this.metrics.refetches++;
    this.replaceStreamSoon();
  }

  /** Replaces the stream after any replacement already under way (one at a time). */
  private replaceStreamSoon(): void {
    this.replacing = this.replacing.then(() => this.replaceStream()).catch((error: unknown) => this.fail(error));
  }

  /** Starts the partition's next batch when it is full, else once its first record has waited `maxWaitMs`. */
  private schedule(p: Partition): void {
    if (this.stopping || p.revoked || p.running || p.blockedBy || p.queue.length === 0) return;
    if (p.queue.length >= this.options.maxBatchSize || p.queuedBytes >= this.options.maxBatchBytes) {
      this.dispatch(p);
      return;
    }
    // Through a timer even when the wait is over, so every record of the fetch being delivered
    // (they arrive in one go) joins the batch.
    p.timer ??= setTimeout(
      () => {
        p.timer = undefined;
        if (!this.stopping && !p.revoked && !p.running && !p.blockedBy && p.queue.length > 0) this.dispatch(p);
      },
      Math.max(0, this.options.maxWaitMs - (Date.now() - p.queue[0]!.at)),
    );
  }

  private dispatch(p: Partition): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    // At most maxBatchSize records and maxBatchBytes, but always the first record, however large.
    let count = 0;
    let bytes = 0;
    for (const q of p.queue) {
      if (count === this.options.maxBatchSize || (count > 0 && bytes + q.bytes > this.options.maxBatchBytes)) break;
      count++;
      bytes += q.bytes;
    }
    const taken = p.queue.splice(0, count);
    p.queuedBytes -= bytes;
    this.queued -= taken.length;
    this.queuedBytes -= bytes;
    this.metrics.partition(p.id).queued = p.queue.length;
    this.flowControl();
    p.running = this.runBatch(p, taken)
      .catch((error: unknown) =>
        this.options.logger.error(`${this.name}: partition ${p.id}: unexpected failure of a batch (not committed)`, errorFields(error)),
      )
      .finally(() => {
        p.running = undefined;
        p.awaiting = false;
        if (p.shedFrom !== undefined && !p.revoked && !this.stopping) this.refetch();
        this.schedule(p);
      });
  }

  private async runBatch(p: Partition, taken: Queued[]): Promise<void> {
    const { deps, logger, origin, retry } = this.options;
    const records = taken.map((q) => q.record);
    const last = taken.at(-1)!;
    const range = `partition ${p.id} offsets ${records[0]!.offset}..${records.at(-1)!.offset}`;
    const inFlight = { firstOffset: records[0]!.offset, lastOffset: records.at(-1)!.offset, attempts: 0 };
    const metrics = this.metrics.partition(p.id);
    metrics.inFlight = inFlight;
    // The policy's delay grows with the failed attempts it applies to; waiting for another partition
    // has its own short delay, growing over consecutive such attempts.
    let delayMs = 0;
    let policyRetries = 0;
    let awaitingRetries = 0;
    // What each attempt hands over: the whole batch, except after an attempt whose retries all only
    // waited for another partition: then the rest of the batch is written (or dead-lettered) already,
    // and rewriting it on every short retry is what kept such partitions slow (docs/worker.md).
    let pending = records;
    try {
      for (let attempt = 1; ; attempt++) {
        if (attempt > 1) await pause(delayMs, p.abort.signal);
        if (this.stopping || p.revoked || this.commitsClosed) {
          this.abandon(range, attempt > 1 ? 'its retry' : 'it');
          return;
        }
        inFlight.attempts = attempt;
        let attemptReport: BatchReport | undefined;
        try {
          const report = await processBatch(pending, {
            sink: deps.sink,
            deadLetters: deps.deadLetters,
            batch: batchInfo(origin, pending, randomUUID()),
            logger,
            ...(deps.pointers ? { pointers: deps.pointers } : {}),
            ...(deps.debezium ? { debezium: deps.debezium } : {}),
            onReport: (r) => (attemptReport = r),
          });
          this.metrics.recordReport(report);
          break;
        } catch (error) {
          // Anything else than BatchProcessingError is a bug or an unexpected failure: retried all the same, never skipped.
          const handed = pending.length;
          const retried = error instanceof BatchProcessingError ? error.errors.length : handed;
          const awaiting = error instanceof BatchProcessingError && onlyAwaitingPartitions(error.errors);
          p.awaiting = awaiting;
          if (awaiting) {
            awaitingRetries++;
            delayMs = awaitingRetryDelayMs(retry, awaitingRetries);
            // The sinks mark the later changes of a waiting record's document as waiting too, so the
            // records kept are a key-ordered remainder; the others of this attempt are final.
            const outcomes = attemptReport?.outcomes;
            if (outcomes !== undefined && outcomes.length === pending.length) {
              this.metrics.recordSettled(outcomes.filter((o) => o.status !== 'retry'));
              pending = pending.filter((_, i) => outcomes[i]?.status === 'retry');
            }
            this.flowControl();
          } else {
            awaitingRetries = 0;
            policyRetries++;
            delayMs = retryDelayMs(retry, policyRetries);
          }
          this.metrics.recordFailedAttempt(retried, describeError(error), awaiting);
          logger.warn(
            `${this.name}: ${range}: ${retried} of ${handed} records must be retried (attempt ${attempt}${awaiting ? ', waiting for another partition' : ''}); ` +
              `next attempt in ${delayMs / 1000} s, the offset stays uncommitted until it succeeds`,
            errorFields(error),
          );
        }
      }
      if (p.revoked || this.commitsClosed) {
        this.abandon(range, 'its commit');
        return;
      }
      p.doneOffset = last.offset + 1n;
      p.leaderEpoch = last.leaderEpoch;
      await this.commit(p);
    } finally {
      metrics.inFlight = null;
    }
  }

  private abandon(range: string, what: string): void {
    this.metrics.abandonedBatches++;
    this.options.logger.info(`${this.name}: ${range}: ${what} abandoned (partition revoked or worker stopping); not committed, read again by the next owner`);
  }

  /** Commits the partition's done offset; a failure is logged and covered by the next commit. */
  private async commit(p: Partition): Promise<void> {
    const offset = p.doneOffset;
    if (offset === undefined || (p.committedOffset !== undefined && offset <= p.committedOffset) || p.revoked || this.commitsClosed) return;
    try {
      await this.consumer.commit({ offsets: [{ topic: this.options.origin.topic, partition: p.id, offset, leaderEpoch: p.leaderEpoch }] });
      p.committedOffset = offset;
      if (!p.revoked) this.metrics.partition(p.id).committedOffset = Number(offset);
      this.options.logger.debug(`${this.name}: committed partition ${p.id} offset ${offset}`);
    } catch (error) {
      this.options.logger.warn(`${this.name}: commit of partition ${p.id} offset ${offset} failed; the next commit covers it`, errorFields(error));
    }
  }

  private async refreshLag(): Promise<void> {
    if (this.closing) return;
    try {
      // A partition this process has not committed yet (nothing new since it was assigned) shows the
      // group's committed offset, so /metrics and the status say where it is rather than nothing.
      const topic = this.options.origin.topic;
      const unknown = [...this.partitions.values()].filter((p) => p.committedOffset === undefined).map((p) => p.id);
      if (unknown.length > 0) {
        const committed = (await this.consumer.listCommittedOffsets({ topics: [{ topic, partitions: unknown }] })).get(topic) ?? [];
        for (const id of unknown) {
          const offset = committed[id];
          const p = this.partitions.get(id);
          if (p !== undefined && p.committedOffset === undefined && offset !== undefined && offset >= 0n) {
            p.committedOffset = offset;
            this.metrics.partition(id).committedOffset = Number(offset);
          }
        }
      }
      const lag = (await this.consumer.getLag({ topics: [this.options.origin.topic] })).get(this.options.origin.topic) ?? [];
      for (const p of this.partitions.values()) {
        const value = lag[p.id];
        if (value !== undefined && value >= 0n) this.metrics.partition(p.id).lag = Number(value);
      }
    } catch (error) {
      this.options.logger.debug(`${this.name}: lag not refreshed`, errorFields(error));
    }
  }

  fail(error: unknown): void {
    if (this.closing) return;
    this.metrics.lastError = describeError(error);
    this.resolveFailed(error);
  }

  /**
   * Graceful end: no new batches or retries (a batch waiting for its retry is abandoned), the batches
   * in `processBatch` get `timeoutMs` to finish and commit; then nothing is committed any more, and
   * the consumer leaves the group. Without `graceful` (after a failure) nothing is waited for or
   * committed. Idempotent.
   */
  close(graceful: { timeoutMs: number } | undefined): Promise<void> {
    this.closed ??= this.closeOnce(graceful);
    return this.closed;
  }

  private async closeOnce(graceful: { timeoutMs: number } | undefined): Promise<void> {
    this.stopping = true;
    this.stream?.pause();
    for (const p of this.partitions.values()) {
      clearTimeout(p.timer);
      p.abort.abort();
    }
    if (graceful) {
      const inFlight = [...this.partitions.values(), ...this.draining.values()]
        .map((p) => (p instanceof Partition ? p.running : p))
        .filter((r) => r !== undefined);
      if (!(await settlesWithin(Promise.allSettled(inFlight), graceful.timeoutMs))) {
        // Counted in abandonedBatches when they end, if the process is still there.
        const left = [...this.partitions.values()].filter((p) => p.running !== undefined).length;
        this.options.logger.warn(`${this.name}: ${left} batches still in flight after ${graceful.timeoutMs} ms: abandoned, not committed`);
      }
      // A commit that failed earlier is covered here, while the membership still holds.
      await Promise.all([...this.partitions.values()].filter((p) => p.running === undefined).map((p) => this.commit(p)));
    }
    this.commitsClosed = true;
    this.closing = true;
    clearInterval(this.lagTimer);
    if (!(await settlesWithin(this.consumer.close(true), CLOSE_TIMEOUT_MS))) {
      this.options.logger.warn(
        `${this.name}: leaving the group took longer than ${CLOSE_TIMEOUT_MS} ms; the broker drops the member after its session timeout`,
      );
    }
  }
}

/** A sink's consumer group membership over its lifetime: sessions, reconnects, metrics. */
export class SinkConsumer {
  readonly metrics: SinkMetrics;
  private session: Session | undefined;
  private stopped = false;
  private readonly stopSignal = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: SinkConsumerOptions) {
    this.metrics = new SinkMetrics(options.origin.functionName, options.origin.consumerGroup);
  }

  get name(): string {
    return this.options.origin.functionName;
  }

  /** Joins the group; a failure is a `KafkaConnectError` naming the setting (start-up). */
  async start(): Promise<void> {
    this.session = await Session.open(this.options, this.metrics);
    this.metrics.state = 'running';
    this.loop = this.reconnectLoop(this.session);
  }

  get ready(): boolean {
    return this.metrics.state === 'running' && this.session?.ready === true;
  }

  private async reconnectLoop(first: Session): Promise<void> {
    let session = first;
    for (;;) {
      const error = await Promise.race([session.failed, new Promise((resolve) => this.stopSignal.signal.addEventListener('abort', resolve, { once: true }))]);
      if (this.stopped) return;
      this.options.logger.error(`${this.name}: consumer failed; reconnecting (nothing more of this session is committed)`, errorFields(error));
      this.metrics.state = 'reconnecting';
      this.metrics.reconnects++;
      await session.close(undefined);
      for (let attempt = 1; !this.stopped; attempt++) {
        await pause(Math.min(30_000, 1_000 * 2 ** (attempt - 1)), this.stopSignal.signal);
        if (this.stopped) return;
        try {
          session = await Session.open(this.options, this.metrics);
          if (this.stopped) {
            // stop() closed the session it knew; this one is closed here.
            await session.close(undefined);
            return;
          }
          this.session = session;
          this.metrics.state = 'running';
          break;
        } catch (openError) {
          this.metrics.lastError = describeError(openError);
          this.options.logger.error(`${this.name}: reconnect attempt ${attempt} failed`, errorFields(openError));
        }
      }
    }
  }

  /** Graceful stop within `timeoutMs` (see `Session.close`), then leaves the group. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.metrics.state = 'stopping';
    this.stopSignal.abort();
    await this.session?.close({ timeoutMs });
    // A reconnect in progress closes what it opens (it sees `stopped`): waited for within the close bound only.
    if (this.loop) await settlesWithin(this.loop, CLOSE_TIMEOUT_MS);
    this.metrics.state = 'stopped';
  }
}
