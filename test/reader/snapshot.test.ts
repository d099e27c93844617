import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import {
  applyPerKey,
  cleanup,
  converge,
  eventually,
  pgClient,
  readerEnv,
  slotInactive,
  spawnReader,
  startReader,
  TopicCollector,
  uniqueName,
} from './helpers.js';
import { chunkRowsFor } from '../../src/reader/snapshot/snapshot.js';

/** The reader's stored snapshot position for slot `name`, or undefined before it has one. */
async function snapshotProgress(c: pg.Client, name: string): Promise<{ rows: string; k: string[] | null; done: boolean } | undefined> {
  const result = await c
    .query<{ rows: string; k: string[] | null; done: boolean }>(
      `SELECT rows::text, last_key AS k, done FROM "${name}_state".snapshot_progress WHERE slot_name = $1`,
      [name],
    )
    .catch(() => ({ rows: [] }));
  return result.rows[0];
}

async function tableState(c: pg.Client, table: string): Promise<Map<string, Record<string, unknown>>> {
  const r = await c.query<{ id: number; v: string; note: string | null }>(`SELECT id, v::text AS v, note FROM ${table}`);
  return new Map(r.rows.map((row) => [JSON.stringify(row.id), { id: row.id, v: row.v, note: row.note }]));
}

function expectConverged(events: ChangeEvent[], state: Map<string, Record<string, unknown>>): void {
  const final = converge(events, 'id');
  const live = new Map([...final].filter(([, v]) => v !== null));
  expect(live.size).toBe(state.size);
  for (const [k, row] of state) expect(live.get(k)).toEqual(row);
}

