/**
 * The ADX sink end to end over the wire, through the batch core (`processBatch` → `prepare` +
 * `write`): the real azure-kusto-ingest / azure-kusto-data clients talk to a local stand-in for the
 * Kusto endpoints (engine + data management), upload to a real Azurite blob container and enqueue on
 * a real Azurite queue. The test then reads the queue message and the blob exactly as ADX's
 * data-management service would receive them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { gunzipSync } from 'node:zlib';
import { createAdxSinkFromEnv, type AdxSink } from '../../../src/shared/adx/adxSink.js';
import { connectionFactory, KustoControlClient } from '../../../src/shared/adx/clients.js';
import { currentFunctionCommand, setupCommands } from '../../../src/shared/adx/commands.js';
import { adxRoutes, loadAdxConfig, loadAdxSchemaConfig } from '../../../src/shared/adx/config.js';
import { AdxSinkError } from '../../../src/shared/adx/errors.js';
import { deterministicSourceId, ingestionTag } from '../../../src/shared/adx/idempotency.js';
import { parseSchemaRows, tableColumns, versionedMappingName } from '../../../src/shared/adx/schema.js';
import { runAdxSetup } from '../../../src/shared/adx/setup.js';
import type { KqlType } from '../../../src/shared/adx/types.js';
import type { PointerResolver } from '../../../src/shared/batch/pointers.js';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchReport } from '../../../src/shared/batch/types.js';
import { BatchProcessingError, PermanentRecordError } from '../../../src/shared/core/errors.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import { DEFAULT_ROUTES, Router } from '../../../src/shared/routing/routes.js';
import { changeEvent, holding, order } from '../../helpers/events.js';
import { createIngestionStorage, type IngestionStorage } from './helpers/azurite.js';
import { databaseFor, validateKql } from './helpers/kqlValidator.js';
import { kustoError, startKustoStandIn, v1Table, type KustoStandIn, type StandInOptions } from './helpers/kustoStandIn.js';

interface QueueMessage {
  Id: string;
  BlobPath: string;
  RawDataSize: number;
  DatabaseName: string;
  TableName: string;
  RetainBlobOnSuccess: boolean;
  FlushImmediately: boolean;
  IgnoreSizeLimit: boolean;
  ReportLevel: number;
  ReportMethod: number;
  SourceMessageCreationTime: string;
  IngestionStatusInTable: null;
  ApplicationForTracing: string;
  ClientVersionForTracing: string;
  AdditionalProperties: Record<string, unknown>;
}

const ordersEvents = [
  changeEvent({ op: 'c', after: order(51), lsn: 34220200 }),
  changeEvent({ op: 'u', before: order(51), after: order(51, { amount: 200 }), lsn: 34220300 }),
  changeEvent({ op: 'd', before: { orderid: 51 }, lsn: 34220400 }),
];

const expectedOrdersLines =
  [
    '{"orderid":51,"custid":306,"amount":183,"city":"Austin","purchase_time":"2020-10-09 07:23:10","__op":"c","__lsn":34220200,"__commit_lsn":34220208,"__commit_time":"2020-10-07T07:56:32.691Z","__deleted":false,"__table":"retail.orders_info","__txid":653,"__snapshot":"false","__unchanged_toast":null,"__old_key":null,"__key":"{\\"orderid\\":51}","__from_key":null}',
    '{"orderid":51,"custid":306,"amount":200,"city":"Austin","purchase_time":"2020-10-09 07:23:10","__op":"u","__lsn":34220300,"__commit_lsn":34220308,"__commit_time":"2020-10-07T07:56:32.691Z","__deleted":false,"__table":"retail.orders_info","__txid":653,"__snapshot":"false","__unchanged_toast":null,"__old_key":null,"__key":"{\\"orderid\\":51}","__from_key":null}',
    '{"orderid":51,"__op":"d","__lsn":34220400,"__commit_lsn":34220408,"__commit_time":"2020-10-07T07:56:32.691Z","__deleted":true,"__table":"retail.orders_info","__txid":653,"__snapshot":"false","__unchanged_toast":null,"__old_key":null,"__key":"{\\"orderid\\":51}","__from_key":null}',
  ].join('\n') + '\n';

interface Delivery {
  first?: string;
  last?: string;
  partition?: string;
  deadLetters?: MemoryDeadLetterStore;
  pointers?: PointerResolver;
}

/** One invocation: the bodies (change events) through the batch core into the sink, as the host delivers them. */
function deliver(sink: AdxSink, bodies: unknown[], options: Delivery = {}): Promise<BatchReport> {
  const { first = '4096', last = '8192', partition = '3' } = options;
  const records = bodies.map((body, i) => ({ body, partitionId: partition, offset: String(Number(first) + i), sequenceNumber: String(i) }));
  return processBatch(records, {
    sink,
    deadLetters: options.deadLetters ?? new MemoryDeadLetterStore(),
    batch: { functionName: 'adxSink', partitionId: partition, firstOffset: first, lastOffset: last },
    ...(options.pointers ? { pointers: options.pointers } : {}),
  });
}

async function decodedMessages(storage: IngestionStorage): Promise<QueueMessage[]> {
  return (await storage.peekMessages()).map((m) => JSON.parse(Buffer.from(m, 'base64').toString('utf8')) as QueueMessage);
}

function blobName(message: QueueMessage): string {
  const path = new URL(message.BlobPath).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1));
}

/** Per queue message: the table, the rows in its blob and its tag, as the DM service would see them. */
async function ingested(storage: IngestionStorage, messages: readonly QueueMessage[]): Promise<[string, number, string][]> {
  return Promise.all(
    messages.map(async (m): Promise<[string, number, string]> => {
      const lines = gunzipSync(await storage.downloadBlob(blobName(m)))
        .toString('utf8')
        .trimEnd()
        .split('\n');
      return [m.TableName, lines.length, (JSON.parse(m.AdditionalProperties.ingestIfNotExists as string) as string[])[0]!];
    }),
  );
}

