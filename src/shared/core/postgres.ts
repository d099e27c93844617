/**
 * PostgreSQL connection settings from the standard libpq variables, with `PGSSLMODE` meaning what
 * libpq says it means (https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION):
 *
 * | mode | TLS | certificate chain | host name |
 * |---|---|---|---|
 * | `disable` | never | – | – |
 * | `allow` | only if the server insists | not checked | not checked |
 * | `prefer` (default) | if the server offers it | not checked | not checked |
 * | `require` | always | not checked (checked as `verify-ca` when a root CA is given, as libpq does) | not checked |
 * | `verify-ca` | always | checked against the root CA | not checked |
 * | `verify-full` | always | checked against the root CA | checked |
 *
 * The root CA is `PGSSLROOTCERT` (a PEM file; `system` for the platform's trusted CAs, as libpq 16+),
 * else `~/.postgresql/root.crt` when it exists. `verify-ca` and `verify-full` without either are a
 * configuration error, as in libpq. node-postgres reads `PGSSLMODE` itself when `ssl` is left unset
 * (and then verifies certificates even for `prefer`/`require`), so every client of the project takes
 * its `ssl` option from here and never leaves it unset.
 *
 * `PG_AUTH=entra` signs in with Microsoft Entra ID instead of a password (Azure Database for
 * PostgreSQL): node-postgres gets a password *function* that asks the credential (`DefaultAzureCredential`,
 * which honours `AZURE_CLIENT_ID` for a user-assigned managed identity) for a token each time a new
 * connection authenticates, so the reader's reconnects, its replication connection and its snapshot
 * connections each present a current token; the credential caches the token and renews it before it expires.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { getInt, getOneOf, getOptionalString, getString, type Env } from './env.js';
import { CdcError, ConfigError } from './errors.js';
import type { TokenSource } from './kafka.js';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export const PG_AUTH_MODES = ['password', 'entra'] as const;
export type PgAuth = (typeof PG_AUTH_MODES)[number];

/** The Entra ID scope of Azure Database for PostgreSQL (the same in every region). */
export const PG_ENTRA_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';

export interface PgSettings {
  host: string;
  port: number;
  user: string;
  password: string | undefined;
  /** `password`: PGPASSWORD (or none); `entra`: an Entra ID token per connection. */
  auth: PgAuth;
  database: string;
  sslMode: SslMode;
  /** PEM text of the root CA(s), `'system'` for the platform's CAs, or undefined when none is given. */
  rootCert: string | undefined;
  /** Where the root CA came from, for messages. */
  rootCertSource: string | undefined;
}

/** The TLS options of one connection attempt: `false` is a plain connection. */
export type PgSsl = false | ConnectionOptions;

export function pgSettingsFromEnv(env: Env): PgSettings {
  const sslMode = getOneOf(env, 'PGSSLMODE', SSL_MODES, 'prefer');
  const { rootCert, rootCertSource } = rootCertFromEnv(env, sslMode);
  const auth = getOneOf(env, 'PG_AUTH', PG_AUTH_MODES, 'password');
  const password = getOptionalString(env, 'PGPASSWORD');
  if (auth === 'entra') {
    if (password !== undefined) {
      throw new ConfigError(
        'PGPASSWORD',
        'PGPASSWORD unset when PG_AUTH=entra (the password is an Entra ID token got per connection); unset PGPASSWORD, or set PG_AUTH=password to use it',
        password,
        { secret: true },
      );
    }
    // A token is a bearer credential: allow/prefer could send it over a plain connection.
    if (sslMode === 'disable' || sslMode === 'allow' || sslMode === 'prefer') {
      throw new ConfigError(
        'PGSSLMODE',
        'require, verify-ca or verify-full when PG_AUTH=entra (an Entra ID token is never sent without TLS, and Azure Database for PostgreSQL requires TLS; verify-full with PGSSLROOTCERT is recommended)',
        sslMode,
      );
    }
  }
  return {
    host: getString(env, 'PGHOST', 'localhost'),
    port: getInt(env, 'PGPORT', 5432, { min: 1, max: 65535 }),
    user: getString(env, 'PGUSER', 'postgres'),
    password,
    auth,
    database: getString(env, 'PGDATABASE', 'postgres'),
    sslMode,
    rootCert,
    rootCertSource,
  };
}

/**
 * A `postgres://user:password@host:port/database?sslmode=...&sslrootcert=...` URL as the libpq
 * variables, so a connection string follows exactly the same rules as PGHOST, PGSSLMODE, ... do.
 * `variable` names the setting in errors; the password is never echoed.
 */
