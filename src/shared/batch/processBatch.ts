/**
 * The batch core, after powertools' BatchProcessor: every record is decoded and prepared in its own
 * try/catch; the sink writes what is left in one call; dead-letters are stored; then, and only then,
 * the invocation fails if any record must be retried, with an error carrying every cause. Re-running
 * the whole batch is safe: sinks are idempotent (row versions, ingestion tags) and dead-letter blobs
 * have deterministic names.
 */
import { tableId } from '../events/changeEvent.js';
import { decodeBody, type DecodeOptions } from '../events/decode.js';
import type { DebeziumInputOptions } from '../events/fromDebezium.js';
import { BatchProcessingError, describeError, TransientSinkError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { DeadLetterStore } from '../deadletter/types.js';
import type { ChangeEvent } from '../events/changeEvent.js';
import { outcomeOfIoError, outcomeOfPureStepError } from './outcomes.js';
import { resolvePointers, type PointerResolver } from './pointers.js';
import type { BatchInfo, BatchReport, EventRecord, PreparedRecord, RecordOutcome, Sink } from './types.js';

export interface ProcessBatchOptions<T> {
  sink: Sink<T>;
  deadLetters: DeadLetterStore;
  batch: BatchInfo;
  logger?: Logger;
  /** Fetches the full event of a pointer event (`deadletter` set by the reader for oversized events). */
  pointers?: PointerResolver;
  /** Called with every record's outcome once they are final, before a retry error is thrown (dlq:replay reports them one by one). */
  onReport?: (report: BatchReport) => void;
  /** How Debezium's own events are read (their key columns, the unavailable-value placeholder). */
  debezium?: DebeziumInputOptions;
}

export async function processBatch<T>(records: readonly EventRecord[], options: ProcessBatchOptions<T>): Promise<BatchReport> {
  const { sink, deadLetters, batch } = options;
  const logger = options.logger ?? silentLogger;
  const outcomes: RecordOutcome[] = records.map(() => ({ status: 'ok' }));
  const prepared: PreparedRecord<T>[] = [];
  const messages = new Set<number>();

  // One options object for the records without a Kafka key (every record from the Functions trigger).
  const keyless: DecodeOptions = options.debezium ? { debezium: options.debezium } : {};
  const decodeOptions = (index: number): DecodeOptions => {
    const key = records[index]?.key;
    return key === undefined ? keyless : { ...keyless, recordKey: key };
  };
  const events: (ChangeEvent | undefined)[] = records.map((record, index) => {
    try {
      const decoded = decodeBody(record.body, decodeOptions(index));
      if (decoded.kind === 'event') return decoded.event;
      if (decoded.kind === 'message' && sink.prepareMessage) {
        messages.add(index);
        return decoded.event;
      }
      outcomes[index] = { status: 'skipped', reason: decoded.kind === 'tombstone' ? 'tombstone' : 'logical message' };
    } catch (error) {
      outcomes[index] = outcomeOfPureStepError(error);
    }
    return undefined;
  });

  // Oversized events arrive as pointers to a Blob holding the full event: fetch them first.
  await resolvePointers(events, outcomes, options.pointers, decodeOptions);

  events.forEach((event, index) => {
    const record = records[index];
    if (event === undefined || record === undefined || outcomes[index]?.status !== 'ok') return;
    try {
      const item = messages.has(index) ? (sink.prepareMessage?.(event, record) ?? null) : sink.prepare(event, record);
      if (item === null) {
        outcomes[index] = {
          status: 'skipped',
          reason: messages.has(index) ? 'logical message' : `not written by ${sink.name} (${tableId(event.source)} ${event.op})`,
        };
        return;
      }
      prepared.push({ index, record, event, item });
    } catch (error) {
      outcomes[index] = outcomeOfPureStepError(error);
    }
  });

  let writtenAt = Number.NaN;
  if (prepared.length > 0) {
    try {
      const failures = await sink.write(prepared, batch, { logger });
      writtenAt = Date.now();
      for (const [index, outcome] of failures) outcomes[index] = outcome;
    } catch (error) {
      const outcome = outcomeOfIoError(error);
      for (const p of prepared) outcomes[p.index] = outcome;
    }
  }
  // End-to-end latency of what this write made durable: commit in PostgreSQL to the sink's answer.
  const commitToWriteMs = prepared
    .filter((p) => outcomes[p.index]?.status === 'ok' && Number.isFinite(p.event.source.ts_ms))
    .map((p) => writtenAt - p.event.source.ts_ms);

  // Dead-letters are written before deciding the invocation's fate; a record whose dead-letter
  // cannot be stored is retried, never dropped.
  // Only the dead-lettered records get a promise (a batch of 1,000 records made 1,000 of them).
  const stores: Promise<void>[] = [];
  outcomes.forEach((outcome, index) => {
    const record = records[index];
    if (outcome.status !== 'deadLetter' || !record) return;
    stores.push(
      (async () => {
        try {
          await deadLetters.put({ record, batch, reason: outcome.reason });
          logger.warn(`${batch.functionName}: dead-lettered partition ${record.partitionId} offset ${record.offset}: ${outcome.reason}`);
        } catch (error) {
          outcomes[index] = {
            status: 'retry',
            error: new TransientSinkError(`Dead-letter store failed for offset ${record.offset}`, error, 'DEAD_LETTER_FAILED'),
          };
        }
      })(),
    );
  });
  await Promise.all(stores);

  const report: BatchReport = { total: records.length, ok: 0, skipped: 0, deadLettered: 0, retried: 0, outcomes, commitToWriteMs };
  const retryErrors: unknown[] = [];
  for (const outcome of outcomes) {
    if (outcome.status === 'ok') report.ok++;
    else if (outcome.status === 'skipped') report.skipped++;
    else if (outcome.status === 'deadLetter') report.deadLettered++;
    else {
      report.retried++;
      retryErrors.push(outcome.error);
    }
  }
  options.onReport?.(report);
  logger.info(
    `${batch.functionName}: partition ${batch.partitionId} offsets ${batch.firstOffset}..${batch.lastOffset}: ` +
      `${report.total} records, ${report.ok} ok, ${report.skipped} skipped, ${report.deadLettered} dead-lettered, ${report.retried} to retry`,
  );
  if (retryErrors.length > 0) {
    const distinct = [...new Set(retryErrors.map(describeError))];
    throw new BatchProcessingError(
      `${report.retried} of ${report.total} records must be retried (partition ${batch.partitionId} offsets ${batch.firstOffset}..${batch.lastOffset}): ${distinct.slice(0, 3).join('; ')}`,
      retryErrors,
    );
  }
  return report;
}
