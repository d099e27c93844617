/**
 * The key rule (`keyOf`): one rule for every sink. The same keyless and null-key events go through the
 * Elasticsearch sink and the change-history sink (real Elasticsearch) and are dead-lettered by both
 * with the same reason.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord, Sink } from '../../../src/shared/batch/types.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { ChangeEvent } from '../../../src/shared/events/changeEvent.js';
import { documentId, keyOf } from '../../../src/shared/events/documentId.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { Router } from '../../../src/shared/routing/routes.js';
import { changeEvent, hostBody, order } from '../../helpers/events.js';
import { cleanup, getSource, testClient, testRoutes, testSink, uniqueIndex } from '../esTestKit.js';

const client = testClient();
const index = uniqueIndex('keys');
const historyIndex = `${index}-history`;
const indices = [index, `${index}-holding`, `${index}-control`, historyIndex];

afterAll(async () => {
  await cleanup(client, indices);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
  await client.close();
});

const records = (events: ChangeEvent[]): EventRecord[] =>
  events.map((e, i) => ({ body: Buffer.from(JSON.stringify(hostBody(e))), partitionId: '0', offset: String(i), sequenceNumber: String(i) }));

async function deadLetteredBy(sink: Sink<unknown>, events: ChangeEvent[], functionName: string) {
  const deadLetters = new MemoryDeadLetterStore();
  const batch: BatchInfo = { functionName, partitionId: '0', firstOffset: '0', lastOffset: String(events.length - 1) };
  const report = await processBatch(records(events), { sink, deadLetters, batch });
  return { report, reasons: [...deadLetters.documents.values()].map((d) => [d.offset, d.reason]) };
}

describe('keys the sinks cannot hold', () => {
  it('keyless and null-key events are dead-lettered by the Elasticsearch and the change-history sink alike, with the same reason', async () => {
    // Prepare
    const events = [
      changeEvent({ op: 'c', after: order(1), lsn: 100 }),
      changeEvent({ op: 'c', after: order(2), key: null, lsn: 100 }), // no key at all
      changeEvent({ op: 'u', after: order(3), key: {}, lsn: 100 }), // empty key
      changeEvent({ op: 'c', after: { ...order(4), orderid: null }, key: { orderid: null }, lsn: 100 }), // would be _id "null"
      changeEvent({ op: 'u', after: order(5), key: { orderid: 5, custid: null }, lsn: 100 }), // a null in a key of two columns: a value like any other
      changeEvent({ op: 'd', before: { orderid: null }, key: null, lsn: 100 }), // delete: key from a key-only before
      changeEvent({ op: 't', key: null, lsn: 50 }), // truncates have no key and are exempt
    ];
    const es = testSink(client, testRoutes(index), { controlIndex: `${index}-control` });
    const history = new ElasticsearchHistorySink({ client, router: new Router(testRoutes(index)), index: historyIndex, replicas: 0 });

    // Act
    const viaEs = await deadLetteredBy(es, events, 'elasticsearchSink');
    const viaHistory = await deadLetteredBy(history, events, 'changeHistory');

    // Assess
    const expected = [
      ['1', 'PermanentRecordError: Event for retail.orders_info has no key (table without primary key or replica identity?)'],
      ['2', 'PermanentRecordError: Event for retail.orders_info has no key (table without primary key or replica identity?)'],
      [
        '3',
        expect.stringMatching(
          /^PermanentRecordError: Event for retail.orders_info has key column "orderid" = null \(a primary-key or replica-identity column is never NULL/,
        ),
      ],
      ['5', expect.stringMatching(/^PermanentRecordError: Event for retail.orders_info has key column "orderid" = null /)],
    ];
    expect(viaEs.reasons).toEqual(expected);
    expect(viaHistory.reasons).toEqual(viaEs.reasons);
    for (const { report } of [viaEs, viaHistory]) expect(report).toMatchObject({ ok: 3, deadLettered: 4, retried: 0 });
    await client.indices.refresh({ index: [index, historyIndex] });
    expect(await getSource(client, index, '1')).toBeDefined();
    expect(await getSource(client, index, 'null')).toBeUndefined();
    expect(await getSource(client, index, '[5,null]')).toBeDefined();
    const keys = await client.search<{ KeyText: string | null }>({ index: historyIndex, size: 100 });
    expect([...new Set(keys.hits.hits.map((h) => h._source?.KeyText))]).toEqual(expect.arrayContaining(['1', '[5,null]', null]));
    expect(keys.hits.hits.every((h) => ['1', '[5,null]', null].includes(h._source?.KeyText ?? null))).toBe(true);
  });

  it('returns the key of a row event, and the before image of a delete without key', () => {
    expect(keyOf(changeEvent({ key: { orderid: 7 } }))).toEqual({ orderid: 7 });
    expect(keyOf(changeEvent({ op: 'd', before: { orderid: 8 }, key: null }))).toEqual({ orderid: 8 });
    expect(documentId(changeEvent({ key: { a: 1, b: 'x' } }))).toBe('[1,"x"]');
    expect(documentId(changeEvent({ key: { a: 1, b: null } }))).toBe('[1,null]');
    expect(() => keyOf(changeEvent({ key: { orderid: null } }))).toThrow(expect.objectContaining({ code: 'NO_KEY', canRetry: false }));
  });
});
