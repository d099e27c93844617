/**
 * End to end, for values: SQL on the real PostgreSQL → the reader → Kafka → trigger-shaped batches →
 * the elasticsearchSink handler → real Elasticsearch with the default templates (a wildcard route,
 * no explicit properties). Every type of the documented type mapping, with the edge values that used
 * to be dead-lettered, must land, and the `-live` documents must equal PostgreSQL's own JSON of each
 * row (`to_json`), normalised per the documented mapping.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { Admin } from '@platformatic/kafka';
import { createEventHubBatchHandler, type EventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import { Router } from '../../src/shared/routing/routes.js';
import { cleanup as cleanupReader, pgClient, readerEnv, startReader, TopicCollector, uniqueName, type RunningReader } from '../reader/helpers.js';
import { serviceEnv } from '../helpers/services.js';
import { testClient } from '../shared/esTestKit.js';
import { deliverAsHost as deliverToHost, expectedRows as expectedRowsOf, liveDocuments as liveDocumentsOf, numberText } from './pipelineKit.js';
import { triggerBatch } from './triggerBatch.js';

const name = uniqueName('e2e_values');
const s = `${name}_s`;
const prefix = name.replaceAll('_', '-');
const indexOf = (table: string) => `${prefix}-${s}.${table}`;
const client = testClient();
const deadLetters = new MemoryDeadLetterStore();
let c: pg.Client;
let reader: RunningReader;
let topic: TopicCollector;
let handler: EventHubBatchHandler;
let delivered = 0;

/** Delivers what arrived since the last call, one batch per Kafka partition, as the trigger does (Buffer bodies). */
async function deliver(): Promise<void> {
  const items = topic.items.slice(delivered);
  delivered += items.length;
  const partitions = new Map<number, typeof items>();
  for (const item of items) partitions.set(item.partition, [...(partitions.get(item.partition) ?? []), item]);
  for (const [partition, list] of partitions) {
    const { messages, context } = triggerBatch(
      list.map((i) => Buffer.from(i.raw)),
      { partitionId: String(partition), firstOffset: Number(list[0]?.offset ?? 0n) },
    );
    const report = await handler(messages, context);
    expect(report.retried).toBe(0);
  }
}

/** Delivers what arrived since the last call as the host does (retrying failed batches); returns the retries. */
async function deliverAsHost(order: (partitions: number[]) => number[]): Promise<number> {
  const items = topic.items.slice(delivered);
  delivered += items.length;
  return deliverToHost(items, [{ handler, functionName: 'elasticsearchSink' }], order);
}

const liveDocuments = (index: string) => liveDocumentsOf(client, index);
const expectedRows = (table: string, asText?: string[]) => expectedRowsOf(c, `${s}.${table}`, asText ? { asText } : {});

beforeAll(async () => {
  c = await pgClient();
  await c.query(`SET TimeZone = 'UTC'; SET IntervalStyle = iso_8601;
    CREATE SCHEMA ${s};
    CREATE TYPE ${s}.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN ${s}.posint AS integer CHECK (VALUE > 0);
    CREATE TYPE ${s}.pair AS (a int, b text);
    CREATE TABLE ${s}.varied (
      id int PRIMARY KEY, b boolean, i2 smallint, i4 integer, o oid, i8 bigint, n numeric, n2 numeric(30,10), f4 real, f8 double precision,
      txt text, vc varchar(20), ch char(3), nm name, mon money, u uuid, j json, jb jsonb, ba bytea,
      d date, t time, tz timetz, ts timestamp, tstz timestamptz, iv interval,
      ai int[], at text[], an numeric[], af float8[], ats timestamp[], ajb jsonb[], m ${s}.mood, am ${s}.mood[], dom ${s}.posint,
      ip inet, cidr_col cidr, mac macaddr, bits bit(4), x xml, rng int4range, pt point, pr ${s}.pair);
    CREATE TABLE ${s}.docs (id int PRIMARY KEY, j json, jb jsonb);
    CREATE TABLE ${s}.toasty (id int PRIMARY KEY, small text, doc text);
    ALTER TABLE ${s}.toasty ALTER COLUMN doc SET STORAGE EXTERNAL;`);
  // Four partitions, as on Event Hubs: an old and a new key usually land on different ones.
  const admin = new Admin({ clientId: 'pipeline-values', bootstrapBrokers: serviceEnv().kafkaBrokers });
  await admin.createTopics({ topics: [`${name}_events`], partitions: 4, replicas: 1 });
  await admin.close();
  reader = await startReader(readerEnv(name, { CDC_TABLES: `${s}.varied,${s}.docs,${s}.toasty`, CDC_SNAPSHOT_MODE: 'never' }));
  topic = await TopicCollector.start([`${name}_events`]);
  const router = new Router({ '*': { elasticsearch: { index: `${prefix}-{schema}.{table}` } } });
  const sink = new ElasticsearchSink({ client, router, templates: { replicas: 0 }, controlIndex: `${prefix}-control` });
  handler = createEventHubBatchHandler(lazy(() => ({ sink, deadLetters })));
}, 90_000);

