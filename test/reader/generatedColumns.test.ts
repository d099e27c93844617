import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import type { RunningReader } from './helpers.js';

/**
 * Regression: the snapshot's SELECT * included stored generated columns, which pgoutput (PostgreSQL
 * ≤ 17) does not send. The column vanished from documents after the first streamed change, and a
 * keyless REPLICA IDENTITY FULL table's snapshot key (every column) differed from its streamed key, so
 * a sink kept the snapshot row next to (or after) its change.
 */
describe('reader: generated columns: snapshot and stream carry the same columns', () => {
  const name = uniqueName('rd_gen');
  const s = `${name}_s`;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${s};
      CREATE TABLE ${s}.keyed (id int PRIMARY KEY, a int, g int GENERATED ALWAYS AS (a * 2) STORED, dropme text, z text);
      ALTER TABLE ${s}.keyed DROP COLUMN dropme;
      INSERT INTO ${s}.keyed (id, a, z) VALUES (1, 10, 'z1'), (2, 20, 'z2');
      CREATE TABLE ${s}.keyless (a int, g text GENERATED ALWAYS AS (b || '!') STORED, b text);
      ALTER TABLE ${s}.keyless REPLICA IDENTITY FULL;
      INSERT INTO ${s}.keyless (a, b) VALUES (1, 'x'), (2, 'y');`);
    r = await startReader(readerEnv(name, { CDC_TABLES: `${s}.keyed,${s}.keyless`, CDC_TOPIC_TEMPLATE: '{schema}.{table}' }));
    topic = await TopicCollector.start([`${s}.keyed`, `${s}.keyless`]);
  });
  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await cleanup(c, name, [s]);
    await c.end();
  });

  test('generated column: snapshot rows and streamed rows have the same column set, in attribute order (keyed table)', async () => {
    await c.query(`UPDATE ${s}.keyed SET a = 11 WHERE id = 1`);
    await c.query(`INSERT INTO ${s}.keyed (id, a, z) VALUES (3, 30, 'z3')`);
    const events = await topic.waitFor('2 snapshot rows, an update and an insert', (es) => es.filter((e) => e.source.table === 'keyed').length >= 4);
    const keyed = events.filter((e) => e.source.table === 'keyed');
    expect(keyed.map((e) => e.op)).toEqual(['r', 'r', 'u', 'c']);
    for (const e of keyed) expect(Object.keys(e.after!)).toEqual(['id', 'a', 'z']);
    expect(keyed[0]!.after).toEqual({ id: 1, a: 10, z: 'z1' });
  });

  test('generated column: a keyless REPLICA IDENTITY FULL table keys a row the same in the snapshot and in the stream', async () => {
    await c.query(`UPDATE ${s}.keyless SET a = 3 WHERE a = 1`); // a whole-row key change: d (old row) + c
    await c.query(`DELETE FROM ${s}.keyless WHERE a = 2`);
    const events = await topic.waitFor('2 snapshot rows, d + c, d', (es) => es.filter((e) => e.source.table === 'keyless').length >= 5);
    const keyless = events.filter((e) => e.source.table === 'keyless');
    expect(keyless.map((e) => e.op)).toEqual(['r', 'r', 'd', 'c', 'd']);
    const [snap1, snap2, del1, ins, del2] = keyless;
    expect(snap1!.key).toEqual({ a: 1, b: 'x' });
    expect(del1!.key).toEqual(snap1!.key);
    expect(del2!.key).toEqual(snap2!.key);
    for (const e of [snap1!, snap2!, ins!]) expect(Object.keys(e.after!)).toEqual(['a', 'b']);
    // The record keys (what partitions and addresses the row) agree as well.
    const items = topic.items.filter((i) => i.event.source.table === 'keyless');
    expect(items[2]!.key).toBe(items[0]!.key);
    expect(items[4]!.key).toBe(items[1]!.key);
  });
});
