/**
 * Schema changes end to end (issue 14 item 3): DDL on the real PostgreSQL → the reader (its
 * `schema_change` control event on every partition) → Kafka (3 partitions) → batches shaped as the
 * Event Hubs trigger delivers them → the elasticsearchSink and changeHistory handlers → real
 * Elasticsearch, with the default `"*"` route. Each case ends with the `-live` documents equal to the
 * table field by field and no dead letter.
 *
 * The reconcile snapshot is the reader's own (`CDC_SCHEMA_CHANGE_SNAPSHOT=auto`): after a change that
 * is not purely additive it re-reads the table (`snapshot_started` on every partition, the rows as
 * `op: 'r'`, `source.snapshot: 'incremental'`, `snapshot_done` on every partition); `reconciled()` waits
 * for it, and the Elasticsearch sink moves the aliases once every partition's `snapshot_done` is in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import type { RowImage } from '../../src/shared/events/changeEvent.js';
import { ElasticsearchHistorySink } from '../../src/shared/history/historySink.js';
import { Router } from '../../src/shared/routing/routes.js';
import { pgClient } from '../reader/helpers.js';
import { cleanup as cleanupEs, testClient } from '../shared/esTestKit.js';
import type { DeliveryTarget } from './pipelineKit.js';
import { kindOf, PARTITIONS, SchemaRun } from './schemaKit.js';

const TABLES = {
  retype: 'id int primary key, a int',
  tojson: 'id int primary key, s text',
  rekey: 'id int primary key, code text not null unique, n int',
  withdefault: 'id int primary key, s text',
  dropped: 'id int primary key, s text, keep int',
  renamed: 'id int primary key, s text',
  adddrop: 'id int primary key, v int',
  underload: 'id int primary key, a int',
};
type Table = keyof typeof TABLES;

const client = testClient();
const deadLetters = new MemoryDeadLetterStore();
let run: SchemaRun<Table>;
let schema: string;
let prefix: string;
let historyIndex: string;
let controlIndex: string;
const indexOf = (table: string) => `${prefix}-${schema}.${table}`;
let targets: DeliveryTarget[];

const sql = (text: string, values?: unknown[]) => run.sql(text, values);
const deliver = (options: { beforeSnapshotDoneOf?: Table } = {}) => run.deliver(targets, options);
const arrived = (table: Table, since: number, n: number) => run.arrived(table, since, n);
const countOf = (table: Table) => run.countOf(table);
const reconciled = (table: Table) => run.reconciled(table);
const tableRows = (table: Table) => run.tableRows(table);

interface Live {
  aliases: string[];
  docs: Map<string, RowImage>;
}

/** The `-live` view: which index it reads and its documents' column values (`__*` metadata left out), by `_id`. */
async function live(table: Table): Promise<Live> {
  const index = indexOf(table);
  await client.indices.refresh({ index: `${index}*` });
  const aliases = Object.keys(await client.indices.getAlias({ name: `${index}-live` })).sort();
  const page = await client.search<RowImage>({ index: `${index}-live`, size: 1000 });
  const docs = new Map(page.hits.hits.map((h) => [h._id ?? '', Object.fromEntries(Object.entries(h._source ?? {}).filter(([k]) => !k.startsWith('__')))]));
  return { aliases, docs };
}

/** `-live` equals the table field by field, by key, and nothing was dead-lettered. */
async function expectLiveEqualsTable(table: Table, key = 'id'): Promise<Live> {
  const view = await live(table);
  const rows = await tableRows(table);
  expect(new Map(rows.map((r) => [String(r[key]), r]))).toEqual(view.docs);
  expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
  return view;
}

