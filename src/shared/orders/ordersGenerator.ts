/**
 * The orders generator of the Kafka Connect → ADX demo: random orders inserted into `retail.orders_info`
 * (orderid SERIAL, custid, amount, city, purchase_time as 'YYYY-MM-DD HH:MM:SS' text), so the pipeline
 * has something to carry. Off unless `ORDERS_GENERATOR_ENABLED=true`.
 */
import pg from 'pg';
import { getBool, getInt, getOptionalString, getString, type Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';
import { connectPg, pgClientOptions, pgEnvFromUrl, pgSettingsFromEnv, type PgSettings } from '../core/postgres.js';

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

export interface OrdersGeneratorConfig {
  enabled: boolean;
  /** Orders per timer run. */
  perRun: number;
  /** Target table, `schema.table`. */
  table: string;
  /** Where to connect: `ORDERS_PG_CONNECTION_STRING` (a postgres:// URL), else PGHOST, PGSSLMODE, ... as the reader. */
  pg: PgSettings;
}

export function ordersGeneratorConfigFromEnv(env: Env): OrdersGeneratorConfig {
  const table = getString(env, 'ORDERS_TABLE', 'retail.orders_info');
  if (!/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/.test(table)) throw new ConfigError('ORDERS_TABLE', 'schema.table in lower case', table);
  const connectionString = getOptionalString(env, 'ORDERS_PG_CONNECTION_STRING');
  return {
    enabled: getBool(env, 'ORDERS_GENERATOR_ENABLED', false),
    perRun: getInt(env, 'ORDERS_PER_RUN', 10, { min: 1, max: 10_000 }),
    table,
    pg: pgSettingsFromEnv(connectionString === undefined ? env : pgEnvFromUrl(connectionString, 'ORDERS_PG_CONNECTION_STRING')),
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYY-MM-DD HH:MM:SS` (UTC), the generator's purchase_time format. */
export function purchaseTime(date: Date): string {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

export function randomOrder(random: () => number = Math.random, now: Date = new Date()): Order {
  return {
    custid: 1 + Math.floor(random() * 1000),
    amount: 1 + Math.floor(random() * 500),
    city: CITIES[Math.floor(random() * CITIES.length)] ?? 'Austin',
    purchase_time: purchaseTime(now),
  };
}

export function createTableSql(table: string): string {
  const [schema] = table.split('.');
  return (
    `CREATE SCHEMA IF NOT EXISTS ${schema}; ` +
    `CREATE TABLE IF NOT EXISTS ${table} (orderid SERIAL NOT NULL PRIMARY KEY, custid INTEGER NOT NULL, amount INTEGER NOT NULL, city VARCHAR(255) NOT NULL, purchase_time VARCHAR(20) NOT NULL)`
  );
}

/** Inserts `orders` in one statement; returns the new order ids. */
export async function insertOrders(client: pg.ClientBase, table: string, orders: readonly Order[]): Promise<number[]> {
  const result = await client.query<{ orderid: number }>(
    `INSERT INTO ${table} (custid, amount, city, purchase_time)
     SELECT * FROM unnest($1::int[], $2::int[], $3::varchar[], $4::varchar[]) RETURNING orderid`,
    [orders.map((o) => o.custid), orders.map((o) => o.amount), orders.map((o) => o.city), orders.map((o) => o.purchase_time)],
  );
  return result.rows.map((r) => r.orderid);
}

/** One timer run: connect, insert `perRun` random orders, disconnect. */
export async function generateOrders(config: OrdersGeneratorConfig, random?: () => number): Promise<number[]> {
  const { connection: client } = await connectPg(config.pg, async (ssl) => {
    const candidate = new pg.Client(pgClientOptions(config.pg, ssl, 'pg-cdc-orders-generator'));
    try {
      await candidate.connect();
      return candidate;
    } catch (error) {
      await candidate.end().catch(() => undefined);
      throw error;
    }
  });
  try {
    const now = new Date();
    return await insertOrders(
      client,
      config.table,
      Array.from({ length: config.perRun }, () => randomOrder(random, now)),
    );
  } finally {
    await client.end();
  }
}
