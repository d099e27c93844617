import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { serviceEnv } from '../../helpers/services.js';
import { SESSION_OPTIONS, textTypes } from '../../../src/shared/events/pgTables.js';
import { TypeRegistry } from '../../../src/shared/events/typeRegistry.js';
import { decoderOf } from '../../../src/shared/events/pgTypes.js';
import { rowJsonEncoder } from '../../../src/reader/encode/rowJson.js';
import { chunkRecord, RecordBuffers, writeChunk } from '../../../src/reader/encode/chunkRecords.js';
import { layoutRecord } from '../../../src/reader/encode/toRecord.js';
import type { RowsLayout } from '../../../src/reader/encode/chunkRecords.js';
import { ChunkEncoders } from '../../../src/reader/snapshot/encoders.js';
import type { EncoderTable } from '../../../src/reader/snapshot/encoders.js';
import type { RowImage } from '../../../src/shared/events/changeEvent.js';

const layout: RowsLayout = { topic: 'hub', head: '{"before":null,"after":', middle: ',"source":{},"op":"r","key":', limit: 1_000_000 };

// Encoder threads against the main thread's reference (the row object, JSON.stringify, layoutRecord),
// on PostgreSQL's own text output of every type, with arrays, domains and enums resolved by the registry.
describe('ChunkEncoders: snapshot chunks encoded on worker threads', () => {
  let c: pg.Client;
  let encoders: ChunkEncoders;
  beforeAll(async () => {
    c = new pg.Client({ ...serviceEnv().pg, options: SESSION_OPTIONS, types: textTypes });
    await c.connect();
    encoders = new ChunkEncoders(2);
  });
  afterAll(async () => {
    await encoders.close();
    await c.end();
  });

  test('every column type: records byte-identical to the reference, on either thread', async () => {
    await c.query(`CREATE TYPE pg_temp.mood AS ENUM ('ok', 'sad "q"')`);
    await c.query(`CREATE DOMAIN pg_temp.price AS numeric(12,2)`);
    await c.query(
      `CREATE TEMP TABLE enc (id bigint, n numeric, f float8, b boolean, t text, ts timestamptz, tz timestamp, j jsonb, js json, a int[], ma pg_temp.mood[], m pg_temp.mood, p pg_temp.price, pa pg_temp.price[], by bytea, "10" text)`,
    );
    await c.query(`INSERT INTO enc SELECT g, g * 1.5, CASE WHEN g % 3 = 0 THEN 'NaN' ELSE g / 7.0 END, g % 2 = 0, repeat('é"\\', g % 5), '2026-01-01 10:00:00+00'::timestamptz + g * interval '1.5 s',
        CASE WHEN g % 4 = 0 THEN 'infinity'::timestamp ELSE '1999-12-31 23:59:59'::timestamp END, jsonb_build_object('k', g, 'price', 45.70, 'arr', jsonb_build_array(g, 'x')),
        '{"a" : 1.0}', ARRAY[g, NULL], ARRAY['ok', 'sad "q"']::pg_temp.mood[], 'ok', g + 0.25, ARRAY[1.5, NULL]::pg_temp.price[], '\\x00ff', NULL
      FROM generate_series(1, 3000) g`);
    await c.query(
      `INSERT INTO enc (id, f, ts) VALUES (9223372036854775807, '-Infinity', '-infinity'), (-9007199254740993, 1e300, '0044-03-15 12:00:00+00 BC')`,
    );
    const res = await c.query<unknown[]>({ text: 'SELECT id, n, f, b, t, ts, tz, j, js, a, ma, m, p, pa, by FROM enc ORDER BY id', rowMode: 'array' });
    const types = new TypeRegistry((sql, params) => c.query(sql, params));
    await types.ensure(res.fields.map((f) => f.dataTypeID));
    const table: EncoderTable = {
      id: 1,
      columns: res.fields.map((f) => ({ name: f.name, spec: types.decoderSpec(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) })),
      keyColumns: ['id'],
      wholeRowKey: false,
    };
    // The registry's decoders are the ones the specs make again (the writer's fast paths compare them).
    for (const f of res.fields) expect(decoderOf(types.decoderSpec(f.dataTypeID))).toBe(types.decoder(f.dataTypeID));
    const rows = res.rows as (string | null)[][];
    const half = Math.floor(rows.length / 2);
    const [first, second] = await Promise.all([encoders.encode(table, layout, rows.slice(0, half)), encoders.encode(table, layout, rows.slice(half))]);
    const json = rowJsonEncoder(
      res.fields.map((f) => ({ name: f.name, decoder: types.decoder(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) })),
      ['id'],
      false,
    )!;
    const local = writeChunk(json, layout, rows, new RecordBuffers());
    for (let j = 0; j < rows.length; j++) {
      const raw = rows[j]!;
      const row: RowImage = {};
      res.fields.forEach((f, i) => (row[f.name] = raw[i] === null ? null : types.decoder(f.dataTypeID)(raw[i]!)));
      const want = layoutRecord(layout, JSON.stringify(row), JSON.stringify({ id: row.id }))!;
      const thread = j < half ? chunkRecord(first, j, 'hub')! : chunkRecord(second, j - half, 'hub')!;
      expect(thread.value!.toString()).toBe(want.value!.toString());
      expect(thread.key!.toString()).toBe(want.key!.toString());
      expect(chunkRecord(local, j, 'hub')!.value!.equals(want.value!)).toBe(true);
    }
  });

  test('a table the thread cannot encode is refused with the reason; the thread goes on with the next', async () => {
    const bad: EncoderTable = { id: 2, columns: [{ name: '10', spec: 'text', baseType: 'text' }], keyColumns: ['10'], wholeRowKey: false };
    await expect(encoders.encode(bad, layout, [['x']])).rejects.toThrow(/snapshot encoder thread: .*array index/);
    const good: EncoderTable = { id: 3, columns: [{ name: 'k', spec: 'text', baseType: 'text' }], keyColumns: ['k'], wholeRowKey: false };
    const chunk = await encoders.encode(good, layout, [['x']]);
    expect(chunkRecord(chunk, 0, 'hub')!.key!.toString()).toBe('{"k":"x"}');
  });

  test('a thread that dies fails its chunks and every later one with the reason, and never hangs them', async () => {
    const one = new ChunkEncoders(1);
    const table: EncoderTable = { id: 1, columns: [{ name: 'k', spec: 'text', baseType: 'text' }], keyColumns: ['k'], wholeRowKey: false };
    // Far over the thread's heap limit: one chunk of 200 MB of cells.
    const huge = Array.from({ length: 200 }, (_, i) => [String(i).padEnd(1_000_000, 'x')]);
    await expect(one.encode(table, layout, huge)).rejects.toThrow(/snapshot encoder thread (failed|exited)/);
    await expect(one.encode(table, layout, [['x']])).rejects.toThrow(/snapshot encoder thread/);
    await one.close();
  });
});