export function pgEnvFromUrl(url: string, variable: string): Record<string, string> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigError(variable, 'a postgres://user:password@host:port/database URL', url, { secret: true, cause: error });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(variable, 'a postgres:// or postgresql:// URL', `${parsed.protocol}//...`);
  }
  const env: Record<string, string> = {};
  const put = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== '') env[name] = decodeURIComponent(value);
  };
  put('PGHOST', parsed.hostname.replace(/^\[|\]$/g, ''));
  put('PGPORT', parsed.port);
  put('PGUSER', parsed.username);
  put('PGPASSWORD', parsed.password);
  put('PGDATABASE', parsed.pathname.replace(/^\//, ''));
  for (const [key, value] of parsed.searchParams) {
    if (key === 'sslmode') env.PGSSLMODE = value;
    else if (key === 'sslrootcert') env.PGSSLROOTCERT = value;
    else if (key === 'application_name') continue;
    else throw new ConfigError(variable, 'only the parameters sslmode, sslrootcert and application_name in the URL', key);
  }
  return env;
}

function rootCertFromEnv(env: Env, mode: SslMode): { rootCert: string | undefined; rootCertSource: string | undefined } {
  const given = getOptionalString(env, 'PGSSLROOTCERT');
  if (given === 'system') return { rootCert: 'system', rootCertSource: 'PGSSLROOTCERT=system' };
  const file = given ?? join(homedir(), '.postgresql', 'root.crt');
  if (given === undefined && !existsSync(file)) {
    if (mode === 'verify-ca' || mode === 'verify-full') {
      throw new ConfigError(
        'PGSSLROOTCERT',
        `the root CA file that signed the server's certificate when PGSSLMODE=${mode} (or "system" for the platform's trusted CAs; ` +
          'Azure Database for PostgreSQL: the DigiCert Global Root G2 and Microsoft RSA Root Certificate Authority 2017 PEM files, concatenated)',
        undefined,
      );
    }
    return { rootCert: undefined, rootCertSource: undefined };
  }
  if (mode === 'disable' || mode === 'allow' || mode === 'prefer') return { rootCert: undefined, rootCertSource: undefined };
  try {
    return { rootCert: readFileSync(file, 'utf8'), rootCertSource: given === undefined ? file : `PGSSLROOTCERT=${file}` };
  } catch (error) {
    throw new ConfigError('PGSSLROOTCERT', 'a readable PEM file with the root CA', file, { cause: error });
  }
}

/** libpq's `require` with a root CA given behaves as `verify-ca`. */
function effectiveMode(settings: PgSettings): SslMode {
  return settings.sslMode === 'require' && settings.rootCert !== undefined ? 'verify-ca' : settings.sslMode;
}

/**
 * The TLS attempts a mode makes, in order (`allow` and `prefer` fall back to the other one when the
 * server refuses the first: see `connectPg`).
 */
export function sslAttempts(settings: PgSettings): PgSsl[] {
  const unverified: ConnectionOptions = { rejectUnauthorized: false };
  const ca = settings.rootCert === undefined || settings.rootCert === 'system' ? {} : { ca: settings.rootCert };
  switch (effectiveMode(settings)) {
    case 'disable':
      return [false];
    case 'allow':
      return [false, unverified];
    case 'prefer':
      return [unverified, false];
    case 'require':
      return [unverified];
    case 'verify-ca':
      // The chain is checked, the name is not (libpq's verify-ca).
      return [{ ...ca, rejectUnauthorized: true, checkServerIdentity: () => undefined }];
    case 'verify-full':
      return [{ ...ca, rejectUnauthorized: true }];
  }
}

/** Whether a failed attempt may be retried with the next TLS choice of `allow`/`prefer`. */
function isTlsRefusal(error: unknown, ssl: PgSsl): boolean {
  const message = error instanceof Error ? error.message : String(error);
  // prefer: the server answered 'N' to SSLRequest. allow: pg_hba.conf has only hostssl lines.
  return ssl !== false ? /server does not support SSL/i.test(message) : /no encryption|SSL off|hostssl/i.test(message);
}

export type PgConnectFailure = 'auth' | 'unreachable' | 'tls' | 'other';

/** A connection failure that names the setting to fix and never the secret. */
export class PgConnectError extends CdcError {
  readonly variable: string;
  readonly failure: PgConnectFailure;

  constructor(failure: PgConnectFailure, variable: string, message: string, cause: unknown) {
    // Only an unreachable server can come back by itself; a refused password or certificate cannot.
    super('PG_CONNECT_FAILED', message, { canRetry: failure === 'unreachable', cause });
    this.failure = failure;
    this.variable = variable;
  }
}

const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/**
 * Turns a connection failure into one that says which setting is wrong and how to fix it: the
 * variables' names and the non-secret values (PGUSER, PGHOST, ...), whether PGPASSWORD is set, never
 * the password.
 */
export function describePgConnectError(error: unknown, settings: PgSettings, ssl: PgSsl): PgConnectError {
  const e = error as { message?: unknown; code?: unknown };
  const reason = typeof e.message === 'string' ? e.message : String(error);
  const code = typeof e.code === 'string' ? e.code : '';
  const who = `PGUSER=${settings.user} at PGHOST=${settings.host} PGPORT=${settings.port} PGDATABASE=${settings.database}`;
  if (error instanceof PgTokenError) {
    return new PgConnectError(
      'auth',
      'PG_AUTH',
      `${error.message} (for ${who}). Fix: give this process an identity DefaultAzureCredential finds (a managed identity on Azure, with AZURE_CLIENT_ID ` +
        'for a user-assigned one; `az login` on a workstation), or set PG_AUTH=password and PGPASSWORD.',
      error,
    );
  }
  if (settings.auth === 'entra' && (code === '28P01' || code === '28000' || /password authentication failed/i.test(reason))) {
    return new PgConnectError(
      'auth',
      'PG_AUTH',
      `PostgreSQL refused the Entra ID token (PG_AUTH=entra) for ${who} (${reason}). ` +
        "Fix: PGUSER must be the name of a PostgreSQL role created for this identity (the managed identity's name, made a Microsoft Entra admin " +
        'with `az postgres flexible-server microsoft-entra-admin create` or created with `SELECT * FROM pgaadauth_create_principal(...)`), ' +
        'and the server must have Microsoft Entra authentication enabled.',
      error,
    );
  }
  if (code === '28P01' || /password authentication failed/i.test(reason)) {
    const passwordState = settings.password === undefined ? 'PGPASSWORD is not set' : 'PGPASSWORD is set but was rejected';
    return new PgConnectError(
      'auth',
      'PGPASSWORD',
      `PostgreSQL refused the password for ${who} (${reason}); ${passwordState}. ` +
        "Fix: set PGPASSWORD to this role's password, or PGUSER to the role it belongs to (Azure Flexible Server: the server admin or a role created with LOGIN PASSWORD).",
      error,
    );
  }
  if (/client password must be a (non-empty )?string|no password was provided/i.test(reason)) {
    return new PgConnectError(
      'auth',
      'PGPASSWORD',
      `PostgreSQL asks ${who} for a password, but PGPASSWORD is not set (or empty). Fix: set PGPASSWORD to this role's password.`,
      error,
    );
  }
  if (code === '28000') {
    return new PgConnectError(
      'auth',
      'PGUSER',
      `PostgreSQL does not let ${who} connect (${reason}). ` +
        'Fix: check PGUSER (the role needs LOGIN) and that the server allows it from this host: pg_hba.conf on plain PostgreSQL; ' +
        'on Azure Flexible Server the firewall rules, and PGSSLMODE=require or stricter (the server refuses connections without TLS).',
      error,
    );
  }
  if (ssl !== false && /certificate|self[- ]signed|altname|unable to verify|UNABLE_TO|CERT_|DEPTH_ZERO/i.test(reason + code)) {
    const root = settings.rootCertSource ?? "Node's bundled CAs";
    const hint =
      /altname|Hostname\/IP/i.test(reason) && settings.sslMode === 'verify-full'
        ? ` The certificate is not for ${settings.host}: connect with the host name the certificate names (PGHOST), or use PGSSLMODE=verify-ca to check the chain only.`
        : ` The certificate does not chain to the root CA in ${root}: set PGSSLROOTCERT to the CA that signed the server's certificate.`;
    return new PgConnectError(
      'tls',
      'PGSSLROOTCERT',
      `PostgreSQL ${who}: TLS certificate check failed (PGSSLMODE=${settings.sslMode}): ${reason}.${hint}`,
      error,
    );
  }
  if (/server does not support SSL/i.test(reason)) {
    return new PgConnectError(
      'tls',
      'PGSSLMODE',
      `PostgreSQL ${who}: the server does not offer TLS but PGSSLMODE=${settings.sslMode} requires it. Fix: enable ssl on the server, or PGSSLMODE=prefer.`,
      error,
    );
  }
  if (NETWORK_ERRORS.has(code) || /timeout/i.test(reason)) {
    return new PgConnectError(
      'unreachable',
      'PGHOST',
      `cannot reach PostgreSQL at PGHOST=${settings.host} PGPORT=${settings.port} (${reason}). ` +
        'Fix: check PGHOST and PGPORT, and that the server accepts connections from this host (Azure Flexible Server: <server>.postgres.database.azure.com, port 5432, firewall or private access).',
      error,
    );
  }
  return new PgConnectError('other', 'PGHOST', `PostgreSQL ${who}: ${reason}`, error);
}

/**
 * Connects with the first TLS choice of the mode, falling back as `allow`/`prefer` do, and returns the
 * choice that worked so that later connections (replication, snapshot) use the same one without
 * probing again. `connect` opens and returns a connection for one `ssl` choice.
 */
export async function connectPg<C>(settings: PgSettings, connect: (ssl: PgSsl) => Promise<C>): Promise<{ connection: C; ssl: PgSsl }> {
  const attempts = sslAttempts(settings);
  for (let i = 0; ; i++) {
    const ssl = attempts[i] ?? false;
    try {
      return { connection: await connect(ssl), ssl };
    } catch (error) {
      if (i + 1 < attempts.length && isTlsRefusal(error, ssl)) continue;
      throw describePgConnectError(error, settings, ssl);
    }
  }
}

/**
 * One `pg.Client` connected with PGSSLMODE's TLS choices (connectPg): `extra` adds client options
 * (session options, type parsers, a timeout), `onError` is attached before connecting (a long-lived
 * client must not crash the process on a connection lost between queries); a candidate that fails is closed.
 */
export async function connectPgClient(
  settings: PgSettings,
  applicationName: string,
  { extra = {}, onError }: { extra?: pg.ClientConfig; onError?: (error: Error) => void } = {},
): Promise<pg.Client> {
  const { connection } = await connectPg(settings, async (ssl) => {
    const candidate = new pg.Client({ ...pgClientOptions(settings, ssl, applicationName), ...extra });
    if (onError) candidate.on('error', onError);
    try {
      await candidate.connect();
      return candidate;
    } catch (error) {
      await candidate.end().catch(() => undefined);
      throw error;
    }
  });
  return connection;
}

/** Thrown by the `PG_AUTH=entra` password function: the credential gave no token. Never carries the token. */
export class PgTokenError extends CdcError {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : cause === undefined ? 'the credential returned no token' : JSON.stringify(cause);
    // A managed identity endpoint that is not ready yet can answer later.
    super('PG_CONNECT_FAILED', `PG_AUTH=entra: could not get a token for ${PG_ENTRA_SCOPE}: ${reason}`, { canRetry: true, cause });
  }
}