beforeAll(async () => {
  run = await SchemaRun.start('e2e_schema', TABLES);
  schema = run.schema;
  prefix = run.name.replaceAll('_', '-');
  historyIndex = `${prefix}-history`;
  controlIndex = `${prefix}-control`;
  const router = new Router({ '*': { elasticsearch: { index: `${prefix}-{schema}.{table}` } } });
  const es = new ElasticsearchSink({ client, router, templates: { replicas: 0 }, controlIndex, oldIndexGraceMinutes: 60 });
  const history = new ElasticsearchHistorySink({ client, router, index: historyIndex, replicas: 0 });
  targets = [
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: es, deadLetters }))), functionName: 'elasticsearchSink' },
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: history, deadLetters }))), functionName: 'changeHistory' },
  ];
}, 120_000);

afterAll(async () => {
  await run?.close();
  const names = (await client.cat.indices({ index: `${prefix}*`, format: 'json', h: 'index' }).catch(() => [])) as { index?: string }[];
  await cleanupEs(client, [historyIndex, controlIndex, ...names.flatMap((n) => (n.index ? [n.index] : []))]);
  await client.indices.deleteIndexTemplate({ name: `cdc-table-${prefix}-_._` }).catch(() => undefined);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
  await client.close();
}, 60_000);

describe('schema changes: PostgreSQL → reader → Kafka → sink handlers → Elasticsearch', () => {
  it('ALTER COLUMN a TYPE text (non-numeric values after): <index>-v2, no dead letter, the aliases move once the snapshot is done', async () => {
    const t = `${schema}.retype`;
    let since = countOf('retype');
    await sql(`INSERT INTO ${t} SELECT g, g * 10 FROM generate_series(1, 12) g`);
    await arrived('retype', since, 12);
    await deliver();
    since = countOf('retype');
    await sql(`ALTER TABLE ${t} ALTER COLUMN a TYPE text`);
    await sql(`UPDATE ${t} SET a = 'text ' || id WHERE id % 3 = 0`);
    await sql(`INSERT INTO ${t} VALUES (13, 'thirteen')`);
    await sql(`DELETE FROM ${t} WHERE id = 1`);
    // 4 updates, 1 insert, 1 delete, and the schema change on each partition.
    await arrived('retype', since, 6 + PARTITIONS);
    const after = run.topic.items.filter((i) => i.event.source.table === 'retype').slice(since);
    const changes = after.filter((i) => kindOf(i.event) === 'schema_change');
    expect(changes.map((i) => i.partition).sort()).toEqual([0, 1, 2]);
    // Versioned between the last change of the old shape and the first of the new one.
    const lsnOf = (op: string) => after.find((i) => i.event.op === op)!.event.source.lsn!;
    expect(changes[0]!.event.source.lsn).toBeLessThan(lsnOf('u'));
    expect(changes[0]!.event.source.lsn).toBeGreaterThan(
      Math.max(
        ...run.topic.items
          .filter((i) => i.event.source.table === 'retype')
          .slice(0, since)
          .map((i) => i.event.source.lsn!),
      ),
    );
    await deliver({ beforeSnapshotDoneOf: 'retype' });
    expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
    // Until the snapshot is done the view is the old version, whole.
    expect((await live('retype')).aliases).toEqual([indexOf('retype')]);
    await reconciled('retype');
    await deliver();
    const view = await expectLiveEqualsTable('retype');
    expect(view.aliases).toEqual([`${indexOf('retype')}-v2`]);
    expect(await client.indices.exists({ index: `${indexOf('retype')}-v1` })).toBe(true);
  }, 90_000);

  it('ALTER COLUMN s TYPE jsonb (object values after): a new version maps s as JSON', async () => {
    const t = `${schema}.tojson`;
    let since = countOf('tojson');
    await sql(`INSERT INTO ${t} SELECT g, 'plain ' || g FROM generate_series(1, 9) g`);
    await arrived('tojson', since, 9);
    await deliver();
    since = countOf('tojson');
    await sql(`ALTER TABLE ${t} ALTER COLUMN s TYPE jsonb USING to_jsonb(s)`);
    await sql(`UPDATE ${t} SET s = jsonb_build_object('n', id, 'tags', jsonb_build_array('a', id)) WHERE id <= 5`);
    await arrived('tojson', since, 5 + PARTITIONS);
    await deliver();
    await reconciled('tojson');
    await deliver();
    const view = await expectLiveEqualsTable('tojson');
    expect(view.aliases).toEqual([`${indexOf('tojson')}-v2`]);
    const mapping = await client.indices.getMapping({ index: `${indexOf('tojson')}-v2` });
    expect(mapping[`${indexOf('tojson')}-v2`]?.mappings.properties?.s).toMatchObject({ type: 'object', enabled: false });
  }, 90_000);

  it('a new primary key (id -> code) while the reader is stopped: no document of the old key stays, deleted rows included', async () => {
    const t = `${schema}.rekey`;
    let since = countOf('rekey');
    await sql(`INSERT INTO ${t} SELECT g, 'c' || g, g FROM generate_series(1, 30) g`);
    await sql(`DELETE FROM ${t} WHERE id > 23`);
    await arrived('rekey', since, 37);
    await deliver();
    await run.stopReader();
    await sql(`ALTER TABLE ${t} DROP CONSTRAINT rekey_pkey, ADD PRIMARY KEY (code)`);
    await sql(`UPDATE ${t} SET n = n + 100 WHERE id <= 4`);
    await sql(`DELETE FROM ${t} WHERE id = 23`);
    since = countOf('rekey');
    await run.startReader();
    await arrived('rekey', since, 5 + PARTITIONS);
    const change = run.topic.items.find((i) => i.event.source.table === 'rekey' && kindOf(i.event) === 'schema_change');
    expect((change?.event as unknown as { message: { content: { key: string[]; previous: { key: string[] } } } }).message.content).toMatchObject({
      key: ['code'],
      previous: { key: ['id'] },
    });
    await deliver();
    await reconciled('rekey');
    await deliver();
    const view = await expectLiveEqualsTable('rekey', 'code');
    expect(view.docs.size).toBe(22);
    // Not only the view: the index holds the new key's documents only.
    await client.indices.refresh({ index: indexOf('rekey') });
    const all = await client.search({ index: indexOf('rekey'), size: 1000 });
    expect(all.hits.hits.every((h) => String(h._id).startsWith('c'))).toBe(true);
  }, 120_000);

  it('ADD COLUMN c DEFAULT x: in place, and the untouched rows get c from the snapshot', async () => {
    const t = `${schema}.withdefault`;
    let since = countOf('withdefault');
    await sql(`INSERT INTO ${t} SELECT g, 's' || g FROM generate_series(1, 8) g`);
    await arrived('withdefault', since, 8);
    await deliver();
    since = countOf('withdefault');
    await sql(`ALTER TABLE ${t} ADD COLUMN c text DEFAULT 'x'`);
    await sql(`UPDATE ${t} SET c = 'y' WHERE id = 2`);
    await arrived('withdefault', since, 1 + PARTITIONS);
    await deliver();
    await reconciled('withdefault');
    await deliver();
    const view = await expectLiveEqualsTable('withdefault');
    expect(view.aliases).toEqual([indexOf('withdefault')]);
    expect(view.docs.get('5')).toMatchObject({ c: 'x' });
  }, 90_000);

  it('DROP COLUMN s and RENAME COLUMN: untouched documents lose the old field', async () => {
    for (const table of ['dropped', 'renamed'] as const) {
      const since = countOf(table);
      await sql(`INSERT INTO ${schema}.${table} SELECT g, 's' || g ${table === 'dropped' ? ', g' : ''} FROM generate_series(1, 6) g`);
      await arrived(table, since, 6);
    }
    await deliver();
    let since = countOf('dropped');
    await sql(`ALTER TABLE ${schema}.dropped DROP COLUMN s`);
    await sql(`UPDATE ${schema}.dropped SET keep = 0 WHERE id = 1`);
    await arrived('dropped', since, 1 + PARTITIONS);
    since = countOf('renamed');
    await sql(`ALTER TABLE ${schema}.renamed RENAME COLUMN s TO s2`);
    await sql(`UPDATE ${schema}.renamed SET s2 = 'new' WHERE id = 1`);
    await arrived('renamed', since, 1 + PARTITIONS);
    await deliver();
    await reconciled('dropped');
    await reconciled('renamed');
    await deliver();
    expect((await expectLiveEqualsTable('dropped')).docs.get('4')).toEqual({ id: 4, keep: 4 });
    expect((await expectLiveEqualsTable('renamed')).docs.get('4')).toEqual({ id: 4, s2: 's4' });
  }, 90_000);

  it('add then drop: the column comes and goes, in place', async () => {
    const t = `${schema}.adddrop`;
    let since = countOf('adddrop');
    await sql(`INSERT INTO ${t} SELECT g, g FROM generate_series(1, 5) g`);
    await arrived('adddrop', since, 5);
    since = countOf('adddrop');
    await sql(`ALTER TABLE ${t} ADD COLUMN extra jsonb`);
    await sql(`UPDATE ${t} SET extra = '{"k": 1}' WHERE id <= 2`);
    await sql(`ALTER TABLE ${t} DROP COLUMN extra`);
    await sql(`UPDATE ${t} SET v = v + 1 WHERE id = 3`);
    await arrived('adddrop', since, 3 + 2 * PARTITIONS);
    await deliver();
    await reconciled('adddrop');
    await deliver();
    const view = await expectLiveEqualsTable('adddrop');
    expect(view.aliases).toEqual([indexOf('adddrop')]);
  }, 90_000);

  it('a type change under load: writes before, during and after ALTER COLUMN a TYPE text all land, none dead-lettered', async () => {
    const t = `${schema}.underload`;
    await sql(`INSERT INTO ${t} SELECT g, g FROM generate_series(1, 50) g`);
    const writer = await pgClient();
    let altered = false;
    let stop = false;
    let writes = 0;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const id = (i % 60) + 1;
        // Before the change integers; after it text (the new type would refuse nothing, the old index would).
        await writer.query(`INSERT INTO ${t} VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET a = excluded.a`, [id, altered ? `w${i}` : String(i)]);
        writes++;
      }
    })();
    await run.topic.waitFor('load running', () => writes >= 30, 30_000);
    await sql(`ALTER TABLE ${t} ALTER COLUMN a TYPE text`);
    altered = true;
    await run.topic.waitFor('load after the change', () => writes >= 150, 60_000);
    stop = true;
    await load;
    await writer.end();
    await run.topic.waitFor(
      'every write on the topic',
      () => run.topic.items.filter((i) => i.event.source.table === 'underload' && i.event.op !== 'm').length >= 50 + writes,
      60_000,
    );
    await deliver();
    await reconciled('underload');
    await deliver();
    const view = await expectLiveEqualsTable('underload');
    expect(view.aliases).toEqual([`${indexOf('underload')}-v2`]);
  }, 120_000);

  it('the change history has one row per schema change, of its own', async () => {
    await client.indices.refresh({ index: historyIndex });
    const rows = await client.search<{ SourceTable: string; NewValue: string }>({ index: historyIndex, size: 100, query: { term: { Op: 's' } } });
    const byTable = new Map<string, number>();
    for (const h of rows.hits.hits) byTable.set(h._source!.SourceTable, (byTable.get(h._source!.SourceTable) ?? 0) + 1);
    expect(Object.fromEntries(byTable)).toEqual({
      [`${schema}.retype`]: 1,
      [`${schema}.tojson`]: 1,
      [`${schema}.rekey`]: 1,
      [`${schema}.withdefault`]: 1,
      [`${schema}.dropped`]: 1,
      [`${schema}.renamed`]: 1,
      [`${schema}.adddrop`]: 2,
      [`${schema}.underload`]: 1,
    });
  });
});
