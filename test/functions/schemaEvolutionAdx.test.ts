/**
 * Schema changes end to end into ADX (issue 14 item 3, "In ADX"): DDL on the real PostgreSQL → the
 * reader (`schema_change` on every partition, then its reconcile snapshot) → Kafka (3 partitions) →
 * batches shaped as the Event Hubs trigger delivers them → the adxSink handler (the real AdxSink and
 * azure-kusto clients, inline ingestion) → the Kusto stand-in, which records every row it is handed.
 * No Kusto engine runs here, so `<T>Current()` is computed from those rows by `foldHandedRows`, the
 * function's rules in TypeScript (arg_max(__lsn) by `__key`, then deletes, then what the marks in the
 * truncates table hide: truncates and completed key changes); the KQL itself is tested as text and
 * by the language service (test/shared/adx/commands.test.ts). Each case ends with those current
 * rows equal to the table, column by column (a value a column's ADX type cannot hold counts from its
 * `__raw_<column>`), and no dead letter.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { createAdxSinkFromEnv } from '../../src/shared/adx/adxSink.js';
import { rawColumnName } from '../../src/shared/adx/columnTypes.js';
import { loadAdxSchemaConfig } from '../../src/shared/adx/config.js';
import type { AdxRow } from '../../src/shared/adx/rows.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { RowImage } from '../../src/shared/events/changeEvent.js';
import { canonicalJson } from '../../src/shared/verify/compare.js';
import { foldHandedRows } from '../../src/shared/verify/adx.js';
import { handedRows, startKustoStandIn, type KustoStandIn } from '../shared/adx/helpers/kustoStandIn.js';
import type { DeliveryTarget } from './pipelineKit.js';
import { PARTITIONS, SchemaRun } from './schemaKit.js';

const TABLES = {
  retype: 'id int primary key, a int',
  tojson: 'id int primary key, s text',
  rekey: 'id int primary key, code text not null unique, n int',
  withdefault: 'id int primary key, s text',
  dropped: 'id int primary key, s text, keep int',
  renamed: 'id int primary key, s text',
  adddrop: 'id int primary key, v int',
};
type Table = keyof typeof TABLES;
/** The ADX table of a source table: `Retype`, ... */
const adxTable = (table: Table) => table[0]!.toUpperCase() + table.slice(1);

const deadLetters = new MemoryDeadLetterStore();
let run: SchemaRun<Table>;
let engine: KustoStandIn;
let env: Record<string, string>;
let targets: DeliveryTarget[];

const sql = (text: string) => run.sql(text);
const deliver = (options: { beforeSnapshotDoneOf?: Table } = {}) => run.deliver(targets, options);

/** `<T>Current()` of the table, from the rows the stand-in was handed. */
function current(table: Table): AdxRow[] {
  const route = loadAdxSchemaConfig(env).routes.find((r) => r.source === `${run.schema}.${table}`)!;
  return foldHandedRows(route, handedRows(engine, route.table), handedRows(engine, 'CdcTruncates'));
}

const text = (value: unknown): string | null =>
  value === null || value === undefined ? null : typeof value === 'string' ? value : (canonicalJson(value) ?? null);

/** A row's values by source column, as text: an ADX row's column from its `__raw_<column>` when the typed column could not hold it; CDC columns left out. */
function values(row: Record<string, unknown>, columns: ReadonlySet<string>): Record<string, string | null> {
  return Object.fromEntries([...columns].map((c) => [c, text(row[c] ?? row[rawColumnName(c)])]));
}

/** `<T>Current()` equals the table column by column, by `key` (a column on one side only counts as null on the other), and nothing was dead-lettered. */
async function expectCurrentEqualsTable(table: Table, key = 'id'): Promise<AdxRow[]> {
  const rows: RowImage[] = await run.tableRows(table, key);
  const adx = current(table);
  const columns = new Set([...rows.flatMap((r) => Object.keys(r)), ...adx.flatMap((r) => Object.keys(r).filter((c) => !c.startsWith('__')))]);
  const byKey = (list: readonly Record<string, unknown>[]) => new Map(list.map((r) => [text(r[key]), values(r, columns)]));
  expect(byKey(adx)).toEqual(byKey(rows));
  expect(adx).toHaveLength(rows.length);
  expect([...deadLetters.documents.values()].map((d) => d.reason)).toEqual([]);
  return adx;
}