let defaultCredential: Promise<TokenSource> | undefined;

/** One credential per process, so its token cache is shared by every connection. */
function processCredential(): Promise<TokenSource> {
  defaultCredential ??= import('@azure/identity').then(({ DefaultAzureCredential }) => new DefaultAzureCredential());
  return defaultCredential;
}

/**
 * The node-postgres `password` for the settings: PGPASSWORD, or with `PG_AUTH=entra` a function that
 * node-postgres calls when the server asks a new connection for its password.
 */
function pgPassword(settings: PgSettings, credential: TokenSource | undefined): string | undefined | (() => Promise<string>) {
  if (settings.auth !== 'entra') return settings.password;
  return async () => {
    let token: { token: string } | null;
    try {
      token = await (credential ?? (await processCredential())).getToken(PG_ENTRA_SCOPE);
    } catch (error) {
      throw new PgTokenError(error);
    }
    if (!token) throw new PgTokenError(undefined);
    return token.token;
  };
}

/**
 * node-postgres client options for the settings and one TLS choice. `credential` replaces the
 * process's `DefaultAzureCredential` for `PG_AUTH=entra` (tests).
 */
export function pgClientOptions(settings: PgSettings, ssl: PgSsl, applicationName: string, credential?: TokenSource) {
  return {
    host: settings.host,
    port: settings.port,
    user: settings.user,
    password: pgPassword(settings, credential),
    database: settings.database,
    ssl,
    application_name: applicationName,
  };
}
