/**
 * The reader never makes PostgreSQL refuse a write (issue 14, "Never break the source"). Regression: with
 * no table list the publication was FOR ALL TABLES, so a table created without a primary key refused
 * UPDATE and DELETE ("does not have a replica identity and publishes updates"). Each test runs in a
 * database of its own: a reader without a list, or a FOR ALL TABLES publication, covers every table of
 * its database.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { eventually, privateDatabase, readerEnv, startReader, TopicCollector, uniqueName } from '../helpers.js';
import type { PrivateDatabase, RunningReader } from '../helpers.js';

type Line = Record<string, unknown>;

/** The log lines of `r` with message `msg` (prefix). */
const lines = (r: RunningReader, msg: string): Line[] => r.log.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(msg));

async function members(c: pg.Client, publication: string): Promise<string[]> {
  const r = await c.query<{ t: string }>(`SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1`, [publication]);
  return r.rows.map((x) => x.t);
}

/** UPDATE and DELETE on `table` succeed (PostgreSQL refuses them when a publication puts the table at risk). */
async function writable(c: pg.Client, table: string, set: string): Promise<void> {
  await c.query(`UPDATE ${table} SET ${set}`);
  await c.query(`DELETE FROM ${table}`);
}

describe('reader publication: default mode lists the tables that have a replica identity', () => {
  let db: PrivateDatabase;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;
  const name = uniqueName('rd_pub');

  beforeAll(async () => {
    db = await privateDatabase('rd_pubdb');
    c = db.client;
    await c.query(`CREATE SCHEMA app;
      CREATE TABLE app.keyed (id int PRIMARY KEY, v text);
      CREATE TABLE app.nokey (v int); INSERT INTO app.nokey VALUES (1);
      CREATE TABLE app.nothing (id int PRIMARY KEY, v int); ALTER TABLE app.nothing REPLICA IDENTITY NOTHING; INSERT INTO app.nothing VALUES (1, 1);
      CREATE TABLE app.deferred (id int PRIMARY KEY DEFERRABLE, v int); INSERT INTO app.deferred VALUES (1, 1);
      CREATE TABLE app.full_nokey (v int); ALTER TABLE app.full_nokey REPLICA IDENTITY FULL;
      CREATE TABLE app.part (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE app.part_eu PARTITION OF app.part FOR VALUES IN ('eu');
      CREATE TABLE app.partfull (id int, region text, v int) PARTITION BY LIST (region);
      ALTER TABLE app.partfull REPLICA IDENTITY FULL;
      CREATE TABLE app.partfull_eu PARTITION OF app.partfull FOR VALUES IN ('eu'); INSERT INTO app.partfull VALUES (1, 'eu', 1);`);
    r = await startReader(readerEnv(name, { PGDATABASE: db.name, CDC_SNAPSHOT_MODE: 'never', CDC_PUBLICATION_REFRESH_MS: '300' }));
    topic = await TopicCollector.start([`${name}_events`]);
  });
  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await db?.drop();
  });

  test('the publication lists the qualifying tables (partitioned ones under the root); the skipped ones are named with why, and stay writable', async () => {
    const pub = await c.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [`${name}_pub`]);
    expect(pub.rows[0]?.puballtables).toBe(false);
    // The reader's signal table is published with the tables (signals come through the WAL).
    expect(await members(c, `${name}_pub`)).toEqual(['app.full_nokey', 'app.keyed', 'app.part', `${name}_state.signals`]);
    const [skipped] = lines(r, 'tables not captured (at start-up)');
    const reasons = Object.fromEntries((skipped?.skipped as { table: string; reason: string; fix: string }[]).map((s) => [s.table, s]));
    expect(Object.keys(reasons).sort()).toEqual(['app.deferred', 'app.nokey', 'app.nothing', 'app.partfull']);
    expect(reasons['app.nokey']).toMatchObject({ reason: 'no primary key (REPLICA IDENTITY DEFAULT)', fix: expect.stringMatching(/REPLICA IDENTITY FULL/) });
    expect(reasons['app.nothing']?.reason).toBe('REPLICA IDENTITY NOTHING');
    expect(reasons['app.deferred']?.reason).toMatch(/DEFERRABLE primary key/);
    // The root has FULL, but PostgreSQL checks the partition a row is in, which has no identity.
    expect(reasons['app.partfull']?.reason).toMatch(/^partition app\.partfull_eu has no primary key/);
    expect(skipped?.why).toMatch(/refuse UPDATE and DELETE/);
    await writable(c, 'app.nokey', 'v = 2');
    await writable(c, 'app.nothing', 'v = 2');
    await writable(c, 'app.deferred', 'v = 2');
    await writable(c, 'app.partfull', 'v = 2');
    // No publication of this database puts a table at risk, so nothing is reported.
    expect(lines(r, 'publications make PostgreSQL refuse')).toEqual([]);
  });

  test('a keyless table created while the reader runs: not published, named in the log with why; its UPDATE and DELETE succeed', async () => {
    await c.query(`CREATE TABLE app.late_nokey (v int); INSERT INTO app.late_nokey VALUES (1), (2)`);
    const line = await eventually('the skip logged', () =>
      lines(r, 'tables not captured (while running)').find((l) => JSON.stringify(l.skipped).includes('app.late_nokey')),
    );
    expect(line.skipped).toEqual([{ table: 'app.late_nokey', reason: 'no primary key (REPLICA IDENTITY DEFAULT)', fix: expect.any(String) }]);
    await writable(c, 'app.late_nokey', 'v = v + 1');
    expect(await members(c, `${name}_pub`)).not.toContain('app.late_nokey');
  });

  test('a table with a key created while the reader runs is added to the publication and streamed; one created with rows is added with a warning', async () => {
    await c.query(`CREATE TABLE app.late_keyed (id int PRIMARY KEY, v text)`);
    await eventually('added', () => lines(r, 'table added to the publication').find((l) => l.table === 'app.late_keyed'));
    await c.query(`INSERT INTO app.late_keyed VALUES (1, 'new'); UPDATE app.late_keyed SET v = 'upd'`);
    const events = await topic.waitFor('its events', (es) => es.filter((e) => e.source.table === 'late_keyed').length >= 2);
    expect(events.filter((e) => e.source.table === 'late_keyed').map((e) => [e.op, e.key])).toEqual([
      ['c', { id: 1 }],
      ['u', { id: 1 }],
    ]);
    // Rows written before the table joined the publication are not in the stream: said so.
    await c.query(`BEGIN; CREATE TABLE app.prefilled (id int PRIMARY KEY); INSERT INTO app.prefilled VALUES (1); COMMIT`);
    const warned = await eventually('warned', () =>
      lines(r, 'table added to the publication; rows it held before are not streamed').find((l) => l.table === 'app.prefilled'),
    );
    // In mode never nothing snapshots it: the fix is the command that does (test/reader/snapshot/incremental.test.ts: the other modes).
    expect(warned.fix).toBe('npm run snapshot -- --table app.prefilled');
  });

  test('a member that loses its replica identity is removed from the publication (its writes succeed again) and added back once it has one', async () => {
    await c.query(`CREATE TABLE app.fragile (id int CONSTRAINT fragile_pk PRIMARY KEY, v int)`);
    await eventually('added', () => lines(r, 'table added to the publication').find((l) => l.table === 'app.fragile'));
    await c.query(`INSERT INTO app.fragile VALUES (1, 1); ALTER TABLE app.fragile DROP CONSTRAINT fragile_pk`);
    const removed = await eventually('removed', () => lines(r, 'table removed from the publication').find((l) => l.table === 'app.fragile'));
    expect(removed).toMatchObject({ level: 'error', problem: 'no primary key (REPLICA IDENTITY DEFAULT)' });
    await c.query(`UPDATE app.fragile SET v = 2`);
    await c.query(`ALTER TABLE app.fragile ADD PRIMARY KEY (id)`);
    await eventually('added back', () => lines(r, 'table added').filter((l) => l.table === 'app.fragile').length >= 2 || undefined);
    expect(await members(c, `${name}_pub`)).toContain('app.fragile');
    await c.query(`UPDATE app.fragile SET v = 3`);
    await topic.waitFor('the update after it came back', (es) => es.some((e) => e.source.table === 'fragile' && e.op === 'u' && e.after?.v === 3));
  });

  test('another publication that puts a keyless table at risk is named at start-up, with the table; a FOR ALL TABLES one too', async () => {
    // Made by someone else in the same database; the reader never changes them.
    await c.query(`CREATE PUBLICATION foreign_all FOR ALL TABLES; CREATE PUBLICATION foreign_list FOR TABLE app.nothing`);
    const other = uniqueName('rd_pub2');
    const r2 = await startReader(readerEnv(other, { PGDATABASE: db.name, CDC_SNAPSHOT_MODE: 'never' }));
    try {
      const all = lines(r2, 'a FOR ALL TABLES publication puts every table without a replica identity at risk');
      expect(all).toEqual([expect.objectContaining({ level: 'warn', publication: 'foreign_all', ours: false })]);
      const [risk] = lines(r2, 'publications make PostgreSQL refuse UPDATE and DELETE on these tables');
      const atRisk = (risk?.atRisk as { publication: string; table: string; problem: string }[]).map((x) => `${x.publication} ${x.table}`);
      expect(atRisk).toEqual(
        expect.arrayContaining(['foreign_all app.nokey', 'foreign_all app.nothing', 'foreign_all app.partfull_eu', 'foreign_list app.nothing']),
      );
      expect(atRisk.some((x) => x.includes('app.keyed'))).toBe(false);
      // What the warning is about, for real: PostgreSQL now refuses the update.
      await expect(c.query(`UPDATE app.nokey SET v = 3`)).rejects.toThrow(/does not have a replica identity and publishes updates/);
    } finally {
      await r2.stop();
      await c.query(`DROP PUBLICATION foreign_all; DROP PUBLICATION foreign_list`);
    }
  });
});

