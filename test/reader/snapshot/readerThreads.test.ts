import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { serviceEnv, uniqueName } from '../../helpers/services.js';
import { SESSION_OPTIONS, textTypes } from '../../../src/shared/events/pgTables.js';
import { TypeRegistry } from '../../../src/shared/events/typeRegistry.js';
import { decoderOf } from '../../../src/shared/events/pgTypes.js';
import { pgSettingsFromEnv } from '../../../src/shared/core/postgres.js';
import { chunkRecord } from '../../../src/reader/encode/chunkRecords.js';
import { copyLineCells } from '../../../src/reader/encode/copyRows.js';
import { layoutRecord } from '../../../src/reader/encode/toRecord.js';
import type { RowsLayout } from '../../../src/reader/encode/chunkRecords.js';
import { chunkBytes } from '../../../src/reader/snapshot/chunkBytes.js';
import { ReaderThreadFailed, ReaderThreads } from '../../../src/reader/snapshot/readerThreads.js';
import type { EncoderTable, ThreadConnection } from '../../../src/reader/snapshot/readerThreads.js';
import type { RowImage } from '../../../src/shared/events/changeEvent.js';

const layout: RowsLayout = { topic: 'hub', head: '{"before":null,"after":', middle: ',"source":{},"op":"r","key":', limit: 1_000_000 };

