import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { checkWalLevel } from '../../src/reader/replication/checks.js';
import type { StartupError } from '../../src/reader/errors.js';
import { cleanup, pgClient, readerEnv, startReader, startupError, uniqueName } from './helpers.js';

describe('reader: start-up checks', () => {
  const name = uniqueName('rd_chk');
  const schema = `${name}_s`;
  const noRepl = `${name}_norepl`;
  const noSelect = `${name}_nosel`;
  let c: pg.Client;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.ok (id int PRIMARY KEY);
      CREATE TABLE ${schema}.nokey (v int);
      CREATE TABLE ${schema}.nothing (id int PRIMARY KEY); ALTER TABLE ${schema}.nothing REPLICA IDENTITY NOTHING;
      CREATE TABLE ${schema}.deferred (id int PRIMARY KEY DEFERRABLE);
      CREATE ROLE ${noRepl} LOGIN; CREATE ROLE ${noSelect} LOGIN REPLICATION;
      GRANT USAGE ON SCHEMA ${schema} TO ${noSelect}, ${noRepl};`);
  });
  afterAll(async () => {
    await cleanup(c, name, [schema]);
    await c.query(`DROP ROLE IF EXISTS ${noRepl}; DROP ROLE IF EXISTS ${noSelect}`);
    await c.end();
  });

  test('wal_level not logical: says how to fix it on Azure Flexible Server and plain PostgreSQL', async () => {
    const fake = { query: () => Promise.resolve({ rows: [{ wal_level: 'replica' }] }) } as unknown as pg.Client;
    const err = await checkWalLevel(fake).then(
      () => null,
      (e: unknown) => e as StartupError,
    );
    expect(err?.code).toBe('WAL_LEVEL_NOT_LOGICAL');
    expect(err?.message).toMatch(/wal_level is 'replica'/);
    expect(err?.message).toMatch(/Azure Database for PostgreSQL Flexible Server.*wal_level.*LOGICAL.*restart/s);
    expect(err?.message).toMatch(/ALTER SYSTEM SET wal_level = 'logical'/);
    await expect(checkWalLevel(c)).resolves.toBeUndefined(); // the test server is logical
  });

  test('missing REPLICATION privilege', async () => {
    const err = await startupError(readerEnv(name, { PGUSER: noRepl, CDC_TABLES: `${schema}.ok` }));
    expect(err.code).toBe('MISSING_REPLICATION_PRIVILEGE');
    expect(err.message).toContain(`ALTER ROLE "${noRepl}" WITH REPLICATION`);
  });

  test('missing SELECT on a table', async () => {
    const err = await startupError(readerEnv(name, { PGUSER: noSelect, CDC_TABLES: `${schema}.ok` }));
    expect(err.code).toBe('MISSING_SELECT_PRIVILEGE');
    expect(err.message).toContain(`GRANT SELECT ON "${schema}"."ok"`);
  });

  test('a table without a primary key or replica identity', async () => {
    const a = await startupError(readerEnv(name, { CDC_TABLES: `${schema}.nokey` }));
    expect(a.code).toBe('NO_PRIMARY_KEY_OR_REPLICA_IDENTITY');
    expect(a.message).toMatch(/no primary key.*ADD PRIMARY KEY.*REPLICA IDENTITY FULL/s);
    const b = await startupError(readerEnv(name, { CDC_TABLES: `${schema}.nothing` }));
    expect(b.message).toMatch(/REPLICA IDENTITY NOTHING/);
  });

  test('a DEFERRABLE primary key with the default replica identity is refused before it breaks the application', async () => {
    const err = await startupError(readerEnv(name, { CDC_TABLES: `${schema}.deferred` }));
    expect(err.code).toBe('NO_PRIMARY_KEY_OR_REPLICA_IDENTITY');
    expect(err.message).toMatch(/DEFERRABLE primary key.*REPLICA IDENTITY FULL/s);
    // Nothing was published, so the application's own writes still work.
    await c.query(`INSERT INTO ${schema}.deferred VALUES (1); UPDATE ${schema}.deferred SET id = 2; DELETE FROM ${schema}.deferred`);
  });

  test('a table that does not exist', async () => {
    const err = await startupError(readerEnv(name, { CDC_TABLES: `${schema}.missing` }));
    expect(err.code).toBe('TABLE_NOT_FOUND');
  });

  test('a slot owned by another active process', async () => {
    const env = readerEnv(name, { CDC_TABLES: `${schema}.ok`, CDC_SNAPSHOT_MODE: 'never' });
    const first = await startReader(env);
    try {
      const err = await startupError(env);
      expect(err.code).toBe('SLOT_IN_USE');
      expect(err.message).toMatch(/in use by another process \(PID \d+\).*CDC_SLOT/s);
    } finally {
      await first.stop();
    }
  });
});
