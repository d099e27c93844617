/** The orders generator timer against the real PostgreSQL. */
import { afterAll, describe, expect, it } from '@jest/globals';
import { InvocationContext, type Timer } from '@azure/functions';
import pg from 'pg';
import { ordersGeneratorHandler } from '../../src/functions/host/ordersGeneratorHandler.js';
import { CITIES, createTableSql, purchaseTime, randomOrder } from '../../src/shared/orders/ordersGenerator.js';
import { serviceEnv, uniqueName } from '../helpers/services.js';

const schema = uniqueName('orders');
const table = `${schema}.orders_info`;
const { pg: pgEnv } = serviceEnv();
const connectionString = `postgresql://${pgEnv.user}@${pgEnv.host}:${pgEnv.port}/${pgEnv.database}`;
const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
const client = new pg.Client({ connectionString });

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('ordersGenerator', () => {
  it('makes orders shaped like the generator of the Kafka Connect demo', () => {
    const order = randomOrder(() => 0.5, new Date(Date.UTC(2020, 9, 9, 7, 23, 10)));
    expect(order).toEqual({ custid: 501, amount: 251, city: CITIES[6], purchase_time: '2020-10-09 07:23:10' });
    expect(purchaseTime(new Date(Date.UTC(2021, 0, 2, 3, 4, 5)))).toBe('2021-01-02 03:04:05');
  });

  it('does nothing when disabled (the default)', async () => {
    const ids = await ordersGeneratorHandler({})(timer, new InvocationContext({ logHandler: () => undefined }));
    expect(ids).toEqual([]);
  });

  it('inserts ORDERS_PER_RUN orders per run into the configured table', async () => {
    await client.connect();
    await client.query(createTableSql(table));
    const env = { ORDERS_GENERATOR_ENABLED: 'true', ORDERS_PER_RUN: '25', ORDERS_TABLE: table, ORDERS_PG_CONNECTION_STRING: connectionString };
    const ids = await ordersGeneratorHandler(env)(timer, new InvocationContext({ logHandler: () => undefined }));
    expect(ids).toHaveLength(25);
    const { rows } = await client.query<{ n: string; cities: string[] }>(`SELECT count(*) AS n, array_agg(DISTINCT city) AS cities FROM ${table}`);
    expect(rows[0]?.n).toBe('25');
    for (const city of rows[0]?.cities ?? []) expect(CITIES).toContain(city);
  });

  it('connects with the same PG* settings as the reader: PGSSLMODE=require against a server without TLS is refused, naming PGSSLMODE', async () => {
    const env = {
      ORDERS_GENERATOR_ENABLED: 'true',
      ORDERS_TABLE: table,
      PGHOST: pgEnv.host,
      PGPORT: String(pgEnv.port),
      PGUSER: pgEnv.user,
      PGDATABASE: pgEnv.database,
      PGSSLMODE: 'require',
    };
    await expect(ordersGeneratorHandler(env)(timer, new InvocationContext({ logHandler: () => undefined }))).rejects.toThrow(
      /does not offer TLS but PGSSLMODE=require requires it/,
    );
    const viaUrl = { ORDERS_GENERATOR_ENABLED: 'true', ORDERS_TABLE: table, ORDERS_PG_CONNECTION_STRING: `${connectionString}?sslmode=disable` };
    expect(await ordersGeneratorHandler(viaUrl)(timer, new InvocationContext({ logHandler: () => undefined }))).toHaveLength(10);
  });
});
