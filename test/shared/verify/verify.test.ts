/**
 * The checker against the real pipeline: SQL on the real PostgreSQL → the reader → Kafka →
 * trigger-shaped batches → the elasticsearchSink, changeHistory and adxSink handlers (real
 * Elasticsearch; ADX through the Kusto stand-in, inline ingestion) → `verifyPipeline`. First every
 * store equals its table (no differences, the CLI exits 0); then each kind of difference is made on
 * purpose, in the sink or in the table, and must be reported by name (the CLI exits 1).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createEventHubBatchHandler } from '../../../src/functions/host/eventHubBatchHandler.js';
import { loadAdxSchemaConfig } from '../../../src/shared/adx/config.js';
import { createAdxSinkFromEnv } from '../../../src/shared/adx/adxSink.js';
import type { AdxRow } from '../../../src/shared/adx/rows.js';
import { lazy } from '../../../src/shared/core/lazy.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../../../src/shared/elasticsearch/elasticsearchSink.js';
import { SESSION_OPTIONS, textTypes } from '../../../src/shared/events/pgTables.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { Router, type RoutesConfig } from '../../../src/shared/routing/routes.js';
import { HandedRowsSource } from '../../../src/shared/verify/adx.js';
import type { Difference, VerifyReport } from '../../../src/shared/verify/report.js';
import { verifyPipeline, type VerifyDeps } from '../../../src/shared/verify/verify.js';
import { spawnEntryPoint } from '../../helpers/childProcess.js';
import { serviceEnv } from '../../helpers/services.js';
import { deliverAsHost } from '../../functions/pipelineKit.js';
import { cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName, type RunningReader } from '../../reader/helpers.js';
import { handedRows as handedRowsOf, startKustoStandIn, type KustoStandIn } from '../adx/helpers/kustoStandIn.js';
import { testClient } from '../esTestKit.js';

const name = uniqueName('verify');
const s = `${name}_s`;
const prefix = name.replaceAll('_', '-');
const oddIndex = `${prefix}-odd`;
const historyIndex = `${prefix}-history`;
const controlIndex = `${prefix}-control`;
const odd = `${s}."Odd Table"`;
const routes: RoutesConfig = {
  [`${s}.Odd Table`]: {
    keys: ['id'],
    elasticsearch: { index: oddIndex },
    adx: { table: 'Odd', columns: { id: 'int', f8: 'real', n: 'decimal' } },
  },
  // Keyed by every column (REPLICA IDENTITY FULL, no primary key), so are its ADX keys.
  [`${s}.keyless`]: {
    keys: ['a', 'b'],
    history: { enabled: false },
    elasticsearch: { index: `${prefix}-keyless` },
    adx: { table: 'Keyless', columns: { a: 'int', b: 'string' } },
  },
};
const router = new Router(routes);
const client = testClient();
const deadLetters = new MemoryDeadLetterStore();
let c: pg.Client;
let session: pg.Client;
let reader: RunningReader;
let topic: TopicCollector;
let engine: KustoStandIn;
let delivered = 0;

const sinkEnv = () => ({ ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline', CDC_ROUTES: JSON.stringify(routes) });
const esSink = new ElasticsearchSink({ client, router, templates: { replicas: 0 }, controlIndex });
const historySink = new ElasticsearchHistorySink({ client, router, index: historyIndex, replicas: 0 });

const handedRows = (table: string): AdxRow[] => handedRowsOf(engine, table);

/** Delivers what the topic got since the last call to the three sinks, twice over (a redelivery changes nothing). */
async function deliver(expectedEvents: number): Promise<void> {
  await topic.waitFor(`${expectedEvents} events`, (events) => events.length >= expectedEvents);
  const items = topic.items.slice(delivered);
  delivered = topic.items.length;
  const adx = createAdxSinkFromEnv({ ...sinkEnv(), ADX_CLUSTER_URL: engine.url });
  const targets = [
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: esSink, deadLetters }))), functionName: 'elasticsearchSink' },
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: historySink, deadLetters }))), functionName: 'changeHistory' },
    { handler: createEventHubBatchHandler(lazy(() => ({ sink: adx, deadLetters }))), functionName: 'adxSink' },
  ];
  await deliverAsHost(items, targets);
  await deliverAsHost(items, targets);
  await client.indices.refresh({ index: [oddIndex, historyIndex, `${prefix}-*`], ignore_unavailable: true });
  expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
}

