/**
 * Renames (issue 14): the reader follows a table by its relation id. Regression: after `ALTER TABLE t
 * RENAME TO t2` events came out under `t2` (a `"*"` route opened a new index with only the changed rows
 * while the old one froze; explicit routes dead-lettered every event), and a restart with the old name in
 * CDC_TABLES exited with TABLE_NOT_FOUND. Events now keep the name the table was captured under, with
 * the current one in `source.renamed_to`.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { applyPerKey, cleanup, pgClient, readerEnv, startReader, startupError, TopicCollector, uniqueName } from '../helpers.js';
import type { ChangeEvent } from '../../../src/shared/events/changeEvent.js';

describe('reader: a renamed table keeps its events’ name', () => {
  const name = uniqueName('rd_ren');
  const s = `${name}_s`;
  let c: pg.Client;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${s}; CREATE SCHEMA ${s}_b;
      CREATE TABLE ${s}.t (id int PRIMARY KEY, v text); INSERT INTO ${s}.t VALUES (1, 'seed');`);
    topic = await TopicCollector.start([`${name}_events`]);
  });
  afterAll(async () => {
    await topic?.close();
    await cleanup(c, name, [s, `${s}_b`]);
    await c.end();
  });

  const ofT = (e: ChangeEvent) => e.source.schema === s && e.source.table === 't';

  test('renamed while streaming: every event keeps source.table t; those after it carry source.renamed_to; the rename is logged as a schema change', async () => {
    const env = readerEnv(name, { CDC_TABLES: `${s}.t` });
    const r = await startReader(env);
    try {
      await c.query(`INSERT INTO ${s}.t VALUES (2, 'before')`);
      await c.query(`ALTER TABLE ${s}.t RENAME TO t2`);
      await c.query(`INSERT INTO ${s}.t2 VALUES (3, 'after'); UPDATE ${s}.t2 SET v = 'upd' WHERE id = 1; DELETE FROM ${s}.t2 WHERE id = 2`);
      // A rename alone starts no reconcile snapshot (needsReconcile); its rows would be timing-dependent, so they are left out anyway.
      const streamed = (es: ChangeEvent[]) => es.filter((e) => e.source.snapshot !== 'incremental');
      const events = streamed(await topic.waitFor('snapshot row and four changes', (es) => streamed(es).length >= 5));
      expect(events.every(ofT)).toBe(true);
      expect(events.map((e) => [e.op, e.key, e.source.renamed_to])).toEqual([
        ['r', { id: 1 }, undefined],
        ['c', { id: 2 }, undefined],
        ['c', { id: 3 }, `${s}.t2`],
        ['u', { id: 1 }, `${s}.t2`],
        ['d', { id: 2 }, `${s}.t2`],
      ]);
      const change = r.log.lines.find((l) => l.msg === 'table schema changed');
      expect(change).toMatchObject({ table: `${s}.t`, changed: ['name'], before: { name: `${s}.t` }, after: { name: `${s}.t2` } });
    } finally {
      await r.stop();
    }
  });

  test('restarted with the old name in CDC_TABLES: found by its relation id (a warning names what to change); renamed and moved again while stopped, still t', async () => {
    // While stopped: a change under t2, then a rename and a move to another schema, then a change under the new name.
    await c.query(`INSERT INTO ${s}.t2 VALUES (4, 'stopped, as t2')`);
    await c.query(`ALTER TABLE ${s}.t2 RENAME TO t3; ALTER TABLE ${s}.t3 SET SCHEMA ${s}_b`);
    await c.query(`INSERT INTO ${s}_b.t3 VALUES (5, 'stopped, as t3')`);
    const r = await startReader(readerEnv(name, { CDC_TABLES: `${s}.t` }));
    try {
      const warned = r.log.lines.find((l) => l.msg === 'CDC_TABLES names a table that was renamed: following it by its relation id');
      expect(warned).toMatchObject({ level: 'warn', configured: `${s}.t`, now: `${s}_b.t3`, fix: expect.stringContaining(`"${s}_b"."t3"`) });
      await c.query(`UPDATE ${s}_b.t3 SET v = 'restarted' WHERE id = 4`);
      const events = await topic.waitFor(
        'the changes made while stopped and after',
        (es) => es.filter((e) => e.key?.id === 4).length >= 2 && es.some((e) => e.key?.id === 5),
      );
      expect(events.every(ofT)).toBe(true);
      // Each carries the name the table had at that point of the WAL.
      const at = (id: number, op: string) => events.find((e) => e.key?.id === id && e.op === op)?.source.renamed_to;
      expect(at(4, 'c')).toBe(`${s}.t2`);
      expect(at(5, 'c')).toBe(`${s}_b.t3`);
      expect(at(4, 'u')).toBe(`${s}_b.t3`);
    } finally {
      await r.stop();
    }
  });

  test('restarted with the new name in CDC_TABLES: the events keep the captured name, so nothing splits', async () => {
    const r = await startReader(readerEnv(name, { CDC_TABLES: `${s}_b.t3` }));
    try {
      expect(r.log.lines.find((l) => l.msg === 'table renamed since it was captured: its events keep the captured name')).toMatchObject({
        captured: `${s}.t`,
        now: `${s}_b.t3`,
      });
      await c.query(`INSERT INTO ${s}_b.t3 VALUES (6, 'new name listed')`);
      const events = await topic.waitFor('the insert', (es) => es.some((e) => e.key?.id === 6));
      expect(events.every(ofT)).toBe(true);
      // One table in the sinks, equal to the table.
      const live = await c.query<{ id: number; v: string }>(`SELECT id, v FROM ${s}_b.t3`);
      expect(applyPerKey(topic.items)).toEqual(new Map(live.rows.map((row) => [`${s}.t\u0000${JSON.stringify({ id: row.id })}`, row])));
    } finally {
      await r.stop();
    }
  });

  test('a stale name this slot never captured: TABLE_NOT_FOUND says to put the new name in CDC_TABLES', async () => {
    const other = uniqueName('rd_ren2');
    const err = await startupError(readerEnv(other, { CDC_TABLES: `${s}.t`, CDC_SNAPSHOT_MODE: 'never' }));
    await cleanup(c, other);
    expect(err.code).toBe('TABLE_NOT_FOUND');
    expect(err.message).toMatch(/table "[^"]+"\."t" does not exist \(CDC_TABLES lists it\).*If it was renamed .* put its new name in CDC_TABLES/s);
  });
});
