/**
 * The adxSink handler with trigger-shaped batches, through the real AdxSink of src/shared/adx (the
 * batch core's Sink) with in-memory ingestor and control clients (ADX itself cannot run here).
 */
import { describe, expect, it } from '@jest/globals';
import { AdxSink } from '../../src/shared/adx/adxSink.js';
import type { ControlClient, IngestRequest, Ingestor } from '../../src/shared/adx/clients.js';
import { adxRoutes } from '../../src/shared/adx/config.js';
import { DEFAULT_ROUTES, Router } from '../../src/shared/routing/routes.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { BatchProcessingError } from '../../src/shared/core/errors.js';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { sinkTriggerOptions } from '../../src/functions/host/registerSinks.js';
import type { BatchReport } from '../../src/shared/batch/types.js';
import { sinkDefinition } from '../../src/shared/sinks/registry.js';
import { serviceEnv } from '../helpers/services.js';
import { changeEvent, holding, hostBody, order } from '../helpers/events.js';
import { triggerBatch } from './triggerBatch.js';

class FakeIngestor implements Ingestor {
  readonly mode = 'queued' as const;
  readonly requests: IngestRequest[] = [];
  constructor(private readonly failFor: Map<string, Error> = new Map()) {}
  ingest(request: IngestRequest): Promise<void> {
    const failure = this.failFor.get(request.table);
    if (failure) return Promise.reject(failure);
    this.requests.push(request);
    return Promise.resolve();
  }
  close(): void {}
}
const control: ControlClient = { execute: () => Promise.resolve([]), close: () => undefined };

function setup(failFor?: Map<string, Error>) {
  const ingestor = new FakeIngestor(failFor);
  const routes = adxRoutes(new Router(DEFAULT_ROUTES));
  const sink = new AdxSink({ config: { routes }, ingestor, control });
  const deadLetters = new MemoryDeadLetterStore();
  const handler = createEventHubBatchHandler(lazy(() => ({ sink, deadLetters })));
  return { ingestor, deadLetters, handler };
}

const mixedBatch = () => [
  hostBody(changeEvent({ after: order(1), lsn: 10 }), 'object'),
  hostBody(changeEvent({ after: order(2), lsn: 20 }), 'buffer'),
  'not json at all',
  hostBody(changeEvent({ table: 'bank.holding', after: holding(1000, 'VFIAX', 10), lsn: 30 }), 'string'),
  hostBody(changeEvent({ table: 'public.unrouted', after: { id: 1 }, key: { id: 1 } })),
  hostBody(changeEvent({ op: 'd', before: order(1), lsn: 40 }), 'schemaPayload'),
];

