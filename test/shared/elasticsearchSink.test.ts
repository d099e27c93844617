/** The Elasticsearch sink against the real test service. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@elastic/elasticsearch';
import { processBatch } from '../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord } from '../../src/shared/batch/types.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import { AwaitingPartitionError, BatchProcessingError } from '../../src/shared/core/errors.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { changeEvent, EVENT_TS_MS, order } from '../helpers/events.js';
import { cleanup, getSource, testClient, testRoutes, testSink, uniqueIndex } from './esTestKit.js';

const client = testClient();
const index = uniqueIndex('es_sink');
const controlIndex = `${index}-control`;
const indices = [index, `${index}-holding`, controlIndex];
let sink: ElasticsearchSink;
let offset = 0;

function recordsOf(events: unknown[]): EventRecord[] {
  return events.map((body) => ({ body, partitionId: '0', offset: String(offset++), sequenceNumber: String(offset) }));
}
const batch: BatchInfo = { functionName: 'elasticsearchSink', partitionId: '0', firstOffset: '0', lastOffset: '0' };

async function run(events: unknown[], deadLetters = new MemoryDeadLetterStore(), s: ElasticsearchSink = sink) {
  const report = await processBatch(recordsOf(events), { sink: s, deadLetters, batch });
  await client.indices.refresh({ index });
  return report;
}

const upsert = (id: number, lsn: number, amount: number, op: 'c' | 'u' = 'u'): ChangeEvent => changeEvent({ op, after: order(id, { amount }), lsn });
const del = (id: number, lsn: number): ChangeEvent => changeEvent({ op: 'd', before: order(id), lsn });
/** An insert into `bank.holding` (its own index), for the truncate tests. */
const holding = (id: number, lsn: number): ChangeEvent =>
  changeEvent({
    table: 'bank.holding',
    op: 'c',
    key: { holding_id: id },
    after: { holding_id: id, user_id: 1, holding_stock: 'VFIAX', holding_quantity: id },
    lsn,
  });

beforeAll(() => {
  sink = testSink(client, testRoutes(index), { controlIndex });
});
afterAll(async () => {
  await cleanup(client, indices);
  await client.close();
});

