import { describe, expect, it } from '@jest/globals';
import { processBatch } from '../../src/shared/batch/processBatch.js';
import type { BatchInfo, BatchReport, EventRecord, PreparedRecord, RecordOutcome, Sink } from '../../src/shared/batch/types.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { DeadLetterStore } from '../../src/shared/deadletter/types.js';
import { BatchProcessingError, ConfigError, PermanentRecordError, TransientSinkError } from '../../src/shared/core/errors.js';
import type { PointerResolver } from '../../src/shared/batch/pointers.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { changeEvent, order } from '../helpers/events.js';

const batch: BatchInfo = { functionName: 'test', partitionId: '3', firstOffset: '0', lastOffset: '9' };
const records = (bodies: unknown[]): EventRecord[] => bodies.map((body, i) => ({ body, partitionId: '3', offset: String(i * 10), sequenceNumber: String(i) }));

/** A sink that records what it writes and fails the ids it is told to. */
class FakeSink implements Sink<number> {
  readonly name = 'fake';
  written: number[] = [];
  constructor(
    private readonly fail: Map<number, RecordOutcome> = new Map(),
    private readonly throwOnWrite?: Error,
  ) {}
  prepare(event: ChangeEvent): number | null {
    if (event.source.table === 'skip_me') return null;
    if (event.source.table === 'poison') throw new PermanentRecordError('UNKNOWN_TABLE', 'No route for table retail.poison');
    // A pure conversion that throws an unflagged error, as `new Date(ts_ms).toISOString()` does on a bad ts_ms.
    if (event.source.table === 'bad_time') return new Date(Number.NaN).toISOString().length;
    if (event.source.table === 'flagged') throw Object.assign(new Error('lookup table not loaded yet'), { canRetry: true });
    return Number(event.after?.orderid ?? event.before?.orderid);
  }
  write(prepared: readonly PreparedRecord<number>[]): Promise<ReadonlyMap<number, RecordOutcome>> {
    if (this.throwOnWrite) return Promise.reject(this.throwOnWrite);
    const failures = new Map<number, RecordOutcome>();
    for (const p of prepared) {
      const outcome = this.fail.get(p.item);
      if (outcome) failures.set(p.index, outcome);
      else this.written.push(p.item);
    }
    return Promise.resolve(failures);
  }
}

