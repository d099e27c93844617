/**
 * PGSSLMODE with libpq's meaning, against a real PostgreSQL with `ssl = on` and a CA made here
 * (openssl): the regression test of "TLS is not what PGSSLMODE says" (verify-full connected with
 * `rejectUnauthorized: false`, and prefer never tried TLS).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { ConfigError } from '../../../src/shared/core/errors.js';
import { connectPg, PgConnectError, pgClientOptions, pgEnvFromUrl, pgSettingsFromEnv, type PgSettings, type PgSsl } from '../../../src/shared/core/postgres.js';
import { serviceEnv } from '../../helpers/services.js';
import { startTlsPostgres, type TlsPostgres } from '../../helpers/tlsPostgres.js';

let tls: TlsPostgres;
let ca = '';
let wrongCa = '';

/** The shared test server, which runs without TLS. */
function plainServer(): Record<string, string> {
  const { pg: p } = serviceEnv();
  return { PGHOST: p.host, PGPORT: String(p.port), PGUSER: p.user, PGDATABASE: p.database };
}

function settings(env: Record<string, string>): PgSettings {
  return pgSettingsFromEnv({ PGHOST: '127.0.0.1', PGPORT: String(tls.port), PGUSER: 'postgres', PGDATABASE: 'postgres', ...env });
}

/** Connects as the settings say and reports whether the session is encrypted (pg_stat_ssl). */
async function sessionSsl(s: PgSettings): Promise<{ ssl: boolean; used: PgSsl }> {
  const { connection, ssl } = await connectPg(s, async (choice) => {
    const client = new pg.Client({ ...pgClientOptions(s, choice, 'pg-cdc-tls-test'), connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  });
  try {
    const { rows } = await connection.query<{ ssl: boolean }>('SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_catalog.pg_backend_pid()');
    return { ssl: rows[0]?.ssl === true, used: ssl };
  } finally {
    await connection.end();
  }
}

async function failure(s: PgSettings): Promise<PgConnectError> {
  try {
    await sessionSsl(s);
  } catch (error) {
    if (error instanceof PgConnectError) return error;
    throw error;
  }
  throw new Error('expected the connection to be refused');
}

beforeAll(async () => {
  tls = await startTlsPostgres();
  ca = tls.ca;
  wrongCa = tls.wrongCa;
});

afterAll(async () => {
  await tls?.stop();
});

describe('PGSSLMODE means what libpq says (TLS is not what PGSSLMODE says)', () => {
  it('verify-full with the right CA connects, encrypted', async () => {
    expect((await sessionSsl(settings({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca }))).ssl).toBe(true);
  });

  it('verify-full with a wrong CA refuses, naming PGSSLROOTCERT', async () => {
    const error = await failure(settings({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: wrongCa }));
    expect(error.variable).toBe('PGSSLROOTCERT');
    expect(error.message).toMatch(/TLS certificate check failed \(PGSSLMODE=verify-full\)/);
    expect(error.message).toMatch(/set PGSSLROOTCERT to the CA that signed the server's certificate/);
  });

  it('verify-full with a host name the certificate does not name refuses; verify-ca accepts it', async () => {
    // The server also listens on 127.0.0.2, but its certificate names 127.0.0.1 only.
    const error = await failure(settings({ PGHOST: '127.0.0.2', PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca }));
    expect(error.variable).toBe('PGSSLROOTCERT');
    expect(error.message).toMatch(/The certificate is not for 127\.0\.0\.2/);
    expect((await sessionSsl(settings({ PGHOST: '127.0.0.2', PGSSLMODE: 'verify-ca', PGSSLROOTCERT: ca }))).ssl).toBe(true);
  });

  it('verify-ca checks the chain', async () => {
    expect((await failure(settings({ PGSSLMODE: 'verify-ca', PGSSLROOTCERT: wrongCa }))).variable).toBe('PGSSLROOTCERT');
  });

  it('require encrypts without checking the certificate; with a root CA it checks the chain, as libpq', async () => {
    expect(await sessionSsl(settings({ PGSSLMODE: 'require' }))).toMatchObject({ ssl: true, used: { rejectUnauthorized: false } });
    expect((await failure(settings({ PGSSLMODE: 'require', PGSSLROOTCERT: wrongCa }))).variable).toBe('PGSSLROOTCERT');
  });

  it('prefer uses TLS when the server offers it, and falls back to plain when it does not', async () => {
    expect((await sessionSsl(settings({}))).ssl).toBe(true);
    // The shared test server runs without TLS.
    const fallback = pgSettingsFromEnv(plainServer());
    expect(await sessionSsl(fallback)).toEqual({ ssl: false, used: false });
  });

  it('require against a server without TLS refuses, naming PGSSLMODE', async () => {
    const s = pgSettingsFromEnv({ ...plainServer(), PGSSLMODE: 'require' });
    expect((await failure(s)).variable).toBe('PGSSLMODE');
  });

  it('disable never encrypts; allow encrypts only when the server insists', async () => {
    expect(await sessionSsl(settings({ PGSSLMODE: 'disable' }))).toEqual({ ssl: false, used: false });
    expect(await sessionSsl(settings({ PGSSLMODE: 'allow' }))).toEqual({ ssl: false, used: false });
  });

  it('verify-full without any root CA is a configuration error naming PGSSLROOTCERT', () => {
    const env = { PGSSLMODE: 'verify-full' };
    expect(() => pgSettingsFromEnv(env)).toThrow(ConfigError);
    expect(() => pgSettingsFromEnv(env)).toThrow(/^PGSSLROOTCERT: expected the root CA file/);
    expect(pgSettingsFromEnv({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: 'system' }).rootCert).toBe('system');
  });

  it('reads a postgres:// URL by the same rules, never echoing its password', () => {
    expect(pgEnvFromUrl('postgresql://u%40x:p%3Bw@db.example.com:6432/orders?sslmode=verify-full&sslrootcert=system', 'URL')).toEqual({
      PGHOST: 'db.example.com',
      PGPORT: '6432',
      PGUSER: 'u@x',
      PGPASSWORD: 'p;w',
      PGDATABASE: 'orders',
      PGSSLMODE: 'verify-full',
      PGSSLROOTCERT: 'system',
    });
    expect(() => pgEnvFromUrl('postgres://u:hunter2@h/d?connect_timeout=5', 'URL')).toThrow(/^URL: expected only the parameters sslmode/);
    expect(() => pgEnvFromUrl('not a url hunter2', 'URL')).toThrow(/got \(redacted\)/);
  });
});