// Reader threads against the main thread's reference (the row object, JSON.stringify, layoutRecord), on
// PostgreSQL's own text output of every type read by the threads' own connections in the exported
// snapshot, with arrays, domains and enums resolved by the registry.
describe('ReaderThreads: snapshot ranges read and encoded on threads with connections of their own', () => {
  const schema = uniqueName('rt');
  let c: pg.Client;
  let connection: ThreadConnection;
  beforeAll(async () => {
    const env = serviceEnv();
    c = new pg.Client({ ...env.pg, options: SESSION_OPTIONS, types: textTypes });
    await c.connect();
    const settings = pgSettingsFromEnv({
      PGHOST: env.pg.host,
      PGPORT: String(env.pg.port),
      PGUSER: env.pg.user,
      PGDATABASE: env.pg.database,
      PGSSLMODE: 'disable',
    });
    connection = { settings, plain: true };
    await c.query(`CREATE SCHEMA ${schema}; CREATE TYPE ${schema}.mood AS ENUM ('ok', 'sad "q"'); CREATE DOMAIN ${schema}.price AS numeric(12,2)`);
    await c.query(
      `CREATE TABLE ${schema}.enc (id bigint PRIMARY KEY, n numeric, f float8, b boolean, t text, ts timestamptz, tz timestamp, j jsonb, js json, a int[], ma ${schema}.mood[], m ${schema}.mood, p ${schema}.price, pa ${schema}.price[], by bytea, k2 text)`,
    );
    await c.query(`INSERT INTO ${schema}.enc SELECT g, g * 1.5, CASE WHEN g % 3 = 0 THEN 'NaN' ELSE g / 7.0 END, g % 2 = 0, repeat('é"\\', g % 5), '2026-01-01 10:00:00+00'::timestamptz + g * interval '1.5 s',
        CASE WHEN g % 4 = 0 THEN 'infinity'::timestamp ELSE '1999-12-31 23:59:59'::timestamp END, jsonb_build_object('k', g, 'price', 45.70, 'arr', jsonb_build_array(g, 'x')),
        '{"a" : 1.0}', ARRAY[g, NULL], ARRAY['ok', 'sad "q"']::${schema}.mood[], 'ok', g + 0.25, ARRAY[1.5, NULL]::${schema}.price[], '\\x00ff', CASE WHEN g % 1000 = 0 THEN NULL ELSE 'k' END
      FROM generate_series(1, 3000) g`);
    await c.query(
      `INSERT INTO ${schema}.enc (id, f, ts, k2) VALUES (9223372036854775807, '-Infinity', '-infinity', 'k'), (-9007199254740993, 1e300, '0044-03-15 12:00:00+00 BC', 'k')`,
    );
  });
  afterAll(async () => {
    await c.query('ROLLBACK').catch(() => undefined);
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  test('every column type in the exported snapshot: records byte-identical to the reference, on either thread; rows without a record come back as text', async () => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const threads = await ReaderThreads.open(2, connection, snapshot);
    try {
      // Committed after the export: the threads must not see it.
      const other = new pg.Client(serviceEnv().pg);
      await other.connect();
      await other.query(`INSERT INTO ${schema}.enc (id, k2) VALUES (5000, 'after the snapshot')`);
      await other.end();
      const select = `SELECT id, n, f, b, t, ts, tz, j, js, a, ma, m, p, pa, by, k2 FROM ${schema}.enc`;
      const res = await c.query<unknown[]>({ text: `${select} ORDER BY id`, rowMode: 'array' });
      const types = new TypeRegistry((sql, params) => c.query(sql, params));
      await types.ensure(res.fields.map((f) => f.dataTypeID));
      // A composite key whose second column is NULL every 1000th row: those rows get no record (the main thread names the problem).
      const table: EncoderTable = {
        id: 1,
        columns: res.fields.map((f) => ({ name: f.name, spec: types.decoderSpec(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) })),
        keyColumns: ['id', 'k2'],
        wholeRowKey: false,
      };
      for (const f of res.fields) expect(decoderOf(types.decoderSpec(f.dataTypeID))).toBe(types.decoder(f.dataTypeID));
      const rows = res.rows as (string | null)[][];
      expect(rows).toHaveLength(3002);
      const [first, second] = await Promise.all([
        threads.read(0, `COPY (${select} WHERE id <= '1500' ORDER BY id) TO STDOUT`, table, layout),
        threads.read(1, `COPY (${select} WHERE id > '1500' ORDER BY id) TO STDOUT`, table, layout),
      ]);
      expect(first.count + second.count).toBe(rows.length);
      const split = first.count;
      // An estimate from COPY's bytes: its escapes and multi-byte characters count a byte each, a text cell's characters one each.
      const estimate = chunkBytes(rows.slice(0, split));
      expect(first.cellBytes).toBeGreaterThanOrEqual(estimate);
      expect(first.cellBytes).toBeLessThan(estimate * 1.25);
      const without: number[] = [];
      for (let j = 0; j < rows.length; j++) {
        const raw = rows[j]!;
        const row: RowImage = {};
        res.fields.forEach((f, i) => (row[f.name] = raw[i] === null ? null : types.decoder(f.dataTypeID)(raw[i]!)));
        const [got, at] = j < split ? [first, j] : [second, j - split];
        // A thread gives its rows back as COPY bytes; the main thread reads them as pg would.
        expect(got.spare).toEqual([]);
        const given = got.spareBytes.find(([i]) => i === at);
        const spare = given && ([given[0], copyLineCells(Buffer.from(given[1]), 0, given[1].length, res.fields.length)] as const);
        if (row.k2 === null) {
          without.push(Number(row.id));
          expect(chunkRecord(got.chunk, at, 'hub')).toBeNull();
          expect(spare?.[1]).toEqual(raw);
          continue;
        }
        const want = layoutRecord(layout, JSON.stringify(row), JSON.stringify({ id: row.id, k2: row.k2 }))!;
        const record = chunkRecord(got.chunk, at, 'hub')!;
        expect(record.value!.toString()).toBe(want.value!.toString());
        expect(record.key!.toString()).toBe(want.key!.toString());
        // The last row of each range comes back as text too (its key is the range's progress).
        expect(spare === undefined).toBe(at !== got.count - 1);
      }
      expect(without).toEqual([1000, 2000, 3000]);
    } finally {
      await threads.close();
      await c.query('COMMIT');
    }
  });

  test('a table a thread cannot encode and a query it cannot run fail that read with the reason; the thread goes on', async () => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const threads = await ReaderThreads.open(1, connection, snapshot);
    try {
      const bad: EncoderTable = { id: 2, columns: [{ name: '10', spec: 'text', baseType: 'text' }], keyColumns: ['10'], wholeRowKey: false };
      const refused = threads.read(0, "COPY (SELECT 'x') TO STDOUT", bad, layout);
      await expect(refused).rejects.toThrow(/snapshot reader thread: .*array index/);
      await expect(refused).rejects.not.toBeInstanceOf(ReaderThreadFailed);
      const good: EncoderTable = { id: 3, columns: [{ name: 'k', spec: 'text', baseType: 'text' }], keyColumns: ['k'], wholeRowKey: false };
      await expect(threads.read(0, `COPY (SELECT k FROM ${schema}.missing) TO STDOUT`, good, layout)).rejects.toThrow(
        /snapshot reader thread: .*does not exist/,
      );
      // A failed query aborts the thread's transaction: that is the snapshot's failure, not a thread's.
      expect(threads.working).toEqual([0]);
    } finally {
      await threads.close();
      await c.query('COMMIT');
    }
  });

  test('a cell too large for a thread’s heap comes back as bytes (its row built on the main thread); a thread that dies fails as a thread (ReaderThreadFailed), and never hangs a read', async () => {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const threads = await ReaderThreads.open(2, connection, snapshot);
    try {
      const table: EncoderTable = { id: 1, columns: [{ name: 'k', spec: 'text', baseType: 'text' }], keyColumns: ['k'], wholeRowKey: false };
      // A cell whose JSON escapes every character: the text path would make 70 MB of text and 140 MB of JSON, far over the thread's heap.
      const huge = await threads.read(
        0,
        `COPY (SELECT k FROM (SELECT repeat('"', 70000000) AS k UNION ALL SELECT 'x') t ORDER BY length(k) DESC) TO STDOUT`,
        table,
        layout,
      );
      expect(huge.count).toBe(2);
      expect(huge.spare).toEqual([]);
      expect(huge.spareBytes.map(([j, bytes]) => [j, bytes.length])).toEqual([
        [0, 70_000_000],
        [1, 1],
      ]);
      expect(chunkRecord(huge.chunk, 0, 'hub')).toBeNull();
      expect(chunkRecord(huge.chunk, 1, 'hub')!.key!.toString()).toBe('{"k":"x"}');
      expect(threads.working).toEqual([0, 1]);
      // A thread that ends (a crash): its pending read and every later one fail as the thread's, not as the query's.
      const internals = threads as unknown as { threads: { worker: { terminate: () => Promise<number> } }[] };
      const pending = threads.read(0, 'COPY (SELECT pg_sleep(1)::text AS k) TO STDOUT', table, layout);
      await internals.threads[0]!.worker.terminate();
      await expect(pending).rejects.toBeInstanceOf(ReaderThreadFailed);
      await expect(pending).rejects.toThrow(/snapshot reader thread exited/);
      await expect(threads.read(0, "COPY (SELECT 'x' AS k) TO STDOUT", table, layout)).rejects.toBeInstanceOf(ReaderThreadFailed);
      expect(threads.working).toEqual([1]);
      const ok = await threads.read(1, "COPY (SELECT 'x' AS k) TO STDOUT", table, layout);
      expect(chunkRecord(ok.chunk, 0, 'hub')!.key!.toString()).toBe('{"k":"x"}');
    } finally {
      await threads.close();
      await c.query('COMMIT');
    }
  });

  test('a snapshot a thread cannot join fails the start with the server’s reason', async () => {
    await expect(ReaderThreads.open(2, connection, '00000003-0000001B-1')).rejects.toThrow(/snapshot reader thread: .*snapshot/i);
  });
});