function deps(): VerifyDeps {
  return {
    pg: session,
    router,
    publication: `${name}_pub`,
    stateSchema: `${name}_state`,
    elasticsearch: { client, sink: esSink },
    history: { client, index: historyIndex },
    adx: { source: new HandedRowsSource(handedRows, 'CdcTruncates'), routes: loadAdxSchemaConfig(sinkEnv()).routes },
    chunkRows: 3,
  };
}

const differences = (report: VerifyReport): Difference[] => report.summaries.flatMap((summary) => summary.shown);
const brief = (d: Difference) => ({ store: d.store, kind: d.kind, key: d.key, ...(d.field === undefined ? {} : { field: d.field }) });

/** `npm run verify` (its entry point, from the TypeScript sources) against this test's deployment, without ADX. */
async function runCli(): Promise<{ code: number | null; out: string }> {
  const env = serviceEnv();
  const run = spawnEntryPoint('scripts/verify.ts', {
    PGHOST: env.pg.host,
    PGPORT: String(env.pg.port),
    PGUSER: env.pg.user,
    PGDATABASE: env.pg.database,
    CDC_PUBLICATION: `${name}_pub`,
    CDC_STATE_SCHEMA: `${name}_state`,
    CDC_ROUTES: JSON.stringify(routes),
    ELASTICSEARCH_URL: env.elasticsearchUrl,
    HISTORY_INDEX: historyIndex,
    ES_CONTROL_INDEX: controlIndex,
    AZURE_STORAGE_CONNECTION_STRING: env.azureStorageConnectionString,
    SINK_DEADLETTER_CONTAINER: `${prefix.slice(0, 50)}-none`,
  });
  const code = await run.exited;
  return { code, out: run.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n') };
}

beforeAll(async () => {
  c = await pgClient();
  const env = serviceEnv();
  session = new pg.Client({ ...env.pg, options: SESSION_OPTIONS, types: textTypes });
  await session.connect();
  await c.query(`CREATE SCHEMA ${s};
    CREATE TABLE ${odd} (id int PRIMARY KEY, "Mixed Case" text, "dot.ted" text, "_id" text, "__op" text, f8 float8, n numeric, big int8,
      jb jsonb, j json, doc text, ts timestamptz, ai int[]);
    ALTER TABLE ${odd} ALTER COLUMN doc SET STORAGE EXTERNAL;
    CREATE TABLE ${s}.keyless (a int, b text);
    ALTER TABLE ${s}.keyless REPLICA IDENTITY FULL;
    -- Read by the snapshot: rows without history until they change.
    INSERT INTO ${odd} VALUES (1, 'snap', 'd', 'i', 'o', 1.5, '2.50', 1, '{"a": 1}', '[1, 2.50]', 'small', '2024-01-01 10:00:00.123456+00', '{1,NULL}'),
      (6, 'never changed', 'd', 'i', 'o', 0, '0', 0, '{}', '{}', '', '2024-01-01 10:00:00+00', '{}');
    INSERT INTO ${s}.keyless VALUES (1, 'x'), (2, NULL);`);
  engine = await startKustoStandIn();
  reader = await startReader(readerEnv(name, { CDC_TABLES: `${s}."Odd Table",${s}.keyless`, CDC_SNAPSHOT_MODE: 'initial' }));
  topic = await TopicCollector.start([`${name}_events`]);
}, 90_000);

afterAll(async () => {
  await reader?.stop();
  await topic?.close();
  await engine?.close();
  await session?.end();
  await cleanup(c, name, [s]);
  await c.end();
  const existing = Object.keys(await client.indices.get({ index: `${prefix}-*`, allow_no_indices: true }).catch(() => ({})));
  if (existing.length > 0) await client.indices.delete({ index: existing }).catch(() => undefined);
  for (const template of [`cdc-table-${oddIndex}`, `cdc-table-${prefix}-keyless`, `cdc-history-${historyIndex}`])
    await client.indices.deleteIndexTemplate({ name: template }).catch(() => undefined);
  await client.close();
});

describe('verifyPipeline (the checker of npm run verify)', () => {
  it('finds no difference when every store equals its table, values of every kind included', async () => {
    const toast = 'T'.repeat(9000) + '✓';
    await c.query(
      `INSERT INTO ${odd} VALUES
      (2, 'two', 'd2', 'i2', 'o2', 'NaN', 'NaN', 9223372036854775807, '{"k": [1, {"x": 12345678901234567890}]}', '"just a string"', $1, '-infinity', '{}'),
      (3, NULL, NULL, NULL, NULL, '-Infinity', '${'9'.repeat(60)}.${'1'.repeat(30)}', -9223372036854775808, '[1, "two"]', 'null', NULL, NULL, NULL),
      (4, 'four', '', '', '', 'Infinity', '0.000000001', 42, '{"k": "text"}', '{}', 'short', '2024-02-29 23:59:59+00', '{{1,2},{3,4}}')`,
      [toast],
    );
    // An update leaving the TOASTed value unchanged (the sinks fill or name it), one changing the json shape.
    await c.query(`UPDATE ${odd} SET "Mixed Case" = 'two again' WHERE id = 2`);
    await c.query(`UPDATE ${odd} SET jb = '[{"now": "array"}]', f8 = 10.0 WHERE id = 4`);
    await c.query(`UPDATE ${odd} SET f8 = 10.5, "Mixed Case" = 'changed' WHERE id = 1`);
    await c.query(`DELETE FROM ${odd} WHERE id = 3`);
    await c.query(`INSERT INTO ${odd} VALUES (5, 'five', 'd', 'i', 'o', 5, '5', 5, 'true', '5', 'doc', NULL, NULL)`);
    // Snapshot 2 + 2 rows, then 3 inserts, 3 updates, 1 delete, 1 insert.
    await deliver(4 + 3 + 3 + 1 + 1);

    const report = await verifyPipeline(deps());
    expect(differences(report).map(brief)).toEqual([]);
    expect(report.format()).toContain('verify: no differences');
    const summary = (store: string, table = `${s}.Odd Table`) => report.summaries.find((x) => x.table === table && x.store === store)!;
    expect(summary('elasticsearch').rows).toBe(5);
    // Row 6 was read by the snapshot and never changed: its 11 tracked columns (all but the key and `__op`, which the pivot leaves out) have no history to check.
    expect(summary('history').notes.join()).toMatch(/^11 \(row, column\) pairs have no history entry/);
    expect(summary('adx').rows).toBe(5);
    expect(summary('elasticsearch', `${s}.keyless`).rows).toBe(2);
  }, 120_000);

  it('the CLI prints "no differences" and exits 0 against the same deployment', async () => {
    const { code, out } = await runCli();
    expect(out).toContain('verify: no differences');
    expect(out).toContain('ADX_CLUSTER_URL is not set');
    expect(code).toBe(0);
  }, 60_000);

  it('reports each kind of difference by table, store, key and field', async () => {
    // In Elasticsearch: a document deleted, a stale one added, a field changed, a TOAST value left unfilled.
    await client.delete({ index: oddIndex, id: '4', refresh: true });
    await client.index({
      index: oddIndex,
      id: '99',
      version: 7,
      version_type: 'external',
      document: { id: 99, __deleted: false, __version: 7 },
      refresh: true,
    });
    const one = (await client.get<Record<string, unknown>>({ index: oddIndex, id: '1' }))._source!;
    await client.index({
      index: oddIndex,
      id: '1',
      version: (one.__version as number) + 1,
      version_type: 'external',
      document: { ...one, 'dot%2Eted': 'tampered', __version: (one.__version as number) + 1 },
      refresh: true,
    });
    const two = (await client.get<Record<string, unknown>>({ index: oddIndex, id: '2' }))._source!;
    const { doc: _doc, ...withoutDoc } = two;
    await client.index({
      index: oddIndex,
      id: '2',
      version: two.__version as number,
      version_type: 'external_gte',
      document: { ...withoutDoc, __unchanged_toast: ['doc'] },
      refresh: true,
    });
    // In the table, without delivering: a changed value, a deleted row.
    await c.query(`UPDATE ${odd} SET n = '2.5' WHERE id = 5`);
    await c.query(`DELETE FROM ${s}.keyless WHERE a = 2`);
    // In the history: the latest value of a column replaced.
    const last = await client.search<Record<string, unknown>>({
      index: historyIndex,
      size: 1,
      query: { bool: { filter: [{ term: { KeyText: '4' } }, { term: { Column: 'f8' } }] } },
      sort: [{ Lsn: 'desc' }],
    });
    const hit = last.hits.hits[0]!;
    await client.index({ index: historyIndex, id: hit._id!, document: { ...hit._source, NewValue: '11' }, refresh: true });

    const report = await verifyPipeline(deps());
    const found = differences(report).map(brief);
    expect(found).toEqual(
      expect.arrayContaining([
        { store: 'elasticsearch', kind: 'field', key: '1', field: 'dot%2Eted' },
        { store: 'elasticsearch', kind: 'unfilled', key: '2' },
        { store: 'elasticsearch', kind: 'field', key: '2', field: 'doc' },
        { store: 'elasticsearch', kind: 'missing', key: '4' },
        { store: 'elasticsearch', kind: 'field', key: '5', field: 'n' },
        { store: 'elasticsearch', kind: 'extra', key: '99' },
        { store: 'elasticsearch', kind: 'extra', key: '[2,null]' },
        { store: 'adx', kind: 'extra', key: '[2,null]' },
        { store: 'history', kind: 'field', key: '4', field: 'f8' },
        { store: 'history', kind: 'field', key: '5', field: 'n' },
        { store: 'adx', kind: 'field', key: '5', field: 'n' },
      ]),
    );
    const field = differences(report).find((d) => d.store === 'elasticsearch' && d.field === 'dot%2Eted')!;
    expect([field.expected, field.actual]).toEqual(['"d"', '"tampered"']);
    const numeric = differences(report).find((d) => d.store === 'elasticsearch' && d.field === 'n')!;
    expect([numeric.expected, numeric.actual]).toEqual(['"2.5"', '"5"']);
    const history = differences(report).find((d) => d.store === 'history' && d.field === 'f8')!;
    expect([history.expected, history.actual]).toEqual(['"10"', '"11"']);
    expect(report.format()).toMatch(/extra key 99 \(live in .*-odd-live, but the table has no such row\)/);
    expect(report.differences).toBe(found.length);

    const cli = await runCli();
    expect(cli.out).toMatch(/field key 1 field "dot%2Eted": table "d", elasticsearch "tampered" \(values differ\)/);
    expect(cli.out).toMatch(/verify: \d+ differences$/);
    expect(cli.code).toBe(1);
  }, 120_000);

  it('a column added since the rows last changed: absent from their documents, no difference while it is null; a default value the documents lack is one', async () => {
    // No change is written for the existing rows: their documents keep their fields as they were.
    await c.query(`ALTER TABLE ${odd} ADD COLUMN added text, ADD COLUMN filled text DEFAULT 'x'`);
    const all = differences(await verifyPipeline(deps())).filter((d) => d.store === 'elasticsearch');
    // Every row whose document exists (the previous test deleted one).
    const missing = new Set(all.filter((d) => d.kind === 'missing').map((d) => d.key));
    const withDocument = (await c.query<{ id: string }>(`SELECT id::text FROM ${odd} ORDER BY id`)).rows.map((r) => r.id).filter((id) => !missing.has(id));
    expect(withDocument.length).toBeGreaterThan(0);
    expect(all.filter((d) => d.field === 'added')).toEqual([]);
    const filled = all.filter((d) => d.field === 'filled');
    expect(filled.map((d) => d.key)).toEqual(withDocument);
    for (const d of filled) expect([d.kind, d.expected, d.actual, d.detail]).toEqual(['field', '"x"', undefined, 'the document lacks the field']);
  }, 120_000);
});
