import type { ChangeEvent } from '../events/changeEvent.js';
import type { Logger } from '../core/logger.js';

/** One Event Hubs event as the trigger delivered it, with its position. */
export interface EventRecord {
  /** Parsed object, string or Buffer, as the host handed it over. */
  body: unknown;
  partitionId: string;
  offset: string;
  sequenceNumber: string;
  enqueuedTimeUtc?: string;
  properties?: Record<string, unknown>;
  /**
   * The Kafka record key, where the host has it (the worker; Event Hubs' AMQP side, and so the
   * Functions trigger, does not surface it). Read for Debezium's events, whose value has no key.
   */
  key?: Buffer | string;
  /**
   * Set by the host when its metadata did not place this record (no offset, sequence number or
   * enqueued time for it): an id unique to this delivery (e.g. `<invocation id>-<index>`). Names that
   * must not collide with another batch's record (dead-letters) use it instead of the position.
   */
  unplacedId?: string;
}

/**
 * Where a batch comes from: used for dead-letter names, ADX ingestion tags and logs. Offsets and
 * sequence numbers are only unique within one event hub's lifetime (a recreated hub starts again at
 * 0), so names built from them also carry the namespace, hub and consumer group.
 */
export interface BatchInfo {
  functionName: string;
  invocationId?: string;
  /** Fully qualified Event Hubs namespace (`<ns>.servicebus.windows.net`), or `unknown-namespace`. */
  namespace?: string;
  consumerGroup?: string;
  eventHubName?: string;
  partitionId: string;
  firstOffset: string;
  lastOffset: string;
}

export type RecordOutcome =
  | { status: 'ok' }
  /** Nothing to write (tombstone, heartbeat, not routed to this sink, superseded). */
  | { status: 'skipped'; reason: string }
  /** Can never succeed: stored in the dead-letter store, the batch continues. */
  | { status: 'deadLetter'; reason: string; error?: unknown }
  /** Transient: the invocation fails after everything else is done, and the host retries the batch. */
  | { status: 'retry'; error: unknown };

export interface PreparedRecord<T> {
  /** Position of the record in the batch. */
  index: number;
  record: EventRecord;
  event: ChangeEvent;
  item: T;
}

/**
 * A sink in two steps: `prepare` is pure and per record (route, unwrap, shape; throw a
 * `PermanentRecordError` to dead-letter, return null to skip); `write` sends everything prepared in
 * one go and reports the records that did not succeed. If `write` throws, every record it was given
 * takes the error's path (retry when `canRetry`, dead-letter otherwise).
 */
export interface Sink<T> {
  readonly name: string;
  prepare(event: ChangeEvent, record: EventRecord): T | null;
  /**
   * For a logical message (`op: 'm'`): what to write for it, like `prepare` (null: nothing). A sink
   * without it skips every logical message. The reader's control events (schema changes, incremental
   * snapshot boundaries: src/shared/events/controlMessage.ts) come this way, in order with the rows.
   */
  prepareMessage?(event: ChangeEvent, record: EventRecord): T | null;
  write(records: readonly PreparedRecord<T>[], batch: BatchInfo, context: SinkWriteContext): Promise<ReadonlyMap<number, RecordOutcome>>;
}

/** Per-invocation things a sink may use while writing. */
export interface SinkWriteContext {
  /** The invocation's logger. */
  logger: Logger;
}

export interface BatchReport {
  total: number;
  ok: number;
  skipped: number;
  deadLettered: number;
  retried: number;
  outcomes: RecordOutcome[];
  /**
   * For each record the sink wrote in this batch (status `ok` after the write), the milliseconds
   * from its commit in PostgreSQL (`source.ts_ms`) to the sink's answer; empty when nothing was
   * written. Records that were skipped, dead-lettered or are to be retried have no entry.
   */
  commitToWriteMs: number[];
}
