import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { applyPerKey, cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';

/**
 * Regression: the publication was created without publish_via_partition_root, so snapshot rows of a
 * partitioned table carried the parent's name and streamed changes the partition's; sinks routed them
 * apart (or dead-lettered them).
 */
describe('reader: partitioned tables are published under the parent (publish_via_partition_root)', () => {
  let c: pg.Client;
  const names: { name: string; schema: string }[] = [];

  beforeAll(async () => {
    c = await pgClient();
  });
  afterAll(async () => {
    for (const n of names) await cleanup(c, n.name, [n.schema]);
    await c.end();
  });

  async function partitionedTable(prefix: string): Promise<{ name: string; schema: string; table: string }> {
    const name = uniqueName(prefix);
    const schema = `${name}_s`;
    names.push({ name, schema });
    const table = `${schema}.m`;
    await c.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${table} (id int NOT NULL, region text NOT NULL, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE ${schema}.m_eu PARTITION OF ${table} FOR VALUES IN ('eu');
      CREATE TABLE ${schema}.m_us PARTITION OF ${table} FOR VALUES IN ('us');
      INSERT INTO ${table} VALUES (1, 'eu', 'seed'), (2, 'us', 'seed');`);
    return { name, schema, table };
  }

  test('partitioned table: snapshot, insert, update, cross-partition update, delete and truncate all carry the parent schema.table', async () => {
    const { name, schema, table } = await partitionedTable('rd_part');
    const r = await startReader(readerEnv(name, { CDC_TABLES: table }));
    const topic = await TopicCollector.start([`${name}_events`]);
    try {
      await c.query(`INSERT INTO ${table} VALUES (3, 'eu', 'new')`);
      await c.query(`UPDATE ${table} SET v = 'upd' WHERE id = 3`);
      await c.query(`UPDATE ${table} SET region = 'us' WHERE id = 1`); // moves the row from m_eu to m_us
      await c.query(`DELETE FROM ${table} WHERE id = 2`);
      const live = await c.query<{ id: number; region: string; v: string }>(`SELECT id, region, v FROM ${table} ORDER BY id`);
      await c.query(`TRUNCATE ${table}`);
      // 2 snapshot rows, c, u, d + c (cross-partition), d, t
      await topic.waitFor('snapshot and every change', (es) => es.length >= 8 && es.some((e) => e.op === 't'));
      const events = topic.events();
      expect(events.map((e) => `${e.source.schema}.${e.source.table}`)).toEqual(events.map(() => `${schema}.m`));
      expect(events.filter((e) => e.op === 'r').map((e) => e.key)).toEqual([
        { id: 1, region: 'eu' },
        { id: 2, region: 'us' },
      ]);
      const streamed = events.filter((e) => e.op !== 'r');
      expect(streamed.map((e) => [e.op, e.key])).toEqual([
        ['c', { id: 3, region: 'eu' }],
        ['u', { id: 3, region: 'eu' }],
        ['d', { id: 1, region: 'eu' }],
        ['c', { id: 1, region: 'us' }],
        ['d', { id: 2, region: 'us' }],
        ['t', null],
      ]);
      // Before the truncate a key-addressed sink holds exactly the table's rows, the moved row under its new key.
      const beforeTruncate = topic.items.filter((i) => i.event.op !== 't');
      expect(applyPerKey(beforeTruncate)).toEqual(
        new Map(live.rows.map((row) => [`${schema}.m\u0000${JSON.stringify({ id: row.id, region: row.region })}`, row])),
      );
      // One truncate event, for the parent: the sink ends empty.
      expect(streamed.filter((e) => e.op === 't')).toHaveLength(1);
      expect(applyPerKey(topic.items).size).toBe(0);
    } finally {
      await r.stop();
      await topic.close();
    }
  });

  test('an existing publication without publish_via_partition_root is altered to publish via the root', async () => {
    const { name, schema, table } = await partitionedTable('rd_partpub');
    await c.query(`CREATE PUBLICATION "${name}_pub" FOR TABLE ${table}`);
    const r = await startReader(readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never' }));
    const topic = await TopicCollector.start([`${name}_events`]);
    try {
      const pub = await c.query<{ pubviaroot: boolean }>('SELECT pubviaroot FROM pg_publication WHERE pubname = $1', [`${name}_pub`]);
      expect(pub.rows[0]?.pubviaroot).toBe(true);
      expect(r.log.lines.find((l) => l.msg === 'start-up checks passed')).toMatchObject({ publicationState: 'updated' });
      await c.query(`INSERT INTO ${table} VALUES (4, 'us', 'new')`);
      const [event] = await topic.waitFor('the insert', (es) => es.length >= 1);
      expect(event).toMatchObject({ op: 'c', key: { id: 4, region: 'us' }, source: { schema, table: 'm' } });
    } finally {
      await r.stop();
      await topic.close();
    }
  });
});
