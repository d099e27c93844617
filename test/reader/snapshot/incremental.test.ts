import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import type { SnapshotMessage } from '../../../src/shared/events/controlMessage.js';
import type { ChangeEvent } from '../../../src/shared/events/changeEvent.js';
import {
  cleanup,
  converge,
  eventually,
  pgClient,
  privateDatabase,
  readerEnv,
  slotInactive,
  spawnReader,
  startReader,
  TopicCollector,
  uniqueName,
} from '../helpers.js';
import { spawnEntryPoint } from '../../helpers/childProcess.js';
import type { RunningReader } from '../helpers.js';
import { createTopic } from '../../worker/helpers.js';

type Row = Record<string, unknown>;

async function tableState(c: pg.Client, table: string): Promise<Map<string, Row>> {
  const r = await c.query<{ id: number; v: number; note: string | null }>(`SELECT id, v, note FROM ${table}`);
  return new Map(r.rows.map((row) => [JSON.stringify(row.id), { id: row.id, v: row.v, note: row.note }]));
}

/** What a sink keeping the highest version per key ends with (rows only; control events carry no key). */
function sinkState(events: ChangeEvent[]): Map<string, Row> {
  return new Map([...converge(events, 'id')].filter((e): e is [string, Row] => e[1] !== null));
}

const control = (events: ChangeEvent[], kind: SnapshotMessage['kind']) =>
  events.filter((e): e is ChangeEvent & { message: SnapshotMessage } => e.op === 'm' && e.message?.kind === kind);

/** Partitions of the topics `setup` creates; a topic the reader creates itself gets the broker's default, 1. */
const PARTITIONS = 3;

/**
 * Whether the matching snapshot's `snapshot_done` has been collected from every partition. The reader
 * writes it to each partition after that partition's rows; the first one seen says nothing about the
 * rows of the partitions the collector has not read that far yet.
 */
const doneEverywhere = (events: ChangeEvent[], partitions: number, match: (e: ChangeEvent & { message: SnapshotMessage }) => boolean = () => true) =>
  control(events, 'snapshot_done').filter(match).length >= partitions;

async function signal(c: pg.Client, stateSchema: string, id: string, type: string, data: string): Promise<void> {
  await c.query(`INSERT INTO ${stateSchema}.signals (id, type, data) VALUES ($1, $2, $3)`, [id, type, data]);
}

const snapshotData = (table: string, filter?: string) =>
  JSON.stringify({
    'data-collections': [table],
    type: 'incremental',
    ...(filter === undefined ? {} : { 'additional-conditions': [{ 'data-collection': table, filter }] }),
  });

