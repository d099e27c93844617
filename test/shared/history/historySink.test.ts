/** The change-history sink against the real test cluster. */
import { afterAll, describe, expect, it } from '@jest/globals';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord } from '../../../src/shared/batch/types.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { Router } from '../../../src/shared/routing/routes.js';
import { changeEvent } from '../../helpers/events.js';
import { cleanup, testClient, uniqueIndex } from '../esTestKit.js';

const client = testClient();
const index = uniqueIndex('history_sink');
const batch: BatchInfo = { functionName: 'changeHistory', partitionId: '0', firstOffset: '0', lastOffset: '0' };
let offset = 0;
const recordsOf = (events: unknown[]): EventRecord[] =>
  events.map((body) => ({ body, partitionId: '0', offset: String(offset++), sequenceNumber: String(offset) }));

afterAll(async () => {
  await cleanup(client, [index]);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${index}` }).catch(() => undefined);
  await client.close();
});

describe('ElasticsearchHistorySink (real Elasticsearch)', () => {
  it('a long key (600 bytes, multi-column, unicode) does not stall the partition: its history rows land under bounded ids', async () => {
    const sink = new ElasticsearchHistorySink({ client, router: new Router({ '*': {} }), index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
    const keys = [{ k: 'k'.repeat(600) }, { a: 'x'.repeat(300), b: 'y'.repeat(300) }, { k: 'ü✓'.repeat(120) }];
    const events = keys.flatMap((key, i) => [
      changeEvent({ table: 'public.long_keys', op: 'c', key, after: { ...key, v: i }, lsn: 100 }),
      changeEvent({ table: 'public.long_keys', op: 'u', key, before: { ...key, v: i }, after: { ...key, v: i + 10 }, lsn: 200 }),
    ]);
    // A short key in the same request: it must not be held back by the long ones.
    events.push(changeEvent({ table: 'public.long_keys', op: 'c', key: { k: 'short' }, after: { k: 'short', v: 99 }, lsn: 300 }));
    const deadLetters = new MemoryDeadLetterStore();
    const report = await processBatch(recordsOf(events), { sink, deadLetters, batch });
    expect(report).toMatchObject({ ok: 7, deadLettered: 0, retried: 0 });
    // Redelivered (deterministic ids, `create`): nothing doubles.
    expect(await processBatch(recordsOf(events), { sink, deadLetters, batch })).toMatchObject({ ok: 7, retried: 0 });
    await client.indices.refresh({ index });
    const rows = await client.search<{ KeyText: string; Op: string; NewValue: string }>({ index, size: 20, sort: ['Lsn', 'NewValue'] });
    expect(rows.hits.hits.map((h) => [h._source?.Op, h._source?.NewValue])).toEqual([
      ['c', '0'],
      ['c', '1'],
      ['c', '2'],
      ['u', '10'],
      ['u', '11'],
      ['u', '12'],
      ['c', '99'],
    ]);
    for (const hit of rows.hits.hits) expect(Buffer.byteLength(hit._id ?? '')).toBeLessThanOrEqual(512);
  });

  it('key and context columns Elasticsearch cannot hold (empty, x next to x.y, _id) land under escaped names', async () => {
    const router = new Router({ '*': { history: { context: ['', 'x', 'x.y'] } } });
    const sink = new ElasticsearchHistorySink({ client, router, index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
    const key = { x: 1, 'x.y': 2, _id: 3 };
    const event = changeEvent({ table: 'public.odd', op: 'c', key, after: { ...key, '': 'e', v: 1 }, lsn: 500 });
    const report = await processBatch(recordsOf([event]), { sink, deadLetters: new MemoryDeadLetterStore(), batch });
    expect(report).toMatchObject({ ok: 1, deadLettered: 0, retried: 0 });
    await client.indices.refresh({ index });
    const rows = await client.search<{ Column: string; Key: unknown; Context: unknown }>({
      index,
      query: { term: { SourceTable: 'public.odd' } },
      sort: ['Column'],
    });
    expect(rows.hits.hits.map((h) => h._source?.Column)).toEqual(['', 'v']);
    expect(rows.hits.hits[0]?._source).toMatchObject({ Key: { x: 1, 'x%2Ey': 2, '%5Fid': 3 }, Context: { '%': 'e', x: 1, 'x%2Ey': 2 } });
  });

  it("json/jsonb big numbers lose digits in the sinks: a change beyond a double's precision gets its history row, with the exact digits", async () => {
    const sink = new ElasticsearchHistorySink({ client, router: new Router({ '*': {} }), index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
    // As the reader puts it on the wire: the json value's digits verbatim.
    const wire = (op: 'c' | 'u', before: string | null, after: string, lsn: number) => {
      const event = changeEvent({
        table: 'public.bignum',
        op,
        key: { id: 1 },
        before: before === null ? null : { id: 1, doc: '@OLD@' },
        after: { id: 1, doc: '@NEW@' },
        lsn,
      });
      event.source.types = { doc: 'jsonb' };
      return Buffer.from(
        JSON.stringify(event)
          .replace('"@OLD@"', before ?? 'null')
          .replace('"@NEW@"', after),
      );
    };
    const events = [wire('c', null, '{"n":12345678901234567890}', 600), wire('u', '{"n":12345678901234567890}', '{"n":12345678901234567891}', 700)];
    const report = await processBatch(recordsOf(events), { sink, deadLetters: new MemoryDeadLetterStore(), batch });
    expect(report).toMatchObject({ ok: 2, deadLettered: 0, retried: 0 });
    await client.indices.refresh({ index });
    const rows = await client.search<{ Op: string; OldValue: string | null; NewValue: string }>({
      index,
      query: { term: { SourceTable: 'public.bignum' } },
      sort: ['Lsn'],
    });
    expect(rows.hits.hits.map((h) => [h._source?.Op, h._source?.OldValue, h._source?.NewValue])).toEqual([
      ['c', null, '{"n":12345678901234567890}'],
      ['u', '{"n":12345678901234567890}', '{"n":12345678901234567891}'],
    ]);
  });

  it('key-only deletes produce no history row: every delete lands, as one row without column when no column is tracked', async () => {
    // No history.columns, no declared (ADX) columns: a default-identity delete carries only the key.
    const sink = new ElasticsearchHistorySink({ client, router: new Router({ '*': {} }), index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
    const events = [
      changeEvent({ table: 'public.key_only', op: 'c', key: { id: 1 }, after: { id: 1, v: 'a' }, lsn: 800 }),
      changeEvent({ table: 'public.key_only', op: 'd', key: { id: 1 }, before: { id: 1 }, lsn: 900 }),
    ];
    const deadLetters = new MemoryDeadLetterStore();
    expect(await processBatch(recordsOf(events), { sink, deadLetters, batch })).toMatchObject({ ok: 2, skipped: 0, deadLettered: 0, retried: 0 });
    // Redelivered: the same deterministic id, nothing doubles.
    expect(await processBatch(recordsOf(events), { sink, deadLetters, batch })).toMatchObject({ ok: 2, retried: 0 });
    await client.indices.refresh({ index });
    const rows = await client.search<Record<string, unknown>>({ index, query: { term: { SourceTable: 'public.key_only' } }, sort: ['Lsn'] });
    expect(rows.hits.hits.map((h) => [h._source?.Op, h._source?.Column, h._source?.OldValueKnown, h._source?.KeyText])).toEqual([
      ['c', 'v', true, '1'],
      ['d', null, false, '1'],
    ]);
  });

  it("refuses a history index that is a table's index: its strict mapping would refuse that table's rows", () => {
    const router = new Router({ '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } });
    expect(() => new ElasticsearchHistorySink({ client, router, index: 'cdc-history.changes' })).toThrow(
      'HISTORY_INDEX: expected an index no table is routed to (it is the index of history.changes in CDC_ROUTES), got "cdc-history.changes"',
    );
    expect(() => new ElasticsearchHistorySink({ client, router, index: 'cdc-change-history' })).not.toThrow();
  });
});