beforeAll(async () => {
  run = await SchemaRun.start('e2e_schema_adx', TABLES);
  engine = await startKustoStandIn();
  const routes = Object.fromEntries(
    (Object.keys(TABLES) as Table[]).map((t) => [`${run.schema}.${t}`, { keys: ['id'], adx: { table: adxTable(t), columns: { id: 'long' } } }]),
  );
  env = { ADX_CLUSTER_URL: engine.url, ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline', CDC_ROUTES: JSON.stringify(routes) };
  const sink = createAdxSinkFromEnv(env);
  targets = [{ handler: createEventHubBatchHandler(lazy(() => ({ sink, deadLetters }))), functionName: 'adxSink' }];
}, 120_000);

afterAll(async () => {
  await run?.close();
  await engine?.close();
}, 60_000);

describe('schema changes: PostgreSQL → reader → Kafka → adxSink handler → ADX (the Kusto stand-in)', () => {
  it('a new primary key (id -> code) while the reader is stopped: once the snapshot is done on every partition, no row of the old key stays, deleted rows included', async () => {
    let since = run.countOf('rekey');
    await sql(`INSERT INTO ${run.schema}.rekey SELECT g, 'c' || g, g FROM generate_series(1, 30) g`);
    await sql(`DELETE FROM ${run.schema}.rekey WHERE id > 23`);
    await run.arrived('rekey', since, 37);
    await deliver();
    await run.stopReader();
    await sql(`ALTER TABLE ${run.schema}.rekey DROP CONSTRAINT rekey_pkey, ADD PRIMARY KEY (code)`);
    await sql(`UPDATE ${run.schema}.rekey SET n = n + 100 WHERE id <= 4`);
    await sql(`DELETE FROM ${run.schema}.rekey WHERE id = 23`);
    since = run.countOf('rekey');
    await run.startReader();
    await run.arrived('rekey', since, 5 + PARTITIONS);
    await deliver({ beforeSnapshotDoneOf: 'rekey' });
    // Until the snapshot is done the old-key rows stay: no row of the table is missing (the changed
    // ones show under both keys, the deleted one under its old key), and the view groups by __key.
    const ids = (rows: readonly Record<string, unknown>[]) => new Set(rows.map((r) => Number(r.id)));
    const during = current('rekey');
    for (const id of ids(await run.tableRows('rekey'))) expect(ids(during)).toContain(id);
    expect(during.filter((r) => r.id === 1).map((r) => r.__key)).toEqual(expect.arrayContaining(['{"id":1}', '{"code":"c1"}']));
    await run.reconciled('rekey');
    await deliver();
    const adx = await expectCurrentEqualsTable('rekey', 'code');
    expect(adx).toHaveLength(22);
    expect(adx.every((r) => String(r.__key).startsWith('{"code":'))).toBe(true);
    // The marks that did it: one key change and the snapshot's start and end, per partition.
    const marks = handedRows(engine, 'CdcTruncates').filter((m) => m.Table === 'Rekey');
    const count = (kind: string) => new Set(marks.filter((m) => m.Kind === kind).map((m) => m.Partition)).size;
    expect([count('key_change'), count('snapshot_started'), count('snapshot_done')]).toEqual([PARTITIONS, PARTITIONS, PARTITIONS]);
    expect(marks.find((m) => m.Kind === 'key_change')).toMatchObject({ Partitions: PARTITIONS });
  }, 120_000);

  it('ALTER COLUMN a TYPE text (non-numeric values after): the values the long column cannot hold go to __raw_a; the snapshot re-reads the rest', async () => {
    let since = run.countOf('retype');
    await sql(`INSERT INTO ${run.schema}.retype SELECT g, g * 10 FROM generate_series(1, 12) g`);
    await run.arrived('retype', since, 12);
    await deliver();
    since = run.countOf('retype');
    await sql(`ALTER TABLE ${run.schema}.retype ALTER COLUMN a TYPE text`);
    await sql(`UPDATE ${run.schema}.retype SET a = 'text ' || id WHERE id % 3 = 0`);
    await sql(`INSERT INTO ${run.schema}.retype VALUES (13, 'thirteen')`);
    await sql(`DELETE FROM ${run.schema}.retype WHERE id = 1`);
    await run.arrived('retype', since, 6 + PARTITIONS);
    await run.reconciled('retype');
    await deliver();
    const adx = await expectCurrentEqualsTable('retype');
    expect(adx.find((r) => r.id === 13)).toMatchObject({ a: null, __raw_a: 'thirteen' });
    expect(engine.commands.map((c) => c.csl)).toContain(".alter-merge table ['Retype'] (['__raw_a']:string)");
  }, 90_000);

  it('ALTER COLUMN s TYPE jsonb (object values after): the objects land in s', async () => {
    let since = run.countOf('tojson');
    await sql(`INSERT INTO ${run.schema}.tojson SELECT g, 'plain ' || g FROM generate_series(1, 9) g`);
    await run.arrived('tojson', since, 9);
    await deliver();
    since = run.countOf('tojson');
    await sql(`ALTER TABLE ${run.schema}.tojson ALTER COLUMN s TYPE jsonb USING to_jsonb(s)`);
    await sql(`UPDATE ${run.schema}.tojson SET s = jsonb_build_object('n', id, 'tags', jsonb_build_array('a', id)) WHERE id <= 5`);
    await run.arrived('tojson', since, 5 + PARTITIONS);
    await run.reconciled('tojson');
    await deliver();
    await expectCurrentEqualsTable('tojson');
  }, 90_000);

  it('ADD COLUMN c DEFAULT x: .alter-merge adds c, and the untouched rows get it from the snapshot', async () => {
    let since = run.countOf('withdefault');
    await sql(`INSERT INTO ${run.schema}.withdefault SELECT g, 's' || g FROM generate_series(1, 8) g`);
    await run.arrived('withdefault', since, 8);
    await deliver();
    since = run.countOf('withdefault');
    await sql(`ALTER TABLE ${run.schema}.withdefault ADD COLUMN c text DEFAULT 'x'`);
    await sql(`UPDATE ${run.schema}.withdefault SET c = 'y' WHERE id = 2`);
    await run.arrived('withdefault', since, 1 + PARTITIONS);
    await run.reconciled('withdefault');
    await deliver();
    const adx = await expectCurrentEqualsTable('withdefault');
    expect(adx.find((r) => r.id === 5)).toMatchObject({ c: 'x' });
    expect(engine.commands.map((c) => c.csl)).toContain(".alter-merge table ['Withdefault'] (['c']:string)");
  }, 90_000);

  it('DROP COLUMN s and RENAME COLUMN: the current rows lose the old column (null in the table ADX keeps it in) and gain the new one', async () => {
    for (const table of ['dropped', 'renamed'] as const) {
      const since = run.countOf(table);
      await sql(`INSERT INTO ${run.schema}.${table} SELECT g, 's' || g ${table === 'dropped' ? ', g' : ''} FROM generate_series(1, 6) g`);
      await run.arrived(table, since, 6);
    }
    await deliver();
    let since = run.countOf('dropped');
    await sql(`ALTER TABLE ${run.schema}.dropped DROP COLUMN s`);
    await sql(`UPDATE ${run.schema}.dropped SET keep = 0 WHERE id = 1`);
    await run.arrived('dropped', since, 1 + PARTITIONS);
    since = run.countOf('renamed');
    await sql(`ALTER TABLE ${run.schema}.renamed RENAME COLUMN s TO s2`);
    await sql(`UPDATE ${run.schema}.renamed SET s2 = 'new' WHERE id = 1`);
    await run.arrived('renamed', since, 1 + PARTITIONS);
    await run.reconciled('dropped');
    await run.reconciled('renamed');
    await deliver();
    expect((await expectCurrentEqualsTable('dropped')).find((r) => r.id === 4)).not.toHaveProperty('s');
    expect((await expectCurrentEqualsTable('renamed')).find((r) => r.id === 4)).toMatchObject({ s2: 's4' });
  }, 90_000);

  it('add then drop: the column comes and goes', async () => {
    const since = run.countOf('adddrop');
    await sql(`INSERT INTO ${run.schema}.adddrop SELECT g, g FROM generate_series(1, 5) g`);
    await run.arrived('adddrop', since, 5);
    await sql(`ALTER TABLE ${run.schema}.adddrop ADD COLUMN extra jsonb`);
    await sql(`UPDATE ${run.schema}.adddrop SET extra = '{"k": 1}' WHERE id <= 2`);
    await sql(`ALTER TABLE ${run.schema}.adddrop DROP COLUMN extra`);
    await sql(`UPDATE ${run.schema}.adddrop SET v = v + 1 WHERE id = 3`);
    await run.arrived('adddrop', since, 5 + 3 + 2 * PARTITIONS);
    await run.reconciled('adddrop');
    await deliver();
    await expectCurrentEqualsTable('adddrop');
  }, 90_000);

  it('the change history has one row per schema change, of its own', () => {
    const all = (Object.keys(TABLES) as Table[]).map((t) => handedRows(engine, `${adxTable(t)}History`).filter((r) => r.Op === 's').length);
    expect(all).toEqual([1, 1, 1, 1, 1, 1, 2]);
  });
});
