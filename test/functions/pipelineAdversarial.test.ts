/**
 * End to end, every adversarial case on one table at once: a LIST-partitioned table with a quoted
 * name (upper case and a dot: an escaped index), every type of the type mapping and its edge values,
 * a stored generated column, a TOASTed (out-of-line) text column and the default replica identity, through the real reader → Kafka (4 partitions) →
 * trigger-shaped batches → the elasticsearchSink and changeHistory handlers → real Elasticsearch.
 * Workload: a snapshot of existing rows, inserts, updates, primary-key changes (one moving the row
 * to another partition, one `SET id = id + 1000000` over several rows leaving the TOASTed column
 * unchanged), deletes; then a truncate of the parent, re-inserts and another key shift. After each
 * phase the `-live` documents equal PostgreSQL's own JSON of the rows (pipelineKit's comparison),
 * nothing is dead-lettered, and the change history holds a row for every delete.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { Admin } from '@platformatic/kafka';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import { keyText } from '../../src/shared/events/documentId.js';
import { ElasticsearchHistorySink } from '../../src/shared/history/historySink.js';
import { Router } from '../../src/shared/routing/routes.js';
import { cleanup as cleanupReader, pgClient, readerEnv, startReader, TopicCollector, uniqueName, type RunningReader } from '../reader/helpers.js';
import { serviceEnv } from '../helpers/services.js';
import { testClient } from '../shared/esTestKit.js';
import { deliverAsHost, expectedRows, liveDocuments, type DeliveryTarget } from './pipelineKit.js';

const name = uniqueName('e2e_adversarial');
const s = `${name}_s`;
/** A quoted name with upper case and a dot: its index is the escaped one (docs/sinks.md "One table per index"). */
const TABLE = 'Vari.Ed';
const table = `${s}."${TABLE}"`;
const prefix = name.replaceAll('_', '-');
const router = new Router({ '*': { elasticsearch: { index: `${prefix}-{schema}.{table}` } } });
const index = router.route(s, TABLE).elasticsearch!.index;
const historyIndex = `${prefix}-history`;
const controlIndex = `${prefix}-control`;
const client = testClient();
const deadLetters = new MemoryDeadLetterStore();
let c: pg.Client;
let reader: RunningReader;
let topic: TopicCollector;
let targets: DeliveryTarget[];
let delivered = 0;

/** The columns the statements write: every column but the generated one. */
const COLUMNS = `id, region, b, i2, i4, o, i8, n, n2, f4, f8, txt, vc, ch, nm, mon, u, j, jb, ba, d, t, tz, ts, tstz, iv,
  ai, at, an, af, ats, ajb, m, am, dom, ip, cidr_col, mac, bits, x, rng, pt, pr, ci, doc`;
/** Four rows of values (after id and region, before doc): the edge values of test/functions/pipelineValues.test.ts. */
const VALUES = [
  `true, -32768, 2147483647, 4000000000, 1, 1, 1.5, 1, 10.0,
      'text ✓ ünïcode', 'vc', 'ab', 'nm', 12.34, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": 1, "b": [1, 2.50]}', '{"k": 1}', '\\x00ff7f',
      '2024-02-29', '13:14:15.5', '13:14:15+02', '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.654321+05:30', '1 year 2 months 3 days 04:05:06.7',
      '{1,NULL,3}', '{"a b","c,d",NULL}', '{1.10,2.20}', '{1.5,NaN}', '{"2024-01-01 10:00:00",infinity}', ARRAY['{"a":1}'::jsonb, '"s"', '[1]'], 'happy', '{sad,ok}', 7,
      '10.0.0.1/8', '10.0.0.0/8', '08:00:2b:01:02:03', B'1010', '<a>x</a>', '[1,5)', '(1,2)', ROW(1, 'x'), 'MiXeD Case'`,
  `false, 0, 0, 0, 9223372036854775807, 'NaN', '12345678901234567890.0123456789', 'NaN', 10.5,
      '', '', '', '', 0, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '"a string"', '{"k": {"n": 1}}', '\\x',
      'infinity', '00:00', '00:00+00', 'infinity', '-infinity', 'P0D',
      '{}', '{}', '{}', '{Infinity,-Infinity}', '{-infinity}', ARRAY[]::jsonb[], 'sad', '{}', 1,
      '::1', '::/0', '00:00:00:00:00:00', B'0000', '', 'empty', '(0,0)', ROW(NULL, NULL), ''`,
  `NULL, NULL, NULL, NULL, -9223372036854775808, ${`'${'9'.repeat(1000)}.${'1'.repeat(50)}'`}, '-0.0000000001', '-Infinity', 'Infinity',
      NULL, NULL, NULL, NULL, NULL, NULL, '[1, "two", {"three": 3}]', '"k"', NULL,
      '-infinity', NULL, NULL, '-infinity', 'infinity', NULL,
      '{{1,2},{3,4}}', NULL, '{NaN}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
  `NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, 'null', '[]', NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
];
/** More than 2 kB, stored out of line (STORAGE EXTERNAL): an update that leaves it alone does not send it. */
const docOf = (id: number) => Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + ((i * 7919 + id) % 26))).join('');