function text(buffer: Buffer): Record<string, unknown>[] {
  return buffer
    .toString()
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('adxSink handler', () => {
  it('ingests once per ADX table per invocation, tagged with partition and offsets, and dead-letters the rest', async () => {
    const { ingestor, deadLetters, handler } = setup();
    const { messages, context } = triggerBatch(mixedBatch(), { functionName: 'adxSink', partitionId: '2', firstOffset: 100 });

    const report = await handler(messages, context);

    expect(report).toMatchObject({ total: 6, ok: 4, deadLettered: 2, retried: 0 });
    expect(ingestor.requests.map((r) => [r.table, r.rows, r.tag])).toEqual([
      ['Orders', 3, expect.stringMatching(/^cdc:retail\.orders_info:p2:100-2660:[0-9a-f]{16}$/)],
      ['OrdersHistory', 12, ingestor.requests[0]!.tag],
      ['Holding', 1, expect.stringMatching(/^cdc:bank\.holding:p2:100-2660:[0-9a-f]{16}$/)],
      ['HoldingHistory', 2, ingestor.requests[2]!.tag],
    ]);
    const orders = text(ingestor.requests[0]!.data);
    expect(orders.map((r) => [r.orderid, r.__op, r.__lsn, r.__deleted])).toEqual([
      [1, 'c', 10, false],
      [2, 'c', 20, false],
      [1, 'd', 40, true],
    ]);
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
      expect.stringMatching(/not JSON/),
      expect.stringMatching(/No ADX route for table public.unrouted/),
    ]);
  });

  it('fails the invocation on a transient ADX failure, after dead-letters are stored; the retry uses the same tag', async () => {
    const throttled = Object.assign(new Error('Too many requests'), { response: { status: 429 } });
    const failing = setup(new Map([['Orders', throttled]]));
    const { messages, context } = triggerBatch(mixedBatch(), { functionName: 'adxSink', partitionId: '2', firstOffset: 100 });

    const error = await failing.handler(messages, context).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BatchProcessingError);
    expect((error as Error).message).toMatch(/3 of 6 records must be retried.*429/);
    expect(failing.deadLetters.documents.size).toBe(2);
    // The other table was written; on the retry ADX skips it by its tag (ingestIfNotExists).
    const holdingTag = failing.ingestor.requests[0]!.tag;
    expect(holdingTag).toMatch(/^cdc:bank\.holding:p2:100-2660:[0-9a-f]{16}$/);
    expect(failing.ingestor.requests.map((r) => r.tag)).toEqual([holdingTag, holdingTag]);
    const healthy = setup();
    await healthy.handler(messages, context);
    const tags = [...new Set(healthy.ingestor.requests.map((r) => r.tag))];
    expect(tags).toHaveLength(2);
    expect(tags).toContain(holdingTag);
    expect(tags.find((t) => t !== holdingTag)).toMatch(/^cdc:retail\.orders_info:p2:100-2660:[0-9a-f]{16}$/);
  });

  it('dead-letters the records of a table ADX rejects permanently and writes the other tables', async () => {
    const rejected = Object.assign(new Error('Mapping OrdersEventMapping does not exist'), { response: { status: 400 } });
    const { ingestor, deadLetters, handler } = setup(new Map([['Orders', rejected]]));
    const { messages, context } = triggerBatch(mixedBatch(), { functionName: 'adxSink' });

    const report = await handler(messages, context);

    expect(report).toMatchObject({ ok: 1, deadLettered: 5, retried: 0 });
    expect(ingestor.requests.map((r) => r.table)).toEqual(['Holding', 'HoldingHistory']);
    expect(report.outcomes.filter((o) => o.status === 'deadLetter')).toHaveLength(5);
    expect([...deadLetters.documents.values()].filter((d) => d.reason.includes('rejected'))).toHaveLength(3);
  });

  it('delivers a truncate through the handler: a row in CdcTruncates with the batch tag, a history row, no table row', async () => {
    const { ingestor, deadLetters, handler } = setup();
    const batch = [
      hostBody(changeEvent({ after: order(7), lsn: 500 })),
      hostBody(changeEvent({ op: 't', lsn: 600 })),
      hostBody(changeEvent({ after: order(8), lsn: 700 })),
    ];
    const { messages, context } = triggerBatch(batch, { functionName: 'adxSink', partitionId: '1', firstOffset: 10 });

    const report = await handler(messages, context);

    expect(report).toMatchObject({ total: 3, ok: 3, deadLettered: 0, retried: 0 });
    expect(deadLetters.documents.size).toBe(0);
    const tag = ingestor.requests[0]!.tag;
    expect(ingestor.requests.map((r) => [r.table, r.mapping, r.rows, r.tag])).toEqual([
      ['Orders', 'OrdersEventMapping', 2, tag],
      ['OrdersHistory', 'OrdersHistoryMapping', 9, tag],
      ['CdcTruncates', 'CdcTruncatesMarksMapping', 1, tag],
    ]);
    expect(text(ingestor.requests[2]!.data)).toEqual([
      {
        SourceTable: 'retail.orders_info',
        Table: 'Orders',
        Lsn: 600,
        CommitTime: '2020-10-07T07:56:32.691Z',
        TxId: 653,
        Kind: 'truncate',
        Snapshot: null,
        Partition: null,
        Partitions: null,
      },
    ]);
    expect(text(ingestor.requests[1]!.data).filter((r) => r.Op === 't')).toEqual([expect.objectContaining({ Column: null, Key: null, Lsn: 600 })]);
  });

  it("is built from the settings by the first invocation, whose log gets the ADX configuration and ADX_TABLE_ROUTES's deprecation", async () => {
    const env = {
      ADX_CLUSTER_URL: 'http://127.0.0.1:9',
      ADX_DATABASE: 'cdc',
      ADX_AUTH: 'none',
      ADX_INGESTION_MODE: 'inline',
      ADX_TABLE_ROUTES: JSON.stringify([{ source: 'retail.orders_info', table: 'Orders', keys: ['orderid'], columns: { orderid: 'long' } }]),
      AZURE_STORAGE_CONNECTION_STRING: serviceEnv().azureStorageConnectionString,
    };
    const { handler } = sinkTriggerOptions(sinkDefinition('adxSink'), env);
    const logs: string[] = [];
    const logHandler = (level: string, ...args: unknown[]) => void logs.push(`${level}: ${args.map(String).join(' ')}`);
    // A tombstone: nothing to write, so nothing goes to the (absent) cluster.
    const first = triggerBatch([null], { functionName: 'adxSink', logHandler });
    expect((await handler(first.messages, first.context)) as BatchReport).toMatchObject({ total: 1, skipped: 1 });
    expect(logs.filter((l) => !l.startsWith('information: adxSink: partition'))).toEqual([
      expect.stringMatching(
        /^warning: ADX_TABLE_ROUTES is deprecated: move each route into CDC_ROUTES as the table's "adx" section .*"replacement":"CDC_ROUTES"/,
      ),
      expect.stringMatching(/^information: ADX sink .*"tables":\["retail.orders_info -> Orders"\]/),
    ]);
    // Built once: the next invocation logs neither line again.
    logs.length = 0;
    const second = triggerBatch([null], { functionName: 'adxSink', firstOffset: 9000, logHandler });
    await handler(second.messages, second.context);
    expect(logs.filter((l) => !l.startsWith('information: adxSink: partition'))).toEqual([]);
  });
});
