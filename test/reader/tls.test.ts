/**
 * The reader's PostgreSQL connections follow PGSSLMODE with libpq's meaning (regression test of "TLS
 * is not what PGSSLMODE says": verify-full connected with certificate checks off). Against a real
 * PostgreSQL with `ssl = on` and a CA made in the test.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { StartupError } from '../../src/reader/errors.js';
import { startTlsPostgres, type TlsPostgres } from '../helpers/tlsPostgres.js';
import { cleanup, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';

let tls: TlsPostgres;
let admin: pg.Client;

beforeAll(async () => {
  tls = await startTlsPostgres();
  admin = new pg.Client({ host: '127.0.0.1', port: tls.port, user: 'postgres', database: 'postgres', ssl: false });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await tls?.stop();
});

function tlsEnv(name: string, extra: Record<string, string>): Record<string, string> {
  return readerEnv(name, { PGHOST: '127.0.0.1', PGPORT: String(tls.port), PGUSER: 'postgres', PGDATABASE: 'postgres', CDC_SNAPSHOT_MODE: 'never', ...extra });
}

describe('reader: PGSSLMODE on every PostgreSQL connection', () => {
  test('verify-full with the right CA streams, and every reader session (walsender included) is encrypted', async () => {
    const name = uniqueName('rd_tls');
    await admin.query(`CREATE TABLE ${name} (id int PRIMARY KEY, v text)`);
    const r = await startReader(tlsEnv(name, { CDC_TABLES: `public.${name}`, PGSSLMODE: 'verify-full', PGSSLROOTCERT: tls.ca }));
    const topic = await TopicCollector.start([`${name}_events`]);
    try {
      await admin.query(`INSERT INTO ${name} VALUES (1, 'a')`);
      await topic.waitFor('the insert on the topic', (events) => events.some((e) => e.op === 'c'));
      const { rows } = await admin.query<{ backend_type: string; ssl: boolean }>(
        `SELECT a.backend_type, s.ssl FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_stat_ssl s USING (pid)
          WHERE a.application_name = 'pg-cdc-reader'`,
      );
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows.some((row) => row.backend_type === 'walsender')).toBe(true);
      expect(rows.every((row) => row.ssl)).toBe(true);
    } finally {
      await topic.close();
      await r.stop();
      // The walsender can outlive the reader's exit by a moment (CI failed once on "slot … is active"): wait for it.
      await cleanup(admin, name);
      await admin.query(`DROP TABLE ${name}`);
    }
  });

  test('verify-full with a wrong CA refuses at start-up with PG_TLS_FAILED naming PGSSLROOTCERT, before any slot exists', async () => {
    const name = uniqueName('rd_tlsbad');
    const r = await startReader(tlsEnv(name, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: tls.wrongCa }), 'none');
    const err = await r.run.then(
      () => new Error('reader started'),
      (e: unknown) => e,
    );
    await r.stop();
    expect(err).toBeInstanceOf(StartupError);
    expect(err).toMatchObject({ code: 'PG_TLS_FAILED' });
    expect((err as Error).message).toMatch(/TLS certificate check failed \(PGSSLMODE=verify-full\).*PGSSLROOTCERT/s);
    const slots = await admin.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [name]);
    expect(slots.rowCount).toBe(0);
  });
});
