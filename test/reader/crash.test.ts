import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
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
