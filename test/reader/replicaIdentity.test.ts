import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { relationKey } from '../../src/reader/replication/relations.js';
import type { RelationInfo } from '../../src/reader/replication/relations.js';
import { applyPerKey, cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import type { RunningReader } from './helpers.js';

/**
 * Regression: with a primary key plus REPLICA IDENTITY USING INDEX on another unique index, the key was
 * taken from the primary key while PostgreSQL sends the identity index's columns as the old key: deletes
 * were keyed {"id": null} and a change of the identity columns went undetected (the old key was never
 * deleted). The key now comes from the columns the Relation message flags as replica identity, and the
 * snapshot uses the same columns.
 */
describe('reader: key columns follow the replica identity the server sends', () => {
  const name = uniqueName('rd_ident');
  const s = `${name}_s`;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${s};
      CREATE TABLE ${s}.t (id int PRIMARY KEY, code text NOT NULL, v text);
      CREATE UNIQUE INDEX t_code ON ${s}.t (code);
      ALTER TABLE ${s}.t REPLICA IDENTITY USING INDEX t_code;
      INSERT INTO ${s}.t VALUES (1, 'a', 'seed');
      CREATE TABLE ${s}.composite (a int, b int, v text, PRIMARY KEY (b, a));
      INSERT INTO ${s}.composite VALUES (1, 2, 'seed');`);
    r = await startReader(readerEnv(name, { CDC_TABLES: `${s}.t,${s}.composite`, CDC_TOPIC_TEMPLATE: '{schema}.{table}' }));
    topic = await TopicCollector.start([`${s}.t`, `${s}.composite`]);
  });
  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await cleanup(c, name, [s]);
    await c.end();
  });

  test('REPLICA IDENTITY USING INDEX on a unique column other than the primary key: every key is that column, never null; a key change deletes the old key', async () => {
    await c.query(`INSERT INTO ${s}.t VALUES (2, 'b', 'new')`);
    await c.query(`UPDATE ${s}.t SET v = 'upd' WHERE id = 2`); // non-key column
    await c.query(`UPDATE ${s}.t SET code = 'c' WHERE id = 2`); // the key
    await c.query(`UPDATE ${s}.t SET id = 20 WHERE id = 2`); // the primary key, not the replica identity
    await c.query(`INSERT INTO ${s}.t VALUES (3, 'x', 'gone')`);
    await c.query(`DELETE FROM ${s}.t WHERE id = 3`);
    await c.query(`UPDATE ${s}.t SET v = 'snap-upd' WHERE id = 1`);
    const expected: [string, unknown][] = [
      ['r', { code: 'a' }],
      ['c', { code: 'b' }],
      ['u', { code: 'b' }],
      ['d', { code: 'b' }],
      ['c', { code: 'c' }],
      ['u', { code: 'c' }],
      ['c', { code: 'x' }],
      ['d', { code: 'x' }],
      ['u', { code: 'a' }],
    ];
    const inT = (e: { source: { table: string } }) => e.source.table === 't';
    await topic.waitFor('every change', (es) => es.filter(inT).length >= expected.length);
    const events = topic.events(inT);
    expect(events.map((e) => [e.op, e.key])).toEqual(expected);
    for (const e of events) {
      expect(Object.keys(e.key!)).toEqual(['code']);
      expect(typeof e.key!.code).toBe('string');
    }
    for (const i of topic.items.filter((i) => inT(i.event))) expect(i.key).toBe(JSON.stringify(i.event.key));
    // The old key's delete carries the old identity columns.
    expect(events[3]!.before).toEqual({ code: 'b' });
    expect(events[5]!.after).toEqual({ id: 20, code: 'c', v: 'upd' });
    const live = await c.query<{ id: number; code: string; v: string }>(`SELECT id, code, v FROM ${s}.t`);
    expect(applyPerKey(topic.items.filter((i) => inT(i.event)))).toEqual(
      new Map(live.rows.map((row) => [`${s}.t\u0000${JSON.stringify({ code: row.code })}`, row])),
    );
  });

  test('a composite primary key keeps its key order (not attribute order) in snapshot and stream keys', async () => {
    await c.query(`UPDATE ${s}.composite SET v = 'upd'`);
    await c.query(`DELETE FROM ${s}.composite`);
    const inC = (e: { source: { table: string } }) => e.source.table === 'composite';
    await topic.waitFor('snapshot row, update and delete', (es) => es.filter(inC).length >= 3);
    const items = topic.items.filter((i) => inC(i.event));
    expect(items.map((i) => [i.event.op, i.key])).toEqual([
      ['r', '{"b":2,"a":1}'],
      ['u', '{"b":2,"a":1}'],
      ['d', '{"b":2,"a":1}'],
    ]);
  });
});

describe('reader: an event key is never built with a missing key column', () => {
  test('a key column absent from what the server sent fails loudly, naming the table, instead of a null key', () => {
    const rel: RelationInfo = {
      oid: 1,
      schema: 'app',
      table: 'orders',
      replicaIdentity: 'index',
      columns: [],
      debeziumColumns: [],
      keyColumns: ['code'],
      wholeRowKey: false,
      keyMayRepeat: false,
      types: {},
      rowJson: null,
    };
    expect(() => relationKey(rel, { id: 1 })).toThrow(/key column "code" of app\.orders is missing from the row the server sent/);
    expect(() => relationKey(rel, { code: null })).toThrow(/key column "code" of app\.orders is NULL/);
    expect(relationKey(rel, { id: 1, code: 'x' })).toEqual({ code: 'x' });
    // Without a unique key every column is the key, and a NULL is one of its values.
    expect(relationKey({ ...rel, keyColumns: ['a', 'b'], wholeRowKey: true }, { a: 1, b: null })).toEqual({ a: 1, b: null });
  });
});