describe('reader publication: FOR ALL TABLES is an explicit opt-in', () => {
  let db: PrivateDatabase;
  let c: pg.Client;
  const name = uniqueName('rd_puball');

  beforeAll(async () => {
    db = await privateDatabase('rd_puballdb');
    c = db.client;
    await c.query(`CREATE TABLE keyed (id int PRIMARY KEY, v text); INSERT INTO keyed VALUES (1, 'seed')`);
  });
  afterAll(async () => {
    await db?.drop();
  });

  test('CDC_PUBLICATION_MODE=all-tables: FOR ALL TABLES, with a warning at start-up and for each keyless table created later; back in the default mode it becomes a list again, with nothing lost', async () => {
    const env = readerEnv(name, { PGDATABASE: db.name, CDC_PUBLICATION_REFRESH_MS: '300' });
    const topic = await TopicCollector.start([`${name}_events`]);
    try {
      const r = await startReader({ ...env, CDC_PUBLICATION_MODE: 'all-tables' });
      try {
        const pub = await c.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [`${name}_pub`]);
        expect(pub.rows[0]?.puballtables).toBe(true);
        expect(lines(r, 'a FOR ALL TABLES publication')).toEqual([
          expect.objectContaining({ publication: `${name}_pub`, ours: true, fix: expect.stringMatching(/CDC_PUBLICATION_MODE/) }),
        ]);
        await c.query(`CREATE TABLE keyless (v int); INSERT INTO keyless VALUES (1)`);
        const risk = await eventually('the new keyless table reported', () =>
          lines(r, 'publications make PostgreSQL refuse').find(
            (l) => JSON.stringify(l.atRisk).includes('"public.keyless"') || JSON.stringify(l.atRisk).includes('"keyless"'),
          ),
        );
        expect(risk.atRisk).toEqual([
          expect.objectContaining({ publication: `${name}_pub`, ours: true, problem: 'no primary key (REPLICA IDENTITY DEFAULT)' }),
        ]);
        await c.query(`INSERT INTO keyed VALUES (2, 'all-tables')`);
        await topic.waitFor('the insert', (es) => es.some((e) => e.key?.id === 2));
        // The risk is real in this mode: PostgreSQL refuses the update.
        await expect(c.query(`UPDATE keyless SET v = 2`)).rejects.toThrow(/does not have a replica identity/);
      } finally {
        await r.stop();
      }
      // Written while stopped: read after the publication is replaced, from WAL decoded under the old one.
      await c.query(`INSERT INTO keyed VALUES (3, 'while stopped')`);
      const r2 = await startReader(env);
      try {
        expect(lines(r2, 'publication converted to a table list')).toHaveLength(1);
        const pub = await c.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_publication WHERE pubname = $1', [`${name}_pub`]);
        expect(pub.rows[0]?.puballtables).toBe(false);
        expect(await members(c, `${name}_pub`)).toEqual(['public.keyed', `${name}_state.signals`]);
        await c.query(`INSERT INTO keyed VALUES (4, 'after')`);
        await topic.waitFor('the rows from before and after the conversion', (es) => es.some((e) => e.key?.id === 3) && es.some((e) => e.key?.id === 4));
        await writable(c, 'keyless', 'v = 3');
        expect(r2.reader.phase).toBe('streaming');
      } finally {
        await r2.stop();
      }
    } finally {
      await topic.close();
    }
  });
});
