/**
 * ADX sink configuration from the environment, validated once at start-up: the connection settings
 * and the catalogue's `adx` sections (src/shared/routing/routes.ts). Every failure names the
 * variable; the application key never appears in messages (`describeAdxConfig` masks it).
 */
import { ConfigError } from '../core/errors.js';
import { getInt, getOneOf, getOptionalString, getString, getUrl, type Env } from '../core/env.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { adxColumnName } from '../events/fieldNames.js';
import { routerFromEnv, variableOf, type Router, type TableRoute } from '../routing/routes.js';
import { isPlainName } from './kql.js';
import { KQL_TYPES } from './types.js';
import type { AdxAuth, AdxConfig, AdxIngestionMode, AdxTableRoute, ColumnDef, IngestionBatchingPolicy } from './types.js';

const MODES: readonly AdxIngestionMode[] = ['queued', 'managed-streaming', 'inline'];
const AUTHS: readonly AdxAuth[] = ['managed-identity', 'default', 'app-key', 'none'];

/** The batching policy of the Kafka Connect → ADX demo: 30 s / 500 items / 1 GB (ADX default is 5 min). */
export const DEFAULT_BATCHING: IngestionBatchingPolicy = {
  MaximumBatchingTimeSpan: '00:00:30',
  MaximumNumberOfItems: 500,
  MaximumRawDataSizeMB: 1024,
};

/** `https://mycluster.westeurope.kusto.windows.net` → `https://ingest-mycluster.westeurope.kusto.windows.net`. */
export function deriveIngestUrl(clusterUrl: string): string {
  const url = new URL(clusterUrl);
  if (url.hostname.startsWith('ingest-') || url.hostname === 'localhost' || /^[\d.]+$/.test(url.hostname)) return clusterUrl;
  url.hostname = `ingest-${url.hostname}`;
  return url.toString().replace(/\/+$/, '');
}

/**
 * A table's ADX route from its catalogue entry: the `adx` section with its defaults filled, the
 * entry's keys and history, names, keys and types checked. The catalogue names PostgreSQL columns
 * (`adx.columns`, `keys`, as every sink's section does); the route holds their ADX column names
 * (`adxColumnName`: `line no` stays, `__op` becomes `_x5F__op`). `where` is the entry's place
 * (`CDC_ROUTES["a.b"]`, or `ADX_TABLE_ROUTES[2]` for a route merged from there); errors name its
 * variable and that place.
 */
export function resolveRoute(source: string, entry: TableRoute, where: string): AdxTableRoute {
  const variable = variableOf(where);
  const fail = (expected: string, got: unknown): never => {
    throw new ConfigError(variable, `${where}: ${expected}`, typeof got === 'string' ? got : (JSON.stringify(got) ?? String(got)));
  };
  const adx = entry.adx;
  if (typeof adx !== 'object' || adx === null) return fail(`adx of ${source}: an object`, adx);
  const name = (value: unknown, what: string): string => {
    if (typeof value !== 'string' || !isPlainName(value)) fail(`${what}: a plain ADX name ([A-Za-z_][A-Za-z0-9_]*)`, value);
    return value as string;
  };
  const table = name(adx.table, `table of ${source}`);
  if (typeof adx.columns !== 'object' || adx.columns === null || Array.isArray(adx.columns))
    fail(`columns of ${source}: an object { column: type }`, adx.columns);
  const sourceColumns = Object.keys(adx.columns);
  const columns: ColumnDef[] = Object.entries(adx.columns).map(([column, type]) => {
    if (!(KQL_TYPES as readonly string[]).includes(type)) fail(`type of ${source}.${column}: one of ${KQL_TYPES.join(', ')}`, type);
    // A column named like a CDC column (`__op`) is escaped, so it cannot overwrite one.
    return { name: adxColumnName(column), type: type };
  });
  const keys = entry.keys;
  if (!Array.isArray(keys) || keys.length === 0) return fail(`keys of ${source}: a non-empty array`, keys);
  for (const key of keys) {
    if (!sourceColumns.includes(key)) fail(`keys of ${source}: names among its columns`, key);
  }
  const history = entry.history ?? {};
  const historyTable = adx.historyTable === null || history.enabled === false ? null : name(adx.historyTable ?? `${table}History`, `historyTable of ${source}`);
  return {
    source,
    table,
    keys: keys.map(adxColumnName),
    columns,
    sourceColumns,
    mapping: name(adx.mapping ?? `${table}EventMapping`, `mapping of ${source}`),
    historyTable,
    historyMapping: historyTable === null ? null : `${historyTable}Mapping`,
    history,
    latestView: name(adx.latestView ?? `${table}Latest`, `latestView of ${source}`),
    currentFunction: name(adx.currentFunction ?? `${table}Current`, `currentFunction of ${source}`),
  };
}

export const DEFAULT_TRUNCATES_TABLE = 'CdcTruncates';

/** The ADX routes of the catalogue: every table with an `adx` section, each ADX name used once. */
export function adxRoutes(catalogue: Router): AdxTableRoute[] {
  const entries = catalogue.tables().filter(([, entry]) => entry.adx !== undefined);
  if (entries.length === 0) {
    const tables = catalogue.tables().map(([table]) => table);
    throw new ConfigError('CDC_ROUTES', 'at least one table with an "adx" section', tables.join(', ') || '(no tables)');
  }
  const routes = entries.map(([source, entry]) => resolveRoute(source, entry, catalogue.placeOf(source)));
  const names = new Map<string, string>();
  for (const route of routes) {
    for (const n of [route.table, route.historyTable, route.latestView, route.currentFunction]) {
      if (n === null) continue;
      const previous = names.get(n.toLowerCase());
      if (previous !== undefined) {
        throw new ConfigError(variableOf(catalogue.placeOf(route.source)), 'each ADX name used once', `${n} (used by ${previous} and ${route.source})`);
      }
      names.set(n.toLowerCase(), route.source);
    }
  }
  return routes;
}