describe('reader: incremental snapshots', () => {
  let c: pg.Client;
  const names: { name: string; schema: string }[] = [];
  const readers: RunningReader[] = [];
  const collectors: TopicCollector[] = [];

  beforeAll(async () => {
    c = await pgClient();
  });
  afterAll(async () => {
    for (const r of readers) await r.stop();
    for (const t of collectors) await t.close();
    for (const n of names) await cleanup(c, n.name, [n.schema]);
    await c.end();
  });

  async function setup(prefix: string, rows: number, extra: Record<string, string> = {}, start = true) {
    const name = uniqueName(prefix);
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO ${table} SELECT g, g, 'seed' FROM generate_series(1, ${rows}) g`);
    const env = readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never', CDC_SNAPSHOT_CHUNK_ROWS: '250', ...extra });
    const topicName = `${name}_events`;
    await createTopic(topicName, PARTITIONS);
    const topic = await TopicCollector.start([topicName]);
    collectors.push(topic);
    const reader = start ? await startReader(env) : null;
    if (reader) readers.push(reader);
    return { name, schema, table, state: `${name}_state`, topic, reader: reader!, env };
  }

  /** Waits until everything committed so far was streamed: a marker row's change arrived. */
  async function caughtUp(topic: TopicCollector, table: string, id: number): Promise<void> {
    await c.query(`INSERT INTO ${table} VALUES ($1, 0, 'marker')`, [id]);
    await topic.waitForAll('marker streamed', (es) => es.some((e) => e.op === 'c' && e.after?.id === id), 60_000);
  }

  test('hot updates, deletes and inserts on the same keys during the snapshot: no row regresses, the sink ends equal to the table', async () => {
    const rows = 6000;
    const { table, state, topic } = await setup('rd_isnap', rows);
    // Writers on the keys being read: short transactions, and long ones that hold a row between the
    // watermarks (the case that a version taken at the high watermark would get wrong).
    let writing = true;
    const writers = await Promise.all([pgClient(), pgClient(), pgClient(), pgClient()]);
    let next = rows + 1;
    const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
    const loads = writers.map((w, i) =>
      (async () => {
        while (writing) {
          const k = rnd(rows + 200);
          if (i === 0) {
            await w.query(`UPDATE ${table} SET v = v + 1, note = 'hot' WHERE id = $1`, [k]);
          } else if (i === 1 || i === 3) {
            // Many keys held at once, so that every chunk meets such a transaction.
            await w.query('BEGIN');
            await w.query(`UPDATE ${table} SET v = v + 1000, note = 'long' WHERE id BETWEEN $1 AND $1 + 150`, [k]);
            await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 100)));
            await w.query('COMMIT');
          } else {
            const id = next++;
            await w.query(`INSERT INTO ${table} VALUES ($1, $1, 'new') ON CONFLICT (id) DO UPDATE SET note = 'upserted'`, [id]);
            await w.query(`DELETE FROM ${table} WHERE id = $1`, [rnd(rows)]);
            await w.query(`INSERT INTO ${table} VALUES ($1, -1, 'reborn') ON CONFLICT DO NOTHING`, [rnd(rows)]);
          }
        }
      })(),
    );
    await new Promise((r) => setTimeout(r, 300));
    await signal(c, state, 'hot-1', 'execute-snapshot', snapshotData(table));
    await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, PARTITIONS), 240_000);
    writing = false;
    await Promise.all(loads);
    for (const w of writers) await w.end();
    await caughtUp(topic, table, 10_000_000);

    const events = topic.allEvents();
    const snapRows = events.filter((e) => e.op === 'r');
    expect(snapRows.length).toBeGreaterThan(rows / 2);
    expect(snapRows.every((e) => e.source.snapshot === 'incremental')).toBe(true);
    // Changes streamed while the snapshot ran (the writers did collide with it).
    expect(events.filter((e) => e.op === 'u').length).toBeGreaterThan(100);
    const want = await tableState(c, table);
    const got = sinkState(events);
    const wrong = [...want].filter(([k, row]) => JSON.stringify(got.get(k)) !== JSON.stringify(row)).slice(0, 5);
    expect(wrong.map(([k, row]) => ({ key: k, table: row, sink: got.get(k) ?? null }))).toEqual([]);
    expect(got.size).toBe(want.size);

    // Control events: one per partition, started at the first low watermark, done at the last high one.
    const started = control(events, 'snapshot_started');
    const done = control(events, 'snapshot_done');
    expect(started.length).toBe(3);
    expect(done.length).toBe(3);
    expect(new Set(topic.items.filter((i) => i.event.op === 'm').map((i) => i.partition))).toEqual(new Set([0, 1, 2]));
    const [schemaName, tableName] = table.split('.');
    for (const e of [...started, ...done]) {
      expect(e).toMatchObject({ before: null, after: null, key: null, source: { schema: schemaName, table: tableName, snapshot: 'incremental' } });
      expect(e.message).toMatchObject({ prefix: 'pg-cdc', content: { table, id: 'hot-1', where: null } });
    }
    expect(done[0]!.message.content.rows).toBe(snapRows.length);
    expect(done[0]!.source.lsn!).toBeGreaterThan(Math.max(...snapRows.map((e) => e.source.lsn!)));
    expect(started[0]!.source.lsn!).toBeLessThanOrEqual(Math.min(...snapRows.map((e) => e.source.lsn!)));
  }, 300_000);

  test('a WHERE condition: only the rows it selects are re-read', async () => {
    const { table, state, topic } = await setup('rd_iwhere', 1000);
    await signal(c, state, 'where-1', 'execute-snapshot', snapshotData(table, 'id % 10 = 3 AND note IS NOT NULL'));
    const events = await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, PARTITIONS), 60_000);
    const snap = events.filter((e) => e.op === 'r');
    expect(snap.map((e) => e.after!.id).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 100 }, (_, i) => i * 10 + 3));
    expect(control(events, 'snapshot_done')[0]!.message.content).toEqual({ table, id: 'where-1', where: 'id % 10 = 3 AND note IS NOT NULL', rows: 100 });
  }, 120_000);

  test('bad signals are refused with the reason and the fix, and never stall the stream', async () => {
    const { schema, table, state, topic, reader } = await setup('rd_ibad', 50);
    await c.query(`CREATE TABLE ${schema}.not_captured (id int PRIMARY KEY)`);
    await signal(c, state, 'bad-json', 'execute-snapshot', '{"data-collections": [');
    await signal(c, state, 'bad-table', 'execute-snapshot', snapshotData(`${schema}.nope`));
    await signal(c, state, 'not-captured', 'execute-snapshot', snapshotData(`${schema}.not_captured`));
    await signal(c, state, 'bad-filter', 'execute-snapshot', snapshotData(table, 'no_such_column = 1'));
    await signal(c, state, 'write-filter', 'execute-snapshot', snapshotData(table, 'id = 1; DELETE FROM items WHERE true'));
    await signal(c, state, 'no-collections', 'execute-snapshot', '{"type": "incremental"}');
    await c.query(`UPDATE ${table} SET note = 'after bad signals' WHERE id = 7`);
    await topic.waitForAll('change after the bad signals', (es) => es.some((e) => e.op === 'u' && e.after?.note === 'after bad signals'));
    const refused = await eventually('six refusals', () => {
      const lines = reader.log.lines.filter((l) => l.msg === 'signal refused');
      return lines.length >= 6 ? lines : undefined;
    });
    const byId = new Map(refused.map((l) => [l.id, l]));
    expect(String(byId.get('bad-json')?.reason)).toMatch(/not JSON/);
    expect(String(byId.get('bad-table')?.reason)).toMatch(/does not exist/);
    expect(String(byId.get('not-captured')?.reason)).toMatch(/not captured/);
    expect(String(byId.get('bad-filter')?.reason)).toMatch(/not a valid condition.*no_such_column/);
    expect(String(byId.get('write-filter')?.reason)).toMatch(/not a valid condition/);
    expect(String(byId.get('no-collections')?.reason)).toMatch(/data-collections/);
    for (const l of refused) expect(typeof l.fix).toBe('string');
    expect((await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n).toBe(50);
    // A good signal after them still works.
    await signal(c, state, 'good', 'execute-snapshot', snapshotData(table));
    await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, PARTITIONS, (e) => e.message.content.id === 'good'), 60_000);
  }, 120_000);

  test('npm run snapshot: validates the table and the condition, then writes the signal the reader acts on', async () => {
    const { schema, table, topic, env } = await setup('rd_icli', 300, { CDC_SNAPSHOT_CHUNK_ROWS: '100' });
    const cli = async (args: string[]) => {
      const run = spawnEntryPoint('scripts/snapshot.ts', env, args);
      const code = await run.exited;
      const out = run.lines.map((l) => (typeof l.msg === 'string' ? l.msg : typeof l.stderr === 'string' ? l.stderr : JSON.stringify(l))).join('\n');
      return { code, out };
    };
    const missing = await cli(['--table', `${schema}.nope`]);
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(/does not exist/);
    const badWhere = await cli(['--table', table, '--where', 'nope > 1']);
    expect(badWhere.code).toBe(1);
    expect(badWhere.out).toMatch(/not a valid condition[\s\S]*fix:/);
    const noArgs = await cli([]);
    expect(noArgs.code).toBe(2);
    expect(noArgs.out).toMatch(/--table is required/);
    const ok = await cli(['--table', table, '--where', 'id <= 150']);
    expect(ok.out).toMatch(new RegExp(`requested an incremental snapshot of ${table} where id <= 150`));
    expect(ok.code).toBe(0);
    const events = await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, PARTITIONS), 60_000);
    expect(events.filter((e) => e.op === 'r').length).toBe(150);
    expect(control(events, 'snapshot_done')[0]!.message.content).toMatchObject({ table, where: 'id <= 150', rows: 150 });
  }, 120_000);

  test('a table added to CDC_TABLES later is snapshotted incrementally at start-up (not in mode never)', async () => {
    const { schema, table, topic, env } = await setup('rd_inew', 10, { CDC_SNAPSHOT_MODE: 'initial' });
    await topic.waitForAll('initial snapshot of the first table', (es) => es.filter((e) => e.op === 'r').length === 10);
    const later = `${schema}.later`;
    await c.query(
      `CREATE TABLE ${later} (id int PRIMARY KEY, v int NOT NULL, note text); INSERT INTO ${later} SELECT g, g, 'before' FROM generate_series(1, 700) g`,
    );
    await readers.pop()!.stop();
    const second = await startReader({ ...env, CDC_TABLES: `${table},${later}` });
    readers.push(second);
    await c.query(`UPDATE ${later} SET note = 'streamed' WHERE id = 5`);
    const [laterSchema, laterTable] = later.split('.');
    const events = await topic.waitForAll(
      'incremental snapshot of the new table',
      (es) => doneEverywhere(es, PARTITIONS, (e) => e.message.content.table === later),
      60_000,
    );
    const rows = events.filter((e) => e.source.schema === laterSchema && e.source.table === laterTable);
    const want = await tableState(c, later);
    expect(sinkState(rows)).toEqual(want);
    expect(second.log.lines.some((l) => l.msg === 'table captured for the first time by this slot: snapshotting it incrementally')).toBe(true);
    // The first table is not snapshotted again.
    expect(events.filter((e) => e.op === 'r' && e.source.table === 'items').length).toBe(10);
  }, 120_000);

  test('CDC_SCHEMA_CHANGE_SNAPSHOT=auto: a dropped column starts an incremental snapshot; an added nullable column does not', async () => {
    const { table, topic, reader } = await setup('rd_idrop', 400);
    await c.query(`ALTER TABLE ${table} ADD COLUMN extra text`);
    await c.query(`UPDATE ${table} SET v = v + 1 WHERE id = 1`);
    await topic.waitForAll('change after ADD COLUMN', (es) => es.some((e) => e.op === 'u' && e.after?.id === 1));
    await c.query(`ALTER TABLE ${table} DROP COLUMN note`);
    await c.query(`UPDATE ${table} SET v = v + 1 WHERE id = 2`);
    const events = await topic.waitForAll('snapshot after DROP COLUMN', (es) => doneEverywhere(es, PARTITIONS), 60_000);
    const snap = events.filter((e) => e.op === 'r');
    expect(snap.length).toBe(400);
    expect(snap.every((e) => !('note' in e.after!) && 'extra' in e.after!)).toBe(true);
    expect(control(events, 'snapshot_started')).toHaveLength(3);
    expect(control(events, 'snapshot_started')[0]!.message.content.id).toMatch(/^auto-schema-change-/);
    expect(reader.log.lines.filter((l) => l.msg === 'incremental snapshot queued')).toHaveLength(1);
  }, 120_000);

  test('kill -9 mid-snapshot: the restarted reader resumes after the last delivered chunk', async () => {
    const rows = 30_000;
    const { table, state, topic, env, name } = await setup('rd_ikill', rows, { CDC_SNAPSHOT_CHUNK_ROWS: '200' }, false);
    const child = spawnReader(env);
    let atKill: { last: string[]; done: boolean };
    try {
      await eventually('child streaming', () => (child.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 120_000);
      await signal(c, state, 'kill-1', 'execute-snapshot', snapshotData(table));
      const delivered = await eventually(
        'some chunks delivered',
        async () => {
          const r = await c.query<{ last: string[] | null; rows: string }>(`SELECT last_key AS last, rows::text AS rows FROM ${state}.incremental_snapshots`);
          const p = r.rows[0];
          return p && Number(p.rows) >= 2000 ? p : undefined;
        },
        60_000,
      );
      child.proc.kill('SIGKILL');
      await child.exited;
      // The progress stored when it died (at least what was read above).
      atKill = (await c.query<{ last: string[]; done: boolean }>(`SELECT last_key AS last, done FROM ${state}.incremental_snapshots`)).rows[0]!;
      expect(atKill.done).toBe(false);
      expect(Number(atKill.last[0])).toBeGreaterThanOrEqual(Number(delivered.last![0]));
    } finally {
      // Never left running (its slot would stay active) when a step above failed.
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGKILL');
      await child.exited;
    }
    await slotInactive(c, name);
    const second = await startReader(env);
    readers.push(second);
    const events = await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, PARTITIONS), 120_000);
    const resumed = second.log.lines.find((l) => l.msg === 'incremental snapshot resumed');
    expect(resumed).toMatchObject({ id: 'kill-1', resumeAfter: atKill.last });
    // Rows up to the stored key were delivered once and not read again; the rest at least once.
    const last = Number(atKill.last[0]);
    const count = new Map<number, number>();
    for (const e of events.filter((x) => x.op === 'r')) count.set(Number(e.after!.id), (count.get(Number(e.after!.id)) ?? 0) + 1);
    const repeated = [...count].filter(([id, n]) => id <= last && n !== 1);
    expect(repeated).toEqual([]);
    expect(count.size).toBe(rows);
    expect(sinkState(events)).toEqual(await tableState(c, table));
  }, 240_000);

  test('without CDC_TABLES, a table the reader adds while running that already holds rows is snapshotted incrementally', async () => {
    const db = await privateDatabase('rd_iadd');
    try {
      await db.client.query(`CREATE TABLE public.first (id int PRIMARY KEY)`);
      const name = uniqueName('rd_iadd');
      const topicName = `${name}_events`;
      const topic = await TopicCollector.start([topicName]);
      collectors.push(topic);
      const reader = await startReader(readerEnv(name, { PGDATABASE: db.name, CDC_PUBLICATION_REFRESH_MS: '300' }));
      try {
        await db.client.query(`BEGIN; CREATE TABLE public.later (id int PRIMARY KEY, v int NOT NULL, note text);
          INSERT INTO public.later SELECT g, g, 'before' FROM generate_series(1, 300) g; COMMIT`);
        const events = await topic.waitForAll(
          'snapshot of the added table',
          (es) => doneEverywhere(es, 1, (e) => e.message.content.table === 'public.later'),
          60_000,
        );
        expect(events.filter((e) => e.op === 'r' && e.source.table === 'later')).toHaveLength(300);
        expect(control(events, 'snapshot_started')[0]!.message.content.id).toMatch(/^auto-new-table-/);
      } finally {
        await reader.stop();
      }
    } finally {
      await db.drop();
    }
  }, 120_000);

  test('stop-snapshot stops a running incremental snapshot for good', async () => {
    const { table, state, topic, reader } = await setup('rd_istop', 20_000, { CDC_SNAPSHOT_CHUNK_ROWS: '100' });
    await signal(c, state, 'long-1', 'execute-snapshot', snapshotData(table));
    await topic.waitForAll('some rows', (es) => es.filter((e) => e.op === 'r').length >= 300, 60_000);
    await signal(c, state, 'stop-1', 'stop-snapshot', JSON.stringify({ 'data-collections': [table], type: 'incremental' }));
    const stopped = await eventually('stopped', () => reader.log.lines.find((l) => l.msg === 'incremental snapshots stopped by signal'));
    expect(stopped).toMatchObject({ id: 'stop-1', stopped: [{ id: 'long-1', table }] });
    await eventually('stored as done', async () => {
      const r = await c.query<{ done: boolean }>(`SELECT done FROM ${state}.incremental_snapshots WHERE id = 'long-1'`);
      return r.rows[0]?.done ? true : undefined;
    });
    const n = topic.allEvents().filter((e) => e.op === 'r').length;
    await caughtUp(topic, table, 10_000_000);
    await new Promise((r) => setTimeout(r, 1000));
    // At most the chunk in flight after the stop; never the rest, never a done event.
    expect(topic.allEvents().filter((e) => e.op === 'r').length).toBeLessThanOrEqual(n + 100);
    expect(topic.allEvents().filter((e) => e.op === 'r').length).toBeLessThan(20_000);
    expect(control(topic.allEvents(), 'snapshot_done')).toEqual([]);
  }, 120_000);

  test('CDC_EVENT_FORMAT=debezium: rows with source.snapshot "incremental", and no control events', async () => {
    const name = uniqueName('rd_idbz');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, note text);
      INSERT INTO ${table} SELECT g, g, 'seed' FROM generate_series(1, 120) g`);
    const topic = await TopicCollector.start([`${name}.${schema}.items`]);
    collectors.push(topic);
    const reader = await startReader(
      readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never', CDC_SNAPSHOT_CHUNK_ROWS: '50', CDC_EVENT_FORMAT: 'debezium', CDC_SERVER_NAME: name }),
    );
    readers.push(reader);
    await signal(c, `${name}_state`, 'dbz-1', 'execute-snapshot', snapshotData(table));
    await eventually('finished', () => reader.log.lines.find((l) => l.msg === 'incremental snapshot finished' && l.id === 'dbz-1'), 60_000);
    await caughtUp(topic, table, 10_000);
    const events = topic.allEvents();
    const snap = events.filter((e) => e.op === 'r');
    expect(snap).toHaveLength(120);
    expect(snap.every((e) => e.source.snapshot === 'incremental' && e.after !== null)).toBe(true);
    expect(events.filter((e) => e.op === 'm')).toEqual([]);
  }, 120_000);

  test('hostile keys: a composite key of text, timestamptz (±infinity) and numeric, odd column names, partitioned table', async () => {
    const name = uniqueName('rd_iodd');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}."Odd ""Table"""`;
    await c.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${table} ("Key Text" text, "at" timestamptz, "n" numeric, "select" text, PRIMARY KEY ("Key Text", "at", "n")) PARTITION BY HASH ("n");
      CREATE TABLE ${schema}.p0 PARTITION OF ${table} FOR VALUES WITH (MODULUS 2, REMAINDER 0);
      CREATE TABLE ${schema}.p1 PARTITION OF ${table} FOR VALUES WITH (MODULUS 2, REMAINDER 1);
      INSERT INTO ${table}
        SELECT k, t, n, repeat('x', (g % 7) * 300)
          FROM generate_series(1, 500) g,
               LATERAL (SELECT (ARRAY['', 'a''b', 'ü"\\', 'zz', repeat('long', 200)])[1 + g % 5] AS k,
                               (ARRAY['-infinity'::timestamptz, 'infinity', '2024-02-29 23:59:59.999999+00', '1970-01-01'])[1 + g % 4] AS t,
                               (g::numeric / 7)::numeric(30, 20) AS n) x`);
    const topicName = `${name}_events`;
    const topic = await TopicCollector.start([topicName]);
    collectors.push(topic);
    const reader = await startReader(readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never', CDC_SNAPSHOT_CHUNK_ROWS: '37' }));
    readers.push(reader);
    await signal(c, `${name}_state`, 'odd-1', 'execute-snapshot', snapshotData(table));
    const events = await topic.waitForAll('snapshot done', (es) => doneEverywhere(es, 1), 90_000);
    const snap = events.filter((e) => e.op === 'r');
    expect(snap).toHaveLength(500);
    expect(new Set(snap.map((e) => JSON.stringify(e.key))).size).toBe(500);
    expect(snap[0]!.source).toMatchObject({ schema, table: 'Odd "Table"' });
    expect(Object.keys(snap[0]!.key!)).toEqual(['Key Text', 'at', 'n']);
    expect(snap.some((e) => e.after!.at === '-infinity') && snap.some((e) => e.after!.at === 'infinity')).toBe(true);
    expect(control(events, 'snapshot_done')[0]!.message.content).toMatchObject({ table: `${schema}.Odd "Table"`, rows: 500 });
  }, 120_000);
});
