/**
 * Schema changes in the Elasticsearch sink against the real test service: the reader's control events
 * (`schema_change` on every partition, then the reconcile snapshot's `snapshot_started` / rows /
 * `snapshot_done`) produced here, fed through the batch core per partition as the consumers would.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@elastic/elasticsearch';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchReport, EventRecord } from '../../../src/shared/batch/types.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { ElasticsearchSink } from '../../../src/shared/elasticsearch/elasticsearchSink.js';
import type { ChangeEvent, RowImage } from '../../../src/shared/events/changeEvent.js';
import type { ColumnShape } from '../../../src/shared/events/controlMessage.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { Router } from '../../../src/shared/routing/routes.js';
import { changeEvent } from '../../helpers/events.js';
import { cleanup, testClient, testSink, uniqueIndex } from '../esTestKit.js';

const client: Client = testClient();
const prefix = uniqueIndex('schemav');
const controlIndex = `${prefix}-control`;
const created: string[] = [controlIndex];
afterAll(async () => {
  const names = await client.cat.indices({ index: `${prefix}*`, format: 'json', h: 'index' }).catch(() => []);
  await cleanup(client, [...created, ...(names as { index?: string }[]).flatMap((n) => (n.index ? [n.index] : []))]);
  await client.indices.deleteIndexTemplate({ name: `cdc-table-${prefix}-_._` }).catch(() => undefined);
  await client.close();
});

let offset = 0;
async function run(
  sink: { name: string } & Parameters<typeof processBatch>[1]['sink'],
  partition: string,
  events: unknown[],
  deadLetters: MemoryDeadLetterStore,
): Promise<BatchReport> {
  const records: EventRecord[] = events.map((body) => ({ body, partitionId: partition, offset: String(offset++), sequenceNumber: String(offset) }));
  return processBatch(records, { sink, deadLetters, batch: { functionName: 'es', partitionId: partition, firstOffset: '0', lastOffset: '0' } });
}

const SCHEMA = 'app';
function row(table: string, op: 'c' | 'u' | 'd' | 'r', image: RowImage, lsn: number, key: RowImage, types?: Record<string, string>): ChangeEvent {
  const event = changeEvent({ table: `${SCHEMA}.${table}`, op, after: op === 'd' ? null : image, before: op === 'd' ? image : null, key, lsn });
  if (op === 'r') event.source.snapshot = 'incremental';
  if (types) event.source.types = types;
  return event;
}

function control(table: string, lsn: number, kind: string, content: Record<string, unknown>): ChangeEvent {
  const event = changeEvent({ table: `${SCHEMA}.${table}`, op: 'm', after: null, key: null, lsn });
  return { ...event, before: null, message: { prefix: 'pg-cdc', kind, content: { table: `${SCHEMA}.${table}`, ...content } } } as ChangeEvent;
}

function schemaChange(table: string, lsn: number, previous: { columns: ColumnShape[]; key: string[] }, columns: ColumnShape[], key: string[], partitions = 2) {
  const had = new Map(previous.columns.map((c) => [c.name, c.type]));
  const has = new Set(columns.map((c) => c.name));
  return control(table, lsn, 'schema_change', {
    columns,
    key,
    previous,
    added: columns.filter((c) => !had.has(c.name)).map((c) => c.name),
    dropped: previous.columns.filter((c) => !has.has(c.name)).map((c) => c.name),
    retyped: columns.filter((c) => had.has(c.name) && had.get(c.name) !== c.type).map((c) => `${c.name}: ${had.get(c.name)} -> ${c.type}`),
    partitions,
  });
}

async function live(index: string): Promise<Map<string, Record<string, unknown>>> {
  await client.indices.refresh({ index: `${index}*` });
  const page = await client.search<Record<string, unknown>>({ index: `${index}-live`, size: 1000 });
  return new Map(page.hits.hits.map((h) => [h._id ?? '', h._source ?? {}]));
}

/** The document's column values (metadata `__*` left out). */
function columnsOf(doc: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(doc ?? {}).filter(([k]) => !k.startsWith('__')));
}

async function aliasTargets(alias: string): Promise<string[]> {
  const response = await client.indices.getAlias({ name: alias }, { ignore: [404] });
  return Object.keys(response).sort();
}