function timespan(env: Env, name: string, defaultValue: string): string {
  const value = getOptionalString(env, name) ?? defaultValue;
  if (!/^(\d+\.)?\d{2}:\d{2}:\d{2}$/.test(value)) throw new ConfigError(name, 'a timespan like 00:00:30', value);
  return value;
}

/**
 * The part of the configuration the setup commands depend on (no cluster needed: `--dry-run`). The
 * routes come from the catalogue (`CDC_ROUTES`, and the deprecated `ADX_TABLE_ROUTES`, whose warning
 * goes to `logger`).
 */
export function loadAdxSchemaConfig(env: Env, logger: Logger = silentLogger): Pick<AdxConfig, 'routes' | 'batching' | 'folder' | 'truncatesTable'> {
  const folder = getOptionalString(env, 'ADX_FOLDER') ?? 'cdc';
  if (/['\\\n]/.test(folder)) throw new ConfigError('ADX_FOLDER', 'a folder name without quotes, backslashes or newlines', folder);
  const truncatesTable = getOptionalString(env, 'ADX_TRUNCATES_TABLE') ?? DEFAULT_TRUNCATES_TABLE;
  if (!isPlainName(truncatesTable)) throw new ConfigError('ADX_TRUNCATES_TABLE', 'a plain ADX name ([A-Za-z_][A-Za-z0-9_]*)', truncatesTable);
  const catalogue = routerFromEnv(env, logger);
  const routes = adxRoutes(catalogue);
  for (const route of routes) {
    for (const n of [route.table, route.historyTable, route.latestView, route.currentFunction]) {
      if (n !== null && n.toLowerCase() === truncatesTable.toLowerCase()) {
        const variable = variableOf(catalogue.placeOf(route.source));
        throw new ConfigError('ADX_TRUNCATES_TABLE', `a name no route uses (the route of ${route.source} in ${variable} uses it)`, truncatesTable);
      }
    }
  }
  return {
    truncatesTable,
    routes,
    batching: {
      MaximumBatchingTimeSpan: timespan(env, 'ADX_BATCHING_TIMESPAN', DEFAULT_BATCHING.MaximumBatchingTimeSpan),
      MaximumNumberOfItems: getInt(env, 'ADX_BATCHING_MAX_ITEMS', DEFAULT_BATCHING.MaximumNumberOfItems, { min: 1 }),
      MaximumRawDataSizeMB: getInt(env, 'ADX_BATCHING_MAX_MB', DEFAULT_BATCHING.MaximumRawDataSizeMB, { min: 1, max: 4096 }),
    },
    folder,
  };
}

export function loadAdxConfig(env: Env, logger: Logger = silentLogger): AdxConfig {
  const mode = getOneOf(env, 'ADX_INGESTION_MODE', MODES, 'queued');
  const authKind = getOneOf(env, 'ADX_AUTH', AUTHS, 'managed-identity');
  const clusterUrl = getUrl(env, 'ADX_CLUSTER_URL');
  const ingestUrl = getOptionalString(env, 'ADX_INGEST_URL') === undefined ? deriveIngestUrl(clusterUrl) : getUrl(env, 'ADX_INGEST_URL');
  const database = getString(env, 'ADX_DATABASE');
  const clientId = getOptionalString(env, 'ADX_CLIENT_ID');
  const tenantId = getOptionalString(env, 'ADX_TENANT_ID');
  const clientSecret = getOptionalString(env, 'ADX_CLIENT_SECRET');
  if (authKind === 'app-key') {
    if (clientId === undefined) throw new ConfigError('ADX_CLIENT_ID', 'the application (client) id when ADX_AUTH=app-key', undefined);
    if (tenantId === undefined) throw new ConfigError('ADX_TENANT_ID', 'the tenant id when ADX_AUTH=app-key', undefined);
    if (clientSecret === undefined) throw new ConfigError('ADX_CLIENT_SECRET', 'the application key when ADX_AUTH=app-key', undefined);
  } else if (clientSecret !== undefined) {
    throw new ConfigError('ADX_CLIENT_SECRET', `no value: it is only used with ADX_AUTH=app-key (ADX_AUTH=${authKind}); remove it`, clientSecret, {
      secret: true,
    });
  }
  return {
    clusterUrl,
    ingestUrl,
    database,
    mode,
    auth: { kind: authKind, clientId, tenantId, clientSecret },
    ...loadAdxSchemaConfig(env, logger),
  };
}

/** The configuration for logs: the secret is masked. */
export function describeAdxConfig(config: AdxConfig): Record<string, unknown> {
  return {
    clusterUrl: config.clusterUrl,
    ingestUrl: config.ingestUrl,
    database: config.database,
    mode: config.mode,
    auth: {
      kind: config.auth.kind,
      clientId: config.auth.clientId,
      tenantId: config.auth.tenantId,
      clientSecret: config.auth.clientSecret ? '***' : undefined,
    },
    tables: config.routes.map((r) => `${r.source} -> ${r.table}`),
    truncatesTable: config.truncatesTable,
  };
}