async function insert(id: number, region: 'a' | 'b', values: string, doc: string | null): Promise<void> {
  await c.query(`INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2, ${values}, $3)`, [id, region, doc]);
}

async function waitForEvents(count: number): Promise<void> {
  await topic.waitFor(`${count} events of ${table}`, (events) => events.filter((e) => e.source.table === TABLE).length >= count);
}

/** Delivers what arrived since the last call to both handlers, as the host does (later partitions first). */
async function deliverNew(): Promise<void> {
  const items = topic.items.slice(delivered);
  delivered += items.length;
  await deliverAsHost(items, targets, (partitions) => [...partitions].sort((a, b) => b - a));
}

/** The `-live` view equals the table, nothing was dead-lettered, and every delete has a history row. */
async function expectIndexEqualsTable(): Promise<void> {
  expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
  expect(await liveDocuments(client, index)).toEqual(await expectedRows(c, table, { without: ['gen'] }));
  const deletes = topic.events((e) => e.source.table === TABLE && e.op === 'd').map((e) => `${keyText(e.key!)}@${e.source.lsn}`);
  await client.indices.refresh({ index: historyIndex });
  const history = await client.search<{ KeyText: string; Lsn: number }>({
    index: historyIndex,
    size: 1000,
    query: { bool: { filter: [{ term: { SourceTable: `${s}.${TABLE}` } }, { term: { Op: 'd' } }] } },
  });
  const recorded = new Set(history.hits.hits.map((h) => `${h._source?.KeyText}@${h._source?.Lsn}`));
  expect(deletes.filter((d) => !recorded.has(d))).toEqual([]);
}

beforeAll(async () => {
  c = await pgClient();
  // citext is an extension type (its OID is not a built-in one); one per database, so an existing one is used.
  await c.query(`CREATE SCHEMA ${s}; CREATE EXTENSION IF NOT EXISTS citext SCHEMA ${s}`);
  const { rows } = await c.query<{ t: string }>(
    `SELECT quote_ident(n.nspname) || '.citext' AS t FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'citext'`,
  );
  const citext = rows[0]!.t;
  await c.query(`SET TimeZone = 'UTC'; SET IntervalStyle = iso_8601;
    CREATE TYPE ${s}.mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN ${s}.posint AS integer CHECK (VALUE > 0);
    CREATE TYPE ${s}.pair AS (a int, b text);
    CREATE TABLE ${table} (
      id int NOT NULL, region text NOT NULL,
      b boolean, i2 smallint, i4 integer, o oid, i8 bigint, n numeric, n2 numeric(30,10), f4 real, f8 double precision,
      txt text, vc varchar(20), ch char(3), nm name, mon money, u uuid, j json, jb jsonb, ba bytea,
      d date, t time, tz timetz, ts timestamp, tstz timestamptz, iv interval,
      ai int[], at text[], an numeric[], af float8[], ats timestamp[], ajb jsonb[], m ${s}.mood, am ${s}.mood[], dom ${s}.posint,
      ip inet, cidr_col cidr, mac macaddr, bits bit(4), x xml, rng int4range, pt point, pr ${s}.pair, ci ${citext},
      doc text,
      gen bigint GENERATED ALWAYS AS (coalesce(i4, 0)::bigint * 2) STORED,
      PRIMARY KEY (id, region)
    ) PARTITION BY LIST (region);
    CREATE TABLE ${s}."${TABLE}_a" PARTITION OF ${table} FOR VALUES IN ('a');
    CREATE TABLE ${s}."${TABLE}_b" PARTITION OF ${table} FOR VALUES IN ('b');
    ALTER TABLE ${table} ALTER COLUMN doc SET STORAGE EXTERNAL;`);
  // Rows that exist before the reader starts: its snapshot reads them.
  await insert(1, 'a', VALUES[0]!, docOf(1));
  await insert(2, 'b', VALUES[1]!, docOf(2));
  await insert(3, 'a', VALUES[2]!, docOf(3));
  await insert(4, 'b', VALUES[3]!, 'small, stored inline');
  // Four partitions, as on Event Hubs: an old and a new key usually land on different ones.
  const admin = new Admin({ clientId: 'pipeline-adversarial', bootstrapBrokers: serviceEnv().kafkaBrokers });
  await admin.createTopics({ topics: [`${name}_events`], partitions: 4, replicas: 1 });
  await admin.close();
  reader = await startReader(readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'initial' }));
  topic = await TopicCollector.start([`${name}_events`]);
  const es = new ElasticsearchSink({ client, router, templates: { replicas: 0 }, controlIndex });
  const history = new ElasticsearchHistorySink({ client, router, index: historyIndex, replicas: 0 });
  targets = [
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: es, deadLetters }))), functionName: 'elasticsearchSink' },
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: history, deadLetters }))), functionName: 'changeHistory' },
  ];
}, 90_000);

