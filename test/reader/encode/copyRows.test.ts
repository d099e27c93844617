import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { serviceEnv, uniqueName } from '../../helpers/services.js';
import { SESSION_OPTIONS, textTypes } from '../../../src/shared/events/pgTables.js';
import { TypeRegistry } from '../../../src/shared/events/typeRegistry.js';
import { decodeBool, decodeFloat, decodeInt, decodeInt8, decodeJson, decodeText } from '../../../src/shared/events/pgTypes.js';
import { chunkRecord, RecordBuffers, writeChunk } from '../../../src/reader/encode/chunkRecords.js';
import type { RowsLayout } from '../../../src/reader/encode/chunkRecords.js';
import { rowJsonEncoder } from '../../../src/reader/encode/rowJson.js';
import type { RowJsonColumn } from '../../../src/reader/encode/rowJson.js';
import { copyCellText, copyChunk, CopyRowWriter } from '../../../src/reader/encode/copyRows.js';
import type { CopyChunk } from '../../../src/reader/encode/copyRows.js';
import { quoteIdent } from '../../../src/shared/core/sql.js';

const layout = (limit = 1_000_000): RowsLayout => ({ topic: 'hub', head: '{"before":null,"after":', middle: ',"source":{"é":"☃"},"op":"r","key":', limit });

/**
 * `got` (COPY's transcoder) against the text path (`writeChunk` of the same rows read through `pg`):
 * every record byte for byte, and the rows without a record given back as the same text.
 */
function expectSame(got: CopyChunk, rows: (string | null)[][], columns: RowJsonColumn[], key: string[], wholeRowKey: boolean, l: RowsLayout): void {
  const want = writeChunk(rowJsonEncoder(columns, key, wholeRowKey)!, l, rows, new RecordBuffers());
  expect(got.count).toBe(rows.length);
  let without = 0;
  for (let j = 0; j < rows.length; j++) {
    const a = chunkRecord(got.chunk, j, 'hub');
    const b = chunkRecord(want, j, 'hub');
    const spare = got.spare.find(([i]) => i === j);
    if (b === null) {
      without++;
      expect(a).toBeNull();
      expect(spare?.[1]).toEqual(rows[j]);
      continue;
    }
    expect(a).not.toBeNull();
    expect(a!.value!.toString()).toBe(b.value!.toString());
    expect(a!.value!.equals(b.value!)).toBe(true);
    expect(a!.key!.equals(b.key!)).toBe(true);
    // The last row comes back as text too: its key is the range's progress.
    expect(spare === undefined).toBe(j !== rows.length - 1);
    if (spare !== undefined) expect(spare[1]).toEqual(rows[j]);
  }
  expect(got.spare.length).toBe(without + (rows.length > 0 && chunkRecord(want, rows.length - 1, 'hub') !== null ? 1 : 0));
}

