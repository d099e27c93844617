/** The change generator against the real PostgreSQL: the mix, the holding script, the paced run. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { pgSettingsFromEnv } from '../../../src/shared/core/postgres.js';
import { createTableSql, generateOnce, runGenerator } from '../../../src/shared/generator/generator.js';
import { EPISODE, HoldingWorkload, STOCKS } from '../../../src/shared/generator/holding.js';
import { DEFAULT_MIX, MixDealer, parseMix } from '../../../src/shared/generator/mix.js';
import { CITIES, OrdersWorkload, insertOrders, randomOrder } from '../../../src/shared/generator/orders.js';
import { seededRandom } from '../../../src/shared/generator/random.js';
import { eventually, serviceEnv, uniqueName } from '../../helpers/services.js';
import { addAudit, auditRows, countOps, type AuditRow } from './audit.js';

const { pg: pgEnv } = serviceEnv();
const settings = pgSettingsFromEnv({ PGHOST: pgEnv.host, PGPORT: String(pgEnv.port), PGUSER: pgEnv.user, PGDATABASE: pgEnv.database });
const client = new pg.Client({ host: pgEnv.host, port: pgEnv.port, user: pgEnv.user, database: pgEnv.database });
const schemas: string[] = [];

/** A fresh `<unique schema>.<name>` of the workload's table, with an audit trigger. */
async function freshTable(workload: 'orders' | 'holding'): Promise<string> {
  const schema = uniqueName(`gen_${workload}`);
  schemas.push(schema);
  const table = `${schema}.${workload === 'orders' ? 'orders_info' : 'holding'}`;
  await client.query(createTableSql(workload, table));
  await addAudit(client, table);
  return table;
}

beforeAll(async () => {
  await client.connect();
});