function sinkFor(grace: number): ElasticsearchSink {
  return testSink(client, { '*': { elasticsearch: { index: `${prefix}-{schema}.{table}` } } }, { controlIndex, oldIndexGraceMinutes: grace });
}

describe('Elasticsearch sink: schema changes', () => {
  it('a type the index cannot take (integer -> text) builds <index>-v2, fills it from the snapshot and the stream, and moves both aliases when every partition is done', async () => {
    const table = 'retyped';
    const index = `${prefix}-${SCHEMA}.${table}`;
    const dead = new MemoryDeadLetterStore();
    // Two consumers (partitions), as two processes: each its own sink.
    const p0 = sinkFor(60);
    const p1 = sinkFor(60);
    const v1cols = [
      { name: 'id', type: 'integer' },
      { name: 'a', type: 'integer' },
    ];
    const v2cols = [
      { name: 'id', type: 'integer' },
      { name: 'a', type: 'text' },
    ];
    // Before: ids 1,3 on partition 0, ids 2,4 on partition 1; a is a number (mapped long).
    await run(p0, '0', [row(table, 'c', { id: 1, a: 10 }, 100, { id: 1 }), row(table, 'c', { id: 3, a: 30 }, 110, { id: 3 })], dead);
    await run(p1, '1', [row(table, 'c', { id: 2, a: 20 }, 105, { id: 2 }), row(table, 'c', { id: 4, a: 40 }, 115, { id: 4 })], dead);
    expect((await client.indices.getMapping({ index }))[index]?.mappings.properties?.a).toMatchObject({ type: 'long' });

    // ALTER COLUMN a TYPE text at 200; then non-numeric values on both partitions.
    const change = schemaChange(table, 200, { columns: v1cols, key: ['id'] }, v2cols, ['id']);
    const r0 = await run(p0, '0', [change, row(table, 'u', { id: 1, a: 'one' }, 210, { id: 1 })], dead);
    const r1 = await run(p1, '1', [change, row(table, 'u', { id: 2, a: 'two' }, 215, { id: 2 }), row(table, 'd', { id: 4, a: '40' }, 216, { id: 4 })], dead);
    expect([r0.deadLettered, r1.deadLettered, dead.documents.size]).toEqual([0, 0, 0]);
    expect(await client.indices.exists({ index: `${index}-v2` })).toBe(true);
    // Readers of the aliases still see the old version, whole, as of the change.
    expect(await aliasTargets(`${index}-live`)).toEqual([index]);
    expect([...(await live(index)).values()].map(columnsOf).sort((x, y) => Number(x.id) - Number(y.id))).toEqual([
      { id: 1, a: 10 },
      { id: 2, a: 20 },
      { id: 3, a: 30 },
      { id: 4, a: 40 },
    ]);

    // The reconcile snapshot: started on both partitions, rows of each partition's keys, done on partition 0 first.
    const started = (lsn: number) => control(table, lsn, 'snapshot_started', { id: 'sig-1', where: null });
    const done = (lsn: number) => control(table, lsn, 'snapshot_done', { id: 'sig-1', where: null, rows: 3 });
    await run(
      p0,
      '0',
      [started(300), row(table, 'r', { id: 1, a: 'one' }, 301, { id: 1 }), row(table, 'r', { id: 3, a: '30' }, 301, { id: 3 }), done(302)],
      dead,
    );
    expect(await aliasTargets(`${index}-live`)).toEqual([index]);
    await run(p1, '1', [started(300), row(table, 'r', { id: 2, a: 'two' }, 301, { id: 2 }), done(302)], dead);

    // Moved in one step; the old version kept as <index>-v1 for the grace period.
    expect(await aliasTargets(`${index}-live`)).toEqual([`${index}-v2`]);
    expect(await aliasTargets(index)).toEqual([`${index}-v2`]);
    expect(await client.indices.exists({ index: `${index}-v1` })).toBe(true);
    expect((await client.indices.getMapping({ index: `${index}-v2` }))[`${index}-v2`]?.mappings.properties?.a).toMatchObject({ type: 'keyword' });
    const docs = await live(index);
    expect([...docs.values()].map(columnsOf).sort((x, y) => Number(x.id) - Number(y.id))).toEqual([
      { id: 1, a: 'one' },
      { id: 2, a: 'two' },
      { id: 3, a: '30' },
    ]);
    expect([...dead.documents.values()].map((d) => d.reason)).toEqual([]);

    // Later writes go through the alias to v2; a late redelivery of the old change batch is harmless.
    await run(p0, '0', [row(table, 'u', { id: 3, a: 'three' }, 400, { id: 3 })], dead);
    await run(p1, '1', [change], dead);
    expect(columnsOf((await live(index)).get('3'))).toEqual({ id: 3, a: 'three' });
    expect(await aliasTargets(`${index}-live`)).toEqual([`${index}-v2`]);
    expect([...dead.documents.values()].map((d) => d.reason)).toEqual([]);
  });

  it('a new key (id -> code) leaves no document of the old key, deleted rows included; the old version goes after the grace period (0 here)', async () => {
    const table = 'rekeyed';
    const index = `${prefix}-${SCHEMA}.${table}`;
    const dead = new MemoryDeadLetterStore();
    const sink = sinkFor(0);
    const before = [
      { name: 'id', type: 'integer' },
      { name: 'code', type: 'text' },
    ];
    await run(
      sink,
      '0',
      [
        row(table, 'c', { id: 1, code: 'A' }, 100, { id: 1 }),
        row(table, 'c', { id: 2, code: 'B' }, 101, { id: 2 }),
        row(table, 'c', { id: 3, code: 'C' }, 102, { id: 3 }),
        row(table, 'd', { id: 3, code: 'C' }, 103, { id: 3 }),
      ],
      dead,
    );
    expect((await live(index)).size).toBe(2);
    const change = schemaChange(table, 200, { columns: before, key: ['id'] }, before, ['code'], 1);
    await run(
      sink,
      '0',
      [
        change,
        row(table, 'c', { id: 4, code: 'D' }, 210, { code: 'D' }),
        control(table, 300, 'snapshot_started', { id: 'k', where: null }),
        row(table, 'r', { id: 1, code: 'A' }, 301, { code: 'A' }),
        row(table, 'r', { id: 2, code: 'B' }, 301, { code: 'B' }),
        row(table, 'r', { id: 4, code: 'D' }, 301, { code: 'D' }),
        control(table, 302, 'snapshot_done', { id: 'k', where: null, rows: 3 }),
      ],
      dead,
    );
    expect([...dead.documents.values()].map((d) => d.reason)).toEqual([]);
    const docs = await live(index);
    expect([...docs.keys()].sort()).toEqual(['A', 'B', 'D']);
    // Every document of the index, soft-deleted ones too: only the new key's.
    const all = await client.search({ index, size: 100 });
    expect(all.hits.hits.map((h) => h._id).sort()).toEqual(['A', 'B', 'D']);
    expect(await client.indices.exists({ index: `${index}-v1` })).toBe(false);
  });

  it('a new nullable column applies in place; the reconcile snapshot drops removed fields and adds defaults (no new version)', async () => {
    const table = 'inplace';
    const index = `${prefix}-${SCHEMA}.${table}`;
    const dead = new MemoryDeadLetterStore();
    const sink = sinkFor(60);
    const v1 = [
      { name: 'id', type: 'integer' },
      { name: 's', type: 'text' },
    ];
    await run(sink, '0', [row(table, 'c', { id: 1, s: 'x' }, 100, { id: 1 }), row(table, 'c', { id: 2, s: 'y' }, 101, { id: 2 })], dead);
    // ADD COLUMN n numeric (nullable): the next write maps it from source.types.
    const v2 = [...v1, { name: 'n', type: 'numeric(10,2)' }];
    await run(
      sink,
      '0',
      [schemaChange(table, 200, { columns: v1, key: ['id'] }, v2, ['id'], 1), row(table, 'u', { id: 1, s: 'x', n: 1.5 }, 210, { id: 1 }, { n: 'numeric' })],
      dead,
    );
    expect(await client.indices.exists({ index: `${index}-v2` })).toBe(false);
    expect((await client.indices.getMapping({ index }))[index]?.mappings.properties?.n).toMatchObject({ type: 'double' });
    // DROP COLUMN s, ADD COLUMN c DEFAULT 'x': the snapshot's rows replace the documents whole.
    const v3 = [
      { name: 'id', type: 'integer' },
      { name: 'n', type: 'numeric(10,2)' },
      { name: 'c', type: 'text' },
    ];
    await run(
      sink,
      '0',
      [
        schemaChange(table, 300, { columns: v2, key: ['id'] }, v3, ['id'], 1),
        control(table, 400, 'snapshot_started', { id: 'd', where: null }),
        row(table, 'r', { id: 1, n: 1.5, c: 'x' }, 401, { id: 1 }, { n: 'numeric' }),
        row(table, 'r', { id: 2, n: null, c: 'x' }, 401, { id: 2 }, { n: 'numeric' }),
        control(table, 402, 'snapshot_done', { id: 'd', where: null, rows: 2 }),
      ],
      dead,
    );
    expect([...dead.documents.values()].map((d) => d.reason)).toEqual([]);
    expect(await client.indices.exists({ index: `${index}-v2` })).toBe(false);
    const docs = await live(index);
    expect(columnsOf(docs.get('1'))).toEqual({ id: 1, n: 1.5, c: 'x' });
    expect(columnsOf(docs.get('2'))).toEqual({ id: 2, n: null, c: 'x' });
  });

  it('a second incompatible change while a version is being built starts a newer one and drops the unfinished one', async () => {
    const table = 'twice';
    const index = `${prefix}-${SCHEMA}.${table}`;
    const dead = new MemoryDeadLetterStore();
    const sink = sinkFor(60);
    const cols = (a: string) => [
      { name: 'id', type: 'integer' },
      { name: 'a', type: a },
    ];
    await run(sink, '0', [row(table, 'c', { id: 1, a: 1 }, 100, { id: 1 }), row(table, 'c', { id: 2, a: 2 }, 101, { id: 2 })], dead);
    await run(
      sink,
      '0',
      [schemaChange(table, 200, { columns: cols('integer'), key: ['id'] }, cols('text'), ['id'], 1), row(table, 'u', { id: 1, a: 'x' }, 210, { id: 1 })],
      dead,
    );
    expect(await client.indices.exists({ index: `${index}-v2` })).toBe(true);
    await run(
      sink,
      '0',
      [
        schemaChange(table, 300, { columns: cols('text'), key: ['id'] }, cols('jsonb'), ['id'], 1),
        row(table, 'u', { id: 1, a: { k: [1] } }, 310, { id: 1 }, { a: 'jsonb' }),
        control(table, 400, 'snapshot_started', { id: 's', where: null }),
        row(table, 'r', { id: 1, a: { k: [1] } }, 401, { id: 1 }, { a: 'jsonb' }),
        row(table, 'r', { id: 2, a: '2' }, 401, { id: 2 }, { a: 'jsonb' }),
        control(table, 402, 'snapshot_done', { id: 's', where: null, rows: 2 }),
      ],
      dead,
    );
    expect([...dead.documents.values()].map((d) => d.reason)).toEqual([]);
    expect(await client.indices.exists({ index: `${index}-v2` })).toBe(false);
    expect(await aliasTargets(`${index}-live`)).toEqual([`${index}-v3`]);
    const docs = await live(index);
    expect([...docs.values()].map(columnsOf).sort((x, y) => Number(x.id) - Number(y.id))).toEqual([
      { id: 1, a: { k: [1] } },
      { id: 2, a: '2' },
    ]);
  });

  it('the change history records a schema change as one row of its own (its copies on other partitions add none)', async () => {
    const history = `${prefix}-history`;
    created.push(history);
    const sink = new ElasticsearchHistorySink({ client, router: new Router({ '*': {} }), index: history, replicas: 0 });
    const dead = new MemoryDeadLetterStore();
    const previous = { columns: [{ name: 'id', type: 'integer' }], key: ['id'] };
    const change = schemaChange('hist', 500, previous, [...previous.columns, { name: 'b', type: 'jsonb' }], ['id']);
    const reports = [await run(sink, '0', [change], dead), await run(sink, '1', [change], dead)];
    expect(reports.map((r) => r.deadLettered + r.retried)).toEqual([0, 0]);
    await client.indices.refresh({ index: history });
    const rows = await client.search<Record<string, unknown>>({ index: history, query: { term: { Op: 's' } } });
    expect(rows.hits.hits.map((h) => h._source)).toEqual([
      expect.objectContaining({ SourceTable: `${SCHEMA}.hist`, Op: 's', Column: null, Key: null, Lsn: 500, OldValue: JSON.stringify(previous) }),
    ]);
    expect(JSON.parse(String(rows.hits.hits[0]?._source?.NewValue))).toMatchObject({ added: ['b'], key: ['id'] });
  });
});