describe('ElasticsearchSink (real Elasticsearch)', () => {
  it('creates the index from the template with the explicit mapping and the -live alias', async () => {
    await run([upsert(1, 100, 10, 'c')]);
    const mapping = await client.indices.getMapping({ index });
    const props = mapping[index]?.mappings.properties ?? {};
    expect(props.amount).toEqual({ type: 'long' });
    expect(props.city).toMatchObject({ type: 'text', fields: { keyword: { type: 'keyword' } } });
    expect(props.__deleted).toEqual({ type: 'boolean' });
    expect(props.__version).toEqual({ type: 'long' });
    const aliases = await client.indices.getAlias({ index });
    expect(Object.keys(aliases[index]?.aliases ?? {})).toEqual([`${index}-live`]);
  });

  it('upserts with _id = key and version = LSN; duplicates and reordering never regress a document', async () => {
    const report = await run([upsert(2, 300, 3), upsert(2, 100, 1, 'c'), upsert(2, 200, 2), upsert(2, 300, 3)]);
    expect(report).toMatchObject({ ok: 4, deadLettered: 0, retried: 0 });
    const doc = await getSource(client, index, '2');
    expect(doc).toMatchObject({ version: 300, source: { orderid: 2, amount: 3, __lsn: 300, __version: 300, __deleted: false, __op: 'u' } });
    // A redelivery of the whole history later changes nothing.
    await run([upsert(2, 100, 1, 'c'), upsert(2, 200, 2)]);
    expect((await getSource(client, index, '2'))?.source.amount).toBe(3);
  });

  it('soft-deletes with the delete version, so a late older write cannot resurrect the row', async () => {
    await run([upsert(3, 100, 1, 'c'), del(3, 200)]);
    expect(await getSource(client, index, '3')).toMatchObject({ version: 200, source: { orderid: 3, __deleted: true, __op: 'd' } });
    // Late update from before the delete (after gc_deletes would have forgotten a hard delete).
    await run([upsert(3, 150, 99)]);
    expect(await getSource(client, index, '3')).toMatchObject({ version: 200, source: { __deleted: true } });
    const live = await client.count({ index: `${index}-live`, query: { term: { orderid: 3 } } });
    expect(live.count).toBe(0);
    // A re-insert after the delete brings it back.
    await run([upsert(3, 250, 5, 'c')]);
    expect((await client.count({ index: `${index}-live`, query: { term: { orderid: 3 } } })).count).toBe(1);
  });

  it('dead-letters a document the mapping rejects (400) and writes the rest of the batch', async () => {
    const deadLetters = new MemoryDeadLetterStore();
    const poison = changeEvent({ after: { ...order(4), amount: 'not a number' }, lsn: 100 });
    const report = await run([upsert(5, 100, 1, 'c'), poison, upsert(6, 100, 1, 'c')], deadLetters);
    expect(report).toMatchObject({ ok: 2, deadLettered: 1, retried: 0 });
    const [letter] = [...deadLetters.documents.values()];
    expect(letter?.reason).toMatch(/400 .*document_parsing_exception|400 .*mapper_parsing_exception/);
    expect(JSON.parse(Buffer.from(letter?.body ?? '', 'base64').toString())).toMatchObject({ after: { amount: 'not a number' } });
    // Only a marker of the refused version (not live), no data.
    expect((await getSource(client, index, '4'))?.source).toEqual(expect.objectContaining({ __deleted: true, __rejected: expect.any(String) as unknown }));
    expect((await getSource(client, index, '4'))?.source).not.toHaveProperty('amount');
    expect(await getSource(client, index, '6')).toBeDefined();
  });

  it('a dead-lettered latest version does not leave an older version live: a marker takes its version until a newer one lands', async () => {
    const deadLetters = new MemoryDeadLetterStore();
    await run([upsert(13, 100, 1, 'c')]);
    const poison = changeEvent({ op: 'u', after: { ...order(13), amount: 'not a number' }, lsn: 200 });
    expect(await run([poison], deadLetters)).toMatchObject({ deadLettered: 1, retried: 0 });
    expect(await getSource(client, index, '13')).toMatchObject({
      version: 200,
      source: { __deleted: true, __version: 200, __op: 'u', __rejected: expect.stringMatching(/400 .*amount/) as unknown },
    });
    expect((await getSource(client, index, '13'))?.source).not.toHaveProperty('amount');
    expect((await client.count({ index: `${index}-live`, query: { term: { orderid: 13 } } })).count).toBe(0);
    // The older version delivered again stays out; the next good version is live again.
    await run([upsert(13, 100, 1, 'c')]);
    expect((await client.count({ index: `${index}-live`, query: { term: { orderid: 13 } } })).count).toBe(0);
    await run([upsert(13, 300, 3)]);
    expect((await getSource(client, index, '13'))?.source).toMatchObject({ amount: 3, __deleted: false, __version: 300 });
    expect((await getSource(client, index, '13'))?.source).not.toHaveProperty('__rejected');
  });

  it('maps typed columns from source.types; a field an existing index mapped otherwise keeps its mapping and the batch is written', async () => {
    const typedIndex = `${index}-typed`;
    indices.push(typedIndex);
    const typedSink = testSink(client, { 'public.typed': { elasticsearch: { index: typedIndex } } }, { controlIndex });
    const typed = (id: number, f: unknown, lsn: number) => {
      const e = changeEvent({ table: 'public.typed', op: 'c', key: { id }, after: { id, f, g: f }, lsn });
      e.source.types = { f: 'float8', g: 'float8' };
      return e;
    };
    // An index from before column types: g was mapped long by its first value.
    await client.indices.create({ index: typedIndex, mappings: { properties: { g: { type: 'long' } } } });
    const report = await processBatch(recordsOf([typed(1, 10, 100), typed(2, 10.5, 100)]), {
      sink: typedSink,
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    expect(report).toMatchObject({ ok: 2, deadLettered: 0, retried: 0 });
    const mapping = (await client.indices.getMapping({ index: typedIndex }))[typedIndex]?.mappings.properties ?? {};
    expect(mapping.f).toMatchObject({ type: 'double' });
    expect(mapping.g).toEqual({ type: 'long' });
  });

  it('keeps unchanged TOAST columns from the stored document or from an earlier write in the batch', async () => {
    const toasted = (lsn: number, amount: number) => {
      const e = changeEvent({ op: 'u', after: { orderid: 11, custid: 1, amount, purchase_time: '2020-10-09 07:23:10' }, lsn });
      e.source.unchanged_toast = ['city'];
      return e;
    };
    await run([changeEvent({ op: 'c', after: order(11, { city: 'A very long city' }), lsn: 100 })]);
    await run([toasted(200, 2)]);
    expect((await getSource(client, index, '11'))?.source).toMatchObject({ city: 'A very long city', amount: 2 });
    await run([changeEvent({ op: 'u', after: order(11, { city: 'Changed', amount: 3 }), lsn: 300 }), toasted(400, 4)]);
    expect((await getSource(client, index, '11'))?.source).toMatchObject({ city: 'Changed', amount: 4, __version: 400 });
    await run([toasted(100, 1)].map((e) => ({ ...e, key: { orderid: 12 }, after: { ...e.after, orderid: 12 } })));
    expect((await getSource(client, index, '12'))?.source).toMatchObject({ __unchanged_toast: ['city'] });
  });

  it('pure steps are retried forever: malformed envelopes are dead-lettered at decode naming the field, the rest of the batch is written, nothing retried', async () => {
    // Prepare: each hostile event breaks one field of an otherwise good insert (orderid 60 + i), as
    // bytes the trigger delivers.
    const good = (id: number) => changeEvent({ op: 'c', after: order(id), lsn: 100 });
    type Mutable = Record<string, unknown> & { source: Record<string, unknown> };
    const broken = (id: number, mutate: (e: Mutable) => void): Buffer => {
      const e = JSON.parse(JSON.stringify(good(id))) as Mutable;
      mutate(e);
      return Buffer.from(JSON.stringify(e));
    };
    const hostile: [string, unknown][] = [
      ['source.ts_ms is missing', broken(60, (e) => delete e.source.ts_ms)],
      ['ts_ms is missing', broken(61, (e) => delete e.ts_ms)],
      ['source.ts_ms is "abc"', broken(62, (e) => (e.source.ts_ms = 'abc'))],
      ['source.ts_ms is "NaN"', broken(63, (e) => (e.source.ts_ms = 'NaN'))],
      // A body the host handed over as an object can hold a NaN no JSON text can.
      ['source.ts_ms is NaN', { ...good(64), source: { ...good(64).source, ts_ms: Number.NaN } }],
      ['source.lsn is -1', broken(65, (e) => (e.source.lsn = -1))],
      [`source.lsn is ${2 ** 60}`, broken(66, (e) => (e.source.lsn = 2 ** 60))],
      ['source.lsn is "12"', broken(67, (e) => (e.source.lsn = '12'))],
      ['source.lsn is missing', broken(68, (e) => delete e.source.lsn)],
      ['op is "x"', broken(69, (e) => (e.op = 'x'))],
      ['source is null', broken(70, (e) => (e.source = null as unknown as Record<string, unknown>))],
      ['before is [1,2]', broken(71, (e) => (e.before = [1, 2]))],
      ['source.unchanged_toast is "a"', broken(72, (e) => (e.source.unchanged_toast = 'a'))],
      ['source.table is ""', broken(73, (e) => (e.source.table = ''))],
      ['source.txId is "653"', broken(74, (e) => (e.source.txId = '653'))],
    ];
    const deadLetters = new MemoryDeadLetterStore();
    const bodies = [good(58), ...hostile.map(([, body]) => body), good(59)];

    // Act
    const report = await run(bodies, deadLetters);

    // Assess
    expect(report).toMatchObject({ total: hostile.length + 2, ok: 2, deadLettered: hostile.length, retried: 0 });
    const reasons = [...deadLetters.documents.values()].map((d) => d.reason);
    expect(reasons).toEqual(hostile.map(([what]) => expect.stringContaining(`PermanentRecordError: Not a change-event envelope: ${what} (expected `)));
    expect(await getSource(client, index, '58')).toBeDefined();
    expect(await getSource(client, index, '59')).toBeDefined();
    for (let id = 60; id <= 74; id++) expect(await getSource(client, index, String(id))).toBeUndefined();
  });

  it('json/jsonb big numbers lose digits in the sinks: an unchanged TOASTed jsonb filled from the stored document keeps its digits', async () => {
    const docsIndex = `${index}-docs`;
    indices.push(docsIndex);
    const docsSink = testSink(client, { 'public.docs': { elasticsearch: { index: docsIndex } } }, { controlIndex });
    const doc = '{"n": 12345678901234567890, "a": [2.50]}';
    const insert = changeEvent({ table: 'public.docs', op: 'c', key: { id: 1 }, after: { id: 1, v: 1, doc: '@DOC@' }, lsn: 100 });
    insert.source.types = { doc: 'jsonb' };
    const update = changeEvent({ table: 'public.docs', op: 'u', key: { id: 1 }, after: { id: 1, v: 2 }, lsn: 200 });
    update.source.types = { doc: 'jsonb' };
    update.source.unchanged_toast = ['doc'];
    // Wire bodies: the json value's digits as the reader writes them.
    await processBatch(recordsOf([Buffer.from(JSON.stringify(insert).replace('"@DOC@"', doc))]), {
      sink: docsSink,
      deadLetters: new MemoryDeadLetterStore(),
      batch,
    });
    await processBatch(recordsOf([Buffer.from(JSON.stringify(update))]), { sink: docsSink, deadLetters: new MemoryDeadLetterStore(), batch });
    const raw = await client.get({ index: docsIndex, id: '1' }, { asStream: true });
    const chunks: Buffer[] = [];
    for await (const chunk of raw as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString();
    expect(text).toContain('"doc":{"n":12345678901234567890,"a":[2.50]}');
    expect(text).toContain('"v":2');
    expect(text).toContain(`"doc":${JSON.stringify(doc)}`);
  });

  it('a primary-key change drops unchanged TOAST values: a create whose values cannot be known is dead-lettered with the reason, never written incomplete', async () => {
    const keyIndex = `${index}-keys`;
    indices.push(keyIndex);
    const keySink = testSink(client, { 'public.keys': { elasticsearch: { index: keyIndex } } }, { controlIndex });
    const ev = (op: 'c' | 'u' | 'd', id: number, lsn: number, row: Record<string, unknown> | null, extra: { oldKey?: number; toast?: boolean } = {}) => {
      const e = changeEvent({ table: 'public.keys', op, key: { id }, before: op === 'd' ? { id } : null, after: row, lsn });
      if (extra.toast) e.source.unchanged_toast = ['doc'];
      if (extra.oldKey !== undefined) e.old_key = { id: extra.oldKey };
      return e;
    };
    const deadLetters = new MemoryDeadLetterStore();
    const sinkRun = (events: ChangeEvent[]) => processBatch(recordsOf(events), { sink: keySink, deadLetters, batch });
    // 1 → 2 in one batch (one partition): filled from the old key's soft-deleted document.
    await sinkRun([ev('c', 1, 100, { id: 1, doc: 'big one' })]);
    expect(await sinkRun([ev('d', 1, 200, null), ev('c', 2, 200, { id: 2 }, { oldKey: 1, toast: true })])).toMatchObject({ ok: 2, deadLettered: 0 });
    expect((await getSource(client, keyIndex, '2'))?.source).toMatchObject({ id: 2, doc: 'big one', __deleted: false });
    expect((await getSource(client, keyIndex, '1'))?.source).toMatchObject({ id: 1, doc: 'big one', __deleted: true });
    // The old key's row never reached Elasticsearch: its delete has no doc to keep.
    await sinkRun([ev('d', 3, 300, null)]);
    const unknown = await sinkRun([ev('c', 4, 300, { id: 4 }, { oldKey: 3, toast: true })]);
    // The old key was used again after the change: its document no longer has the values of then.
    await sinkRun([ev('c', 5, 100, { id: 5, doc: 'five' }), ev('d', 5, 400, null), ev('c', 5, 500, { id: 5, doc: 'new five' })]);
    const movedOn = await sinkRun([ev('c', 6, 400, { id: 6 }, { oldKey: 5, toast: true })]);
    // A create with unchanged TOAST values but no old key (another producer).
    const noOldKey = await sinkRun([ev('c', 7, 600, { id: 7 }, { toast: true })]);
    expect([unknown, movedOn, noOldKey].map((r) => r.deadLettered)).toEqual([1, 1, 1]);
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
      expect.stringMatching(/unchanged TOAST values of doc are unknown \(the old key's document has no doc\)/),
      expect.stringMatching(/unchanged TOAST values of doc are unknown \(the old key's document moved on to version 500\)/),
      expect.stringMatching(/without old_key/),
    ]);
    await client.indices.refresh({ index: keyIndex });
    const live = await client.search<{ id: number }>({ index: `${keyIndex}-live`, sort: ['id'] });
    expect(live.hits.hits.map((h) => h._source?.id)).toEqual([2, 5]);
  });

  it('a primary-key change whose old key is on a partition behind: the create and the later changes of its new key in the batch wait, then arrive whole', async () => {
    const keyIndex = `${index}-keys-behind`;
    indices.push(keyIndex);
    const keySink = testSink(client, { 'public.keys': { elasticsearch: { index: keyIndex } } }, { controlIndex });
    const ev = (op: 'c' | 'u' | 'd', id: number, lsn: number, row: Record<string, unknown> | null, extra: { oldKey?: number; toast?: boolean } = {}) => {
      const e = changeEvent({ table: 'public.keys', op, key: { id }, before: op === 'd' ? { id } : null, after: row, lsn });
      if (extra.toast) e.source.unchanged_toast = ['doc'];
      if (extra.oldKey !== undefined) e.old_key = { id: extra.oldKey };
      return e;
    };
    const deadLetters = new MemoryDeadLetterStore();
    const sinkRun = (events: ChangeEvent[]) => processBatch(recordsOf(events), { sink: keySink, deadLetters, batch });
    // The new key's partition first: the key change 10 → 11 and the next update of 11 (TOAST unchanged again) in one batch.
    const newKeyBatch = [ev('c', 11, 200, { id: 11, v: 1 }, { oldKey: 10, toast: true }), ev('u', 11, 300, { id: 11, v: 2 }, { toast: true })];
    const waiting = await sinkRun(newKeyBatch).catch((error: unknown) => error);
    expect(waiting).toBeInstanceOf(BatchProcessingError);
    expect((waiting as Error).message).toMatch(/waiting for the delete of the old key "10"/);
    // Both wait for the other partition (the worker retries them soon), neither is a sink failure.
    expect((waiting as BatchProcessingError).errors).toEqual([expect.any(AwaitingPartitionError), expect.any(AwaitingPartitionError)]);
    expect(await getSource(client, keyIndex, '11')).toBeUndefined();
    // The old key's partition catches up (its insert and the change's delete), then the batch is delivered again.
    await sinkRun([ev('c', 10, 100, { id: 10, v: 0, doc: 'big ten' }), ev('d', 10, 200, null)]);
    expect(await sinkRun(newKeyBatch)).toMatchObject({ ok: 2, deadLettered: 0, retried: 0 });
    const doc = await getSource(client, keyIndex, '11');
    expect(doc).toMatchObject({ version: 300, source: { id: 11, v: 2, doc: 'big ten', __deleted: false } });
    expect(doc?.source).not.toHaveProperty('__unchanged_toast');
    expect(deadLetters.documents.size).toBe(0);
  });

  it('long keys (600 bytes, multi-column, unicode) land under a bounded _id instead of being dead-lettered', async () => {
    const longIndex = `${index}-long`;
    indices.push(longIndex);
    const longSink = testSink(client, { 'public.long_keys': { elasticsearch: { index: longIndex } } }, { controlIndex });
    const single = 'k'.repeat(600);
    const unicode = 'ü✓'.repeat(120); // 600 bytes in UTF-8, 240 characters
    const keys = [{ a: single }, { a: 'x'.repeat(300), b: 'y'.repeat(300) }, { a: unicode }, { a: `${'z'.repeat(599)}1` }, { a: `${'z'.repeat(599)}2` }];
    const events = keys.flatMap((key, i) => [
      changeEvent({ table: 'public.long_keys', op: 'c', key, after: { ...key, v: i }, lsn: 100 }),
      changeEvent({ table: 'public.long_keys', op: 'u', key, after: { ...key, v: i + 10 }, lsn: 200 }),
    ]);
    const deadLetters = new MemoryDeadLetterStore();
    const report = await processBatch(recordsOf(events), { sink: longSink, deadLetters, batch });
    expect(report).toMatchObject({ ok: 10, deadLettered: 0, retried: 0 });
    // Redelivered: the same ids, so nothing is duplicated and nothing goes back in time.
    await processBatch(recordsOf(events.slice(0, 4)), { sink: longSink, deadLetters, batch });
    await client.indices.refresh({ index: longIndex });
    const docs = await client.search<Record<string, unknown>>({ index: `${longIndex}-live`, size: 20, sort: ['v'] });
    expect(docs.hits.hits.map((h) => h._source?.v)).toEqual([10, 11, 12, 13, 14]);
    expect(docs.hits.hits.map((h) => ({ a: h._source?.a, b: h._source?.b }))).toEqual(keys.map((k) => ({ a: k.a, b: (k as { b?: string }).b })));
    for (const hit of docs.hits.hits) expect(Buffer.byteLength(hit._id ?? '')).toBeLessThanOrEqual(512);
    expect(new Set(docs.hits.hits.map((h) => h._id)).size).toBe(5);
    expect(deadLetters.documents.size).toBe(0);
  });

  it('columns Elasticsearch cannot hold (_id, _source, empty, x next to x.y) and columns named like sink metadata (__op, __deleted, __version) land under escaped names', async () => {
    const oddIndex = `${index}-odd`;
    indices.push(oddIndex);
    const oddSink = testSink(client, { 'public.odd': { elasticsearch: { index: oddIndex } } }, { controlIndex });
    const row = (id: number) => ({
      id,
      _id: `own-${id}`,
      _source: 's',
      _doc_count: 7,
      '': 'empty',
      ' ': 'blank',
      x: 1,
      'x.y': 2,
      '.z': 3,
      '%': 'percent',
      __op: 'mine',
      __deleted: 'no',
      __version: 'v1',
      _private: 'kept as is',
    });
    const deadLetters = new MemoryDeadLetterStore();
    const events = [1, 2].map((id) => changeEvent({ table: 'public.odd', op: 'c', key: { id }, after: row(id), lsn: 100 }));
    events.push(changeEvent({ table: 'public.odd', op: 'd', key: { id: 2 }, before: row(2), lsn: 200 }));
    const report = await processBatch(recordsOf(events), { sink: oddSink, deadLetters, batch });
    expect(report).toMatchObject({ ok: 3, deadLettered: 0, retried: 0 });
    expect((await getSource(client, oddIndex, '1'))?.source).toEqual({
      id: 1,
      '%5Fid': 'own-1',
      '%5Fsource': 's',
      '%5Fdoc_count': 7,
      '%': 'empty',
      '%20': 'blank',
      x: 1,
      'x%2Ey': 2,
      '%2Ez': 3,
      '%25': 'percent',
      '%5F_op': 'mine',
      '%5F_deleted': 'no',
      '%5F_version': 'v1',
      _private: 'kept as is',
      __op: 'c',
      __table: 'odd',
      __lsn: 100,
      __source_ts_ms: EVENT_TS_MS,
      __deleted: false,
      __version: 100,
    });
    expect((await getSource(client, oddIndex, '2'))?.source).toMatchObject({ __op: 'd', __deleted: true, __version: 200, '%5F_deleted': 'no' });
    await client.indices.refresh({ index: oddIndex });
    expect((await client.count({ index: `${oddIndex}-live` })).count).toBe(1);
  });

  it('retries throttled items (429) and fails the invocation until Elasticsearch accepts them', async () => {
    await run([upsert(7, 100, 1, 'c')]);
    // A read_only_allow_delete block (what the disk flood stage sets) answers writes with 429.
    await client.indices.putSettings({ index, settings: { 'index.blocks.read_only_allow_delete': true } });
    try {
      const error = await run([upsert(7, 200, 2)]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BatchProcessingError);
      expect((error as Error).message).toMatch(/429/);
    } finally {
      await client.indices.putSettings({ index, settings: { 'index.blocks.read_only_allow_delete': null } });
    }
    // The host re-runs the same batch: now it succeeds.
    await run([upsert(7, 200, 2)]);
    expect((await getSource(client, index, '7'))?.source.amount).toBe(2);
  });

  it('fails the whole invocation (retry, nothing dead-lettered) when Elasticsearch is unreachable', async () => {
    const down = new Client({ node: 'http://127.0.0.1:9', maxRetries: 0, requestTimeout: 1000 });
    const deadLetters = new MemoryDeadLetterStore();
    const error = await processBatch(recordsOf([upsert(8, 100, 1, 'c')]), {
      sink: testSink(down, testRoutes(index), { controlIndex, ensureTemplates: false }),
      deadLetters,
      batch,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchProcessingError);
    expect(deadLetters.documents.size).toBe(0);
    await down.close();
  });

  it('applies a truncate as versioned soft-deletes plus a watermark that skips late older writes', async () => {
    const t = changeEvent({ table: 'bank.holding', op: 't', lsn: 400, key: null });
    const holdingIndex = `${index}-holding`;
    await run([holding(1, 100), holding(2, 200), holding(3, 300)]);
    // Within one batch the older write lands first and the truncate then soft-deletes it.
    const report = await run([t, holding(2, 250), holding(4, 500)]);
    expect(report).toMatchObject({ ok: 3, retried: 0 });
    await client.indices.refresh({ index: holdingIndex });
    const live = await client.search<{ holding_id: number }>({ index: `${holdingIndex}-live`, sort: ['holding_id'] });
    expect(live.hits.hits.map((h) => h._source?.holding_id)).toEqual([4]);
    expect(await getSource(client, holdingIndex, '1')).toMatchObject({ version: 400, source: { __deleted: true, __op: 't' } });
    // Redelivery of the pre-truncate insert after the truncate: skipped, not resurrected.
    // ... and a pre-truncate insert of a row the index never had (e.g. from a lagging partition).
    const late = await run([holding(1, 100), holding(5, 300)]);
    expect(late.skipped).toBe(2);
    await client.indices.refresh({ index: holdingIndex });
    expect((await client.count({ index: `${holdingIndex}-live` })).count).toBe(1);
    expect(await getSource(client, holdingIndex, '5')).toMatchObject({ version: 400, source: { __deleted: true, __op: 't' } });
    expect(await getSource(client, holdingIndex, '1')).toMatchObject({ version: 400, source: { __deleted: true } });
  });

  it('a write held back past a truncate that another consumer applies meanwhile is still soft-deleted (the watermarks are read after the bulk)', async () => {
    const raceIndex = `${index}-race`;
    indices.push(raceIndex, `${raceIndex}-holding`, `${raceIndex}-control`);
    // The lagging consumer's client holds its next bulk request until released; its mget calls are tracked.
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached = (): void => undefined;
    const bulkReached = new Promise<void>((resolve) => (reached = resolve));
    const mgets: Promise<unknown>[] = [];
    let holdNext = false;
    const laggingClient = new Proxy(client, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        if (prop === 'bulk') {
          return async (...args: unknown[]) => {
            if (holdNext) {
              holdNext = false;
              reached();
              await held;
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        if (prop === 'mget') {
          return (...args: unknown[]) => {
            const answer = (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            mgets.push(answer.catch(() => undefined));
            return answer;
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const routes = testRoutes(raceIndex);
    const other = testSink(client, routes, { controlIndex: `${raceIndex}-control` });
    const lagging = testSink(laggingClient, routes, { controlIndex: `${raceIndex}-control` });
    const holdingIndex = `${raceIndex}-holding`;
    const byOther = (events: ChangeEvent[]) => processBatch(recordsOf(events), { sink: other, deadLetters: new MemoryDeadLetterStore(), batch });
    expect(await byOther([holding(1, 100)])).toMatchObject({ ok: 1 });

    // The lagging consumer's batch (a change from before the truncate) gets as far as its bulk request...
    holdNext = true;
    const late = processBatch(recordsOf([holding(2, 200)]), { sink: lagging, deadLetters: new MemoryDeadLetterStore(), batch });
    await bulkReached;
    await Promise.all(mgets);
    // ... while another consumer applies the truncate, whose sweep cannot see the held write yet.
    expect(await byOther([changeEvent({ table: 'bank.holding', op: 't', lsn: 300, key: null })])).toMatchObject({ ok: 1, retried: 0 });
    release();
    expect(await late).toMatchObject({ skipped: 1, retried: 0, deadLettered: 0 });
    await client.indices.refresh({ index: holdingIndex });
    expect(await getSource(client, holdingIndex, '2')).toMatchObject({ version: 300, source: { __deleted: true, __op: 't' } });
    expect((await client.count({ index: `${holdingIndex}-live` })).count).toBe(0);
  });

  it('wildcard routes lower-case names, so mixed-case or quoted tables collide: each table gets its own index, and a truncate of one leaves the other live', async () => {
    const wildcardSink = testSink(client, { '*': { elasticsearch: { index: `${index}-w-{schema}.{table}` } } }, { controlIndex });
    const row = (schema: string, table: string, op: 'c' | 't', lsn: number) => {
      const event = changeEvent({ op, after: op === 't' ? null : order(1, { city: `${schema}|${table}` }), key: op === 't' ? null : { orderid: 1 }, lsn });
      event.source.schema = schema;
      event.source.table = table;
      return event;
    };
    // Before: "App"."T" and app.t were both cdc-…app.t, "a.b".c and a."b.c" both cdc-…a.b.c.
    const tables: [string, string][] = [
      ['App', 'T'],
      ['app', 't'],
      ['a.b', 'c'],
      ['a', 'b.c'],
    ];
    const report = await run(
      tables.map(([schema, table], i) => row(schema, table, 'c', 1000 + i)),
      new MemoryDeadLetterStore(),
      wildcardSink,
    );
    expect(report).toMatchObject({ ok: 4, deadLettered: 0, retried: 0 });
    // A truncate of "App"."T" only.
    expect(await run([row('App', 'T', 't', 2000)], new MemoryDeadLetterStore(), wildcardSink)).toMatchObject({ ok: 1, retried: 0 });
    const targets = tables.map(([schema, table]) => (wildcardSink.prepare(row(schema, table, 'c', 1)) as { index: string }).index);
    indices.push(...targets);
    expect(new Set(targets).size).toBe(4);
    await client.indices.refresh({ index: targets });
    const live = await Promise.all(
      targets.map(async (target) => (await client.search<{ city: string }>({ index: `${target}-live` })).hits.hits.map((h) => h._source?.city)),
    );
    expect(live).toEqual([[], ['app|t'], ['a.b|c'], ['a|b.c']]);
    await client.indices.deleteIndexTemplate({ name: `cdc-table-${index}-w-_._` });
  });

  it('two tables reaching one index at run time (two catalogues, or an index written before names were escaped): the second table is dead-lettered, the first stays intact', async () => {
    const shared = `${index}-shared`;
    indices.push(shared);
    const one = testSink(client, { 'x.one': { elasticsearch: { index: shared } } }, { controlIndex });
    const two = testSink(client, { 'x.two': { elasticsearch: { index: shared } } }, { controlIndex });
    const event = (table: string, op: 'c' | 't', lsn: number, id = 1) =>
      changeEvent({ table, op, after: op === 't' ? null : order(id, { city: table }), key: op === 't' ? null : { orderid: id }, lsn });
    expect(await run([event('x.one', 'c', 100)], new MemoryDeadLetterStore(), one)).toMatchObject({ ok: 1, deadLettered: 0 });
    const deadLetters = new MemoryDeadLetterStore();
    const report = await run([event('x.two', 'c', 200), event('x.two', 't', 300)], deadLetters, two);
    expect(report).toMatchObject({ ok: 0, deadLettered: 2, retried: 0 });
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([
      expect.stringMatching(/^Elasticsearch index .*-shared holds the documents of x\.one, and x\.two is routed there too: not written/),
      expect.stringMatching(/holds the documents of x\.one, and x\.two is routed there too/),
    ]);
    // Another process of the first catalogue reads the recorded owner and goes on writing.
    const again = testSink(client, { 'x.one': { elasticsearch: { index: shared } } }, { controlIndex });
    expect(await run([event('x.one', 'c', 400, 2)], new MemoryDeadLetterStore(), again)).toMatchObject({ ok: 1, deadLettered: 0 });
    await client.indices.refresh({ index: shared });
    const live = await client.search<{ orderid: number; city: string }>({ index: `${shared}-live`, sort: ['orderid'] });
    expect(live.hits.hits.map((h) => [h._source?.orderid, h._source?.city])).toEqual([
      [1, 'x.one'],
      [2, 'x.one'],
    ]);
  });

  it("refuses a control index that is a table's index (or alias): watermarks and claims would land among its rows", () => {
    expect(() => testSink(client, { 'a.one': { elasticsearch: { index: 'cdc-x' } } }, { controlIndex: 'cdc-x-live' })).toThrow(
      'ES_CONTROL_INDEX: expected an index no table is routed to (it is the index of a.one in CDC_ROUTES), got "cdc-x-live"',
    );
    expect(() => testSink(client, { '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } }, { controlIndex: 'cdc-control' })).not.toThrow();
  });
});
