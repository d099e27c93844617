/**
 * PG_AUTH=entra against a real PostgreSQL with TLS whose postgres role's password is the token the fake
 * credential hands out: the password function is what authenticates, each new connection asks the
 * credential again, and a refused or missing token is named at start-up without printing it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ConfigError } from '../../../src/shared/core/errors.js';
import type { TokenSource } from '../../../src/shared/core/kafka.js';
import {
  connectPg,
  PG_ENTRA_SCOPE,
  PgConnectError,
  pgClientOptions,
  pgSettingsFromEnv,
  sslAttempts,
  type PgSettings,
} from '../../../src/shared/core/postgres.js';
import { startTlsPostgres, type TlsPostgres } from '../../helpers/tlsPostgres.js';

const TOKEN = `eyJ0eXAiOiJKV1Qi.${randomBytes(24).toString('hex')}`;
let tls: TlsPostgres;

/** A credential that hands out `token` and records the scopes it was asked for. */
function fakeCredential(token: string | Error | null): TokenSource & { scopes: string[] } {
  const scopes: string[] = [];
  return {
    scopes,
    getToken: (scope: string) => {
      scopes.push(scope);
      if (token instanceof Error) return Promise.reject(token);
      return Promise.resolve(token === null ? null : { token });
    },
  };
}

function settings(env: Record<string, string> = {}): PgSettings {
  return pgSettingsFromEnv({
    PGHOST: '127.0.0.1',
    PGPORT: String(tls.port),
    PGUSER: 'postgres',
    PGDATABASE: 'postgres',
    PG_AUTH: 'entra',
    PGSSLMODE: 'verify-full',
    PGSSLROOTCERT: tls.ca,
    ...env,
  });
}

/** Connects as connectPg does for every client of the project and returns the session's user. */
async function sessionUser(s: PgSettings, credential: TokenSource): Promise<string> {
  const { connection } = await connectPg(s, async (ssl) => {
    const client = new pg.Client({ ...pgClientOptions(s, ssl, 'pg-cdc-entra-test', credential), connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  });
  try {
    const { rows } = await connection.query<{ u: string }>('SELECT current_user AS u');
    return rows[0]?.u ?? '';
  } finally {
    await connection.end();
  }
}

async function refusal(s: PgSettings, credential: TokenSource): Promise<PgConnectError> {
  try {
    await sessionUser(s, credential);
  } catch (error) {
    if (error instanceof PgConnectError) return error;
    throw error;
  }
  throw new Error('expected the connection to be refused');
}

beforeAll(async () => {
  tls = await startTlsPostgres({ password: TOKEN });
});

afterAll(async () => {
  await tls?.stop();
});

describe('PG_AUTH=entra', () => {
  it('authenticates with the token the credential gives, for the Azure Database for PostgreSQL scope', async () => {
    const credential = fakeCredential(TOKEN);
    expect(await sessionUser(settings(), credential)).toBe('postgres');
    expect(credential.scopes).toEqual(['https://ossrdbms-aad.database.windows.net/.default']);
    expect(PG_ENTRA_SCOPE).toBe('https://ossrdbms-aad.database.windows.net/.default');
  });

  it('asks the credential again for every new connection, so a reconnect presents a current token', async () => {
    const credential = fakeCredential(TOKEN);
    const s = settings();
    await sessionUser(s, credential);
    await sessionUser(s, credential);
    // And the replication connection, which pg-logical-replication opens from the same options.
    const replication = new pg.Client({
      ...pgClientOptions(s, sslAttempts(s)[0] ?? false, 'pg-cdc-entra-test', credential),
      replication: 'database',
    } as pg.ClientConfig);
    await replication.connect();
    try {
      const { rows } = await replication.query<{ systemid: string }>('IDENTIFY_SYSTEM');
      expect(rows[0]?.systemid).toMatch(/^\d+$/);
    } finally {
      await replication.end();
    }
    expect(credential.scopes).toHaveLength(3);
  });

  it('a token PostgreSQL refuses is an auth failure naming PG_AUTH and the role to create, never the token', async () => {
    const wrong = `eyJ0eXAiOiJKV1Qi.${randomBytes(24).toString('hex')}`;
    const error = await refusal(settings(), fakeCredential(wrong));
    expect(error.failure).toBe('auth');
    expect(error.variable).toBe('PG_AUTH');
    expect(error.message).toMatch(/PostgreSQL refused the Entra ID token \(PG_AUTH=entra\) for PGUSER=postgres/);
    expect(error.message).toMatch(/pgaadauth_create_principal/);
    expect(error.message).not.toContain(wrong);
    expect(error.message).not.toContain(TOKEN);
  });

  it('a credential that cannot get a token is named at start-up: "PG_AUTH=entra: could not get a token"', async () => {
    const error = await refusal(settings(), fakeCredential(new Error('ManagedIdentityCredential: no managed identity endpoint found')));
    expect(error.variable).toBe('PG_AUTH');
    expect(error.message).toMatch(
      /^PG_AUTH=entra: could not get a token for https:\/\/ossrdbms-aad\.database\.windows\.net\/\.default: ManagedIdentityCredential: no managed identity endpoint found/,
    );
    expect(error.message).toMatch(/AZURE_CLIENT_ID/);

    const none = await refusal(settings(), fakeCredential(null));
    expect(none.message).toMatch(/^PG_AUTH=entra: could not get a token .*: the credential returned no token/);
  });

  it('PG_AUTH=password (the default) still uses PGPASSWORD and never asks a credential', async () => {
    const credential = fakeCredential(TOKEN);
    const s = settings({ PG_AUTH: 'password', PGPASSWORD: TOKEN });
    expect(s.auth).toBe('password');
    expect(await sessionUser(s, credential)).toBe('postgres');
    expect(credential.scopes).toEqual([]);
    expect(pgSettingsFromEnv({}).auth).toBe('password');
  });
});

describe('PG_AUTH=entra configuration', () => {
  const base = { PGHOST: 'db.postgres.database.azure.com', PG_AUTH: 'entra', PGSSLMODE: 'require' };

  it('refuses PGPASSWORD with PG_AUTH=entra, naming both and not the password', () => {
    const run = () => pgSettingsFromEnv({ ...base, PGPASSWORD: 'hunter2-secret' });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/PGPASSWORD: expected PGPASSWORD unset when PG_AUTH=entra .*got \(redacted\)/);
    expect(run).not.toThrow(/hunter2-secret/);
  });

  it.each(['disable', 'allow', 'prefer'])('refuses PGSSLMODE=%s: a token is never sent without TLS', (mode) => {
    expect(() => pgSettingsFromEnv({ ...base, PGSSLMODE: mode })).toThrow(/PGSSLMODE: expected require, verify-ca or verify-full when PG_AUTH=entra/);
  });

  it('refuses the default PGSSLMODE (prefer) too, so entra is always set with TLS explicitly', () => {
    expect(() => pgSettingsFromEnv({ PG_AUTH: 'entra' })).toThrow(/PGSSLMODE: expected require, verify-ca or verify-full when PG_AUTH=entra .*, got "prefer"/);
  });

  it('refuses an unknown PG_AUTH', () => {
    expect(() => pgSettingsFromEnv({ PG_AUTH: 'kerberos' })).toThrow(/PG_AUTH/);
  });
});
