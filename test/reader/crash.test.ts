import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { spawnEntryPoint } from '../helpers/childProcess.js';
import { cleanup, eventually, pgClient, readerEnv, slotInactive, spawnReader, TopicCollector, uniqueName } from './helpers.js';

describe('reader: kill -9 under load, graceful SIGTERM', () => {
  const name = uniqueName('rd_kill');
  const schema = `${name}_s`;
  const table = `${schema}.orders_info`;
  let c: pg.Client;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(
      `CREATE SCHEMA ${schema}; CREATE TABLE ${table} (orderid SERIAL PRIMARY KEY, custid int NOT NULL, amount int NOT NULL, city varchar(255) NOT NULL, purchase_time varchar(20) NOT NULL)`,
    );
  });
  afterAll(async () => {
    await cleanup(c, name, [schema]);
    await c.end();
  });

  test('every committed change arrives at least once across repeated SIGKILLs; SIGTERM exits 0', async () => {
    const env = readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never', CDC_STATUS_INTERVAL_MS: '200' });
    const topic = await TopicCollector.start([`${name}_events`]);
    const kills = 4;
    let load: Promise<void> | null = null;
    let writer: pg.Client | null = null;
    const committed: number[] = [];
    let writing = true;
    for (let i = 0; i < kills; i++) {
      const child = spawnReader(env);
      // Let it stream for a random while (it must have started streaming at least once).
      await eventually('child streaming', () => (child.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 30_000);
      if (!load) {
        // The slot exists from here on: every change committed from now must arrive.
        const w = await pgClient();
        writer = w;
        load = (async () => {
          while (writing) {
            const r = await w.query<{ orderid: number }>(
              `INSERT INTO ${table} (custid, amount, city, purchase_time) VALUES (1, 10, 'Oslo', '2024-01-01') RETURNING orderid`,
            );
            committed.push(r.rows[0]!.orderid);
          }
        })();
      }
      const before = topic.items.length;
      await eventually('child publishing', () => (topic.items.length > before + 20 ? true : undefined), 30_000);
      // The kill moment is random on purpose (not a synchronisation wait).
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 900)));
      child.proc.kill('SIGKILL');
      await child.exited;
      await slotInactive(c, name);
    }
    const last = spawnReader(env);
    await eventually('last child streaming', () => (last.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 30_000);
    writing = false;
    await load;
    await writer!.end();
    const want = new Set(committed);
    try {
      await eventually(
        'every committed id on the topic',
        () => {
          const seen = new Set(topic.events().map((e) => e.after?.orderid as number));
          return [...want].every((id) => seen.has(id)) ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      const seen = new Set(topic.events().map((e) => e.after?.orderid as number));
      const missing = [...want].filter((id) => !seen.has(id));
      last.proc.kill('SIGKILL');
      throw new Error(
        `${(err as Error).message}; ${missing.length} of ${want.size} missing (first: ${missing.slice(0, 10).join(',')}); last reader said: ${JSON.stringify(last.lines.slice(-8))}`,
        { cause: err },
      );
    }
    last.proc.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    expect(last.lines.some((l) => l.msg === 'stopped')).toBe(true);
    await topic.close();

    const events = topic.events();
    expect(committed.length).toBeGreaterThan(100);
    // Duplicates are allowed (at-least-once) but carry the same LSN as the original.
    const lsnById = new Map<number, number>();
    for (const e of events) {
      const id = e.after!.orderid as number;
      const prev = lsnById.get(id);
      if (prev !== undefined) expect(e.source.lsn).toBe(prev);
      lsnById.set(id, e.source.lsn!);
    }
    // After the graceful stop, the slot confirmed everything the reader delivered.
    const slot = await c.query<{ confirmed: string }>(
      "SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1",
      [name],
    );
    // reduce, not Math.max(...xs): a spread of tens of thousands of arguments overflows the stack.
    const maxCommit = events.reduce((m, e) => Math.max(m, e.source.commit_lsn!), 0);
    expect(Number(slot.rows[0]!.confirmed)).toBeGreaterThan(maxCommit);
  });
});

describe('reader: kill -9 between a DDL and the broker confirming its schema_change', () => {
  const name = uniqueName('rd_kill_ddl');
  const schema = `${name}_s`;
  const table = `${schema}.t`;
  let c: pg.Client;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, a int)`);
  });
  afterAll(async () => {
    await cleanup(c, name, [schema]);
    await c.end();
  });

  test('the schema_change is published after the restart (the shape is stored only once its transaction is acknowledged)', async () => {
    const env = readerEnv(name, { CDC_TABLES: table, CDC_SNAPSHOT_MODE: 'never', CDC_SCHEMA_CHANGE_SNAPSHOT: 'off' });
    const topic = await TopicCollector.start([`${name}_events`]);
    const schemaChanges = () => topic.items.map((i) => i.event).filter((e) => e.op === 'm' && e.message?.kind === 'schema_change');
    // A reader whose broker never confirms a batch holding a schema_change (test/reader/fixtures).
    const held = spawnEntryPoint('test/reader/fixtures/unconfirmedSchemaChange.ts', env);
    await eventually('child streaming', () => (held.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 30_000);
    await c.query(`INSERT INTO ${table} VALUES (1, 1)`);
    await eventually('the insert on the topic', () => (topic.events().some((e) => e.after?.id === 1) ? true : undefined), 30_000);
    await c.query(`ALTER TABLE ${table} ADD COLUMN b text`);
    await c.query(`INSERT INTO ${table} VALUES (2, 2, 'two')`);
    await eventually('the schema_change held unconfirmed', () => (held.lines.some((l) => l.msg === 'held') ? true : undefined), 30_000);
    held.proc.kill('SIGKILL');
    await held.exited;
    await slotInactive(c, name);
    expect(schemaChanges()).toEqual([]);

    const again = spawnReader(env);
    try {
      await eventually(
        'the schema_change and the insert after it on the topic',
        () => (schemaChanges().length > 0 && topic.events().some((e) => e.after?.id === 2) ? true : undefined),
        30_000,
      );
    } catch (err) {
      throw new Error(
        `${(err as Error).message}; topic: ${JSON.stringify(topic.events().map((e) => [e.op, e.after?.id]))}; held: ${JSON.stringify(held.lines.slice(-5))}; again: ${JSON.stringify(again.lines.slice(-8))}`,
        { cause: err },
      );
    } finally {
      again.proc.kill('SIGTERM');
      await again.exited;
      await topic.close();
    }
    const content = (schemaChanges()[0]!.message as { content: { added: string[]; acrossRestart?: boolean } }).content;
    expect(content.added).toEqual(['b']);
    // Ahead of the insert that came with the new shape.
    expect(schemaChanges()[0]!.source.lsn).toBeLessThan(topic.events().find((e) => e.after?.id === 2)!.source.lsn!);
  }, 120_000);
});
