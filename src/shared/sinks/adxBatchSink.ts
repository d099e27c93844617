/**
 * The batch core's view of the ADX sink (src/shared/adx): change events grouped by source table,
 * one `writeTables` call per invocation (one ingestion per ADX table, tagged with the partition and
 * offsets, so a re-run after a failure is skipped by `ingestIfNotExists`). A table the ADX routes
 * do not know is dead-lettered per record; a failing table takes its records' path: retry when the
 * failure is transient, dead-letter when ADX rejected it.
 */
import type { AdxBatch, AdxSink, AdxTableFailure, AdxTableWrite } from '../adx/index.js';
import type { BatchInfo, PreparedRecord, RecordOutcome, Sink, SinkWriteContext } from '../batch/types.js';
import { tableId, type ChangeEvent } from '../events/changeEvent.js';
import { describeError, PermanentRecordError } from '../core/errors.js';

/** The part of `AdxSink` the core needs (a seam for tests). */
export type AdxWriter = Pick<AdxSink, 'routeFor'> & {
  writeTables(batch: AdxBatch): Promise<{ written: AdxTableWrite[]; failures: AdxTableFailure[] }>;
};

export class AdxBatchSink implements Sink<ChangeEvent> {
  readonly name = 'adx';

  constructor(private readonly adx: AdxWriter) {}

  prepare(event: ChangeEvent): ChangeEvent {
    const table = tableId(event.source);
    if (this.adx.routeFor(table) === undefined) {
      throw new PermanentRecordError('UNKNOWN_TABLE', `No ADX route for table ${table} (it has no adx section in CDC_ROUTES)`);
    }
    return event;
  }

  async write(records: readonly PreparedRecord<ChangeEvent>[], batch: BatchInfo, context?: SinkWriteContext): Promise<ReadonlyMap<number, RecordOutcome>> {
    const rowsByTable = new Map<string, Record<string, unknown>[]>();
    const indicesByTable = new Map<string, number[]>();
    for (const { index, item } of records) {
      const table = tableId(item.source);
      let rows = rowsByTable.get(table);
      if (!rows) {
        rows = [];
        rowsByTable.set(table, rows);
        indicesByTable.set(table, []);
      }
      rows.push(item as unknown as Record<string, unknown>);
      indicesByTable.get(table)?.push(index);
    }
    const { failures } = await this.adx.writeTables({
      partitionId: batch.partitionId,
      firstOffset: batch.firstOffset,
      lastOffset: batch.lastOffset,
      rowsByTable,
      ...(context ? { logger: context.logger } : {}),
    });
    const outcomes = new Map<number, RecordOutcome>();
    for (const { tableKey, error } of failures) {
      const outcome: RecordOutcome = error.canRetry ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error };
      for (const index of indicesByTable.get(tableKey) ?? []) outcomes.set(index, outcome);
    }
    return outcomes;
  }
}