describe('CopyRowWriter / copyChunk: COPY text transcoded into records, byte-identical to the text path', () => {
  const schema = uniqueName('cp');
  let c: pg.Client;
  let types: TypeRegistry;
  beforeAll(async () => {
    c = new pg.Client({ ...serviceEnv().pg, options: SESSION_OPTIONS, types: textTypes });
    await c.connect();
    types = new TypeRegistry((sql, params) => c.query(sql, params));
    await c.query(`CREATE SCHEMA ${schema}; CREATE TYPE ${schema}.mood AS ENUM ('ok', 'tab\tquote"', 'é'); CREATE DOMAIN ${schema}.price AS numeric(12,2)`);
  });
  afterAll(async () => {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  /** The table's rows read both ways, compared. */
  async function compare(table: string, key: string[], wholeRowKey = false, l = layout()): Promise<{ rows: (string | null)[][]; got: CopyChunk }> {
    const res = await c.query<unknown[]>({ text: `SELECT * FROM ${table} ORDER BY 1`, rowMode: 'array' });
    await types.ensure(res.fields.map((f) => f.dataTypeID));
    const columns = res.fields.map((f) => ({ name: f.name, decoder: types.decoder(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) }));
    const writer = CopyRowWriter.of(columns, key, wholeRowKey)!;
    writer.begin(l, new RecordBuffers());
    const got = await copyChunk(c, `COPY (SELECT * FROM ${table} ORDER BY 1) TO STDOUT`, writer);
    const rows = res.rows as (string | null)[][];
    expectSame(got, rows, columns, key, wholeRowKey, l);
    return { rows, got };
  }

  test('every type with its edge values, and text and json no writer may trust: escapes, quotes, control characters, non-ASCII, blanks', async () => {
    const t = `${schema}.every`;
    await c.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, i2 smallint, i4 int, i8 bigint, n numeric, f4 real, f8 float8, b boolean, t text, vc varchar(20), bp char(6),
        ts timestamptz, tz timestamp, d date, tm time, ttz timetz, iv interval, u uuid, ip inet, mac macaddr, j jsonb, js json, a int[], ta text[], m ${schema}.mood, p ${schema}.price,
        by bytea, x xml, pt point, r int4range, oid oid, "we""ird col\t☃" text)`);
    await c.query(`INSERT INTO ${t} VALUES
      (1, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', 'Infinity', true, E'tab\\there\\nnew "q" back\\\\slash \\x01 \\x7f', 'é☃😀', 'ab', 'infinity', '-infinity', 'infinity', '24:00', '00:00+14:59', '-178000000 years', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '::1/128', '08:00:2b:01:02:03',
        '{"a": "x\\"y\\\\z\\n", "b": [1, 2.50, -0.0, 1e400], "0": "index key", "é": {"": null}}', '{ "a" :  1.0 , "a": 2 }', '{1,NULL,3}', '{"a\\tb","c,d",NULL,"NULL"}', 'tab\tquote"', 45.70, '\\x00ff0a09', '<a>&amp;</a>', '(1.5,-2)', '[1,5)', 4294967295, E'multi\\nline'),
      (2, 32767, 2147483647, 9223372036854775807, '-123456789012345678901234567890.000000000000000000001', '-Infinity', 1e-308, false, '', '', '', '2026-01-01 10:00:00.123456+00', '2026-01-01 10:00:00', '0044-03-15 BC', '12:34:56.789', '12:34:56+02', 'P1Y2M3DT4H5M6.5S', '00000000-0000-0000-0000-000000000000', '10.0.0.1', 'ff:ff:ff:ff:ff:ff',
        '{"k": "v", "n": 45.7000000000000000, "arr": [{"x": []}, {}], "t": true, "u": "\\u00e9 \\ud83d\\ude00"}', '[]', '{}', '{}', 'é', 0.01, '\\x', '<x/>', '(0,0)', 'empty', 0, ''),
      (3, 0, 0, 123456789012345, '0', 3.4e38, -0.0, true, repeat('é"\\', 50), 'plain', 'x', '0044-03-15 12:00:00+00 BC', '294276-12-31 23:59:59.999999', '5874897-12-31', '00:00:00', '23:59:59.999999-15:59', 'P-1D', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2001:db8::ff00:42:8329/64', '00:00:00:00:00:00',
        '[1, "two", null, {"3": 4}, {"a": 1, "10": 2}]', '"scalar"', '{{1,2},{3,4}}', '{""}', 'ok', -0.5, '\\xdeadbeef', NULL, NULL, '(,)', NULL, 'x'),
      (4, NULL, NULL, 1234567890123456, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (5, 1, 1, -12345678901234567, '1e-5', 1.5, 2.5, false, repeat('long plain text ', 200), 'a "q" b', 'y', '2026-06-30 23:59:60+00', '2026-06-30 12:00:00.5', '2026-02-28', '10:00', '10:00+00', 'PT0S', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '192.168.0.0/16', '01:02:03:04:05:06',
        jsonb_build_object('deep', jsonb_build_object('text', repeat('x', 3000), 'arr', jsonb_build_array(1, 'é', '"')), 'ctl', E'\\u0001'), '{"raw":"\\u0000"}', '{-1}', '{"\\\\"}', 'é', 99.99, decode(repeat('ab', 500), 'hex'), '<?xml version="1.0"?><r/>', '(1e300,1e-300)', '(,5]', 1, repeat('☃', 100))`);
    const { got } = await compare(t, ['id']);
    expect(got.count).toBe(5);
  });

  test('floats, int arrays and bytea (their fast paths) against the decoders, on values from every corner', async () => {
    const t = `${schema}.nums`;
    await c.query(`CREATE TABLE ${t} (id int PRIMARY KEY, f8 float8, f4 real, ia int[], sa smallint[], oa oid[], ba bigint[], by bytea)`);
    await c.query(`INSERT INTO ${t} SELECT g,
        (ARRAY[0.1, 0.000001, 0.0000001, 123456789012345, 1234567890123456, -0.5, 100, 1e15, 1e21, 1e20, -0.0, 0, 5e-324, 1.7976931348623157e308, 'NaN', '-Infinity', 2.5e-5, 0.30000000000000004, 1.0 / 3])[1 + g % 19] * CASE WHEN g % 38 < 19 THEN 1 ELSE -1 END,
        (g % 1000) / 3.0 + CASE WHEN g % 7 = 0 THEN 1e-7 ELSE 0 END,
        CASE g % 5 WHEN 0 THEN '{}' WHEN 1 THEN ARRAY[g, NULL, -g] WHEN 2 THEN '{{1,2},{3,4}}' WHEN 3 THEN '[0:1]={7,8}' ELSE ARRAY[-2147483648, 2147483647] END,
        ARRAY[g % 32767, -1]::smallint[], ARRAY[4294967295, g]::oid[], ARRAY[9223372036854775807, g],
        CASE g % 4 WHEN 0 THEN '\\x' WHEN 1 THEN decode(md5(g::text), 'hex') WHEN 2 THEN substr(decode(md5(g::text), 'hex'), 1, 1 + g % 5) ELSE NULL END
      FROM generate_series(1, 400) g`);
    const { got } = await compare(t, ['id']);
    expect(got.count).toBe(400);
  });

  test('keys: composite with a NULL cell (no record, the row as text), the whole row (a keyless table), an odd key column name', async () => {
    const t = `${schema}.keys`;
    await c.query(`CREATE TABLE ${t} (id int, "k ""2""\t" text, v jsonb)`);
    await c.query(
      `INSERT INTO ${t} SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'k' || repeat('"', g % 3) END, jsonb_build_object('g', g) FROM generate_series(1, 50) g`,
    );
    const { got } = await compare(t, ['id', 'k "2"\t']);
    expect(got.spare.map(([j]) => j + 1)).toEqual([7, 14, 21, 28, 35, 42, 49, 50]);
    await compare(t, ['id', 'k "2"\t', 'v'], true);
  });

  test('a record over the limit gets none (the row comes back as text, for the claim-check path); records across 1 MiB buffers and one larger than a buffer', async () => {
    const t = `${schema}.sizes`;
    await c.query(`CREATE TABLE ${t} (id int PRIMARY KEY, doc text)`);
    await c.query(
      `INSERT INTO ${t} SELECT g, repeat(chr(97 + g % 26), CASE WHEN g = 3 THEN 2500000 WHEN g = 4 THEN 5000 ELSE 60000 END) FROM generate_series(1, 60) g`,
    );
    const small = await compare(t, ['id'], false, layout(10_000));
    expect(small.got.spare.map(([j]) => j + 1)).toEqual([...Array.from({ length: 60 }, (_, i) => i + 1).filter((g) => g !== 4)]);
    const big = await compare(t, ['id'], false, layout(10_000_000));
    expect(big.got.chunk.segments.length).toBeGreaterThan(3);
    expect(big.got.recordBytes).toBeGreaterThan(2_500_000 + 59 * 5000);
  });

  test('a failed COPY rejects with the server’s reason and leaves the connection usable; an empty range is an empty chunk', async () => {
    const writer = CopyRowWriter.of([{ name: 'k', decoder: decodeText, baseType: 'text' }], ['k'], false)!;
    writer.begin(layout(), new RecordBuffers());
    await expect(copyChunk(c, `COPY (SELECT k FROM ${schema}.missing) TO STDOUT`, writer)).rejects.toThrow(/does not exist/);
    // Division by zero after some rows were sent: the rows so far are not given as a chunk.
    writer.begin(layout(), new RecordBuffers());
    await expect(copyChunk(c, `COPY (SELECT (10 / (3 - g))::text FROM generate_series(1, 5) g) TO STDOUT`, writer)).rejects.toThrow(/division by zero/);
    expect((await c.query<{ x: string }>("SELECT 'still usable' AS x")).rows[0]!.x).toBe('still usable');
    writer.begin(layout(), new RecordBuffers());
    const empty = await copyChunk(c, 'COPY (SELECT 1::text WHERE false) TO STDOUT', writer);
    expect(empty).toMatchObject({ count: 0, spare: [], recordBytes: 0 });
  });
});

describe('CopyRowWriter on bytes no server sends today', () => {
  const columns: RowJsonColumn[] = [
    { name: 'id', decoder: decodeInt8, baseType: 'int8' },
    { name: 'doc', decoder: decodeText, baseType: 'text' },
    { name: 'j', decoder: decodeJson, baseType: 'jsonb' },
    { name: 'b', decoder: decodeBool, baseType: 'bool' },
    { name: 'n', decoder: decodeInt, baseType: 'int4' },
  ];
  const textOf = (line: Buffer): (string | null)[] =>
    line
      .toString('latin1')
      .split('\t')
      .map((_, i, all) => {
        // Cell boundaries by bytes: tabs are single bytes, so the latin1 split is at the right places.
        const start = all.slice(0, i).reduce((s, x) => s + x.length + 1, 0);
        const cell = line.subarray(start, start + all[i]!.length);
        return cell.length === 2 && cell[0] === 92 && cell[1] === 78 ? null : copyCellText(cell, 0, cell.length);
      });

  test('bytes that are not UTF-8 (a SQL_ASCII database) become U+FFFD as pg makes them; a row cut across pieces; a row in one byte at a time', () => {
    const lines = [
      // latin1: these strings' characters are the bytes themselves.
      Buffer.concat([Buffer.from('1\tbad \xff\xfe', 'latin1'), Buffer.from([0xc3]), Buffer.from('\t{"k": "\xe9"}\tt\t5', 'latin1')]),
      Buffer.from('2\tok é\t{"a": [1, 2]}\tf\t-1'),
      Buffer.concat([
        Buffer.from('3\t'),
        Buffer.from([0xe2, 0x98]),
        Buffer.from('\t'),
        Buffer.from('{"x": "'),
        Buffer.from([0xf0, 0x9f]),
        Buffer.from('"}\tt\t\\N'),
      ]),
      Buffer.from('4\t\\\\N is not null\\r\\n\t{"s": "t"}\tf\t0'),
    ];
    const rows = lines.map(textOf);
    expect(rows[0]![1]).toBe('bad \ufffd\ufffd\ufffd');
    expect(rows[3]![1]).toBe('\\N is not null\r\n');
    const all = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    for (const cut of [[all.length], [5, 17, 40, all.length], Array.from({ length: all.length }, (_, i) => i + 1)]) {
      const writer = CopyRowWriter.of(columns, ['id'], false)!;
      writer.begin(layout(), new RecordBuffers());
      let from = 0;
      for (const to of cut) {
        writer.data(all.subarray(from, to));
        from = to;
      }
      expectSame(writer.finish(), rows, columns, ['id'], false, layout());
    }
  });

  test('float texts no PostgreSQL 12+ prints (17 digits from an older server, negative zero, trailing zeros, odd forms) give what the decoder gives', () => {
    const cols: RowJsonColumn[] = [
      { name: 'id', decoder: decodeInt, baseType: 'int4' },
      { name: 'f', decoder: decodeFloat, baseType: 'float8' },
    ];
    const floats = [
      '-0',
      '0',
      '0.10000000000000001',
      '1.50',
      '0.0000001',
      '0.000001',
      '1e-07',
      '00.5',
      '-.5',
      '5.',
      '.5',
      '1.5e300',
      '-',
      '',
      '12345678901234567890',
      '999999999999999',
      '-0.000',
    ];
    const writer = CopyRowWriter.of(cols, ['id'], false)!;
    writer.begin(layout(), new RecordBuffers());
    writer.data(Buffer.from(floats.map((f, i) => `${i}\t${f}\n`).join('')));
    const got = writer.finish();
    expectSame(
      got,
      floats.map((f, i) => [String(i), f]),
      cols,
      ['id'],
      false,
      layout(),
    );
    expect(chunkRecord(got.chunk, 0, 'hub')!.value!.toString()).toContain('"f":0}');
    expect(chunkRecord(got.chunk, 2, 'hub')!.value!.toString()).toContain('"f":0.1}');
  });

  test('malformed COPY output is refused with what is wrong, not written', () => {
    const writer = CopyRowWriter.of(columns, ['id'], false)!;
    writer.begin(layout(), new RecordBuffers());
    expect(() => writer.data(Buffer.from('1\tx\n'))).toThrow(/COPY row has 2 of the table's 5 columns/);
    writer.begin(layout(), new RecordBuffers());
    expect(() => writer.data(Buffer.from('1\tx\t{}\tt\t1\textra\n'))).toThrow(/more than the table's 5 columns/);
    writer.begin(layout(), new RecordBuffers());
    writer.data(Buffer.from('1\tx\t{}\tt\t1\n2\tcut'));
    expect(() => writer.finish()).toThrow(/ended inside a row/);
  });

  test('no writer where the row object is needed: a column name that is an array index, a key column that is not a column', () => {
    expect(CopyRowWriter.of([{ name: '10', decoder: decodeText, baseType: 'text' }], ['10'], false)).toBeNull();
    expect(CopyRowWriter.of(columns, ['nope'], false)).toBeNull();
    expect(CopyRowWriter.of([], [], true)).toBeNull();
  });

  test(`a column name JSON escapes is written as JSON.stringify writes it (${quoteIdent('a"b')})`, () => {
    const cols: RowJsonColumn[] = [{ name: 'a"b\u2028\n', decoder: decodeText, baseType: 'text' }];
    const writer = CopyRowWriter.of(cols, ['a"b\u2028\n'], false)!;
    writer.begin(layout(), new RecordBuffers());
    writer.data(Buffer.from('v\n'));
    expectSame(writer.finish(), [['v']], cols, ['a"b\u2028\n'], false, layout());
  });
});
