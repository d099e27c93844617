/**
 * ADX sink configuration from the environment, validated once at start-up. Every failure names the
 * variable; the application key never appears in messages (`describeAdxConfig` masks it).
 */
import { ConfigError } from '../core/errors.js';
import { getInt, getOneOf, getOptionalString, getString, getUrl, type Env } from '../core/env.js';
import { isPlainName } from './kql.js';
import { KQL_TYPES } from './types.js';
import type { AdxAuth, AdxConfig, AdxIngestionMode, AdxTableRoute, AdxTableRouteInput, ColumnDef, IngestionBatchingPolicy } from './types.js';

const MODES: readonly AdxIngestionMode[] = ['queued', 'managed-streaming', 'inline'];
const AUTHS: readonly AdxAuth[] = ['managed-identity', 'default', 'app-key', 'none'];

/**
 * The tables of the source documents: `retail.orders_info` as the `Orders` table with the
 * `OrdersEventMapping` mapping of the Kafka-Connect demo, and `bank.holding` with its per-field change
 * history (stock type and quantity, with the owning user as context).
 */
export const DEFAULT_ROUTES: readonly AdxTableRouteInput[] = [
  {
    source: 'retail.orders_info',
    table: 'Orders',
    keys: ['orderid'],
    columns: { orderid: 'string', custid: 'string', city: 'string', amount: 'int', purchase_time: 'datetime' },
    mapping: 'OrdersEventMapping',
  },
  {
    source: 'bank.holding',
    table: 'Holding',
    keys: ['holding_id'],
    columns: {
      holding_id: 'long',
      user_id: 'long',
      holding_stock: 'string',
      holding_quantity: 'long',
      datetime_created: 'datetime',
      datetime_updated: 'datetime',
    },
    historyColumns: ['holding_stock', 'holding_quantity'],
    historyContext: ['user_id'],
  },
];

/** The batching policy of the source document: 30 s / 500 items / 1 GB (ADX default is 5 min). */
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
 * Fills the route defaults and checks names, keys and types. `where` is the route's place in its
 * setting (`ADX_TABLE_ROUTES[2]`); errors name the setting and that place.
 */