describe('AdxSink, queued ingestion (default)', () => {
  let storage: IngestionStorage;
  let engine: KustoStandIn;
  let dm: KustoStandIn;
  let sink: AdxSink;

  beforeAll(async () => {
    storage = await createIngestionStorage();
    engine = await startKustoStandIn();
    dm = await startKustoStandIn({
      resources: {
        queue: storage.queueUri,
        container: storage.containerUri,
        failedQueue: storage.failedQueueUri,
        successQueue: storage.successQueueUri,
        statusTable: storage.statusTableUri,
      },
      authorizationContext: 'stand-in-identity-token',
    });
    sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_INGEST_URL: dm.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none' });
  });

  afterAll(async () => {
    sink?.close();
    await Promise.all([engine?.close(), dm?.close()]);
  });

  it('uploads one gzip JSON-lines blob per table and enqueues the message the DM service expects', async () => {
    const report = await deliver(sink, [...ordersEvents, changeEvent({ table: 'bank.holding', op: 'c', after: holding(1000, 'VFIAX', 10), lsn: 34220500 })]);
    expect(report).toMatchObject({ total: 4, ok: 4, deadLettered: 0, retried: 0 });
    expect(await ingested(storage, await decodedMessages(storage))).toEqual([
      ['Orders', 3, expect.stringMatching(/^cdc:retail\.orders_info:p3:4096-8192:[0-9a-f]{16}$/)],
      ['OrdersHistory', 9, expect.stringMatching(/^cdc:retail\.orders_info:p3:4096-8192:[0-9a-f]{16}$/)],
      ['Holding', 1, expect.stringMatching(/^cdc:bank\.holding:p3:4096-8192:[0-9a-f]{16}$/)],
      ['HoldingHistory', 2, expect.stringMatching(/^cdc:bank\.holding:p3:4096-8192:[0-9a-f]{16}$/)],
    ]);

    // Data management: resources and the identity token, against NetDefaultDB; the engine saw nothing.
    expect(dm.commands.map((c) => [c.db, c.csl.trim()])).toEqual([
      ['NetDefaultDB', '.get ingestion resources'],
      ['NetDefaultDB', '.get kusto identity token'],
    ]);
    expect(engine.commands).toEqual([]);

    const messages = await decodedMessages(storage);
    expect(messages.map((m) => m.TableName)).toEqual(['Orders', 'OrdersHistory', 'Holding', 'HoldingHistory']);
    const orders = messages[0]!;
    // The readable part names the table, partition and offsets; the digest the exact records (idempotency.ts).
    const tag = (JSON.parse(orders.AdditionalProperties.ingestIfNotExists as string) as string[])[0]!;
    expect(tag).toMatch(/^cdc:retail\.orders_info:p3:4096-8192:[0-9a-f]{16}$/);
    expect(orders).toEqual({
      BlobPath: expect.stringMatching(
        new RegExp(`^${storage.containerUri.split('?')[0]}/cdcdb__Orders__${deterministicSourceId('Orders', tag)}\\.json\\.gz\\?`),
      ),
      RawDataSize: Buffer.byteLength(expectedOrdersLines),
      DatabaseName: 'cdcdb',
      TableName: 'Orders',
      RetainBlobOnSuccess: true,
      FlushImmediately: false,
      IgnoreSizeLimit: false,
      ReportLevel: 0,
      ReportMethod: 0,
      SourceMessageCreationTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      Id: deterministicSourceId('Orders', tag),
      IngestionStatusInTable: null,
      ApplicationForTracing: 'pg-cdc-functions',
      ClientVersionForTracing: expect.stringMatching(/^Kusto\.JavaScript\.Client:/),
      AdditionalProperties: {
        authorizationContext: 'stand-in-identity-token',
        tags: JSON.stringify([`ingest-by:${tag}`]),
        ingestIfNotExists: JSON.stringify([tag]),
        ingestionMappingReference: 'OrdersEventMapping',
        ingestionMappingType: 'Json',
        format: 'json',
      },
    });
    // The blob the DM would read: the exact JSON lines, gzip-compressed.
    expect(gunzipSync(await storage.downloadBlob(blobName(orders))).toString('utf8')).toBe(expectedOrdersLines);

    const history = messages[1]!;
    expect(history.AdditionalProperties).toMatchObject({ ingestionMappingReference: 'OrdersHistoryMapping', ingestIfNotExists: JSON.stringify([tag]) });
    const historyLines = gunzipSync(await storage.downloadBlob(blobName(history)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(historyLines.map((r) => [r.Op, r.Column, r.OldValue, r.NewValue, r.OldValueKnown, r.Lsn])).toEqual([
      ['c', 'custid', null, 306, true, 34220200],
      ['c', 'city', null, 'Austin', true, 34220200],
      ['c', 'amount', null, 183, true, 34220200],
      ['c', 'purchase_time', null, '2020-10-09 07:23:10', true, 34220200],
      ['u', 'amount', 183, 200, true, 34220300],
      // REPLICA IDENTITY DEFAULT: the delete carries the key only, so the old values are unknown.
      ['d', 'custid', null, null, false, 34220400],
      ['d', 'city', null, null, false, 34220400],
      ['d', 'amount', null, null, false, 34220400],
      ['d', 'purchase_time', null, null, false, 34220400],
    ]);
    expect(historyLines.every((r) => JSON.stringify(r.Key) === '{"orderid":51}' && r.SourceTable === 'retail.orders_info')).toBe(true);

    const holdingHistory = messages[3]!;
    expect(gunzipSync(await storage.downloadBlob(blobName(holdingHistory))).toString('utf8')).toBe(
      '{"SourceTable":"bank.holding","Key":{"holding_id":1000},"Op":"c","CommitTime":"2020-10-07T07:56:32.691Z","Lsn":34220500,"TxId":653,"Context":{"user_id":1},"Column":"holding_stock","OldValue":null,"NewValue":"VFIAX","OldValueKnown":true}\n' +
        '{"SourceTable":"bank.holding","Key":{"holding_id":1000},"Op":"c","CommitTime":"2020-10-07T07:56:32.691Z","Lsn":34220500,"TxId":653,"Context":{"user_id":1},"Column":"holding_quantity","OldValue":null,"NewValue":10,"OldValueKnown":true}\n',
    );
  });

  it('redelivers the same batch with the same tag, ingestIfNotExists and blob name (ADX drops the second ingestion)', async () => {
    const before = (await decodedMessages(storage)).length;
    await deliver(sink, ordersEvents, { first: '4096', last: '8192' });
    const messages = (await decodedMessages(storage)).slice(before);
    expect(messages.map((m) => m.TableName)).toEqual(['Orders', 'OrdersHistory']);
    const [again] = messages;
    const first = (await decodedMessages(storage))[0]!;
    expect(again!.AdditionalProperties.ingestIfNotExists).toBe(first.AdditionalProperties.ingestIfNotExists);
    expect(again!.AdditionalProperties.tags).toBe(first.AdditionalProperties.tags);
    expect(again!.Id).toBe(first.Id);
    expect(blobName(again!)).toBe(blobName(first));

    // Different boundaries (e.g. after a restart the host reads a longer first batch): a new tag, so
    // the overlap is ingested again; the latest-state view dedups it (same key, same __lsn).
    await deliver(sink, ordersEvents, { first: '4096', last: '9000' });
    const last = (await decodedMessages(storage)).filter((m) => m.TableName === 'Orders').at(-1)!;
    expect(last.AdditionalProperties.ingestIfNotExists).toMatch(/^\["cdc:retail\.orders_info:p3:4096-9000:[0-9a-f]{16}"\]$/);
  });

  it('adds a new source column on the engine (.alter-merge + mapping) before ingesting the batch that carries it', async () => {
    const withCoupon = changeEvent({ op: 'c', after: { ...order(52), coupon: 'SPRING' }, lsn: 34221000 });
    const before = (await decodedMessages(storage)).length;
    expect(await deliver(sink, [withCoupon], { first: '9001', last: '9001' })).toMatchObject({ ok: 1 });
    // The stand-in answers `.show table ... schema` with nothing: the sink maps the columns it knows.
    const couponMapping = versionedMappingName(
      'OrdersEventMapping',
      tableColumns(adxRoutes(new Router(DEFAULT_ROUTES))[0]!, [{ name: 'coupon', type: 'string' }]),
    );
    expect(engine.commands.map((c) => [c.db, c.csl.split(" '[")[0]])).toEqual([
      ['cdcdb', ".alter-merge table ['Orders'] (['coupon']:string)"],
      ['cdcdb', ".show table ['Orders'] schema as json"],
      ['cdcdb', `.create-or-alter table ['Orders'] ingestion json mapping '${couponMapping}'`],
    ]);
    expect(couponMapping).toMatch(/^OrdersEventMapping_[0-9a-f]{12}$/);
    expect(engine.commands[2]!.csl).toContain(`{"column":"coupon","datatype":"string","Properties":{"Path":"$.coupon"}}`);
    const [message] = (await decodedMessages(storage)).slice(before);
    // The batch is ingested with the mapping of the columns this process read after its alter.
    expect(message!.AdditionalProperties.ingestionMappingReference).toBe(couponMapping);
    expect(gunzipSync(await storage.downloadBlob(blobName(message!))).toString('utf8')).toContain('"coupon":"SPRING"');

    // Known from now on: no second alter, same mapping.
    await deliver(sink, [changeEvent({ op: 'c', after: { ...order(53), coupon: 'X' }, lsn: 34221100 })], { first: '9002', last: '9002' });
    expect(engine.commands).toHaveLength(3);
    expect((await decodedMessages(storage)).at(-2)!.AdditionalProperties.ingestionMappingReference).toBe(couponMapping);
  });
  it('records a truncate in the truncates table with the same tag, and as one history row; the table itself gets no row', async () => {
    const before = (await decodedMessages(storage)).length;
    const events = [
      changeEvent({ op: 'c', after: order(54), lsn: 34222000 }),
      changeEvent({ op: 't', lsn: 34222100 }),
      changeEvent({ op: 'c', after: order(55), lsn: 34222200 }),
    ];
    expect(await deliver(sink, events, { first: '9100', last: '9102' })).toMatchObject({ total: 3, ok: 3 });
    const messages = (await decodedMessages(storage)).slice(before);
    const tag = (JSON.parse(messages[0]!.AdditionalProperties.ingestIfNotExists as string) as string[])[0]!;
    expect(tag).toMatch(/^cdc:retail\.orders_info:p3:9100-9102:[0-9a-f]{16}$/);
    expect(await ingested(storage, messages)).toEqual([
      ['Orders', 2, tag],
      ['OrdersHistory', 9, tag],
      ['CdcTruncates', 1, tag],
    ]);
    expect(messages.map((m) => m.TableName)).toEqual(['Orders', 'OrdersHistory', 'CdcTruncates']);
    const truncateLine =
      '{"SourceTable":"retail.orders_info","Table":"Orders","Lsn":34222100,"CommitTime":"2020-10-07T07:56:32.691Z","TxId":653,"Kind":"truncate","Snapshot":null,"Partition":null,"Partitions":null}\n';
    const truncates = messages[2]!;
    expect(truncates).toMatchObject({
      BlobPath: expect.stringMatching(
        new RegExp(`^${storage.containerUri.split('?')[0]}/cdcdb__CdcTruncates__${deterministicSourceId('CdcTruncates', tag)}\\.json\\.gz\\?`),
      ),
      Id: deterministicSourceId('CdcTruncates', tag),
      RawDataSize: Buffer.byteLength(truncateLine),
      DatabaseName: 'cdcdb',
      TableName: 'CdcTruncates',
      AdditionalProperties: {
        authorizationContext: 'stand-in-identity-token',
        tags: JSON.stringify([`ingest-by:${tag}`]),
        ingestIfNotExists: JSON.stringify([tag]),
        ingestionMappingReference: 'CdcTruncatesMarksMapping',
        ingestionMappingType: 'Json',
        format: 'json',
      },
    });
    expect(gunzipSync(await storage.downloadBlob(blobName(truncates))).toString('utf8')).toBe(truncateLine);

    const orderLines = gunzipSync(await storage.downloadBlob(blobName(messages[0]!)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(orderLines.map((r) => [r.orderid, r.__op, r.__lsn])).toEqual([
      [54, 'c', 34222000],
      [55, 'c', 34222200],
    ]);
    const historyLines = gunzipSync(await storage.downloadBlob(blobName(messages[1]!)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(historyLines.filter((r) => r.Op === 't')).toEqual([
      {
        SourceTable: 'retail.orders_info',
        Key: null,
        Op: 't',
        CommitTime: '2020-10-07T07:56:32.691Z',
        Lsn: 34222100,
        TxId: 653,
        Context: null,
        Column: null,
        OldValue: null,
        NewValue: null,
        OldValueKnown: false,
      },
    ]);

    // Redelivered with the same boundaries: the same tag, ingestIfNotExists and blob for the truncate row too.
    await deliver(sink, events, { first: '9100', last: '9102' });
    const again = (await decodedMessages(storage)).slice(before + 3);
    expect(again.map((m) => m.TableName)).toEqual(['Orders', 'OrdersHistory', 'CdcTruncates']);
    expect(again[2]!.AdditionalProperties.ingestIfNotExists).toBe(JSON.stringify([tag]));
    expect(again[2]!.Id).toBe(truncates.Id);
    expect(blobName(again[2]!)).toBe(blobName(truncates));
  });

  it('records a schema change (the reader control event) as one history row, from the copy on partition 0 only', async () => {
    const before = (await decodedMessages(storage)).length;
    const previous = { columns: [{ name: 'orderid', type: 'integer' }], key: ['orderid'] };
    const change = {
      ...changeEvent({ op: 'm', after: null, key: null, lsn: 34223000 }),
      message: {
        prefix: 'pg-cdc',
        kind: 'schema_change',
        content: {
          table: 'retail.orders_info',
          columns: [...previous.columns, { name: 'note', type: 'text' }],
          key: ['orderid'],
          previous,
          added: ['note'],
          dropped: [],
          retyped: [],
          partitions: 4,
        },
      },
    };
    // Every copy makes the sink read the table's columns again; only partition 0's writes the row.
    expect(await deliver(sink, [change], { partition: '3', first: '9300', last: '9300' })).toMatchObject({ total: 1, ok: 1 });
    expect((await decodedMessages(storage)).length).toBe(before);
    expect(await deliver(sink, [change], { partition: '0', first: '9300', last: '9300' })).toMatchObject({ total: 1, ok: 1 });
    const messages = (await decodedMessages(storage)).slice(before);
    expect(messages.map((m) => m.TableName)).toEqual(['OrdersHistory']);
    const lines = gunzipSync(await storage.downloadBlob(blobName(messages[0]!)))
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      {
        SourceTable: 'retail.orders_info',
        Key: null,
        Op: 's',
        CommitTime: '2020-10-07T07:56:32.691Z',
        Lsn: 34223000,
        TxId: 653,
        Context: null,
        Column: null,
        OldValue: previous,
        NewValue: { columns: change.message.content.columns, key: ['orderid'], added: ['note'], dropped: [], retyped: [] },
        OldValueKnown: true,
      },
    ]);
  });

  it('a batch of only a truncate writes the truncates table and the history, nothing into the table', async () => {
    const before = (await decodedMessages(storage)).length;
    await deliver(sink, [changeEvent({ table: 'bank.holding', op: 't', lsn: 34223000 })], { first: '9200', last: '9200' });
    const messages = (await decodedMessages(storage)).slice(before);
    expect((await ingested(storage, messages)).map(([table, rows]) => [table, rows])).toEqual([
      ['HoldingHistory', 1],
      ['CdcTruncates', 1],
    ]);
    const [, message] = messages;
    expect(gunzipSync(await storage.downloadBlob(blobName(message!))).toString('utf8')).toBe(
      '{"SourceTable":"bank.holding","Table":"Holding","Lsn":34223000,"CommitTime":"2020-10-07T07:56:32.691Z","TxId":653,"Kind":"truncate","Snapshot":null,"Partition":null,"Partitions":null}\n',
    );
  });
});

describe('AdxSink, failures', () => {
  const servers: KustoStandIn[] = [];
  const sinks: AdxSink[] = [];
  afterEach(async () => {
    for (const s of sinks.splice(0)) s.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  async function inlineSink(options: StandInOptions): Promise<AdxSink> {
    const engine = await startKustoStandIn(options);
    servers.push(engine);
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    sinks.push(sink);
    return sink;
  }

  /** The error a record's outcome carries (a dead-letter's or a retry's). */
  const outcomeError = (report: BatchReport, index = 0): unknown => {
    const outcome = report.outcomes[index];
    return outcome !== undefined && 'error' in outcome ? outcome.error : undefined;
  };
  const ingestedTables = (engine: KustoStandIn): (string | undefined)[] =>
    engine.commands.filter((c) => c.csl.startsWith('.ingest inline')).map((c) => /into table \['(\w+)'\]/.exec(c.csl)?.[1]);

  it("a schema rejection is permanent: the table's records are dead-lettered with an error naming the table", async () => {
    const sink = await inlineSink({
      onCommand: (c) =>
        c.csl.startsWith('.ingest')
          ? { status: 400, body: kustoError('BadRequest', "Mapping 'OrdersEventMapping' does not match the table schema", true) }
          : undefined,
    });
    const deadLetters = new MemoryDeadLetterStore();
    const report = await deliver(sink, [ordersEvents[0]], { deadLetters });
    expect(report).toMatchObject({ total: 1, deadLettered: 1, retried: 0 });
    const error = outcomeError(report);
    expect(error).toBeInstanceOf(AdxSinkError);
    expect(error).toMatchObject({ canRetry: false, code: 'REJECTED_BY_SINK', table: 'Orders', sourceTable: 'retail.orders_info', status: 400 });
    expect((error as Error).message).toContain("Mapping 'OrdersEventMapping' does not match the table schema");
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
      expect.stringContaining("Mapping 'OrdersEventMapping' does not match the table schema"),
    ]);
  });

  it('throttling and server errors are transient: the invocation fails, so the host retries the batch', async () => {
    const sink = await inlineSink({ onCommand: () => ({ status: 503, body: kustoError('ServiceUnavailable', 'busy', false) }) });
    const error = await deliver(sink, [ordersEvents[0]]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchProcessingError);
    expect((error as BatchProcessingError).errors).toEqual([expect.objectContaining({ canRetry: true, code: 'SINK_UNAVAILABLE', table: 'Orders' })]);
  });

  it('an unreachable cluster is transient', async () => {
    const engine = await startKustoStandIn();
    await engine.close();
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    sinks.push(sink);
    const error = await deliver(sink, [ordersEvents[0]]).catch((e: unknown) => e);
    expect((error as BatchProcessingError).errors).toEqual([expect.objectContaining({ canRetry: true, table: 'Orders' })]);
  });

  it('a table without an ADX route is dead-lettered by prepare; the other tables of the batch are still written', async () => {
    const sink = await inlineSink({});
    const deadLetters = new MemoryDeadLetterStore();
    const unrouted = changeEvent({ table: 'public.unrouted', after: { id: 1 }, key: { id: 1 } });
    expect(() => sink.prepare(unrouted)).toThrow(expect.objectContaining({ code: 'UNKNOWN_TABLE', canRetry: false }));
    const report = await deliver(sink, [unrouted, ordersEvents[0]], { deadLetters });
    expect(report).toMatchObject({ ok: 1, deadLettered: 1, retried: 0 });
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
      expect.stringContaining('No ADX route for table public.unrouted (it has no adx section in CDC_ROUTES)'),
    ]);
    expect(ingestedTables(servers[0]!)).toEqual(['Orders', 'OrdersHistory']);
  });

  it("each failing table takes its own records down its error's path: rejected → dead-letter, unavailable → retry", async () => {
    const sink = await inlineSink({
      onCommand: (c) =>
        c.csl.startsWith(".ingest inline into table ['OrdersHistory']")
          ? { status: 400, body: kustoError('BadRequest', 'history mapping rejected', true) }
          : c.csl.startsWith(".ingest inline into table ['Holding']")
            ? { status: 503, body: kustoError('ServiceUnavailable', 'busy', false) }
            : undefined,
    });
    const deadLetters = new MemoryDeadLetterStore();
    const events = [ordersEvents[0], changeEvent({ table: 'bank.holding', after: holding(1000, 'VFIAX', 10), lsn: 34220600 }), ordersEvents[1]];
    const error = await deliver(sink, events, { deadLetters }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchProcessingError);
    expect((error as Error).message).toMatch(/^1 of 3 records must be retried .*busy/);
    // Both order records go with their table's history failure (Orders itself was written; its tag skips it on a replay).
    expect([...deadLetters.documents.values()].map((d) => [d.offset, d.reason])).toEqual([
      ['4096', expect.stringContaining('(table OrdersHistory) failed (rejected)')],
      ['4098', expect.stringContaining('(table OrdersHistory) failed (rejected)')],
    ]);
    expect(ingestedTables(servers[0]!)).toEqual(['Orders', 'OrdersHistory', 'Holding']);
  });

  it('a record that cannot be shaped into rows (commit time not a date, no usable LSN) is dead-lettered alone; its table gets the rest', async () => {
    const sink = await inlineSink({});
    const deadLetters = new MemoryDeadLetterStore();
    const badTime = changeEvent({ op: 'c', after: order(61), lsn: 71, tsMs: 1e20 });
    const noLsn = changeEvent({ op: 'c', after: order(62), lsn: null });
    expect(() => sink.prepare(badTime)).toThrow(PermanentRecordError);
    const report = await deliver(sink, [ordersEvents[0], badTime, noLsn, changeEvent({ op: 'c', after: order(63), lsn: 73 })], { deadLetters });
    expect(report).toMatchObject({ total: 4, ok: 2, deadLettered: 2, retried: 0 });
    expect([...deadLetters.documents.values()].map((d) => [d.offset, d.reason])).toEqual([
      ['4097', expect.stringMatching(/ts_ms/)],
      ['4098', expect.stringMatching(/lsn/)],
    ]);
    const ingest = servers[0]!.commands.find((c) => c.csl.startsWith(".ingest inline into table ['Orders']"))!.csl;
    expect(
      ingest
        .split('\n')
        .slice(1)
        .map((line) => (JSON.parse(line) as { orderid: number }).orderid),
    ).toEqual([51, 63]);
  });
});

describe('AdxSink, new columns after a restart', () => {
  it('maps every column the table has (as ADX reports it), not only the ones this process has seen', async () => {
    // Another process (or an earlier run) already added `legacy`; this process only sees `fresh`.
    const schema = {
      Name: 'Orders',
      OrderedColumns: [
        ...['orderid', 'custid', 'city'].map((n) => ({ Name: n, CslType: 'string' })),
        { Name: 'amount', CslType: 'int' },
        { Name: 'purchase_time', CslType: 'datetime' },
        { Name: '__op', CslType: 'string' },
        { Name: '__lsn', CslType: 'long' },
        { Name: 'legacy', CslType: 'string' },
        { Name: 'fresh', CslType: 'long' },
      ],
    };
    const engine = await startKustoStandIn({
      onCommand: (c) =>
        c.csl.startsWith('.show table')
          ? {
              status: 200,
              body: v1Table(
                [
                  ['TableName', 'string'],
                  ['Schema', 'string'],
                ],
                [['Orders', JSON.stringify(schema)]],
              ),
            }
          : undefined,
    });
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    try {
      await deliver(sink, [changeEvent({ op: 'c', after: { ...order(70), fresh: 7 }, lsn: 80 })]);
      const mapping = engine.commands.find((c) => c.csl.includes('ingestion json mapping'))!.csl;
      const columns = (JSON.parse(mapping.slice(mapping.indexOf("'[") + 1, -1)) as { column: string }[]).map((m) => m.column);
      expect(columns).toEqual(['orderid', 'custid', 'city', 'amount', 'purchase_time', '__op', '__lsn', 'legacy', 'fresh']);
      // `legacy` is known now: a later batch carrying it needs no alter.
      const before = engine.commands.length;
      await deliver(sink, [changeEvent({ op: 'c', after: { ...order(71), legacy: 'x' }, lsn: 81 })], { first: '9', last: '9' });
      expect(engine.commands.slice(before).map((c) => c.csl.slice(0, 14))).toEqual(['.ingest inline', '.ingest inline']);
    } finally {
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, a column whose PostgreSQL type changed', () => {
  it('after the schema change, a value its ADX column cannot hold goes to __raw_<column>, not to a silent null', async () => {
    // `note` was added at run time as long (integer values); then ALTER COLUMN note TYPE text.
    const schema = {
      Name: 'Orders',
      OrderedColumns: [
        ...['orderid', 'custid', 'city'].map((n) => ({ Name: n, CslType: 'string' })),
        { Name: 'amount', CslType: 'int' },
        { Name: 'purchase_time', CslType: 'datetime' },
        { Name: '__op', CslType: 'string' },
        { Name: '__lsn', CslType: 'long' },
        { Name: 'note', CslType: 'long' },
      ],
    };
    const engine = await startKustoStandIn({
      onCommand: (c) => {
        // As ADX does: `.alter-merge` adds its columns to the table, `.show table … schema` reports them.
        if (c.csl.startsWith('.alter-merge table')) {
          for (const m of c.csl.matchAll(/\['(\w+)'\]:(\w+)/g)) schema.OrderedColumns.push({ Name: m[1]!, CslType: m[2]! });
          return undefined;
        }
        return c.csl.startsWith('.show table')
          ? {
              status: 200,
              body: v1Table(
                [
                  ['TableName', 'string'],
                  ['Schema', 'string'],
                ],
                [['Orders', JSON.stringify(schema)]],
              ),
            }
          : undefined;
      },
    });
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    const columns = [
      { name: 'orderid', type: 'integer' },
      { name: 'note', type: 'integer' },
    ];
    const change = {
      ...changeEvent({ op: 'm', after: null, key: null, lsn: 90 }),
      message: {
        prefix: 'pg-cdc',
        kind: 'schema_change',
        content: {
          table: 'retail.orders_info',
          columns: [columns[0], { name: 'note', type: 'text' }],
          key: ['orderid'],
          previous: { columns, key: ['orderid'] },
          added: [],
          dropped: [],
          retyped: ['note: integer -> text'],
          partitions: 4,
        },
      },
    };
    try {
      const report = await deliver(sink, [
        change,
        changeEvent({ op: 'u', after: { ...order(72), note: 'call first' }, lsn: 91 }),
        changeEvent({ op: 'u', after: { ...order(73), note: '12' }, lsn: 92 }),
      ]);
      expect(report).toMatchObject({ ok: 3, deadLettered: 0, retried: 0 });
      expect(engine.commands.map((c) => c.csl.split(" '[")[0]!.split(' with ')[0])).toEqual([
        ".show table ['Orders'] schema as json",
        ".alter-merge table ['Orders'] (['__raw_note']:string)",
        ".show table ['Orders'] schema as json",
        `.create-or-alter table ['Orders'] ingestion json mapping '${versionedMappingName(
          'OrdersEventMapping',
          schema.OrderedColumns.map((c) => ({ name: c.Name, type: c.CslType as KqlType })),
        )}'`,
        expect.stringMatching(/^\.ingest inline into table \['Orders'\]/),
        expect.stringMatching(/^\.ingest inline into table \['OrdersHistory'\]/),
      ]);
      const ingest = engine.commands.find((c) => c.csl.startsWith(".ingest inline into table ['Orders']"))!.csl;
      expect(ingest).toContain('"note":null');
      expect(ingest).toContain('"__raw_note":"call first"');
      expect(ingest).toContain('"note":"12"');
      expect(schema.OrderedColumns.at(-1)).toEqual({ Name: '__raw_note', CslType: 'string' });
      const mapping = engine.commands.find((c) => c.csl.includes('ingestion json mapping'))!.csl;
      expect(mapping).toContain('{"column":"__raw_note","datatype":"string","Properties":{"Path":"$.__raw_note"}}');
    } finally {
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, two instances adding different columns at the same moment', () => {
  it('never overwrites the mapping another instance ingests with (each mapping name denotes one column set)', async () => {
    const base = [
      ...['orderid', 'custid', 'city'].map((n) => ({ Name: n, CslType: 'string' })),
      { Name: 'amount', CslType: 'int' },
      { Name: 'purchase_time', CslType: 'datetime' },
      { Name: '__op', CslType: 'string' },
      { Name: '__lsn', CslType: 'long' },
    ];
    // The race: A adds `a` and reads the schema; B adds `b`, reads, writes its mapping and ingests;
    // then A writes its mapping (from its older read, without `b`) and ingests. Replayed in that
    // order of effects: B's commands first, then A's with the schema A had read.
    let schema = [...base, { Name: 'a', CslType: 'long' }, { Name: 'b', CslType: 'string' }];
    const engine = await startKustoStandIn({
      onCommand: (c) =>
        c.csl.startsWith('.show table')
          ? {
              status: 200,
              body: v1Table(
                [
                  ['TableName', 'string'],
                  ['Schema', 'string'],
                ],
                [['Orders', JSON.stringify({ Name: 'Orders', OrderedColumns: schema })]],
              ),
            }
          : undefined,
    });
    const env = { ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' };
    const a = createAdxSinkFromEnv(env);
    const b = createAdxSinkFromEnv(env);
    try {
      await deliver(b, [changeEvent({ op: 'c', after: { ...order(81), b: 'B' }, lsn: 91 })], { first: '1', last: '1', partition: '1' });
      schema = [...base, { Name: 'a', CslType: 'long' }];
      await deliver(a, [changeEvent({ op: 'c', after: { ...order(80), a: 1 }, lsn: 90 })], { first: '1', last: '1', partition: '0' });

      const mappingText = (csl: string): string => csl.slice(csl.indexOf("'[") + 1, -1);
      const definitions = new Map<string, Set<string>>();
      for (const c of engine.commands) {
        const m = /ingestion json mapping '([^']+)' /.exec(c.csl);
        if (m) definitions.set(m[1]!, (definitions.get(m[1]!) ?? new Set()).add(mappingText(c.csl)));
      }
      expect([...definitions.values()].every((texts) => texts.size === 1)).toBe(true);
      const used = (row: string): string =>
        /ingestionMappingReference='([^']+)'/.exec(
          engine.commands.find((c) => c.csl.startsWith(".ingest inline into table ['Orders']") && c.csl.includes(row))!.csl,
        )![1]!;
      const bMapping = used('"orderid":81,');
      const aMapping = used('"orderid":80,');
      expect(bMapping).not.toBe(aMapping);
      // B's ingestion still finds `b` in its mapping after A's write (with one shared mapping name,
      // A's later write would have dropped it and B's queued rows would lose the column).
      expect(JSON.parse([...definitions.get(bMapping)!][0]!)).toContainEqual({ column: 'b', datatype: 'string', Properties: { Path: '$.b' } });
      expect(JSON.parse([...definitions.get(aMapping)!][0]!)).toContainEqual({ column: 'a', datatype: 'long', Properties: { Path: '$.a' } });
      // The route's own mapping (written by adx:setup) is never rewritten by the sink.
      expect(definitions.has('OrdersEventMapping')).toBe(false);
    } finally {
      a.close();
      b.close();
      await engine.close();
    }
  });
});

describe('AdxSink, inline ingestion (Kusto emulator)', () => {
  let engine: KustoStandIn;
  let sink: AdxSink;
  beforeAll(async () => {
    engine = await startKustoStandIn();
    sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
  });
  afterAll(async () => {
    sink?.close();
    await engine?.close();
  });

  it('sends .ingest inline with the mapping, the tag and ingestIfNotExists, after any .alter-merge', async () => {
    const withNote = changeEvent({ op: 'c', after: { ...order(60), note: 'gift' }, lsn: 70 });
    await deliver(sink, [ordersEvents[0], withNote], { first: '1', last: '2', partition: '0' });
    const tag = /tags='\["ingest-by:([^"]+)"\]'/.exec(engine.commands[3]!.csl)?.[1];
    expect(tag).toMatch(/^cdc:retail\.orders_info:p0:1-2:[0-9a-f]{16}$/);
    expect(engine.commands.map((c) => c.csl.split('\n')[0])).toEqual([
      ".alter-merge table ['Orders'] (['note']:string)",
      ".show table ['Orders'] schema as json",
      expect.stringMatching(/^\.create-or-alter table \['Orders'\] ingestion json mapping 'OrdersEventMapping_[0-9a-f]{12}' /),
      expect.stringMatching(/^\.ingest inline into table \['Orders'\] with \(format='json', ingestionMappingReference='OrdersEventMapping_[0-9a-f]{12}', tags/),
      `.ingest inline into table ['OrdersHistory'] with (format='json', ingestionMappingReference='OrdersHistoryMapping', tags='["ingest-by:${tag}"]', ingestIfNotExists='["${tag}"]') <|`,
    ]);
    const ingest = engine.commands[3]!.csl;
    expect(ingest.split('\n').slice(1)).toEqual([
      expectedOrdersLines.split('\n')[0],
      expect.stringContaining('"orderid":60,"custid":306,"amount":183,"city":"Austin","purchase_time":"2020-10-09 07:23:10","note":"gift"'),
    ]);
    expect(engine.commands.every((c) => c.db === 'cdcdb')).toBe(true);
  });
});

describe('AdxSink, column types from source.types', () => {
  it('types new columns by their PostgreSQL type, not the first value (10 in a double column is no long); values the type cannot hold go to __raw_<column>, exact; nothing dead-lettered', async () => {
    const engine = await startKustoStandIn();
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    const types = { f8: 'float8', n: 'numeric', ts: 'timestamptz', d: 'date', big: 'int8', tm: 'time', u: 'uuid', doc: 'jsonb', tags: 'text[]' };
    const event = (lsn: number, fields: Record<string, unknown>) => {
      const e = changeEvent({ op: lsn === 1 ? 'c' : 'u', after: { orderid: 95, ...fields }, lsn });
      e.source.types = types;
      return Buffer.from(JSON.stringify(e)); // as the hub delivers it: the decoder keeps the json digits
    };
    const bodies = [
      event(1, {
        f8: 10,
        n: '12345678901234567890.123',
        ts: '2024-05-01T10:00:00.123456Z',
        d: '2024-05-01',
        big: '9007199254740993',
        tm: '24:00:00',
        u: '0e3c2f0a-5b8e-4c7e-9a51-1f1f7c6b2d10',
        doc: { a: 1 },
        tags: ['x'],
      }),
      event(2, { f8: 10.5, ts: 'infinity' }),
      event(3, { f8: 'NaN', n: 'NaN', d: '-infinity' }),
      event(4, { f8: 'Infinity', n: `1${'0'.repeat(40)}.5` }),
      event(5, { f8: '-Infinity', ts: '0044-03-15 10:00:00+00 BC' }),
    ];
    const deadLetters = new MemoryDeadLetterStore();
    try {
      expect(await deliver(sink, bodies, { first: '1', last: '5', deadLetters })).toMatchObject({ ok: 5, deadLettered: 0, retried: 0 });
      const alter = engine.commands[0]!.csl;
      expect(alter).toBe(
        ".alter-merge table ['Orders'] (['f8']:real, ['n']:decimal, ['ts']:datetime, ['d']:datetime, ['big']:long, ['tm']:timespan, ['u']:string, " +
          "['doc']:dynamic, ['tags']:dynamic, ['__raw_ts']:string, ['__raw_f8']:string, ['__raw_n']:string, ['__raw_d']:string)",
      );
      const added = [...alter.matchAll(/\['([^']+)'\]:(\w+)/g)].map(([, name, type]) => ({ name: name!, type: type as KqlType }));
      expect(validateKql(alter, databaseFor(adxRoutes(new Router(DEFAULT_ROUTES)), { Orders: added }))).toEqual([]);
      const lines = engine.commands
        .find((c) => c.csl.startsWith(".ingest inline into table ['Orders']"))!
        .csl.split('\n')
        .slice(1)
        .map((line) => line.split(',"__op"')[0]);
      expect(lines).toEqual([
        '{"orderid":95,"f8":10,"n":"12345678901234567890.123","ts":"2024-05-01T10:00:00.123456Z","d":"2024-05-01","big":9007199254740993,"tm":"1.00:00:00",' +
          '"u":"0e3c2f0a-5b8e-4c7e-9a51-1f1f7c6b2d10","doc":{"a":1},"tags":["x"]',
        '{"orderid":95,"f8":10.5,"ts":null,"__raw_ts":"infinity"',
        '{"orderid":95,"f8":null,"__raw_f8":"NaN","n":null,"__raw_n":"NaN","d":null,"__raw_d":"-infinity"',
        `{"orderid":95,"f8":null,"__raw_f8":"Infinity","n":null,"__raw_n":"1${'0'.repeat(40)}.5"`,
        '{"orderid":95,"f8":null,"__raw_f8":"-Infinity","ts":null,"__raw_ts":"0044-03-15 10:00:00+00 BC"',
      ]);
      expect(deadLetters.documents.size).toBe(0);
    } finally {
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, unchanged TOAST values', () => {
  const docsRoutes = JSON.stringify({ 'public.docs': { keys: ['id'], adx: { table: 'Docs', columns: { id: 'long', title: 'string', body: 'string' } } } });
  const docsEnv = (url: string) => ({ ADX_CLUSTER_URL: url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline', CDC_ROUTES: docsRoutes });
  const doc = (op: 'c' | 'u' | 'd', id: number, lsn: number, fields: Record<string, unknown>, extra: { toast?: string[]; oldKey?: number } = {}) => {
    const e = changeEvent({ table: 'public.docs', op, ...(op === 'd' ? { before: { id } } : { after: { id, ...fields } }), key: { id }, lsn });
    if (extra.toast) e.source.unchanged_toast = extra.toast;
    if (extra.oldKey !== undefined) e.old_key = { id: extra.oldKey };
    return e;
  };

  it('a same-key update and a primary-key change (d + c with old_key) that lack the TOASTed column: rows say so, the create names the old key, and DocsCurrent() fills them from earlier rows', async () => {
    // The table as ADX reports it: the sink added `note` at run time, and a __raw_ column exists.
    const schema = {
      Name: 'Docs',
      OrderedColumns: [
        ...tableColumns(adxRoutes(new Router(JSON.parse(docsRoutes) as typeof DEFAULT_ROUTES))[0]!, [
          { name: 'note', type: 'string' },
          { name: '__raw_body', type: 'string' },
        ]),
      ].map((c) => ({ Name: c.name, CslType: c.type })),
    };
    const engine = await startKustoStandIn({
      onCommand: (c) =>
        c.csl === ".show table ['Docs'] schema as json"
          ? {
              status: 200,
              body: v1Table(
                [
                  ['TableName', 'string'],
                  ['Schema', 'string'],
                ],
                [['Docs', JSON.stringify(schema)]],
              ),
            }
          : undefined,
    });
    const sink = createAdxSinkFromEnv(docsEnv(engine.url));
    const config = loadAdxConfig(docsEnv(engine.url));
    const control = new KustoControlClient(connectionFactory(config)(config.clusterUrl), config.database);
    const big = 'x'.repeat(3000);
    try {
      const events = [
        doc('c', 1, 100, { title: 'a', body: big }),
        doc('u', 1, 200, { title: 'b' }, { toast: ['body'] }),
        doc('d', 1, 300, {}),
        doc('c', 2, 300, { title: 'b' }, { toast: ['body'], oldKey: 1 }),
      ];
      expect(await deliver(sink, events, { first: '1', last: '4' })).toMatchObject({ ok: 4, deadLettered: 0 });
      const rows = engine.commands
        .find((c) => c.csl.startsWith(".ingest inline into table ['Docs']"))!
        .csl.split('\n')
        .slice(1)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(rows.map((r) => [r.id, r.__op, r.__lsn, r.body === big ? 'big' : (r.body ?? 'absent'), r.__unchanged_toast, r.__old_key])).toEqual([
        [1, 'c', 100, 'big', null, null],
        [1, 'u', 200, 'absent', ['body'], null],
        [1, 'd', 300, 'absent', null, null],
        [2, 'c', 300, 'absent', ['body'], { id: 1 }],
      ]);

      // adx:setup generates DocsCurrent() from the schema ADX reports: every column is filled, `note` too.
      await runAdxSetup(config, control, () => undefined);
      const sent = engine.commands.map((c) => c.csl);
      const fn = sent.find((c) => c.startsWith('.create-or-alter function'))!;
      expect(sent[sent.indexOf(fn) - 1]).toBe(".show table ['Docs'] schema as json");
      expect(fn).toBe(currentFunctionCommand(config.routes[0]!, 'cdc', 'CdcTruncates', parseSchemaRows([{ Schema: JSON.stringify(schema) }])).text);
      for (const column of ['title', 'body', 'note']) {
        expect(fn).toContain(`['${column}'] = case(['__own_${column}'], ['__v_${column}'], ['__hop_${column}'], ['__hv_${column}'], ['${column}'])`);
      }
      expect(fn).toContain("['__raw_body'] = case(['__own_body'], ['__w_body'], ['__hop_body'], ['__hw_body'], ['__raw_body'])");
      const extra = schema.OrderedColumns.filter((c) => ['note', '__raw_body'].includes(c.Name)).map((c) => ({ name: c.Name, type: c.CslType }));
      expect(validateKql(fn, databaseFor(config.routes, { Docs: extra }))).toEqual([]);
    } finally {
      control.close();
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, column names ADX cannot hold', () => {
  it('columns named like CDC columns, empty, or with characters KQL identifiers cannot take are escaped (adxColumnName): valid commands, no CDC column overwritten', async () => {
    const engine = await startKustoStandIn();
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    const odd = { __op: 'mine', __lsn: -1, __deleted: 'no', __table: 'mine', '': 'empty', 'a.b': 1, 'x:y': 2, "it's": 3, total__: 4, _x41_: 5, 'line no': 6 };
    const event = changeEvent({ op: 'u', after: { ...order(80), ...odd }, lsn: 8000, unchangedToast: ['x:y'] });
    try {
      expect(await deliver(sink, [event], { first: '1', last: '1' })).toMatchObject({ ok: 1, deadLettered: 0 });
      const escaped = {
        _x5F__op: 'mine',
        _x5F__lsn: -1,
        _x5F__deleted: 'no',
        _x5F__table: 'mine',
        _x00_: 'empty',
        a_x2E_b: 1,
        x_x3A_y: 2,
        it_x27_s: 3,
        total__x5F_: 4,
        _x5F_x41_: 5,
        'line no': 6,
      };
      const alter = engine.commands[0]!.csl;
      expect(alter).toBe(
        ".alter-merge table ['Orders'] (['_x5F__op']:string, ['_x5F__lsn']:long, ['_x5F__deleted']:string, ['_x5F__table']:string, ['_x00_']:string, " +
          "['a_x2E_b']:long, ['x_x3A_y']:long, ['it_x27_s']:long, ['total__x5F_']:long, ['_x5F_x41_']:long, ['line no']:long)",
      );
      const added = Object.entries(escaped).map(([name, value]) => ({ name, type: typeof value === 'string' ? ('string' as const) : ('long' as const) }));
      const db = databaseFor(adxRoutes(new Router(DEFAULT_ROUTES)), { Orders: added });
      const mapping = engine.commands[2]!.csl;
      const ingest = engine.commands.find((c) => c.csl.startsWith(".ingest inline into table ['Orders']"))!.csl;
      for (const text of [alter, mapping, ingest]) expect(validateKql(text, db)).toEqual([]);
      // Every column of the mapping reads the same-named property of the JSON line.
      const mapped = JSON.parse(/mapping '[^']+' '(.*)'$/.exec(mapping)![1]!.replace(/\\'/g, "'")) as { column: string; Properties: { Path: string } }[];
      for (const name of Object.keys(escaped)) {
        expect(mapped).toContainEqual(
          expect.objectContaining({ column: name, Properties: { Path: /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `$.${name}` : `$['${name}']` } }),
        );
      }
      const row = JSON.parse(ingest.split('\n')[1]!) as Record<string, unknown>;
      expect(row).toMatchObject({
        orderid: 80,
        ...escaped,
        __op: 'u',
        __lsn: 8000,
        __deleted: false,
        __table: 'retail.orders_info',
        __unchanged_toast: ['x_x3A_y'],
      });
    } finally {
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, pointer events (oversized events the reader put in a Blob)', () => {
  it('the batch core reads the full event before the ADX sink sees it; a missing Blob is dead-lettered, unreadable storage retried', async () => {
    const engine = await startKustoStandIn();
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    const full = changeEvent({ op: 'u', before: order(90), after: order(90, { city: 'x'.repeat(2000) }), lsn: 90 });
    const pointer = (blob: string) => ({ ...full, before: null, after: null, deadletter: { container: 'cdc-deadletter', blob, bytes: 2_000_000 } });
    const pointers: PointerResolver = {
      fetch: ({ blob }) =>
        blob === 'p0/90.json'
          ? Promise.resolve(Buffer.from(JSON.stringify(full)))
          : blob === 'flaky.json'
            ? Promise.reject(new Error('ETIMEDOUT'))
            : Promise.reject(new PermanentRecordError('POINTER_BROKEN', `Pointer blob cdc-deadletter/${blob} does not exist`)),
    };
    const deadLetters = new MemoryDeadLetterStore();
    try {
      const error = await deliver(sink, [pointer('p0/90.json'), pointer('gone.json'), pointer('flaky.json'), ordersEvents[0]], { deadLetters, pointers }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BatchProcessingError);
      expect((error as Error).message).toMatch(/^1 of 4 records must be retried/);
      expect([...deadLetters.documents.values()].map((d) => [d.offset, d.reason])).toEqual([['4097', expect.stringContaining('does not exist')]]);
      const ingest = engine.commands.find((c) => c.csl.startsWith(".ingest inline into table ['Orders']"))!.csl;
      const rows = ingest
        .split('\n')
        .slice(1)
        .map((line) => JSON.parse(line) as { orderid: number; __op: string; __lsn: number; city: string });
      // The pointer's update is written with its full row image, not as a row of nulls.
      expect(rows.map((r) => [r.orderid, r.__op, r.__lsn, r.city.length])).toEqual([
        [90, 'u', 90, 2000],
        [51, 'c', 34220200, 6],
      ]);
    } finally {
      sink.close();
      await engine.close();
    }
  });
});

describe('AdxSink, ingest-by tags name exactly the rows ingested', () => {
  /** What ADX keeps of `.ingest inline` commands: an ingestion whose ingestIfNotExists tag a table already carries is dropped whole. */
  function keptRows(commands: readonly { csl: string }[], table: string): { orderid: number; __lsn: number }[] {
    const seen = new Set<string>();
    const kept: { orderid: number; __lsn: number }[] = [];
    for (const { csl } of commands) {
      if (!csl.startsWith(`.ingest inline into table ['${table}']`)) continue;
      const tag = /ingestIfNotExists='\["([^"]+)"\]'/.exec(csl)?.[1];
      if (tag === undefined) throw new Error(`no ingestIfNotExists in ${csl.split('\n')[0]}`);
      if (seen.has(tag)) continue;
      seen.add(tag);
      kept.push(
        ...csl
          .split('\n')
          .slice(1)
          .map((line) => JSON.parse(line) as { orderid: number; __lsn: number }),
      );
    }
    return kept;
  }

  it('the retry of a partly failed batch is not silently skipped: a record whose pointer failed for a moment is ingested on the retry', async () => {
    const engine = await startKustoStandIn();
    const sink = createAdxSinkFromEnv({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline' });
    const full = changeEvent({ op: 'u', before: order(91), after: order(91, { city: 'y'.repeat(2000) }), lsn: 91 });
    const pointer = { ...full, before: null, after: null, deadletter: { container: 'cdc-deadletter', blob: 'p0/91.json', bytes: 2_000_000 } };
    let blobUp = false;
    const pointers: PointerResolver = {
      fetch: () => (blobUp ? Promise.resolve(Buffer.from(JSON.stringify(full))) : Promise.reject(new Error('ETIMEDOUT'))),
    };
    const batch = [ordersEvents[0], pointer];
    try {
      // Attempt 1: the Blob read fails transiently, the other record's row is ingested, the batch is retried.
      await expect(deliver(sink, batch, { pointers })).rejects.toBeInstanceOf(BatchProcessingError);
      expect(keptRows(engine.commands, 'Orders').map((r) => r.orderid)).toEqual([51]);
      // Attempt 2: the same batch, now complete. ADX must not drop it as already ingested.
      blobUp = true;
      expect(await deliver(sink, batch, { pointers })).toMatchObject({ ok: 2, retried: 0 });
      expect(keptRows(engine.commands, 'Orders').map((r) => [r.orderid, r.__lsn])).toEqual([
        [51, 34220200],
        [51, 34220200],
        [91, 91],
      ]);
      // Attempt 3, a plain redelivery of the complete batch: the same records, the same tag, dropped by ADX.
      expect(await deliver(sink, batch, { pointers })).toMatchObject({ ok: 2 });
      expect(keptRows(engine.commands, 'Orders')).toHaveLength(3);
    } finally {
      sink.close();
      await engine.close();
    }
  });

  it('names the origin: the same offsets from a recreated hub (enqueued later) or another namespace get other tags', () => {
    const batch = {
      partitionId: '0',
      firstOffset: '0',
      lastOffset: '1',
      namespace: 'ns1.servicebus.windows.net',
      eventHubName: 'cdc-events',
      consumerGroup: 'adx-sink',
    };
    const records = [
      { offset: '0', sequenceNumber: '0', enqueuedTimeUtc: '2026-01-01T00:00:00.000Z' },
      { offset: '1', sequenceNumber: '1', enqueuedTimeUtc: '2026-01-01T00:00:00.001Z' },
    ];
    const tag = ingestionTag('retail.orders_info', batch, records);
    expect(
      ingestionTag(
        'retail.orders_info',
        { ...batch },
        records.map((r) => ({ ...r })),
      ),
    ).toBe(tag);
    const recreated = records.map((r) => ({ ...r, enqueuedTimeUtc: r.enqueuedTimeUtc.replace('2026-01-01', '2026-03-01') }));
    expect(ingestionTag('retail.orders_info', batch, recreated)).not.toBe(tag);
    expect(ingestionTag('retail.orders_info', { ...batch, namespace: 'ns2.servicebus.windows.net' }, records)).not.toBe(tag);
    expect(ingestionTag('retail.orders_info', batch, records.slice(1))).not.toBe(tag);
    expect(tag).toMatch(/^cdc:retail\.orders_info:p0:0-1:[0-9a-f]{16}$/);
  });
});

describe('AdxSink, managed streaming', () => {
  let storage: IngestionStorage;
  let engine: KustoStandIn;
  let dm: KustoStandIn;
  let sink: AdxSink;
  beforeAll(async () => {
    storage = await createIngestionStorage();
    engine = await startKustoStandIn();
    dm = await startKustoStandIn({
      resources: {
        queue: storage.queueUri,
        container: storage.containerUri,
        failedQueue: storage.failedQueueUri,
        successQueue: storage.successQueueUri,
        statusTable: storage.statusTableUri,
      },
    });
    sink = createAdxSinkFromEnv({
      ADX_CLUSTER_URL: engine.url,
      ADX_INGEST_URL: dm.url,
      ADX_DATABASE: 'cdcdb',
      ADX_AUTH: 'none',
      ADX_INGESTION_MODE: 'managed-streaming',
    });
  });
  afterAll(async () => {
    sink?.close();
    await Promise.all([engine?.close(), dm?.close()]);
  });

  it('streams gzip JSON lines to the engine with the mapping name (nothing queued)', async () => {
    await deliver(sink, ordersEvents);
    expect(engine.streams.map((s) => [s.db, s.table, s.query, s.headers['content-encoding']])).toEqual([
      ['cdcdb', 'Orders', { streamFormat: 'json', mappingName: 'OrdersEventMapping' }, 'gzip'],
      ['cdcdb', 'OrdersHistory', { streamFormat: 'json', mappingName: 'OrdersHistoryMapping' }, 'gzip'],
    ]);
    expect(engine.streams[0]!.text).toBe(expectedOrdersLines);
    expect(await storage.peekMessages()).toEqual([]);
  });
});

describe('adx:setup against the engine', () => {
  it('runs every generated command in order on the configured database and reports the backfill operations', async () => {
    const engine = await startKustoStandIn({
      onCommand: (c) =>
        c.csl.startsWith('.create async') ? { status: 200, body: v1Table([['OperationId', 'guid']], [['5a0d6c5e-0000-4000-8000-000000000001']]) } : undefined,
    });
    const config = loadAdxConfig({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none' });
    const control = new KustoControlClient(connectionFactory(config)(config.clusterUrl), config.database);
    const lines: string[] = [];
    try {
      const result = await runAdxSetup(config, control, (l) => lines.push(l));
      // No view yet: the existing views are listed, then exactly the generated commands run.
      // Each current-rows function is generated from the table's schema as ADX reports it (the stand-in
      // reports none: the declared columns).
      expect(engine.commands.map((c) => [c.db, c.csl])).toEqual([
        ['cdcdb', '.show materialized-views'],
        ...setupCommands(config).flatMap((c) =>
          c.currentOf === undefined
            ? [['cdcdb', c.text]]
            : [
                ['cdcdb', `.show table ['${c.currentOf.table}'] schema as json`],
                ['cdcdb', c.text],
              ],
        ),
      ]);
      expect(result.operations.map((o) => o.operationId)).toEqual(['5a0d6c5e-0000-4000-8000-000000000001', '5a0d6c5e-0000-4000-8000-000000000001']);
      expect(lines[0]).toBe('ok   table CdcTruncates (create or add missing columns)\n');
    } finally {
      control.close();
      await engine.close();
    }
  });

  it('stops at the first failing command, naming it', async () => {
    const engine = await startKustoStandIn({
      onCommand: (c) =>
        c.csl.includes('policy ingestionbatching') ? { status: 403, body: kustoError('Forbidden', 'principal is not a table admin', true) } : undefined,
    });
    const config = loadAdxConfig({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none' });
    const control = new KustoControlClient(connectionFactory(config)(config.clusterUrl), config.database);
    try {
      const error = await runAdxSetup(config, control, () => undefined).catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/^adx:setup: ingestion batching policy on CdcTruncates failed .*HTTP 403.*principal is not a table admin$/);
      expect(engine.commands).toHaveLength(4);
    } finally {
      control.close();
      await engine.close();
    }
  });

  it('--dry-run prints the commands without a cluster', async () => {
    const lines: string[] = [];
    await runAdxSetup(loadAdxSchemaConfig({}), null, (l) => lines.push(l));
    // 19 commands, and before each of the 2 views the upgrade an existing view would get (2 lines each).
    expect(lines).toHaveLength(23);
    expect(lines[0]).toBe(`// table CdcTruncates (create or add missing columns)\n${setupCommands(loadAdxSchemaConfig({}))[0]!.text}\n\n`);
    expect(lines[9]).toBe('// only if OrdersLatest exists without autoUpdateSchema or disabled (adx:setup checks .show materialized-views):\n');
    expect(lines[10]).toContain("//   .alter materialized-view ['OrdersLatest'] autoUpdateSchema true\n");
  });

  it('brings existing views up to date before their (no-op) create: re-align + autoUpdateSchema + enable a disabled one, nothing for a current one', async () => {
    const views = v1Table(
      [
        ['Name', 'string'],
        ['SourceTable', 'string'],
        ['IsEnabled', 'bool'],
        ['AutoUpdateSchema', 'bool'],
      ],
      [
        ['OrdersLatest', 'Orders', false, false],
        ['HoldingLatest', 'Holding', true, true],
      ],
    );
    const engine = await startKustoStandIn({ onCommand: (c) => (c.csl === '.show materialized-views' ? { status: 200, body: views } : undefined) });
    const config = loadAdxConfig({ ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none' });
    const control = new KustoControlClient(connectionFactory(config)(config.clusterUrl), config.database);
    try {
      const result = await runAdxSetup(config, control, () => undefined);
      const sent = engine.commands.map((c) => c.csl);
      const generated = setupCommands(config).map((c) => c.text);
      const ordersView = generated.findIndex((t) =>
        t.includes("materialized-view with (backfill=true, autoUpdateSchema=true, folder='cdc', docstring='Latest change per key of Orders"),
      );
      expect(sent.filter((c) => !c.endsWith('schema as json'))).toEqual([
        '.show materialized-views',
        ...generated.slice(0, ordersView),
        ".alter materialized-view ['OrdersLatest'] on table ['Orders'] { ['Orders'] | summarize arg_max(['__lsn'], *) by ['__key'] }",
        ".alter materialized-view ['OrdersLatest'] autoUpdateSchema true",
        ".enable materialized-view ['OrdersLatest']",
        ...generated.slice(ordersView),
      ]);
      expect(result.executed).toHaveLength(generated.length + 3);
    } finally {
      control.close();
      await engine.close();
    }
  });
});
