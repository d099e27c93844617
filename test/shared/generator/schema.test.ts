/**
 * deploy/local/postgres-init/001-demo-schema.sql is the one schema source of the demo tables; the
 * generator's CREATE TABLE (for --create-table and the tests) must build the same tables. Both are
 * applied to fresh schemas of the real PostgreSQL and their catalogues compared.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { createTableSql } from '../../../src/shared/generator/generator.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';

const { pg: pgEnv } = serviceEnv();
const client = new pg.Client({ host: pgEnv.host, port: pgEnv.port, user: pgEnv.user, database: pgEnv.database });
const demoSchema = readFileSync(new URL('../../../deploy/local/postgres-init/001-demo-schema.sql', import.meta.url), 'utf8');
const schemas: string[] = [];

/** The file's statements about `schema.table` (its CREATE TABLE and ALTER TABLE), moved to `into`. */
function demoTableSql(table: string, into: string): string {
  const escaped = table.replace('.', '\\.');
  const statements = demoSchema.match(new RegExp(`(CREATE TABLE IF NOT EXISTS|ALTER TABLE) ${escaped}\\b[^;]*;`, 'g')) ?? [];
  expect(statements.length).toBeGreaterThan(0);
  return statements
    .filter((s) => !/OWNER TO/.test(s))
    .map((s) => s.replace(table, `${into}.${table.split('.')[1]}`))
    .join('\n');
}

async function catalogue(table: string): Promise<{ columns: Record<string, unknown>[]; relreplident?: string; primary_key?: string[] }> {
  const { rows: columns } = await client.query<Record<string, unknown>>(
    `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default IS NOT NULL AS has_default
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    table.split('.'),
  );
  const { rows: rel } = await client.query<{ relreplident: string; primary_key: string[] }>(
    `SELECT c.relreplident, (SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = c.oid AND i.indisprimary) AS primary_key
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [table],
  );
  return { columns, ...rel[0] };
}

beforeAll(async () => {
  await client.connect();
});

afterAll(async () => {
  for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('the generator creates the tables of the demo schema', () => {
  it.each([
    ['orders' as const, 'retail.orders_info'],
    ['holding' as const, 'bank.holding'],
  ])('%s: %s', async (workload, table) => {
    const [fromFile, fromGenerator] = [uniqueName('schema_file'), uniqueName('schema_gen')];
    schemas.push(fromFile, fromGenerator);
    const name = table.split('.')[1];
    await client.query(`CREATE SCHEMA ${fromFile}; ${demoTableSql(table, fromFile)}`);
    await client.query(createTableSql(workload, `${fromGenerator}.${name}`));
    const expected = await catalogue(`${fromFile}.${name}`);
    expect(expected.columns.length).toBeGreaterThan(0);
    expect(await catalogue(`${fromGenerator}.${name}`)).toEqual(expected);
  });
});
