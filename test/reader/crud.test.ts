import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import type { RunningReader } from './helpers.js';

describe('reader: insert/update/delete/truncate', () => {
  const name = uniqueName('rd_crud');
  const retail = `${name}_retail`;
  const bank = `${name}_bank`;
  let c: pg.Client;
  let r: RunningReader;
  let topic: TopicCollector;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${retail}; CREATE SCHEMA ${bank};
      CREATE TABLE ${retail}.orders_info (orderid SERIAL NOT NULL PRIMARY KEY, custid INTEGER NOT NULL, amount INTEGER NOT NULL, city VARCHAR(255) NOT NULL, purchase_time VARCHAR(20) NOT NULL);
      CREATE TABLE ${bank}.holding (holding_id int, user_id int, holding_stock varchar(8), holding_quantity int, datetime_created timestamp, datetime_updated timestamp, primary key(holding_id));
      ALTER TABLE ${bank}.holding REPLICA IDENTITY FULL;`);
    r = await startReader(readerEnv(name, { CDC_TABLES: `${retail}.orders_info,${bank}.holding`, CDC_SNAPSHOT_MODE: 'never' }));
    topic = await TopicCollector.start([`${name}_events`]);
  });

  afterAll(async () => {
    await r?.stop();
    await topic?.close();
    await cleanup(c, name, [retail, bank]);
    await c.end();
  });

  test('retail.orders_info (default replica identity): c, u, d, t in order with keys', async () => {
    await c.query(`INSERT INTO ${retail}.orders_info (custid, amount, city, purchase_time) VALUES (1, 100, 'Seattle', '2024-01-01 10:00:00')`);
    await c.query(`UPDATE ${retail}.orders_info SET amount = 150 WHERE orderid = 1`);
    await c.query(`DELETE FROM ${retail}.orders_info WHERE orderid = 1`);
    await c.query(`TRUNCATE ${retail}.orders_info`);
    const events = (await topic.waitFor('4 retail events', (es) => es.filter((e) => e.source.schema === retail).length >= 4)).filter(
      (e) => e.source.schema === retail,
    );
    expect(events.map((e) => e.op)).toEqual(['c', 'u', 'd', 't']);
    const [ins, upd, del, tr] = events;
    expect(ins!.after).toEqual({ orderid: 1, custid: 1, amount: 100, city: 'Seattle', purchase_time: '2024-01-01 10:00:00' });
    expect(ins!.before).toBeNull();
    expect(ins!.key).toEqual({ orderid: 1 });
    expect(upd!.before).toBeNull(); // default replica identity: no old image
    expect(upd!.after).toMatchObject({ orderid: 1, amount: 150 });
    expect(del!.before).toEqual({ orderid: 1 });
    expect(del!.after).toBeNull();
    expect(tr!.key).toBeNull();
    for (const e of events) {
      expect(e.source).toMatchObject({ connector: 'postgresql', name: 'pgcdc', db: 'postgres', schema: retail, table: 'orders_info', snapshot: 'false' });
      expect(typeof e.source.lsn).toBe('number');
      expect(typeof e.source.commit_lsn).toBe('number');
      expect(typeof e.source.txId).toBe('number');
      expect(e.source.lsn!).toBeLessThanOrEqual(e.source.commit_lsn!);
    }
    // LSN order = commit order for a key
    expect(ins!.source.lsn!).toBeLessThan(upd!.source.lsn!);
    expect(upd!.source.lsn!).toBeLessThan(del!.source.lsn!);
    const keyed = topic.items.filter((i) => i.event.source.schema === retail && i.event.op !== 't');
    expect(new Set(keyed.map((i) => i.key))).toEqual(new Set(['{"orderid":1}']));
    expect(new Set(keyed.map((i) => i.partition)).size).toBe(1);
  });

  test('bank.holding (REPLICA IDENTITY FULL): before images on update and delete', async () => {
    await c.query(`INSERT INTO ${bank}.holding VALUES (1000, 1, 'VFIAX', 10, '2024-01-01 10:00:00', '2024-01-01 10:00:00')`);
    await c.query(`UPDATE ${bank}.holding SET holding_quantity = 20, datetime_updated = '2024-01-02 11:00:00.5' WHERE holding_id = 1000`);
    await c.query(`DELETE FROM ${bank}.holding WHERE holding_id = 1000`);
    await c.query(`BEGIN; INSERT INTO ${bank}.holding VALUES (1001, 2, 'AAPL', 1, now(), now()); TRUNCATE ${bank}.holding; COMMIT`);
    const events = (await topic.waitFor('5 bank events', (es) => es.filter((e) => e.source.schema === bank).length >= 5)).filter(
      (e) => e.source.schema === bank,
    );
    expect(events.map((e) => e.op)).toEqual(['c', 'u', 'd', 'c', 't']);
    const [, upd, del, ins2, tr] = events;
    const first = {
      holding_id: 1000,
      user_id: 1,
      holding_stock: 'VFIAX',
      holding_quantity: 10,
      datetime_created: '2024-01-01T10:00:00',
      datetime_updated: '2024-01-01T10:00:00',
    };
    expect(upd!.before).toEqual(first);
    expect(upd!.after).toEqual({ ...first, holding_quantity: 20, datetime_updated: '2024-01-02T11:00:00.5' });
    expect(del!.before).toEqual({ ...first, holding_quantity: 20, datetime_updated: '2024-01-02T11:00:00.5' });
    expect(del!.key).toEqual({ holding_id: 1000 });
    // one transaction: same txId and commit_lsn
    expect(ins2!.source.txId).toBe(tr!.source.txId);
    expect(ins2!.source.commit_lsn).toBe(tr!.source.commit_lsn);
  });

  test('acknowledges to PostgreSQL only what the broker confirmed', async () => {
    const slot = await c.query<{ confirmed: string; current: string }>(
      "SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed, (pg_current_wal_lsn() - '0/0')::text AS current FROM pg_replication_slots WHERE slot_name = $1",
      [name],
    );
    const last = Math.max(...topic.events().map((e) => e.source.commit_lsn ?? 0));
    // confirmed_flush = last commit LSN + 1 once acknowledged (poll: status updates are periodic)
    const { eventually } = await import('./helpers.js');
    await eventually('slot confirmed past the last published commit', async () => {
      const s = await c.query<{ confirmed: string }>("SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1", [
        name,
      ]);
      return Number(s.rows[0]!.confirmed) > last ? true : undefined;
    });
    expect(Number(slot.rows[0]!.current)).toBeGreaterThan(0);
  });

  test('its metrics name the commit time of the newest transaction the broker confirmed (the status compares it with the sinks)', async () => {
    const newest = Math.max(...topic.events().map((e) => e.source.ts_ms ?? 0));
    const { eventually } = await import('./helpers.js');
    const seen = await eventually('the newest commit time in the metrics', () => {
      const value = r.reader.metrics.toJSON().lastPublishedCommitTime;
      return value === new Date(newest).toISOString() ? value : undefined;
    });
    // Commit times carry microseconds (ts_ms may be fractional); the metrics keep milliseconds.
    expect(Date.parse(String(seen))).toBe(Math.floor(newest));
  });
});