export function resolveRoute(input: AdxTableRouteInput, where: string): AdxTableRoute {
  const variable = where.replace(/\[.*$/, '');
  const fail = (expected: string, got: unknown): never => {
    throw new ConfigError(variable, `${where}: ${expected}`, typeof got === 'string' ? got : (JSON.stringify(got) ?? String(got)));
  };
  if (typeof input !== 'object' || input === null) fail('a route object', input);
  if (typeof input.source !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(input.source)) fail('source "schema.table"', input.source);
  const name = (value: unknown, what: string): string => {
    if (typeof value !== 'string' || !isPlainName(value)) fail(`${what}: a plain ADX name ([A-Za-z_][A-Za-z0-9_]*)`, value);
    return value as string;
  };
  const table = name(input.table, `table of ${input.source}`);
  if (typeof input.columns !== 'object' || input.columns === null || Array.isArray(input.columns))
    fail(`columns of ${input.source}: an object { column: type }`, input.columns);
  const columns: ColumnDef[] = Object.entries(input.columns).map(([column, type]) => {
    if (!(KQL_TYPES as readonly string[]).includes(type)) fail(`type of ${input.source}.${column}: one of ${KQL_TYPES.join(', ')}`, type);
    if (column.startsWith('__')) fail(`columns of ${input.source}: names not starting with __ (reserved for CDC columns)`, column);
    return { name: column, type: type };
  });
  if (!Array.isArray(input.keys) || input.keys.length === 0) fail(`keys of ${input.source}: a non-empty array`, input.keys);
  for (const key of input.keys) {
    if (!columns.some((c) => c.name === key)) fail(`keys of ${input.source}: names among its columns`, key);
  }
  const historyTable = input.historyTable === null ? null : name(input.historyTable ?? `${table}History`, `historyTable of ${input.source}`);
  return {
    source: input.source,
    table,
    keys: [...input.keys],
    columns,
    mapping: name(input.mapping ?? `${table}EventMapping`, `mapping of ${input.source}`),
    historyTable,
    historyMapping: historyTable === null ? null : `${historyTable}Mapping`,
    historyColumns: input.historyColumns ? [...input.historyColumns] : null,
    historyContext: input.historyContext ? [...input.historyContext] : [],
    latestView: name(input.latestView ?? `${table}Latest`, `latestView of ${input.source}`),
    currentFunction: name(input.currentFunction ?? `${table}Current`, `currentFunction of ${input.source}`),
  };
}

export const DEFAULT_TRUNCATES_TABLE = 'CdcTruncates';

function parseRoutes(env: Env): AdxTableRoute[] {
  const text = getOptionalString(env, 'ADX_TABLE_ROUTES');
  let inputs: unknown = DEFAULT_ROUTES;
  if (text !== undefined) {
    try {
      inputs = JSON.parse(text);
    } catch (error) {
      throw new ConfigError('ADX_TABLE_ROUTES', 'a JSON array of routes', text, { cause: error });
    }
  }
  if (!Array.isArray(inputs) || inputs.length === 0) throw new ConfigError('ADX_TABLE_ROUTES', 'a non-empty JSON array of routes', text);
  const routes = (inputs as AdxTableRouteInput[]).map((input, i) => resolveRoute(input, `ADX_TABLE_ROUTES[${i}]`));
  const names = new Map<string, string>();
  for (const route of routes) {
    for (const n of [route.table, route.historyTable, route.latestView, route.currentFunction]) {
      if (n === null) continue;
      const previous = names.get(n.toLowerCase());
      if (previous !== undefined) throw new ConfigError('ADX_TABLE_ROUTES', 'each ADX name used once', `${n} (used by ${previous} and ${route.source})`);
      names.set(n.toLowerCase(), route.source);
    }
  }
  const sources = new Set<string>();
  for (const route of routes) {
    if (sources.has(route.source)) throw new ConfigError('ADX_TABLE_ROUTES', 'each source table routed once', route.source);
    sources.add(route.source);
  }
  return routes;
}

function timespan(env: Env, name: string, defaultValue: string): string {
  const value = getOptionalString(env, name) ?? defaultValue;
  if (!/^(\d+\.)?\d{2}:\d{2}:\d{2}$/.test(value)) throw new ConfigError(name, 'a timespan like 00:00:30', value);
  return value;
}

/** The part of the configuration the setup commands depend on (no cluster needed: `--dry-run`). */
export function loadAdxSchemaConfig(env: Env): Pick<AdxConfig, 'routes' | 'batching' | 'folder' | 'truncatesTable'> {
  const folder = getOptionalString(env, 'ADX_FOLDER') ?? 'cdc';
  if (/['\\\n]/.test(folder)) throw new ConfigError('ADX_FOLDER', 'a folder name without quotes, backslashes or newlines', folder);
  const truncatesTable = getOptionalString(env, 'ADX_TRUNCATES_TABLE') ?? DEFAULT_TRUNCATES_TABLE;
  if (!isPlainName(truncatesTable)) throw new ConfigError('ADX_TRUNCATES_TABLE', 'a plain ADX name ([A-Za-z_][A-Za-z0-9_]*)', truncatesTable);
  const routes = parseRoutes(env);
  for (const route of routes) {
    for (const n of [route.table, route.historyTable, route.latestView, route.currentFunction]) {
      if (n !== null && n.toLowerCase() === truncatesTable.toLowerCase()) {
        throw new ConfigError('ADX_TRUNCATES_TABLE', `a name no route uses (the route of ${route.source} in ADX_TABLE_ROUTES uses it)`, truncatesTable);
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

export function loadAdxConfig(env: Env): AdxConfig {
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
    ...loadAdxSchemaConfig(env),
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
