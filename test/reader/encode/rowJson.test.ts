import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { serviceEnv } from '../../helpers/services.js';
import { SESSION_OPTIONS, textTypes } from '../../../src/shared/events/pgTables.js';
import { TypeRegistry } from '../../../src/shared/events/typeRegistry.js';
import { decodeInt8, decodeJson, decodeText, decodeTimestamp, decodeTimestamptz } from '../../../src/shared/events/pgTypes.js';
import { cellJson, compactJsonb, rowJsonEncoder, timestampJson, utcTimestamptzJson } from '../../../src/reader/encode/rowJson.js';
import { keyFrom } from '../../../src/reader/replication/relations.js';
import type { RowImage } from '../../../src/shared/events/changeEvent.js';

// The row JSON writer against the reference (JSON.stringify of the decoded row), on PostgreSQL's own text output.
describe('rowJson: row and key JSON from text cells', () => {
  let c: pg.Client;
  beforeAll(async () => {
    c = new pg.Client({ ...serviceEnv().pg, options: SESSION_OPTIONS, types: textTypes });
    await c.connect();
  });
  afterAll(async () => {
    await c.end();
  });

  const jsonbInputs = [
    '{"a": 1, "b": [2.5, -3], "s": "1.50, 12345678901234567890: x"}',
    '{"price": 45.7000000000000000, "big": 12345678901234567890, "e": 1e5, "neg": -0.0}',
    '{"esc": "tab\\there \\"q\\" back\\\\slash \\u0001 \\n é ☃ \\ud83d\\ude00", "k y": {"x": null, "y": true, "z": false}}',
    '[1, [2, [3, {"deep": [{}, []]}]], "a, b: c"]',
    '"a scalar string with: , spaces"',
    '1.50',
    '-0',
    'null',
    // Array-index keys: a parsed object enumerates them first; the writer takes the decoder's path.
    '{"a": 1, "10": 2, "2": 3}',
    '{"b": {"0": "zero", "x": 1}}',
    // Not array indexes: leading zero, beyond 2^32 - 2, negative.
    '{"a": 1, "01": 2, "4294967295": 3, "-1": 4}',
    '{"__proto__": 1, "constructor": {"x": [1.0, 2.00]}}',
  ];

  test('jsonb: the compact text equals JSON.stringify of the decoded value', async () => {
    for (const input of jsonbInputs) {
      const text = (await c.query<{ j: string }>('SELECT $1::jsonb AS j', [input])).rows[0]!.j;
      const expected = JSON.stringify(decodeJson(text));
      const compact = compactJsonb(text);
      if (compact !== null) expect(compact).toBe(expected);
      const writer = rowJsonEncoder([{ name: 'j', decoder: decodeJson, baseType: 'jsonb' }], [], false)!;
      expect(writer.row([text])).toBe(`{"j":${expected}}`);
    }
    // The array-index cases are the ones that leave the compact path.
    expect(compactJsonb('{"a": 1, "10": 2}')).toBeNull();
    expect(compactJsonb('{"a": 1, "01": 2, "4294967295": 3}')).toBe('{"a":1,"01":2,"4294967295":3}');
  });

  test('every column type: the row and key JSON equal JSON.stringify of the decoded row and of keyFrom', async () => {
    const types = new TypeRegistry((sql, params) => c.query(sql, params));
    await c.query(
      'CREATE TEMP TABLE rj (id bigint, i int, s smallint, n numeric(14,4), f float8, r real, b boolean, t text, v varchar(64), ts timestamptz, tz timestamp, d date, tm time, u uuid, j jsonb, js json, a int[], ja jsonb[], ip inet, iv interval, by bytea, ch char(8), o oid, "quoted ""name""" text)',
    );
    await c.query(`INSERT INTO rj VALUES
      (1, -2147483648, -32768, 12.3400, 1.5, 0.1, true, 'a "b"\\ c', 'é ☃', '2026-01-01 10:00:00.5+00', '2026-01-01 10:00:00', '2026-01-01', '10:00:00.000001', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
       '{"price": 45.7000000000000000, "10": 1, "x": [1, 2]}', '{"a" :  1.0,"a": 2}', '{1,NULL,3}', ARRAY['{"a": 1.50}'::jsonb], '10.0.0.1', '1 day 2 hours', '\\x00ff', 'ab', 4294967295, E'line\\nbreak'),
      (9223372036854775807, NULL, NULL, NULL, 'NaN', '-Infinity', false, '', NULL, 'infinity', NULL, NULL, NULL, NULL, 'null', '[]', '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (-9007199254740991, 0, 0, -0.0001, 1e300, 3.4e38, NULL, E'\\u0001\\t', 'x', '0044-03-15 12:00:00+00 BC', '10000-01-01 00:00:00', '0044-03-15 BC', '24:00:00', NULL, '[1.0, {"0": 0}]', '1e5', '{{1,2},{3,4}}', NULL, '::1', '-1 mons', '', 'c', 0, '')`);
    const res = await c.query<unknown[]>({ text: 'SELECT * FROM rj ORDER BY id', rowMode: 'array' });
    await types.ensure(res.fields.map((f) => f.dataTypeID));
    const names = res.fields.map((f) => f.name);
    const decoders = res.fields.map((f) => types.decoder(f.dataTypeID));
    const columns = res.fields.map((f, i) => ({ name: f.name, decoder: decoders[i]!, baseType: types.baseTypeName(f.dataTypeID) }));
    const table = { schema: 'pg_temp', table: 'rj' };
    for (const [keyColumns, wholeRowKey] of [
      [['id'], false],
      [['u', 'id'], false],
      [names, true],
    ] as const) {
      const writer = rowJsonEncoder(columns, keyColumns, wholeRowKey)!;
      expect(writer.keyIsRow).toBe(wholeRowKey);
      for (const raw of res.rows as (string | null)[][]) {
        const row: RowImage = {};
        names.forEach((n, i) => (row[n] = raw[i] === null ? null : decoders[i]!(raw[i]!)));
        expect(writer.row(raw)).toBe(JSON.stringify(row));
        const keyNull = !wholeRowKey && keyColumns.some((k) => row[k] === null);
        if (keyNull) {
          // The writer declines; keyFrom names the problem.
          expect(writer.key(raw)).toBeNull();
          expect(() => keyFrom(table, [...keyColumns], wholeRowKey, row)).toThrow(/NULL in the row/);
        } else {
          expect(writer.key(raw)).toBe(JSON.stringify(keyFrom(table, [...keyColumns], wholeRowKey, row)));
        }
      }
    }
  });

  test("timestamptz, timestamp and numeric: the position-checked cut equals the decoder, on PostgreSQL's output and on texts it could send", async () => {
    const values = await c.query<string[]>({
      rowMode: 'array',
      text: `SELECT (timestamptz '2026-01-01 10:00:00+00' + g * interval '1.234567 second')::text,
                    (timestamptz '2026-01-01 10:00:00+00' + g * interval '1 second')::text,
                    (timestamp '1999-12-31 23:59:59' + g * interval '0.1 second')::text,
                    ((g * 1.2345) - 5)::numeric(14,4)::text
             FROM generate_series(0, 200) g
             UNION ALL VALUES ('infinity'::timestamptz::text, '-infinity'::timestamptz::text, 'infinity'::timestamp::text, 'NaN'::numeric::text),
                    ('0044-03-15 12:00:00+00 BC'::timestamptz::text, '10000-01-01 00:00:00+00'::timestamptz::text, '0044-03-15 12:00:00 BC'::timestamp::text, 'Infinity'::numeric::text),
                    ('0001-01-01 00:00:00+00'::timestamptz::text, '2026-06-30 23:59:59.999999+00'::timestamptz::text, '12345-01-01 00:00:00'::timestamp::text, '-Infinity'::numeric::text)`,
    });
    const tz = cellJson({ name: 'x', decoder: decodeTimestamptz, baseType: 'timestamptz' });
    const ts = cellJson({ name: 'x', decoder: decodeTimestamp, baseType: 'timestamp' });
    const num = cellJson({ name: 'x', decoder: decodeText, baseType: 'numeric' });
    for (const [a, b, t, n] of values.rows) {
      expect(tz(a!)).toBe(JSON.stringify(decodeTimestamptz(a!)));
      expect(tz(b!)).toBe(JSON.stringify(decodeTimestamptz(b!)));
      expect(ts(t!)).toBe(JSON.stringify(decodeTimestamp(t!)));
      expect(num(n!)).toBe(JSON.stringify(decodeText(n!)));
    }
    // Texts of another session time zone, or malformed ones: the decoder's path, same JSON.
    for (const t of [
      '2026-01-01 10:00:00+05:30',
      '2026-01-01 10:00:00-08',
      '2026-01-01 10:00:00.+00',
      '2026-01-01T10:00:00+00',
      '2026-1-01 10:00:00+00',
      '+00',
      '',
    ])
      expect(tz(t)).toBe(JSON.stringify(decodeTimestamptz(t)));
    for (const t of ['2026-01-01 10:00:00.', '2026-01-01 10:00', '2026-01-01 10:00:00 BC', 'x026-01-01 10:00:00', ''])
      expect(ts(t)).toBe(JSON.stringify(decodeTimestamp(t)));
    // The cut itself takes the session's plain forms and leaves every other to the decoder.
    expect(utcTimestamptzJson('2026-01-01 10:00:00.5+00')).toBe('"2026-01-01T10:00:00.5Z"');
    expect(utcTimestamptzJson('2026-01-01 10:00:00+00')).toBe('"2026-01-01T10:00:00Z"');
    expect(timestampJson('2026-01-01 10:00:00.123456')).toBe('"2026-01-01T10:00:00.123456"');
    for (const t of ['infinity', '0044-03-15 12:00:00+00 BC', '10000-01-01 00:00:00+00', '2026-01-01 10:00:00+05:30']) expect(utcTimestamptzJson(t)).toBeNull();
    for (const t of ['infinity', '0044-03-15 12:00:00 BC', '12345-01-01 00:00:00']) expect(timestampJson(t)).toBeNull();
  });

  test("date, time, timetz, interval, uuid, inet, cidr, macaddr: PostgreSQL's text quoted is the decoder's JSON", async () => {
    const types = new TypeRegistry((sql, params) => c.query(sql, params));
    const res = await c.query<unknown[]>({
      text: `SELECT d, t, tz, iv, u, ip, net, mac, mac8 FROM (VALUES
        (date '2026-01-01', time '10:00:00.000001', timetz '10:00:00+05:30', interval '1 year 2 mons -3 days 04:05:06.789', gen_random_uuid(),
         inet '10.0.0.1/8', cidr '10.0.0.0/8', macaddr '08:00:2b:01:02:03', macaddr8 '08:00:2b:01:02:03:04:05'),
        (date 'infinity', time '24:00:00', timetz '00:00:00-12', interval '-1 mons', uuid '00000000-0000-0000-0000-000000000000',
         inet '::ffff:1.2.3.4', cidr '2001:db8::/32', macaddr '00:00:00:00:00:00', macaddr8 'ff:ff:ff:ff:ff:ff:ff:ff'),
        (date '-infinity', time '00:00:00', timetz '23:59:59.999999+14', interval '0', gen_random_uuid(), inet 'fe80::1', cidr '0.0.0.0/0',
         macaddr 'ff:ff:ff:ff:ff:ff', macaddr8 '00:00:00:00:00:00:00:00'),
        (date '0044-03-15 BC', time '12:34:56', timetz '12:34:56+00', interval '1000000 years 1 second', gen_random_uuid(), inet '255.255.255.255',
         cidr '192.168.0.0/16', macaddr '12:34:56:78:9a:bc', macaddr8 '12:34:56:78:9a:bc:de:f0')) v(d, t, tz, iv, u, ip, net, mac, mac8)`,
      rowMode: 'array',
    });
    await types.ensure(res.fields.map((f) => f.dataTypeID));
    for (const [i, f] of res.fields.entries()) {
      const column = { name: f.name, decoder: types.decoder(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) };
      const json = cellJson(column);
      for (const row of res.rows as string[][]) expect(json(row[i]!)).toBe(JSON.stringify(column.decoder(row[i]!)));
    }
  });

  test('int8: the text where it is a safe integer, the decoder beyond (a string past 2^53)', () => {
    const json = cellJson({ name: 'id', decoder: decodeInt8, baseType: 'int8' });
    const texts = [
      '0',
      '-1',
      '42',
      '999999999999999',
      '-99999999999999',
      '-999999999999999',
      '9007199254740991',
      '9007199254740992',
      '-9007199254740993',
      '9223372036854775807',
      '-9223372036854775808',
    ];
    for (const t of texts) expect(json(t)).toBe(JSON.stringify(decodeInt8(t)));
    expect(json('9007199254740992')).toBe('"9007199254740992"');
  });

  test('a column named like an array index, or a key column not read: no writer (the row object is used)', () => {
    const col = (name: string) => ({ name, decoder: decodeJson, baseType: 'jsonb' });
    expect(rowJsonEncoder([col('a'), col('7')], ['a'], false)).toBeNull();
    expect(rowJsonEncoder([col('a'), col('b')], ['c'], false)).toBeNull();
    expect(rowJsonEncoder([col('a'), col('07')], ['a'], false)).not.toBeNull();
  });
});
