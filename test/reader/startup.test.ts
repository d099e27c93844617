/**
 * Start-up failures of the database connection, which must name the variables to fix (never a
 * secret's value). The broker's are in broker.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { readerEnv, spawnReader, startPasswordPostgres, startupError, uniqueName } from './helpers.js';
import type { PasswordPostgres } from './helpers.js';

describe('reader start-up: database credentials', () => {
  let server: PasswordPostgres;
  beforeAll(async () => {
    server = await startPasswordPostgres();
    // The server really takes its password (so a failure below is the password's, nothing else's).
    const ok = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' });
    await ok.connect();
    await ok.end();
  });
  afterAll(() => server?.stop());

  const envFor = (extra: Record<string, string>) =>
    readerEnv(uniqueName('rd_pw'), { PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.user, PGDATABASE: 'postgres', ...extra });

  test('wrong password: the failure names PGPASSWORD (and PGUSER, PGHOST), never the value', async () => {
    const wrong = 'definitely-not-the-password-7f3a';
    const child = spawnReader(envFor({ PGPASSWORD: wrong }));
    expect(await child.exited).toBe(1);
    const failed = child.lines.find((l) => l.msg === 'reader failed');
    expect(failed).toMatchObject({ code: 'PG_AUTH_FAILED' });
    expect(failed?.error).toEqual(expect.stringContaining('PGPASSWORD'));
    expect(failed?.error).toEqual(expect.stringContaining(`PGUSER=${server.user}`));
    expect(failed?.error).toEqual(expect.stringContaining(`PGHOST=${server.host}`));
    expect(JSON.stringify(child.lines)).not.toContain(wrong);
    expect(JSON.stringify(child.lines)).not.toContain(server.password);
  });

  test('no password where the server asks for one: the failure says PGPASSWORD is not set', async () => {
    const err = await startupError(envFor({}));
    expect(err.code).toBe('PG_AUTH_FAILED');
    expect(err.message).toMatch(/PGPASSWORD is not set/);
    expect(err.message).toContain(`PGUSER=${server.user}`);
  });
});
