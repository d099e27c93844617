/** The orders generator timer against the real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { InvocationContext, type Timer } from '@azure/functions';
import pg from 'pg';
import { ordersGeneratorHandler } from '../../src/functions/host/ordersGeneratorHandler.js';
import { createTableSql } from '../../src/shared/generator/generator.js';
import { CITIES } from '../../src/shared/generator/orders.js';
import { addAudit, auditRows, countOps } from '../shared/generator/audit.js';
import { serviceEnv, uniqueName } from '../helpers/services.js';

const schema = uniqueName('orders');
const table = `${schema}.orders_info`;
const holdingTable = `${schema}.holding`;
const { pg: pgEnv } = serviceEnv();
const connectionString = `postgresql://${pgEnv.user}@${pgEnv.host}:${pgEnv.port}/${pgEnv.database}`;
const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };
const client = new pg.Client({ connectionString });

function context(): { context: InvocationContext; lines: string[] } {
  const lines: string[] = [];
  return { context: new InvocationContext({ logHandler: (level, ...args) => void lines.push(`${level}: ${args.map(String).join(' ')}`) }), lines };
}

beforeAll(async () => {
  await client.connect();
  await client.query(createTableSql('orders', table));
  await client.query(createTableSql('holding', holdingTable));
  await addAudit(client, table);
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('ordersGenerator', () => {
  it('does nothing when disabled (the default)', async () => {
    expect(await ordersGeneratorHandler({})(timer, context().context)).toBeUndefined();
  });

  it('skips a past-due run: one log line, no change, not even a look at the settings', async () => {
    const before = (await auditRows(client, table)).length;
    const { context: ctx, lines } = context();
    const env = { ORDERS_GENERATOR_ENABLED: 'true', ORDERS_PER_RUN: 'not a number', ORDERS_TABLE: table, ORDERS_PG_CONNECTION_STRING: connectionString };
    expect(await ordersGeneratorHandler(env)({ ...timer, isPastDue: true }, ctx)).toBeUndefined();
    expect(lines).toEqual(['information: ordersGenerator: timer past due, run skipped']);
    expect(await auditRows(client, table)).toHaveLength(before);
  });

  it('makes ORDERS_PER_RUN changes per run in ORDERS_GENERATOR_MIX on the configured table', async () => {
    const env = {
      ORDERS_GENERATOR_ENABLED: 'true',
      ORDERS_PER_RUN: '40',
      ORDERS_GENERATOR_MIX: '100:0:0',
      ORDERS_TABLE: table,
      ORDERS_PG_CONNECTION_STRING: connectionString,
    };
    const { context: ctx, lines } = context();
    expect(await ordersGeneratorHandler(env)(timer, ctx)).toMatchObject({ inserts: 40, updates: 0, deletes: 0 });
    expect(lines).toEqual([`information: ordersGenerator: orders → ${table}: 40 inserts, 0 updates, 0 deletes`]);
    // The default mix (70:25:5) on a table that now has rows: every change kind.
    const summary = await ordersGeneratorHandler({ ...env, ORDERS_GENERATOR_MIX: '' })(timer, context().context);
    expect(summary).toMatchObject({ inserts: 28, updates: 10, deletes: 2 });
    const audit = await auditRows(client, table);
    expect(countOps(audit)).toEqual({ inserts: 68, updates: 10, deletes: 2 });
    for (const row of audit) if (row.new !== null) expect(CITIES).toContain(row.new.city);
  });

  it('runs the holding workload with ORDERS_GENERATOR_WORKLOAD=holding on ORDERS_HOLDING_TABLE, and refuses a mix for it', async () => {
    const env = {
      ORDERS_GENERATOR_ENABLED: 'true',
      ORDERS_GENERATOR_WORKLOAD: 'holding',
      ORDERS_PER_RUN: '6',
      ORDERS_HOLDING_TABLE: holdingTable,
      ORDERS_PG_CONNECTION_STRING: connectionString,
    };
    expect(await ordersGeneratorHandler(env)(timer, context().context)).toMatchObject({ inserts: 2, updates: 3, deletes: 1 });
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${holdingTable}`);
    expect(rows[0]?.n).toBe(1); // bought, sold, bought again
    await expect(ordersGeneratorHandler({ ...env, ORDERS_GENERATOR_MIX: '70:25:5' })(timer, context().context)).rejects.toThrow(
      /^ORDERS_GENERATOR_MIX: expected no mix with ORDERS_GENERATOR_WORKLOAD=holding .*; unset it, got "70:25:5"/,
    );
    await expect(ordersGeneratorHandler({ ...env, ORDERS_GENERATOR_WORKLOAD: 'trades' })(timer, context().context)).rejects.toThrow(
      /^ORDERS_GENERATOR_WORKLOAD: expected one of orders, holding, got "trades"/,
    );
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
    await expect(ordersGeneratorHandler(env)(timer, context().context)).rejects.toThrow(/does not offer TLS but PGSSLMODE=require requires it/);
    const viaUrl = { ORDERS_GENERATOR_ENABLED: 'true', ORDERS_TABLE: table, ORDERS_PG_CONNECTION_STRING: `${connectionString}?sslmode=disable` };
    expect(await ordersGeneratorHandler(viaUrl)(timer, context().context)).toMatchObject({ changes: 10 });
  });
});
