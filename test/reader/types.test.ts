import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import type { RunningReader } from './helpers.js';

describe('reader: types, TOAST, weird identifiers, schema changes', () => {
  const name = uniqueName('rd_types');
  const s = `${name}_s`;
  const weirdSchema = `${name} Weird "S"`;
  const q = (x: string) => `"${x.replace(/"/g, '""')}"`;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${s};
      CREATE TYPE ${s}.mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN ${s}.posint AS integer CHECK (VALUE > 0);
      CREATE TABLE ${s}.all_types (
        id bigint PRIMARY KEY, n numeric(30,10), big bigint, i2 smallint, i4 integer, f4 real, f8 double precision, b boolean,
        ts timestamp, tstz timestamptz, d date, t time, tz timetz, iv interval, j json, jb jsonb, u uuid, ba bytea,
        ai int[], at text[], an numeric[], m ${s}.mood, am ${s}.mood[], dom ${s}.posint, txt text, vc varchar(10), ch char(3), inet_col inet, money_col money);
      CREATE TABLE ${s}.toasty (id int PRIMARY KEY, small text, doc text);
      CREATE TABLE ${s}.toasty_full (id int PRIMARY KEY, small text, doc text);
      ALTER TABLE ${s}.toasty_full REPLICA IDENTITY FULL;
      CREATE TABLE ${s}.evolving (id int PRIMARY KEY, a text);
      CREATE SCHEMA ${q(weirdSchema)};
      CREATE TABLE ${q(weirdSchema)}."Weird Name" ("Id" int PRIMARY KEY, "x;drop table y" text);
      CREATE TABLE ${q(weirdSchema)}."x;drop table y" (id int PRIMARY KEY);`);
    const tables = [
      `${s}.all_types`,
      `${s}.toasty`,
      `${s}.toasty_full`,
      `${s}.evolving`,
      `${q(weirdSchema)}."Weird Name"`,
      `${q(weirdSchema)}."x;drop table y"`,
    ].join(',');
    r = await startReader(
      readerEnv(name, { CDC_TABLES: tables, CDC_SNAPSHOT_MODE: 'never', CDC_TOPIC_TEMPLATE: '{prefix}.{schema}.{table}', CDC_SERVER_NAME: name }),
    );
    topic = await TopicCollector.start([
      `${name}.${s}.all_types`,
      `${name}.${s}.toasty`,
      `${name}.${s}.toasty_full`,
      `${name}.${s}.evolving`,
      `${name}.${weirdSchema.replace(/[^A-Za-z0-9._-]/g, '_')}.Weird_Name`,
      `${name}.${weirdSchema.replace(/[^A-Za-z0-9._-]/g, '_')}.x_drop_table_y`,
    ]);
  });

  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await cleanup(c, name, [s, weirdSchema]);
    await c.end();
  });

  test('every type keeps its meaning', async () => {
    await c.query(`INSERT INTO ${s}.all_types VALUES (
      9007199254740993, 12345678901234567890.0123456789, -9223372036854775808, -32768, 2147483647, 1.5, 0.1, true,
      '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59.654321+05:30', '2024-02-29', '13:14:15.5', '13:14:15+02', '1 year 2 months 3 days 04:05:06.7',
      '{"a": 12345678901234567890, "b": [1, 2.50]}', '{"z": 1, "a": {"b": null}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff7f',
      '{1,NULL,3}', '{"a b","c,d",NULL,"\\"q\\""}', '{1.10,2.20}', 'happy', '{sad,ok}', 7, 'text ✓ ünïcode', 'vc', 'ab', '10.0.0.1/8', '12.34')`);
    await c.query(`INSERT INTO ${s}.all_types (id, f8, tstz) VALUES (2, 'NaN', 'infinity')`);
    const events = await topic.waitFor('two all_types inserts', (es) => es.filter((e) => e.source.table === 'all_types').length >= 2);
    const [a, b] = events.filter((e) => e.source.table === 'all_types');
    expect(a!.after).toEqual({
      id: '9007199254740993',
      n: '12345678901234567890.0123456789',
      big: '-9223372036854775808',
      i2: -32768,
      i4: 2147483647,
      f4: 1.5,
      f8: 0.1,
      b: true,
      ts: '2024-02-29T23:59:59.123456',
      tstz: '2024-02-29T18:29:59.654321Z',
      d: '2024-02-29',
      t: '13:14:15.5',
      tz: '13:14:15+02',
      iv: 'P1Y2M3DT4H5M6.7S',
      j: { a: 12345678901234567000, b: [1, 2.5] }, // parsed by the test (lossy); exact bytes checked below
      jb: { a: { b: null }, z: 1 },
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      ba: Buffer.from([0, 255, 127]).toString('base64'),
      ai: [1, null, 3],
      at: ['a b', 'c,d', null, '"q"'],
      an: ['1.10', '2.20'],
      m: 'happy',
      am: ['sad', 'ok'],
      dom: 7,
      txt: 'text ✓ ünïcode',
      vc: 'vc',
      ch: 'ab ',
      inet_col: '10.0.0.1/8',
      money_col: '$12.34',
    });
    expect(a!.key).toEqual({ id: '9007199254740993' });
    // The columns whose JSON value does not tell their type, by PostgreSQL type name; a domain is its
    // base type, enums, booleans, int2/int4 and text are not listed.
    expect(a!.source.types).toEqual({
      id: 'int8',
      n: 'numeric',
      big: 'int8',
      f4: 'float4',
      f8: 'float8',
      ts: 'timestamp',
      tstz: 'timestamptz',
      d: 'date',
      t: 'time',
      tz: 'timetz',
      iv: 'interval',
      j: 'json',
      jb: 'jsonb',
      u: 'uuid',
      ba: 'bytea',
      ai: 'int4[]',
      at: 'text[]',
      an: 'numeric[]',
      am: `${s}.mood[]`,
      inet_col: 'inet',
      money_col: 'money',
    });
    expect(b!.after).toMatchObject({ id: 2, f8: 'NaN', tstz: 'infinity', n: null });
  });

  test('json numbers keep their exact digits on the wire', () => {
    // JSON.parse in the test rounds 12345678901234567890; the record bytes must carry it exactly.
    const hit = topic.items.find((i) => i.event.source.table === 'all_types' && i.key === '{"id":"9007199254740993"}');
    expect(hit!.raw).toContain('"j":{"a":12345678901234567890,"b":[1,2.50]}');
    expect(hit!.raw).toContain('"n":"12345678901234567890.0123456789"');
  });

  test('TOAST: unchanged out-of-line values are filled (FULL) or marked unchanged, never a placeholder', async () => {
    const big = 'x'.repeat(10) + Array.from({ length: 20000 }, (_, i) => String.fromCharCode(97 + ((i * 7919) % 26))).join('');
    await c.query(`ALTER TABLE ${s}.toasty ALTER COLUMN doc SET STORAGE EXTERNAL; ALTER TABLE ${s}.toasty_full ALTER COLUMN doc SET STORAGE EXTERNAL`);
    await c.query(`INSERT INTO ${s}.toasty VALUES (1, 'a', $1); INSERT INTO ${s}.toasty_full VALUES (1, 'a', $1)`.replace(/\$1/g, `'${big}'`));
    await c.query(`UPDATE ${s}.toasty SET small = 'b' WHERE id = 1; UPDATE ${s}.toasty_full SET small = 'b' WHERE id = 1`);
    const events = await topic.waitFor('toast updates', (es) => es.filter((e) => e.source.table.startsWith('toasty') && e.op === 'u').length >= 2);
    const def = events.find((e) => e.source.table === 'toasty' && e.op === 'u')!;
    const full = events.find((e) => e.source.table === 'toasty_full' && e.op === 'u')!;
    expect(full.after).toEqual({ id: 1, small: 'b', doc: big });
    expect(full.before).toEqual({ id: 1, small: 'a', doc: big });
    expect(full.source.unchanged_toast).toBeUndefined();
    expect(def.after).toEqual({ id: 1, small: 'b' });
    expect('doc' in def.after!).toBe(false);
    expect(def.source.unchanged_toast).toEqual(['doc']);
    const ins = events.find((e) => e.source.table === 'toasty' && e.op === 'c')!;
    expect(ins.after!.doc).toBe(big);
  });

  test('a primary-key change is a delete of the old key and a create of the new one that names the old key (old_key)', async () => {
    await c.query(`UPDATE ${s}.toasty SET id = id + 1000000, small = 'c' WHERE id = 1`);
    const events = await topic.waitFor('key change', (es) => es.some((e) => e.source.table === 'toasty' && e.op === 'c' && e.key?.id === 1000001));
    const d = events.find((e) => e.source.table === 'toasty' && e.op === 'd' && e.key?.id === 1)!;
    const create = events.find((e) => e.source.table === 'toasty' && e.op === 'c' && e.key?.id === 1000001)!;
    expect(d.before).toEqual({ id: 1 });
    expect(create).toMatchObject({ after: { id: 1000001, small: 'c' }, old_key: { id: 1 }, source: { unchanged_toast: ['doc'], lsn: d.source.lsn } });
    // Only the create of a key change names an old key.
    expect(events.filter((e) => e.old_key !== undefined).map((e) => e.op)).toEqual(['c']);
  });

  test('weird identifiers are captured and inject nothing', async () => {
    await c.query(`INSERT INTO ${q(weirdSchema)}."Weird Name" VALUES (1, 'v'); INSERT INTO ${q(weirdSchema)}."x;drop table y" VALUES (5)`);
    const events = await topic.waitFor('weird events', (es) => es.filter((e) => e.source.schema === weirdSchema).length >= 2);
    const w = events.find((e) => e.source.table === 'Weird Name')!;
    expect(w.after).toEqual({ Id: 1, 'x;drop table y': 'v' });
    expect(w.key).toEqual({ Id: 1 });
    expect(events.find((e) => e.source.table === 'x;drop table y')!.after).toEqual({ id: 5 });
    const pub = await c.query('SELECT count(*)::int AS n FROM pg_publication_tables WHERE pubname = $1', [`${name}_pub`]);
    // The six tables and the reader's signal table.
    expect((pub.rows[0] as { n: number }).n).toBe(7);
  });

  test('a new column appears in the next events', async () => {
    await c.query(`INSERT INTO ${s}.evolving VALUES (1, 'x')`);
    await c.query(`ALTER TABLE ${s}.evolving ADD COLUMN b numeric DEFAULT 1.5`);
    await c.query(`INSERT INTO ${s}.evolving VALUES (2, 'y', 2.25)`);
    await c.query(`ALTER TABLE ${s}.evolving DROP COLUMN a`);
    await c.query(`UPDATE ${s}.evolving SET b = 3 WHERE id = 1`);
    // The streamed changes: the reconcile snapshot these changes start (CDC_SCHEMA_CHANGE_SNAPSHOT=auto, rows with
    // `source.snapshot: 'incremental'`, timing-dependent) is tested in test/reader/snapshot/incremental.test.ts.
    const streamed = (e: ChangeEvent) => e.source.table === 'evolving' && e.source.snapshot !== 'incremental';
    const events = (await topic.waitFor('evolving events', (es) => es.filter(streamed).length >= 3)).filter(streamed);
    expect(events.map((e) => e.after)).toEqual([
      { id: 1, a: 'x' },
      { id: 2, a: 'y', b: '2.25' },
      { id: 1, b: '3' },
    ]);
  });
});
