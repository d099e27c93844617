/**
 * The orders workload of the Kafka Connect → ADX demo on `retail.orders_info` (orderid SERIAL, custid,
 * amount, city, purchase_time as 'YYYY-MM-DD HH:MM:SS' text): random orders inserted as the demo's
 * generator does, plus updates of amount and city and deletes of existing orders, in a configurable mix.
 */
import type pg from 'pg';
import { MixDealer, type Mix } from './mix.js';
import { pick, randomInt, type Random } from './random.js';
import type { ChangeCounts, Workload } from './workload.js';

export const CITIES = [
  'New York',
  'Los Angeles',
  'Chicago',
  'Houston',
  'Phoenix',
  'Philadelphia',
  'San Antonio',
  'San Diego',
  'Dallas',
  'Austin',
  'Seattle',
  'Denver',
] as const;

export interface Order {
  custid: number;
  amount: number;
  city: string;
  purchase_time: string;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYY-MM-DD HH:MM:SS` (UTC), the generator's purchase_time format. */
export function purchaseTime(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

export function randomOrder(random: Random = Math.random, now: Date = new Date()): Order {
  return {
    custid: randomInt(random, 1, 1000),
    amount: randomInt(random, 1, 500),
    city: pick(random, CITIES),
    purchase_time: purchaseTime(now),
  };
}

/** The table as deploy/local/postgres-init/001-demo-schema.sql declares it (test/shared/generator/schema.test.ts holds them equal). */
export function createOrdersTableSql(table: string): string {
  const [schema] = table.split('.');
  return (
    `CREATE SCHEMA IF NOT EXISTS ${schema}; ` +
    `CREATE TABLE IF NOT EXISTS ${table} (orderid SERIAL NOT NULL PRIMARY KEY, custid INTEGER NOT NULL, amount INTEGER NOT NULL, city VARCHAR(255) NOT NULL, purchase_time VARCHAR(20) NOT NULL)`
  );
}

/** Inserts `orders` in one statement; returns the new order ids. */
export async function insertOrders(client: pg.ClientBase, table: string, orders: readonly Order[]): Promise<number[]> {
  if (orders.length === 0) return [];
  const result = await client.query<{ orderid: number }>(
    `INSERT INTO ${table} (custid, amount, city, purchase_time)
     SELECT * FROM unnest($1::int[], $2::int[], $3::varchar[], $4::varchar[]) RETURNING orderid`,
    [orders.map((o) => o.custid), orders.map((o) => o.amount), orders.map((o) => o.city), orders.map((o) => o.purchase_time)],
  );
  return result.rows.map((r) => r.orderid);
}

/**
 * `probes.length` distinct existing order ids (fewer only when the table has fewer rows), one per
 * probe: the first orderid at or after a random point between the table's smallest and largest id. Every probe is one primary-key index
 * lookup (as are min and max), so picking stays cheap however big the table is, unlike
 * `ORDER BY random()` (a full scan) or `TABLESAMPLE` (whole pages, and often none of a small table).
 * Ids after a gap are picked a little more often; that does not matter for a demo workload.
 */
export async function pickExistingOrders(client: pg.ClientBase, table: string, probes: readonly number[]): Promise<number[]> {
  if (probes.length === 0) return [];
  const result = await client.query<{ orderid: number }>(
    `SELECT hit.orderid
       FROM (SELECT min(orderid) AS lo, max(orderid) AS hi FROM ${table}) AS bounds
       CROSS JOIN unnest($1::float8[]) WITH ORDINALITY AS probe(x, i)
       CROSS JOIN LATERAL (
         SELECT orderid FROM ${table} WHERE orderid >= bounds.lo + floor(probe.x * (bounds.hi - bounds.lo + 1))::int ORDER BY orderid LIMIT 1
       ) AS hit
      GROUP BY hit.orderid
      ORDER BY min(probe.i)`,
    [probes],
  );
  const ids = result.rows.map((r) => r.orderid);
  if (ids.length < probes.length) {
    // Two probes hit the same order: top up with the lowest ids not picked yet (an index scan that
    // skips only the few picked), so a table with enough rows always yields as many as asked.
    const more = await client.query<{ orderid: number }>(`SELECT orderid FROM ${table} WHERE NOT (orderid = ANY($1::int[])) ORDER BY orderid LIMIT $2`, [
      ids,
      probes.length - ids.length,
    ]);
    ids.push(...more.rows.map((r) => r.orderid));
  }
  return ids;
}

/**
 * Each batch: the mix deals its kinds, updates and deletes pick distinct existing orders (no row is
 * both updated and deleted in one batch), and what could not find a row — an empty table, or a table
 * smaller than the batch — is inserted instead. One transaction of at most four statements per batch.
 */
export class OrdersWorkload implements Workload {
  readonly name = 'orders';
  readonly #dealer: MixDealer;

  constructor(
    readonly table: string,
    mix: Mix,
    private readonly random: Random = Math.random,
  ) {
    this.#dealer = new MixDealer(mix);
  }

  async runBatch(client: pg.ClientBase, n: number): Promise<ChangeCounts> {
    const planned = this.#dealer.deal(n);
    const now = new Date();
    await client.query('BEGIN');
    try {
      const probes = Array.from({ length: planned.update + planned.delete }, () => this.random());
      const targets = await pickExistingOrders(client, this.table, probes);
      const deleteIds = targets.slice(0, planned.delete);
      const updateIds = targets.slice(deleteIds.length, deleteIds.length + planned.update);
      const inserts = n - deleteIds.length - updateIds.length;
      const orders = Array.from({ length: inserts }, () => randomOrder(this.random, now));
      const updates = updateIds.map((orderid) => ({ orderid, amount: randomInt(this.random, 1, 500), city: pick(this.random, CITIES) }));
      const inserted = (await insertOrders(client, this.table, orders)).length;
      let updated = 0;
      if (updates.length > 0) {
        const result = await client.query(
          `UPDATE ${this.table} AS o SET amount = v.amount, city = v.city
             FROM unnest($1::int[], $2::int[], $3::varchar[]) AS v(orderid, amount, city) WHERE o.orderid = v.orderid`,
          [updates.map((u) => u.orderid), updates.map((u) => u.amount), updates.map((u) => u.city)],
        );
        updated = result.rowCount ?? 0;
      }
      let deleted = 0;
      if (deleteIds.length > 0) {
        const result = await client.query(`DELETE FROM ${this.table} WHERE orderid = ANY($1::int[])`, [deleteIds]);
        deleted = result.rowCount ?? 0;
      }
      await client.query('COMMIT');
      return { inserts: inserted, updates: updated, deletes: deleted };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  reset(): void {
    // Nothing is remembered between batches: every batch reads the table it changes.
  }
}