describe('processBatch', () => {
  it('reports commit-to-write latency for the written records only', async () => {
    // Prepare: committed 1.5 s and 3 s ago; one record the sink rejects, one poison, one skipped.
    const now = Date.now();
    const sink = new FakeSink(new Map([[3, { status: 'deadLetter', reason: 'mapping' }]]));
    const bodies = [
      changeEvent({ after: order(1), tsMs: now - 1500 }),
      changeEvent({ after: order(2), tsMs: now - 3000 }),
      changeEvent({ after: order(3), tsMs: now - 1500 }),
      changeEvent({ table: 'retail.poison', tsMs: now - 1500 }),
      changeEvent({ table: 'retail.skip_me', tsMs: now - 1500 }),
    ];
    // Act
    const report = await processBatch(records(bodies), { sink, deadLetters: new MemoryDeadLetterStore(), batch });
    const after = Date.now();
    // Assess: two entries, in record order, each between its age at the start and at the end.
    expect(report).toMatchObject({ ok: 2, deadLettered: 2, skipped: 1 });
    expect(report.commitToWriteMs).toHaveLength(2);
    const [first, second] = report.commitToWriteMs as [number, number];
    expect(first).toBeGreaterThanOrEqual(1500);
    expect(first).toBeLessThanOrEqual(after - (now - 1500));
    expect(second).toBeGreaterThanOrEqual(3000);
    expect(second).toBeLessThanOrEqual(after - (now - 3000));
  });

  it('reports no latency when the write fails', async () => {
    const sink = new FakeSink(new Map(), new TransientSinkError('down'));
    let report: BatchReport | undefined;
    const thrown = await processBatch(records([changeEvent({ after: order(1) })]), {
      sink,
      deadLetters: new MemoryDeadLetterStore(),
      batch,
      onReport: (r) => (report = r),
    }).catch((error: unknown) => error);
    expect(thrown).toBeInstanceOf(BatchProcessingError);
    expect(report).toMatchObject({ retried: 1, commitToWriteMs: [] });
  });

  it('applies good records, dead-letters poison and skips tombstones in a mixed batch', async () => {
    // Prepare
    const sink = new FakeSink();
    const deadLetters = new MemoryDeadLetterStore();
    const bodies = [
      changeEvent({ after: order(1) }),
      'not json',
      null,
      changeEvent({ table: 'retail.poison' }),
      changeEvent({ table: 'retail.skip_me' }),
      7,
      changeEvent({ after: order(2) }),
    ];
    // Act
    const report = await processBatch(records(bodies), { sink, deadLetters, batch });
    // Assess
    expect(sink.written).toEqual([1, 2]);
    expect(report).toMatchObject({ total: 7, ok: 2, skipped: 2, deadLettered: 3, retried: 0 });
    expect([...deadLetters.documents.values()].map((d) => [d.offset, d.reason.split(':')[0]])).toEqual([
      ['10', 'PermanentRecordError'],
      ['30', 'PermanentRecordError'],
      ['50', 'PermanentRecordError'],
    ]);
  });

  it('fails the invocation after dead-letters are written and successes applied when a record must be retried', async () => {
    const sink = new FakeSink(
      new Map<number, RecordOutcome>([
        [2, { status: 'retry', error: new TransientSinkError('429 throttled') }],
        [3, { status: 'deadLetter', reason: '400 mapper_parsing_exception' }],
      ]),
    );
    const deadLetters = new MemoryDeadLetterStore();
    const bodies = [1, 2, 3, 4].map((id) => changeEvent({ after: order(id) }));

    const error = await processBatch(records(bodies), { sink, deadLetters, batch }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BatchProcessingError);
    expect((error as BatchProcessingError).canRetry).toBe(true);
    expect((error as BatchProcessingError).errors).toHaveLength(1);
    expect((error as Error).message).toMatch(/1 of 4 records must be retried.*429 throttled/);
    expect(sink.written).toEqual([1, 4]);
    expect(deadLetters.documents.size).toBe(1);
  });

  it('retries every record when the sink throws a transient error, dead-letters them on a permanent one', async () => {
    const bodies = [1, 2].map((id) => changeEvent({ after: order(id) }));
    const transient = processBatch(records(bodies), {
      sink: new FakeSink(new Map(), new TransientSinkError('ECONNREFUSED')),
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    await expect(transient).rejects.toThrow(/2 of 2 records must be retried.*ECONNREFUSED/);

    const deadLetters = new MemoryDeadLetterStore();
    const report = await processBatch(records(bodies), {
      sink: new FakeSink(new Map(), new PermanentRecordError('REJECTED_BY_SINK', 'schema mismatch')),
      deadLetters,
      batch,
    });
    expect(report.deadLettered).toBe(2);
    expect(deadLetters.documents.size).toBe(2);
  });

  it('treats an unknown error from the sink as retryable (never drops)', async () => {
    const run = processBatch(records([changeEvent()]), {
      sink: new FakeSink(new Map(), new Error('socket hang up')),
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    await expect(run).rejects.toBeInstanceOf(BatchProcessingError);
  });

  it('pure steps are retried forever: an unflagged error from prepare dead-letters the record, the rest of the batch is written', async () => {
    const sink = new FakeSink();
    const deadLetters = new MemoryDeadLetterStore();
    const bodies = [changeEvent({ after: order(1) }), changeEvent({ table: 'retail.bad_time' }), changeEvent({ after: order(2) })];

    const report = await processBatch(records(bodies), { sink, deadLetters, batch });

    expect(report).toMatchObject({ ok: 2, deadLettered: 1, retried: 0 });
    expect(sink.written).toEqual([1, 2]);
    expect([...deadLetters.documents.values()].map((d) => [d.offset, d.reason])).toEqual([['10', 'RangeError: Invalid time value']]);
  });

  it('retries a pure step only when its error says canRetry: true; an I/O step unless it says it cannot (or it is a configuration error)', async () => {
    const flagged = processBatch(records([changeEvent({ table: 'retail.flagged' })]), {
      sink: new FakeSink(),
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    await expect(flagged).rejects.toThrow(/1 of 1 records must be retried.*lookup table not loaded yet/);

    const config = processBatch(records([changeEvent()]), {
      sink: new FakeSink(new Map(), new ConfigError('ES_CONTROL_INDEX', 'an index name', 'Bad')),
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    await expect(config).rejects.toThrow(/must be retried.*ES_CONTROL_INDEX/);
  });

  it('retries a record whose dead-letter cannot be stored', async () => {
    const broken: DeadLetterStore = { put: () => Promise.reject(new Error('storage down')) };
    const run = processBatch(records(['garbage']), { sink: new FakeSink(), deadLetters: broken, batch });
    await expect(run).rejects.toThrow(/Dead-letter store failed for offset 0/);
  });

  it('writes nothing and reports zero for an empty batch', async () => {
    const report = await processBatch([], { sink: new FakeSink(), deadLetters: new MemoryDeadLetterStore(), batch });
    expect(report).toMatchObject({ total: 0, ok: 0 });
  });

  describe('pointer events (oversized events the reader put in a Blob)', () => {
    const full = changeEvent({ after: order(42, { city: 'x'.repeat(2000) }), lsn: 4242 });
    const pointer = (blob: string) => ({ ...full, before: null, after: null, deadletter: { container: 'reader-dlq', blob, bytes: 5000 } });
    const blobs = new Map([
      ['present.json', Buffer.from(JSON.stringify(full))],
      ['junk.json', Buffer.from('{"not":"an event"}')],
    ]);
    const resolver: PointerResolver = {
      fetch: ({ blob }) => {
        if (blob === 'flaky.json') return Promise.reject(new Error('ETIMEDOUT'));
        const bytes = blobs.get(blob);
        return bytes ? Promise.resolve(bytes) : Promise.reject(new PermanentRecordError('POINTER_BROKEN', `Pointer blob reader-dlq/${blob} does not exist`));
      },
    };

    it('replaces a pointer by the full event before the sink sees it', async () => {
      const sink = new FakeSink();
      const report = await processBatch(records([pointer('present.json')]), { sink, deadLetters: new MemoryDeadLetterStore(), batch, pointers: resolver });
      expect(report.ok).toBe(1);
      expect(sink.written).toEqual([42]);
    });

    it('dead-letters a pointer to a missing or junk Blob, retries when storage fails or is not configured', async () => {
      const deadLetters = new MemoryDeadLetterStore();
      const sink = new FakeSink();
      const run = processBatch(records([pointer('missing.json'), pointer('junk.json'), pointer('flaky.json'), changeEvent({ after: order(7) })]), {
        sink,
        deadLetters,
        batch,
        pointers: resolver,
      });
      await expect(run).rejects.toThrow(/1 of 4 records must be retried.*ETIMEDOUT/);
      expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
        expect.stringMatching(/does not exist/),
        expect.stringMatching(/does not hold a full change event/),
      ]);
      expect(sink.written).toEqual([7]);
      await expect(processBatch(records([pointer('present.json')]), { sink, deadLetters, batch })).rejects.toThrow(/no pointer store is configured/);
    });
  });
});