afterAll(async () => {
  await reader?.stop();
  await topic?.close();
  await cleanupReader(c, name, [s]);
  await c.end();
  // By name: Elasticsearch refuses a wildcard delete by default (action.destructive_requires_name).
  const existing = Object.keys(await client.indices.get({ index: `${prefix}-*`, allow_no_indices: true }).catch(() => ({})));
  if (existing.length > 0) await client.indices.delete({ index: existing }).catch(() => undefined);
  await client.indices.deleteIndexTemplate({ name: `cdc-table-${prefix}-_._` }).catch(() => undefined);
  await client.close();
});

describe('PostgreSQL → reader → Kafka → elasticsearchSink: every documented value lands', () => {
  it('Elasticsearch rejects values the reader emits as documented: varied json shapes, NaN/±Infinity, infinite timestamps, 10.0 then 10.5, huge numerics', async () => {
    const insert = (values: string) => c.query(`INSERT INTO ${s}.varied VALUES (${values})`);
    // Row 1 first, alone: its values are the ones a first-value-seen mapping would get wrong (10.0
    // arrives as 10, json an object, numeric a plain number text).
    await insert(`1, true, -32768, 2147483647, 4000000000, 1, 1, 1.5, 1, 10.0,
      'text ✓ ünïcode', 'vc', 'ab', 'nm', 12.34, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1, "b": [1, 2.50]}', '{"k": 1}', '\\x00ff7f',
      '2024-02-29', '13:14:15.5', '13:14:15+02', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.654321+05:30', '1 year 2 months 3 days 04:05:06.7',
      '{1,NULL,3}', '{"a b","c,d",NULL}', '{1.10,2.20}', '{1.5,NaN}', '{"2024-01-01 10:00:00",infinity}', ARRAY['{"a":1}'::jsonb, '"s"', '[1]'], 'happy', '{sad,ok}', 7,
      '10.0.0.1/8', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', '<a>x</a>', '[1,5)', '(1,2)', ROW(1, 'x')`);
    await insert(`2, false, 0, 0, 0, 9223372036854775807, 'NaN', '12345678901234567890.0123456789', 'NaN', 10.5,
      '', '', '', '', 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '"a string"', '{"k": {"n": 1}}', '\\x',
      'infinity', '00:00', '00:00+00', 'infinity', '-infinity', 'P0D',
      '{}', '{}', '{}', '{Infinity,-Infinity}', '{-infinity}', ARRAY[]::jsonb[], 'sad', '{}', 1,
      '::1', '::/0', '00:00:00:00:00:00', B'0000', '', 'empty', '(0,0)', ROW(NULL, NULL)`);
    await insert(`3, NULL, NULL, NULL, NULL, -9223372036854775808, ${`'${'9'.repeat(1000)}.${'1'.repeat(50)}'`}, '-0.0000000001', '-Infinity', 'Infinity',
      NULL, NULL, NULL, NULL, NULL, NULL, '[1, "two", {"three": 3}]', '"k"', NULL,
      '-infinity', NULL, NULL, '-infinity', 'infinity', NULL,
      '{{1,2},{3,4}}', NULL, '{NaN}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`);
    await insert(`4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, 'null', '[]', NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`);
    // The shapes change again on updates: an array where an object was, an object where a string was.
    await c.query(`UPDATE ${s}.varied SET jb = '[{"k": [1]}]', j = '{"now": "object"}', f4 = 1e30 WHERE id = 1`);
    await c.query(`UPDATE ${s}.varied SET jb = '{"k": "text"}', i8 = -1 WHERE id = 2`);

    await topic.waitFor('6 varied events', (events) => events.filter((e) => e.source.table === 'varied').length >= 6);
    await deliver();
    delivered = 0; // the whole stream again, as after a restart before the checkpoint: nothing changes
    await deliver();

    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
    const index = indexOf('varied');
    const live = await liveDocuments(index);
    expect(live).toEqual(await expectedRows('varied'));

    // Types come from the source columns, not from the first value seen.
    const mapping = (await client.indices.getMapping({ index }))[index]?.mappings.properties ?? {};
    expect(mapping.f8).toMatchObject({ type: 'double' });
    expect(mapping.n).toMatchObject({ type: 'double' });
    expect(mapping.ts).toMatchObject({ type: 'date' });
    expect(mapping.jb).toMatchObject({ type: 'object', enabled: false });
    // ... and the edge values stay searchable.
    const ids = async (query: object) =>
      (await client.search<{ id: number }>({ index: `${index}-live`, query, sort: ['id'] })).hits.hits.map((h) => h._source?.id);
    expect(await ids({ range: { f8: { gt: 10.2, lt: 11 } } })).toEqual([2]);
    expect(await ids({ term: { 'f4.keyword': 'NaN' } })).toEqual([2]);
    expect(await ids({ term: { 'f8.keyword': 'Infinity' } })).toEqual([3]);
    expect(await ids({ term: { 'ts.keyword': 'infinity' } })).toEqual([2]);
    expect(await ids({ term: { 'tstz.keyword': '-infinity' } })).toEqual([2]);
    expect(await ids({ range: { ts: { gte: '2024-02-29T00:00:00', lt: '2024-03-01T00:00:00' } } })).toEqual([1]);
    expect(await ids({ term: { 'n.keyword': 'NaN' } })).toEqual([2]);
    expect(await ids({ match: { '__json.jb.text': 'text' } })).toEqual([2]);
    expect(await ids({ match: { '__json.j.text': 'three' } })).toEqual([3]);
    expect(await ids({ term: { '__json.j': '"a string"' } })).toEqual([2]);
  });

  it('json/jsonb big numbers lose digits in the sinks: Elasticsearch keeps every digit, in the value and in its text copy', async () => {
    const big = '{"n": 12345678901234567890, "f": 0.1000000000000000055511151231257827, "a": [98765432109876543210, 2.50]}';
    await c.query(
      `INSERT INTO ${s}.docs VALUES (1, $1::text::json, $1::text::jsonb), (2, '123456789012345678901234567890', '-0.00000000000000000000000000001')`,
      [big],
    );
    await topic.waitFor('2 docs events', (events) => events.filter((e) => e.source.table === 'docs').length >= 2);
    await deliver();
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
    const index = indexOf('docs');
    // Exactly PostgreSQL's own JSON (json keeps the text as written, jsonb normalises it).
    expect(await liveDocuments(index)).toEqual(await expectedRows('docs', []));
    const [first] = await liveDocuments(index);
    expect(first?.j).toEqual({
      n: { n: '12345678901234567890' },
      f: { n: '0.1000000000000000055511151231257827' },
      a: [{ n: '98765432109876543210' }, { n: '2.50' }],
    });
    const copies = await client.search<{ id: number; __json: Record<string, string> }>({ index: `${index}-live`, sort: ['id'] });
    expect(copies.hits.hits.map((h) => h._source?.__json)).toEqual([
      // PostgreSQL's jsonb text (the json column's value was written in that form too).
      { j: big, jb: (await c.query<{ t: string }>(`SELECT jb::text AS t FROM ${s}.docs WHERE id = 1`)).rows[0]?.t },
      { j: '123456789012345678901234567890', jb: '-0.00000000000000000000000000001' },
    ]);
    const hits = await client.count({ index: `${index}-live`, query: { match: { '__json.jb.text': '98765432109876543210' } } });
    expect(hits.count).toBe(1);
  });

  it("a primary-key change drops unchanged TOAST values: the new key gets them from the old key's row, also when its create is delivered first", async () => {
    // More than 2 kB each, stored out of line (STORAGE EXTERNAL), so an update that does not touch
    // them leaves them out of the WAL: the reader lists them in source.unchanged_toast.
    const docOf = (id: number) => Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + ((i * 7919 + id) % 26))).join('');
    for (let id = 1; id <= 8; id++) await c.query(`INSERT INTO ${s}.toasty VALUES ($1, 'a', $2)`, [id, docOf(id)]);
    await topic.waitFor('8 toasty inserts', (events) => events.filter((e) => e.source.table === 'toasty').length >= 8);
    await deliverAsHost((partitions) => partitions);
    await c.query(`UPDATE ${s}.toasty SET id = id + 1000000, small = 'b'`);
    const events = await topic.waitFor('8 key changes', (es) => es.filter((e) => e.source.table === 'toasty' && e.op === 'c' && e.old_key).length >= 8);
    const creates = topic.items.filter((i) => i.event.source.table === 'toasty' && i.event.op === 'c' && i.event.old_key);
    expect(creates.every((i) => i.event.source.unchanged_toast?.includes('doc') && !('doc' in (i.event.after ?? {})))).toBe(true);
    // A create on another partition than its old key's delete, delivered before it: it must wait for it.
    const partitionOfDelete = (oldId: unknown) =>
      topic.items.find((i) => i.event.source.table === 'toasty' && i.event.op === 'd' && i.event.key?.id === oldId)?.partition;
    const crossing = creates.find((i) => partitionOfDelete(i.event.old_key?.id) !== i.partition);
    expect(crossing).toBeDefined();
    expect(events.filter((e) => e.source.table === 'toasty' && e.op === 'd')).toHaveLength(8);
    const retries = await deliverAsHost((partitions) => [...partitions].sort((a, b) => Number(b === crossing!.partition) - Number(a === crossing!.partition)));

    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
    const index = indexOf('toasty');
    const { rows } = await c.query<{ id: number; small: string; doc: string }>(`SELECT id, small, doc FROM ${s}.toasty ORDER BY id`);
    const live = await liveDocuments(index);
    expect(live.map((d) => ({ id: Number(numberText(d.id)), small: d.small, doc: d.doc }))).toEqual(rows);
    expect(rows.map((r) => r.doc)).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map(docOf));
    // The crossing create was delivered before its old key's delete: it waited (a retry), then landed.
    expect(retries).toBeGreaterThan(0);
  });
});