describe('reader: initial snapshot', () => {
  let c: pg.Client;
  const names: { name: string; schema: string }[] = [];

  beforeAll(async () => {
    c = await pgClient();
  });
  afterAll(async () => {
    for (const n of names) await cleanup(c, n.name, [n.schema]);
    await c.end();
  });

  test('pre-filled table: snapshot rows (op r), then streaming with no gap or loss at the boundary', async () => {
    const name = uniqueName('rd_snap');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v numeric NOT NULL, note text);
      INSERT INTO ${table} SELECT g, g, 'seed' FROM generate_series(1, 20000) g`);
    // A writer that keeps changing rows while the slot is created and the snapshot runs.
    const writer = await pgClient();
    let writing = true;
    let next = 20001;
    const load = (async () => {
      while (writing) {
        const id = next++;
        await writer.query(
          `BEGIN; INSERT INTO ${table} VALUES ($1, $1, 'live'); UPDATE ${table} SET v = v + 1, note = 'upd' WHERE id = $2; DELETE FROM ${table} WHERE id = $3; COMMIT`
            .replace(/\$1/g, String(id))
            .replace('$2', String(((id * 7) % 20000) + 1))
            .replace('$3', String(((id * 13) % 20000) + 1)),
        );
      }
    })();
    const r = await startReader(readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_CHUNK_ROWS: '3000' }));
    await eventually('some streamed changes', () => (r.reader.metrics.changes > 50 ? true : undefined));
    writing = false;
    await load;
    await writer.end();
    const state = await tableState(c, table);
    const topic = await TopicCollector.start([`${name}_events`]);
    await topic.waitFor(
      'snapshot and every change up to the last write',
      (es) => {
        const f = converge(es, 'id');
        return [...state].every(([k, row]) => JSON.stringify(f.get(k)) === JSON.stringify(row)) && [...f].filter(([, v]) => v !== null).length === state.size;
      },
      60_000,
    );
    await r.stop();
    const events = topic.events();
    await topic.close();
    const snap = events.filter((e) => e.op === 'r');
    expect(snap.length).toBeGreaterThanOrEqual(20000 - 2000);
    expect(new Set(snap.map((e) => e.source.lsn)).size).toBe(1); // one version for the whole snapshot
    const streamed = events.filter((e) => e.op !== 'r');
    expect(Math.min(...streamed.map((e) => e.source.lsn!))).toBeGreaterThan(snap[0]!.source.lsn!);
    expect(snap.every((e) => e.source.snapshot === 'true' && e.source.txId === null)).toBe(true);
    // The snapshot and the stream name the same column types (docs/reader.md "Column types").
    expect(new Set(events.map((e) => JSON.stringify(e.source.types)))).toEqual(new Set(['{"v":"numeric"}']));
    expectConverged(events, state);
    const progress = r.log.lines.filter((l) => l.msg === 'snapshot progress');
    expect(progress.at(-1)).toMatchObject({ rows: expect.any(Number) as unknown, done: true });
    expect(progress.at(-1)).toHaveProperty('rowsPerSec');
    expect(progress.at(-1)).toHaveProperty('etaSec');
  });

  test('wide rows are read in ranges of fewer rows than CDC_SNAPSHOT_CHUNK_ROWS (about 2.5 MB each), every row once', async () => {
    const name = uniqueName('rd_wide');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.wide`;
    // 3,000 rows of 8 KB of hex that compresses only about 2:1: 24 MB of cells, with the default 5,000-row chunk one range.
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, doc text);
      INSERT INTO ${table} SELECT g, (SELECT string_agg(md5(g::text || ':' || i), '') FROM generate_series(1, 256) i) FROM generate_series(1, 3000) g;
      ANALYZE ${table}`);
    const topic = await TopicCollector.start([`${name}_events`]);
    const r = await startReader(readerEnv(name, { CDC_TABLES: table }));
    const events = await topic.waitFor('every row', (es) => es.filter((e) => e.op === 'r').length >= 3000, 90_000);
    await eventually('the snapshot done', () => r.log.lines.find((l) => l.msg === 'snapshot progress' && l.done === true));
    await r.stop();
    await topic.close();
    const ids = events.filter((e) => e.op === 'r').map((e) => Number(e.key!.id));
    expect(ids.sort((x, y) => x - y)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    for (const e of events.filter((x) => x.op === 'r')) expect((e.after!.doc as string).length).toBe(8192);
    // 64 + 2 × 24 + 8,192 + the key's bytes a row: 2.5 MiB holds about 315.
    const done = r.log.lines.find((l) => l.msg === 'snapshot progress' && l.done === true)!;
    expect(done.chunkRows).toBeGreaterThanOrEqual(300);
    expect(done.chunkRows).toBeLessThanOrEqual(330);
  });

  test('chunkRowsFor: the configured rows, fewer for wide rows, never under 16 unless configured so', () => {
    expect(chunkRowsFor(5000, 230)).toBe(5000);
    expect(chunkRowsFor(5000, 1200)).toBe(Math.floor((2.5 * 1024 * 1024) / 1200));
    expect(chunkRowsFor(5000, 10_000_000)).toBe(16);
    expect(chunkRowsFor(10, 10_000_000)).toBe(10);
    expect(chunkRowsFor(5000, 0)).toBe(5000);
    expect(chunkRowsFor(5000, Number.NaN)).toBe(5000);
  });

  test('a cell too large for a reader thread’s heap: its row comes back as bytes and is built on the main thread; every row delivered, no thread fails', async () => {
    const name = uniqueName('rd_thrbig');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.big`;
    // A json cell of 70 MB (blanks: tiny on disk, and its JSON is small): the thread would have to make a string of it (json goes through its decoder).
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, doc json);
      INSERT INTO ${table} SELECT g, ('[' || g || repeat(' ', CASE WHEN g = 100 THEN 70000000 ELSE 1 END) || ']')::json FROM generate_series(1, 320) g`);
    const topic = await TopicCollector.start([`${name}_events`]);
    const r = await startReader(readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_PARALLELISM: '1', CDC_SNAPSHOT_READER_THREADS: '1' }));
    const events = await topic.waitFor('every row', (es) => es.filter((e) => e.op === 'r').length >= 320, 90_000);
    await r.stop();
    await topic.close();
    const snap = events.filter((e) => e.op === 'r');
    expect(snap.map((e) => e.key!.id).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 320 }, (_, i) => i + 1));
    for (const e of snap) expect(e.after!.doc).toEqual([Number(e.key!.id)]);
    expect(r.log.lines.find((l) => l.msg === 'snapshot started')).toMatchObject({ readers: 1, readerThreads: 1 });
    expect(r.log.lines.filter((l) => l.msg === 'snapshot reader thread failed: its ranges are read on a connection of the main thread')).toEqual([]);
  });

  test('a crash mid-snapshot resumes at the last delivered chunk and still converges', async () => {
    const name = uniqueName('rd_resume');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v numeric NOT NULL, note text);
      INSERT INTO ${table} SELECT g, g, repeat('p', 200) FROM generate_series(1, 40000) g`);
    // Two reader threads read and encode the ranges (the other tests read on the main thread's connections):
    // chunks complete out of order; progress must still claim only a delivered prefix.
    // The smallest in-flight bound (1 MiB, about two chunks of these rows) also bounds the chunks read ahead.
    const env = readerEnv(name, {
      CDC_TABLES: table,
      CDC_SNAPSHOT_CHUNK_ROWS: '2000',
      CDC_SNAPSHOT_PARALLELISM: '3',
      CDC_SNAPSHOT_READER_THREADS: '2',
      CDC_MAX_INFLIGHT_BYTES: String(1024 * 1024),
    });
    const first = spawnReader(env);
    await eventually(
      'a few chunks delivered',
      async () => {
        const p = await c
          .query<{ rows: string; done: boolean }>(`SELECT rows::text, done FROM "${name}_state".snapshot_progress WHERE slot_name = $1`, [name])
          .catch(() => ({ rows: [] }));
        return p.rows[0] && Number(p.rows[0].rows) >= 6000 ? true : undefined;
      },
      60_000,
    );
    first.proc.kill('SIGKILL');
    await first.exited;
    const progressAtCrash = Number(
      (await c.query<{ rows: string; done: boolean }>(`SELECT rows::text, done FROM "${name}_state".snapshot_progress WHERE slot_name = $1`, [name])).rows[0]!
        .rows,
    );
    expect(progressAtCrash).toBeLessThan(40000);
    // Every row up to the recorded last key is on the topic (delivered before its progress was recorded).
    const lastKey = (await c.query<{ k: string[] }>(`SELECT last_key AS k FROM "${name}_state".snapshot_progress WHERE slot_name = $1`, [name])).rows[0]!.k;
    const upTo = Number(lastKey[0]);
    expect(upTo).toBeGreaterThanOrEqual(6000);
    expect(upTo).toBe(progressAtCrash); // ids 1..n: the last key of a delivered prefix equals its row count
    const delivered = await TopicCollector.start([`${name}_events`]);
    await delivered.waitFor(
      'every row up to the recorded key',
      (es) => new Set(es.filter((e) => e.op === 'r').map((e) => e.key!.id as number)).size >= upTo,
      30_000,
    );
    const ids = new Set(
      delivered
        .events()
        .filter((e) => e.op === 'r')
        .map((e) => e.key!.id as number),
    );
    await delivered.close();
    for (let id = 1; id <= upTo; id++) if (!ids.has(id)) throw new Error(`row ${id} is at or below the recorded key ${upTo} but was not delivered`);
    // Changes while the reader is down: to rows already delivered, rows not yet read, deletes, inserts.
    await c.query(`UPDATE ${table} SET v = -1, note = 'after-crash' WHERE id IN (1, 2, 39999);
      DELETE FROM ${table} WHERE id IN (3, 39998);
      INSERT INTO ${table} VALUES (70000, 7, 'new')`);
    await slotInactive(c, name);
    const second = await startReader(env);
    expect(second.log.lines.some((l) => l.msg === 'resuming interrupted snapshot with a fresh snapshot')).toBe(true);
    // The resumed snapshot read on its threads, and none failed.
    expect(second.log.lines.find((l) => l.msg === 'snapshot started')).toMatchObject({ readers: 3, readerThreads: 2 });
    expect(second.log.lines.some((l) => String(l.msg).startsWith('snapshot reader thread'))).toBe(false);
    const state = await tableState(c, table);
    const topic = await TopicCollector.start([`${name}_events`]);
    await topic.waitFor(
      'every row and change',
      (es) => {
        const f = converge(es, 'id');
        return [...state].every(([k, row]) => JSON.stringify(f.get(k)) === JSON.stringify(row)) && f.get('3') === null && f.get('39998') === null;
      },
      60_000,
    );
    await second.stop();
    const events = topic.events();
    await topic.close();
    expectConverged(events, state);
    // Resumed, not restarted: rows of the first delivered chunk were not read again.
    const firstChunkRereads = events.filter((e) => e.op === 'r' && (e.key!.id as number) <= 2000).length;
    expect(firstChunkRereads).toBe(2000);
  });
  test('a keyless table is read in CTID ranges by 3 connections; a crash resumes at the last delivered range and converges', async () => {
    const name = uniqueName('rd_ctid');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int NOT NULL, v numeric NOT NULL, note text);
      ALTER TABLE ${table} REPLICA IDENTITY FULL;
      INSERT INTO ${table} SELECT g, g, repeat('k', 200) FROM generate_series(1, 40000) g; ANALYZE ${table}`);
    const env = readerEnv(name, {
      CDC_TABLES: table,
      CDC_SNAPSHOT_CHUNK_ROWS: '2000',
      CDC_SNAPSHOT_PARALLELISM: '3',
      CDC_MAX_INFLIGHT_BYTES: String(1024 * 1024),
    });
    const progress = () => snapshotProgress(c, name);
    const first = spawnReader(env);
    await eventually('a few ranges delivered', async () => ((await progress()) && Number((await progress())!.rows) >= 6000 ? true : undefined), 60_000);
    first.proc.kill('SIGKILL');
    await first.exited;
    const at = (await progress())!;
    expect(at.done).toBe(false);
    // The stored position: the table file and the first block not yet delivered.
    const node = (await c.query<{ n: string }>(`SELECT pg_relation_filenode('${table}'::regclass)::text AS n`)).rows[0]!.n;
    const position = /^ctid:(\d+):(\d+)$/.exec(at.k![0]!);
    expect(position?.[1]).toBe(node);
    const block = `(${position![2]},0)`;
    // The recorded rows are exactly the rows before that block, and every one of them is on the topic.
    const prefix = (await c.query<{ id: number }>(`SELECT id FROM ${table} WHERE ctid < $1::tid`, [block])).rows.map((r) => r.id);
    expect(prefix.length).toBe(Number(at.rows));
    expect(prefix.length).toBeLessThan(40000);
    const delivered = await TopicCollector.start([`${name}_events`]);
    await delivered.waitFor(
      'every row before the recorded block',
      (es) => new Set(es.filter((e) => e.op === 'r').map((e) => e.after!.id as number)).size >= prefix.length,
      30_000,
    );
    const ids = new Set(
      delivered
        .events()
        .filter((e) => e.op === 'r')
        .map((e) => e.after!.id as number),
    );
    await delivered.close();
    for (const id of prefix) if (!ids.has(id)) throw new Error(`row ${id} is before the recorded block ${block} but was not delivered`);
    // Changes while the reader is down: to delivered rows, rows not yet read, deletes, inserts.
    await c.query(`UPDATE ${table} SET v = -1, note = 'after-crash' WHERE id IN (1, 39999);
      DELETE FROM ${table} WHERE id IN (3, 39998);
      INSERT INTO ${table} VALUES (70000, 7, 'new')`);
    await slotInactive(c, name);
    const second = await startReader(env);
    expect(second.log.lines.some((l) => l.msg === 'resuming interrupted snapshot with a fresh snapshot')).toBe(true);
    const state = new Set(
      (await c.query<{ id: number; v: string; note: string | null }>(`SELECT id, v::text AS v, note FROM ${table}`)).rows.map((r) => JSON.stringify(r)),
    );
    const topic = await TopicCollector.start([`${name}_events`]);
    // The key is the whole row: a sink applying the events in order holds exactly the table's rows.
    const rowsHeld = () => new Set([...applyPerKey(topic.items).values()].map((r) => JSON.stringify({ id: r.id, v: r.v, note: r.note })));
    await topic.waitFor(
      'every row and change',
      () => {
        const held = rowsHeld();
        return held.size === state.size && [...state].every((r) => held.has(r));
      },
      60_000,
    );
    await second.stop();
    const events = topic.events();
    await topic.close();
    expect(rowsHeld()).toEqual(state);
    // Resumed, not restarted: the rows before the recorded block were read once, in the first run.
    const inPrefix = new Set(prefix);
    expect(events.filter((e) => e.op === 'r' && inPrefix.has(e.after!.id as number)).length).toBe(prefix.length);
    expect(second.log.lines.find((l) => l.msg === 'snapshot started')).toMatchObject({ readers: 3 });
  });

  test('a stop in the middle of a snapshot read by 4 connections ends promptly; the recorded key is a delivered prefix', async () => {
    const name = uniqueName('rd_snapstop');
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.items`;
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v numeric NOT NULL, note text);
      INSERT INTO ${table} SELECT g, g, repeat('s', 300) FROM generate_series(1, 60000) g`);
    const env = readerEnv(name, {
      CDC_TABLES: table,
      CDC_SNAPSHOT_CHUNK_ROWS: '500',
      CDC_SNAPSHOT_PARALLELISM: '4',
      CDC_MAX_INFLIGHT_BYTES: String(1024 * 1024),
    });
    const r = await startReader(env, 'none');
    const progress = () => snapshotProgress(c, name);
    await eventually('a few chunks recorded', async () => ((await progress()) && Number((await progress())!.rows) >= 3000 ? true : undefined), 60_000);
    // With the broker up a stop ends long before the 30 s shutdown bound (a reader left waiting for a
    // stopped one's chunk used to hold it until that bound).
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      (async () => {
        await r.reader.stop();
        await r.run;
        return 'ended';
      })(),
      new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running'), 20_000))),
    ]);
    clearTimeout(timer);
    expect(outcome).toBe('ended');
    const at = (await progress())!;
    expect(at.done).toBe(false);
    const upTo = Number(at.k![0]);
    expect(upTo).toBe(Number(at.rows));
    const topic = await TopicCollector.start([`${name}_events`]);
    await topic.waitFor('every row up to the recorded key', (es) => new Set(es.map((e) => e.key!.id as number)).size >= upTo, 30_000);
    const ids = new Set(topic.events().map((e) => e.key!.id as number));
    await topic.close();
    for (let id = 1; id <= upTo; id++) if (!ids.has(id)) throw new Error(`row ${id} is at or below the recorded key ${upTo} but was not delivered`);
  });
});