afterAll(async () => {
  await reader?.stop();
  await topic?.close();
  await cleanupReader(c, name, [s]);
  await c.end();
  await client.indices.delete({ index: [index, historyIndex, controlIndex], ignore_unavailable: true }).catch(() => undefined);
  for (const template of [`cdc-table-${prefix}-_._`, `cdc-history-${historyIndex}`])
    await client.indices.deleteIndexTemplate({ name: template }).catch(() => undefined);
  await client.close();
});

describe('PostgreSQL → reader → Kafka → Elasticsearch and change history: the adversarial cases on one table', () => {
  it('snapshot, inserts, updates, key changes (across partitions, and a shift with TOAST unchanged), deletes: -live equals the table', async () => {
    expect(index).toBe(`${prefix}-${s}.+56ari+2e+45d`);
    await waitForEvents(4);
    expect(topic.events().map((e) => e.op)).toEqual(['r', 'r', 'r', 'r']);
    await insert(5, 'a', VALUES[0]!, docOf(5));
    await insert(6, 'b', VALUES[1]!, docOf(6));
    await insert(7, 'a', VALUES[2]!, docOf(7));
    await insert(8, 'b', VALUES[3]!, null);
    // Json shapes change, edge values come and go; the TOASTed doc is left alone except in one.
    await c.query(`UPDATE ${table} SET jb = '[{"k": [1]}]', j = '{"now": "object"}', f4 = 1e30 WHERE id = 1`);
    await c.query(`UPDATE ${table} SET jb = '{"k": "text"}', i8 = -1, doc = $1 WHERE id = 2`, [docOf(20)]);
    await c.query(`UPDATE ${table} SET f8 = 'NaN', ts = 'infinity', n = '1e-30', ai = '{}', jb = '{"big": 12345678901234567890, "f": 2.50}' WHERE id = 5`);
    await c.query(`UPDATE ${table} SET i4 = 41 WHERE id = 3`);
    // A key change that moves the row to the other partition, then a shift of several keys.
    await c.query(`UPDATE ${table} SET region = 'b' WHERE id = 1`);
    await c.query(`UPDATE ${table} SET txt = 'moved' WHERE id = 1`);
    await c.query(`UPDATE ${table} SET id = id + 1000000 WHERE id IN (2, 3, 5, 6)`);
    await c.query(`DELETE FROM ${table} WHERE id IN (7, 1000005)`);
    // 4 snapshot rows, 4 inserts, 4 updates, d + c, an update, 4 × (d + c), 2 deletes.
    await waitForEvents(25);
    const shifted = topic.events((e) => e.op === 'c' && e.old_key !== undefined);
    expect(shifted.filter((e) => e.source.unchanged_toast?.includes('doc'))).toHaveLength(4);

    await deliverNew();
    await expectIndexEqualsTable();
  });

  it('a truncate of the parent, re-inserts and another key shift: -live equals the table; the whole stream again changes nothing', async () => {
    await c.query(`TRUNCATE ${table}`);
    await insert(1, 'a', VALUES[3]!, docOf(100));
    await insert(2, 'b', VALUES[2]!, docOf(200));
    await insert(9, 'a', VALUES[1]!, docOf(900));
    await insert(10, 'b', VALUES[0]!, docOf(1000));
    await c.query(`UPDATE ${table} SET id = id + 1000000 WHERE region = 'a'`);
    await c.query(`DELETE FROM ${table} WHERE id = 10`);
    // t, 4 inserts, 2 × (d + c), 1 delete.
    await waitForEvents(25 + 10);
    expect(topic.events((e) => e.op === 't')).toHaveLength(1);

    await deliverNew();
    await expectIndexEqualsTable();
    // A restart before the checkpoint: everything delivered again, in the other partition order.
    await deliverAsHost(topic.items, targets);
    await expectIndexEqualsTable();
  });
});
