import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { applyPerKey, cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import type { RunningReader } from './helpers.js';

/**
 * Regression: `UPDATE t SET id = id + 1` on a DEFERRABLE primary key is decoded row by row; each
 * key-changing update became a delete of the old key plus a create of the new one, so the stream read
 * d1 c2 d2 c3 d3 c4 and key 2 ended deleted in every key-addressed sink although the table holds it.
 */
describe('reader: a key shift in one statement leaves every shifted key present', () => {
  const name = uniqueName('rd_shift');
  const s = `${name}_s`;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    const table = (t: string, order: 'ASC' | 'DESC') =>
      `CREATE TABLE ${s}.${t} (id int PRIMARY KEY DEFERRABLE, v text);
       ALTER TABLE ${s}.${t} REPLICA IDENTITY FULL;
       INSERT INTO ${s}.${t} SELECT g, 'row' || g FROM generate_series(1, 5) g ORDER BY g ${order};`;
    // Rows are inserted (so scanned and updated) in ascending or descending key order. A deferrable
    // primary key is no replica identity for PostgreSQL: such a table needs REPLICA IDENTITY FULL.
    await c.query(`CREATE SCHEMA ${s};
      ${table('up_asc', 'ASC')} ${table('down_desc', 'DESC')} ${table('up_desc', 'DESC')} ${table('down_asc', 'ASC')} ${table('shift_del', 'ASC')}
      CREATE TABLE ${s}.swap (id int PRIMARY KEY, v text);
      CREATE TABLE ${s}.keyless (id int, v text);
      ALTER TABLE ${s}.keyless REPLICA IDENTITY FULL;`);
    const names = ['up_asc', 'down_desc', 'up_desc', 'down_asc', 'shift_del', 'swap', 'keyless'].map((t) => `${s}.${t}`);
    r = await startReader(readerEnv(name, { CDC_TABLES: names.join(','), CDC_SNAPSHOT_MODE: 'never', CDC_TOPIC_TEMPLATE: '{schema}.{table}' }));
    topic = await TopicCollector.start(names);
  });
  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await cleanup(c, name, [s]);
    await c.end();
  });

  /** The table's rows, keyed as applyPerKey keys them (the keyless table by the whole row). */
  async function rows(t: string): Promise<Map<string, Record<string, unknown>>> {
    const res = await c.query<{ id: number; v: string }>(`SELECT id, v FROM ${s}.${t}`);
    return new Map(res.rows.map((row) => [`${s}.${t}\u0000${JSON.stringify(t === 'keyless' ? row : { id: row.id })}`, row]));
  }

  /**
   * Runs `sql`, waits for its events (up to a marker row written after it) and checks that applying them
   * per key gives exactly the table's rows.
   */
  async function shift(t: string, sql: string): Promise<void> {
    await c.query(sql).catch(async (err: unknown) => {
      await c.query('ROLLBACK');
      throw err;
    });
    const expected = await rows(t);
    await c.query(`INSERT INTO ${s}.${t} VALUES (1000, 'marker')`); // comes after the shift's events
    await topic.waitFor(`${t}: the marker`, (es) => es.some((e) => e.source.table === t && e.key?.id === 1000));
    const items = topic.items.filter((i) => i.event.source.table === t && i.event.key?.id !== 1000);
    expect(applyPerKey(items)).toEqual(expected);
  }

  test('key shift: UPDATE SET id = id + 1 in ascending row order (d1 c2 d2 c3 …) ends with keys 2..6 present', async () => {
    await shift('up_asc', `UPDATE ${s}.up_asc SET id = id + 1`);
  });

  test('key shift: UPDATE SET id = id - 1 in descending row order ends with keys 0..4 present', async () => {
    await shift('down_desc', `UPDATE ${s}.down_desc SET id = id - 1`);
  });

  test('key shift in the non-overlapping orders (each new key created after its old row left) still converges', async () => {
    await shift('up_desc', `UPDATE ${s}.up_desc SET id = id + 1`);
    await shift('down_asc', `UPDATE ${s}.down_asc SET id = id - 1`);
  });

  test('key shift then a plain DELETE of a shifted key in the same transaction: the delete is emitted', async () => {
    await shift('shift_del', `BEGIN; UPDATE ${s}.shift_del SET id = id + 1; DELETE FROM ${s}.shift_del WHERE id = 3; COMMIT`);
    // The shift deletes only key 1 (no row moved into it); the plain DELETE of key 3 comes after.
    const deletes = topic.events((e) => e.source.table === 'shift_del' && e.op === 'd').map((e) => e.key);
    expect(deletes).toEqual([{ id: 1 }, { id: 3 }]);
  });

  // Where a key is unique row by row, the row leaving a key is always the one there, so a key change's
  // delete must be emitted even when this transaction moved that row there.
  test('keys unique row by row: a swap through a temporary key in one transaction still deletes the temporary key', async () => {
    await shift(
      'swap',
      `INSERT INTO ${s}.swap VALUES (1, 'one'), (2, 'two'); BEGIN; UPDATE ${s}.swap SET id = -1 WHERE id = 1; UPDATE ${s}.swap SET id = 1 WHERE id = 2; UPDATE ${s}.swap SET id = 2 WHERE id = -1; COMMIT`,
    );
  });

  test('a keyless REPLICA IDENTITY FULL table: a row updated twice in one transaction leaves only its last image', async () => {
    await shift(
      'keyless',
      `INSERT INTO ${s}.keyless VALUES (1, 'a'), (2, 'b'); BEGIN; UPDATE ${s}.keyless SET v = 'a2' WHERE id = 1; UPDATE ${s}.keyless SET v = 'a3' WHERE id = 1; COMMIT`,
    );
  });
});