afterAll(async () => {
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('the mix', () => {
  it('is three non-negative integers with a sum > 0; anything else is refused naming the setting', () => {
    expect(parseMix('70:25:5', 'ORDERS_GENERATOR_MIX')).toEqual({ insert: 70, update: 25, delete: 5 });
    expect(parseMix(' 0 : 1 : 0 ', 'X')).toEqual({ insert: 0, update: 1, delete: 0 });
    for (const bad of ['70:25', '70:25:5:1', '0:0:0', '-1:2:3', '1.5:1:1', 'a:b:c', '70,25,5', '']) {
      expect(() => parseMix(bad, '--mix')).toThrow(/^--mix: expected three non-negative integers inserts:updates:deletes with a sum > 0, e.g. 70:25:5, got /);
    }
  });

  it('deals kinds evenly: every 20 changes of 70:25:5 are 14:5:1', () => {
    const dealer = new MixDealer(DEFAULT_MIX);
    for (let i = 0; i < 5; i++) expect(dealer.deal(20)).toEqual({ insert: 14, update: 5, delete: 1 });
  });
});

describe('the orders workload', () => {
  it('makes orders shaped like the generator of the Kafka Connect demo', () => {
    const order = randomOrder(() => 0.5, new Date(Date.UTC(2020, 9, 9, 7, 23, 10)));
    expect(order).toEqual({ custid: 501, amount: 251, city: CITIES[6], purchase_time: '2020-10-09 07:23:10' });
  });

  it('makes inserts, updates of amount and city, and deletes in the mix, updating and deleting only existing orders', async () => {
    const table = await freshTable('orders');
    const random = seededRandom(1);
    const seeded = await insertOrders(
      client,
      table,
      Array.from({ length: 200 }, () => randomOrder(random)),
    );
    const workload = new OrdersWorkload(table, DEFAULT_MIX, seededRandom(42));
    const totals = { inserts: 0, updates: 0, deletes: 0 };
    for (let i = 0; i < 20; i++) {
      const c = await workload.runBatch(client, 50);
      totals.inserts += c.inserts;
      totals.updates += c.updates;
      totals.deletes += c.deletes;
    }
    // 1,000 changes at 70:25:5 on a table that always has rows to pick: exactly the mix.
    expect(totals).toEqual({ inserts: 700, updates: 250, deletes: 50 });
    const audit = (await auditRows(client, table)).slice(200);
    expect(countOps(audit)).toEqual(totals);

    const known = new Set(seeded);
    const deleted = new Set<number>();
    for (const row of audit) {
      if (row.op === 'INSERT') {
        known.add(row.new?.orderid as number);
        continue;
      }
      const id = row.old?.orderid as number;
      expect(known.has(id) && !deleted.has(id)).toBe(true); // an order that exists at that moment
      if (row.op === 'DELETE') deleted.add(id);
      else {
        expect(row.new?.orderid).toBe(id);
        // Only amount and city change.
        expect({ ...row.new, amount: 0, city: '' }).toEqual({ ...row.old, amount: 0, city: '' });
        expect(CITIES).toContain(row.new?.city);
      }
    }
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    expect(rows[0]?.n).toBe(200 + 700 - 50);
  });

  it('is repeatable with a seed: the same changes on the same rows', async () => {
    const trace = async () => {
      const table = await freshTable('orders');
      await insertOrders(
        client,
        table,
        Array.from({ length: 30 }, () => randomOrder(seededRandom(3))),
      );
      const workload = new OrdersWorkload(table, { insert: 40, update: 40, delete: 20 }, seededRandom(9));
      for (let i = 0; i < 5; i++) await workload.runBatch(client, 20);
      return (await auditRows(client, table)).slice(30).map((r: AuditRow) => [r.op, (r.old ?? r.new)?.orderid, r.new?.amount, r.new?.city]);
    };
    const first = await trace();
    expect(first).toHaveLength(100);
    expect(await trace()).toEqual(first);
  });

  it('inserts instead of updating or deleting while the table has no rows to pick', async () => {
    const table = await freshTable('orders');
    const workload = new OrdersWorkload(table, { insert: 0, update: 50, delete: 50 }, seededRandom(5));
    expect(await workload.runBatch(client, 10)).toEqual({ inserts: 10, updates: 0, deletes: 0 });
    // Now there are ten rows: five updated and five deleted, all distinct.
    expect(await workload.runBatch(client, 10)).toEqual({ inserts: 0, updates: 5, deletes: 5 });
    expect(countOps(await auditRows(client, table))).toEqual({ inserts: 10, updates: 5, deletes: 5 });
  });
});

describe('the holding workload', () => {
  it('follows the change-history script per user: buy, change quantity, sell, buy, change quantity, change stock type', async () => {
    const table = await freshTable('holding');
    const { rows: identity } = await client.query<{ relreplident: string }>('SELECT relreplident FROM pg_class WHERE oid = $1::regclass', [table]);
    expect(identity[0]?.relreplident).toBe('f'); // REPLICA IDENTITY FULL, as the demo schema
    await client.query(`INSERT INTO ${table} VALUES (1000, 1, 'VFIAX', 10, now(), now())`); // the script's first row
    const workload = new HoldingWorkload(table, seededRandom(11));
    const totals = { inserts: 0, updates: 0, deletes: 0 };
    // Three episodes in batches of 4, so episodes cross batches.
    for (const n of [4, 4, 4, 4, 2]) {
      const c = await workload.runBatch(client, n);
      totals.inserts += c.inserts;
      totals.updates += c.updates;
      totals.deletes += c.deletes;
    }
    const audit = (await auditRows(client, table)).slice(1);
    expect(countOps(audit)).toEqual(totals);

    let i = 0;
    let nextId = 1001;
    const next = () => audit[i++] as AuditRow;
    for (let episode = 0; episode < 3; episode++) {
      const buy = next();
      expect(buy.op).toBe('INSERT');
      const user = buy.new?.user_id;
      expect(buy.new).toMatchObject({ holding_id: nextId++, user_id: user });
      expect(STOCKS).toContain(buy.new?.holding_stock);

      const quantity = next();
      expect(quantity.op).toBe('UPDATE');
      expect(quantity.old).toMatchObject({
        holding_id: buy.new?.holding_id,
        holding_quantity: buy.new?.holding_quantity,
        holding_stock: buy.new?.holding_stock,
      });
      expect(quantity.new?.holding_quantity).not.toBe(quantity.old?.holding_quantity);
      expect(quantity.new?.holding_stock).toBe(quantity.old?.holding_stock);

      // Sell: every holding of the user goes (the script's `delete ... where user_id = 3`).
      const sold: AuditRow[] = [];
      while (audit[i]?.op === 'DELETE') sold.push(next());
      expect(sold.map((r) => r.old?.user_id)).toEqual(sold.map(() => user));
      expect(sold.map((r) => r.old?.holding_id)).toContain(buy.new?.holding_id);

      const buyAgain = next();
      expect(buyAgain.op).toBe('INSERT');
      expect(buyAgain.new).toMatchObject({ holding_id: nextId++, user_id: user });

      const quantityAgain = next();
      expect(quantityAgain.op).toBe('UPDATE');
      expect(quantityAgain.old?.holding_id).toBe(buyAgain.new?.holding_id);
      expect(quantityAgain.new?.holding_quantity).not.toBe(quantityAgain.old?.holding_quantity);

      const stock = next();
      expect(stock.op).toBe('UPDATE');
      expect(stock.old).toMatchObject({ holding_id: buyAgain.new?.holding_id, holding_quantity: quantityAgain.new?.holding_quantity });
      expect(stock.new?.holding_stock).not.toBe(stock.old?.holding_stock);
      expect(STOCKS).toContain(stock.new?.holding_stock);
      expect(stock.new?.holding_quantity).toBe(stock.old?.holding_quantity);
    }
    expect(i).toBe(audit.length);
    expect(EPISODE).toHaveLength(6);
    expect(totals.inserts).toBe(6);
    expect(totals.updates).toBe(9);
  });
});

describe('runGenerator', () => {
  it('makes rate × duration changes and its summary is what the table saw', async () => {
    const table = await freshTable('orders');
    const run = runGenerator({ workload: 'orders', table, mix: DEFAULT_MIX, pg: settings, rate: 200, durationSeconds: 1, seed: 1 });
    const summary = await run.done;
    expect(summary.errors).toBe(0);
    expect(summary.changes + summary.dropped).toBe(200);
    expect(countOps(await auditRows(client, table))).toEqual({ inserts: summary.inserts, updates: summary.updates, deletes: summary.deletes });
    expect(run.counters).toMatchObject({ inserts: summary.inserts, updates: summary.updates, deletes: summary.deletes });
  });

  it('stops when the signal fires, with counters that match the table', async () => {
    const table = await freshTable('holding');
    const controller = new AbortController();
    const run = runGenerator({ workload: 'holding', table, mix: DEFAULT_MIX, pg: settings, rate: 500, seed: 2 }, { signal: controller.signal });
    await eventually('some changes', () => (run.counters.inserts > 0 ? true : undefined));
    controller.abort();
    const summary = await run.done;
    expect(summary.errors).toBe(0);
    expect(countOps(await auditRows(client, table))).toEqual({ inserts: summary.inserts, updates: summary.updates, deletes: summary.deletes });
  });

  it('refuses a missing table naming it and how to create it; --create-table creates it as the demo schema does', async () => {
    const schema = uniqueName('gen_missing');
    schemas.push(schema);
    // Seeded: a sell deletes every holding of its user, so an unseeded run whose second episode drew the
    // first one's user (1 in 100) saw 11 row changes for 10 statements.
    const options = { workload: 'holding' as const, table: `${schema}.holding`, mix: DEFAULT_MIX, pg: settings, rate: 100, durationSeconds: 0.1, seed: 4 };
    await expect(runGenerator(options).done).rejects.toThrow(
      new RegExp(`table ${schema}.holding does not exist .*001-demo-schema.sql .*npm run generate -- --create-table`),
    );
    const summary = await runGenerator({ ...options, createTable: true }).done;
    expect(summary.changes + summary.dropped).toBe(10);
    const { rows } = await client.query<{ relreplident: string }>('SELECT relreplident FROM pg_class WHERE oid = $1::regclass', [`${schema}.holding`]);
    expect(rows[0]?.relreplident).toBe('f');
  });

  it('refuses a rate or duration that is not a positive number', () => {
    const options = { workload: 'orders' as const, table: 'retail.orders_info', mix: DEFAULT_MIX, pg: settings };
    expect(() => runGenerator({ ...options, rate: 0 })).toThrow(/^rate: expected a number of changes per second > 0, got "0"/);
    expect(() => runGenerator({ ...options, rate: 10, durationSeconds: Number.NaN })).toThrow(/^durationSeconds: expected a number of seconds > 0/);
  });
});

describe('generateOnce', () => {
  it('makes n changes in transactions of at most 500', async () => {
    const table = await freshTable('orders');
    const config = { enabled: true, perRun: 1200, workload: 'orders' as const, table, mix: { insert: 1, update: 0, delete: 0 }, pg: settings };
    const summary = await generateOnce(config);
    expect(summary).toMatchObject({ inserts: 1200, updates: 0, deletes: 0, errors: 0 });
    const { rows } = await client.query<{ transactions: number }>(`SELECT count(DISTINCT xmin::text)::int AS transactions FROM ${table}`);
    expect(rows[0]?.transactions).toBe(3);
  });
});
