/**
 * The table catalogue: one entry per source table (`schema.table`, or `"*"` for every other table)
 * saying what every sink does with it, each sink reading its own section:
 * - `keys`: the primary-key columns (ADX keeps the latest row per key);
 * - `history`: the per-column change history (columns, context, enabled), one section for both
 *   stores (the ADX history table and the Elasticsearch history index);
 * - `elasticsearch`: the index and its explicit field mapping;
 * - `adx`: the ADX table, its typed columns, mapping, history table, latest-state view and
 *   current-rows function (defaults and checks in src/shared/adx/config.ts).
 * Configured as JSON in `CDC_ROUTES`; the `"*"` entry's index may use `{schema}` and `{table}`.
 * A table without an entry is a permanent failure for that record (dead-letter), not a retry; an
 * entry without a sink's section is skipped by that sink (ADX dead-letters it: it has no table).
 * `ADX_TABLE_ROUTES` (deprecated) is still read and merged into the `adx` sections.
 */
import { getJson, getOptionalString, type Env } from '../core/env.js';
import { ConfigError, PermanentRecordError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KqlType } from '../adx/types.js';

export interface ElasticsearchRoute {
  /** Target index (lowercase). */
  index: string;
  /** Explicit field mappings for the table's columns (`properties` of the index mapping). */
  properties?: Record<string, unknown>;
}

export interface HistoryRoute {
  /** Columns tracked in the change history. Default: every column that is not part of the key. */
  columns?: string[];
  /** Columns copied into every change-history row's `Context` (e.g. `user_id`), to filter by. */
  context?: string[];
  /** Set false to keep the table out of the change history (both stores). */
  enabled?: boolean;
}

/** How the table lands in ADX. Defaults (filled by `resolveRoute` in src/shared/adx/config.ts) in the comments. */
export interface AdxRoute {
  /** ADX table holding one row per change (the row image plus the CDC columns). */
  table: string;
  /** The row's columns and their ADX types, in table order. Unknown columns are added at run time. */
  columns: Record<string, KqlType>;
  /** JSON ingestion mapping. Default `<table>EventMapping`. */
  mapping?: string;
  /** Change-history table. Default `<table>History`; `null` (or `history.enabled: false`) disables it. */
  historyTable?: string | null;
  /** Materialized view with the latest row per key. Default `<table>Latest`. */
  latestView?: string;
  /** Stored function: the view without deleted and truncated rows. Default `<table>Current`. */
  currentFunction?: string;
}

export interface TableRoute {
  /** Primary-key columns (required with an `adx` section). */
  keys?: string[];
  history?: HistoryRoute;
  elasticsearch?: ElasticsearchRoute;
  adx?: AdxRoute;
}

export type RoutesConfig = Record<string, TableRoute>;

/** The demo tables of the source documents, for every sink. */
export const DEFAULT_ROUTES: RoutesConfig = {
  'retail.orders_info': {
    keys: ['orderid'],
    elasticsearch: {
      index: 'cdc-retail.orders_info',
      properties: {
        orderid: { type: 'long' },
        custid: { type: 'long' },
        amount: { type: 'long' },
        city: { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } },
        purchase_time: { type: 'date', format: 'yyyy-MM-dd HH:mm:ss||strict_date_optional_time||epoch_millis' },
      },
    },
    // The `Orders` table with the `OrdersEventMapping` mapping of the Kafka-Connect demo.
    adx: {
      table: 'Orders',
      columns: { orderid: 'string', custid: 'string', city: 'string', amount: 'int', purchase_time: 'datetime' },
      mapping: 'OrdersEventMapping',
    },
  },
  'bank.holding': {
    keys: ['holding_id'],
    // Stock type and quantity, with the owning user as context: the source document's questions.
    history: { columns: ['holding_stock', 'holding_quantity'], context: ['user_id'] },
    elasticsearch: {
      index: 'cdc-bank.holding',
      properties: {
        holding_id: { type: 'long' },
        user_id: { type: 'long' },
        holding_stock: { type: 'keyword' },
        holding_quantity: { type: 'long' },
        datetime_created: { type: 'date' },
        datetime_updated: { type: 'date' },
      },
    },
    adx: {
      table: 'Holding',
      columns: {
        holding_id: 'long',
        user_id: 'long',
        holding_stock: 'string',
        holding_quantity: 'long',
        datetime_created: 'datetime',
        datetime_updated: 'datetime',
      },
    },
  },
};

const INDEX_NAME = /^[a-z0-9][a-z0-9._-]*$/;

function substitute(template: string, schema: string, table: string): string {
  return template.replaceAll('{schema}', schema).replaceAll('{table}', table);
}

/** The variable of a place (`CDC_ROUTES["a.b"]` → `CDC_ROUTES`, `ADX_TABLE_ROUTES[0]` → `ADX_TABLE_ROUTES`). */
export function variableOf(place: string): string {
  return place.replace(/\[.*$/, '');
}

export class Router {
  readonly #routes: ReadonlyMap<string, TableRoute>;
  readonly #wildcard: TableRoute | undefined;
  readonly #places: ReadonlyMap<string, string>;

  /** `places`: where a table's `adx` section and keys came from when not `CDC_ROUTES` (see `placeOf`). */
  constructor(routes: RoutesConfig, places: ReadonlyMap<string, string> = new Map()) {
    if (typeof routes !== 'object' || routes === null || Array.isArray(routes)) {
      throw new ConfigError('CDC_ROUTES', 'a JSON object { "schema.table": route }', JSON.stringify(routes));
    }
    for (const [table, route] of Object.entries(routes)) validateRoute(table, route);
    this.#routes = new Map(Object.entries(routes).filter(([name]) => name !== '*'));
    this.#wildcard = routes['*'];
    this.#places = places;
  }

  /** Explicitly configured tables (without the wildcard), in configuration order. */
  tables(): [string, TableRoute][] {
    return [...this.#routes.entries()];
  }

  /** The `"*"` route, if any. */
  wildcard(): TableRoute | undefined {
    return this.#wildcard;
  }

  /** Where a table's entry is configured, for error messages: `CDC_ROUTES["schema.table"]`, or `ADX_TABLE_ROUTES[i]`. */
  placeOf(table: string): string {
    return this.#places.get(table) ?? `CDC_ROUTES["${table}"]`;
  }

  /** The route of `schema.table`, or a permanent error naming the table. */
  route(schema: string, table: string): TableRoute {
    const exact = this.#routes.get(`${schema}.${table}`);
    if (exact) return exact;
    const wildcard = this.#wildcard;
    if (!wildcard) throw new PermanentRecordError('UNKNOWN_TABLE', `No route for table ${schema}.${table}`);
    const route: TableRoute = { ...wildcard };
    if (wildcard.elasticsearch) {
      route.elasticsearch = { ...wildcard.elasticsearch, index: substitute(wildcard.elasticsearch.index, schema, table).toLowerCase() };
    }
    return route;
  }
}

/**
 * The columns the catalogue declares for a table (its ADX section's typed columns). The change
 * history tracks them by default even when an image lacks them, so a key-only delete still records
 * (as unknown old values) which columns went away.
 */
export function declaredColumns(route: TableRoute): string[] {
  return Object.keys(route.adx?.columns ?? {});
}

function validateRoute(table: string, route: TableRoute): void {
  const where = `CDC_ROUTES["${table}"]`;
  if (table !== '*' && !/^[^.]+\.[^.]+$/.test(table)) throw new ConfigError('CDC_ROUTES', 'keys of the form "schema.table" or "*"', table);
  if (typeof route !== 'object' || route === null) throw new ConfigError('CDC_ROUTES', `an object as the route of ${table}`, JSON.stringify(route));
  if (route.elasticsearch !== undefined) {
    const index = route.elasticsearch.index;
    const probe = typeof index === 'string' ? substitute(index, 'schema', 'table') : '';
    if (!INDEX_NAME.test(probe)) throw new ConfigError('CDC_ROUTES', `a lowercase index name in ${where}.elasticsearch.index`, JSON.stringify(index));
  }
  if (table === '*' && route.adx !== undefined) {
    throw new ConfigError('CDC_ROUTES', `no adx section in ${where} (an ADX table needs its own name and columns)`, JSON.stringify(route.adx));
  }
}

/** An entry of the deprecated `ADX_TABLE_ROUTES`: the ADX section, keys and history of one table, flat. */
interface LegacyAdxRoute extends AdxRoute {
  source: string;
  keys: string[];
  historyColumns?: string[];
  historyContext?: string[];
}

/**
 * Merges `ADX_TABLE_ROUTES` into the catalogue. It lists every ADX table, as it always did, so its
 * entries replace the catalogue's `adx` sections (a table it does not name has none); each entry's
 * `keys` become the table's keys and its `historyColumns` / `historyContext`, when given, the table's
 * `history.columns` / `history.context` (one history section, so they apply to both stores).
 */
function mergeAdxTableRoutes(routes: RoutesConfig, text: string): { routes: RoutesConfig; places: Map<string, string> } {
  let inputs: unknown;
  try {
    inputs = JSON.parse(text);
  } catch (error) {
    throw new ConfigError('ADX_TABLE_ROUTES', 'a JSON array of routes', text, { cause: error });
  }
  if (!Array.isArray(inputs) || inputs.length === 0) throw new ConfigError('ADX_TABLE_ROUTES', 'a non-empty JSON array of routes', text);
  const merged: RoutesConfig = {};
  for (const [table, route] of Object.entries(routes)) {
    const { adx: _replaced, ...rest } = route;
    merged[table] = rest;
  }
  const places = new Map<string, string>();
  (inputs as unknown[]).forEach((input, i) => {
    const where = `ADX_TABLE_ROUTES[${i}]`;
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw new ConfigError('ADX_TABLE_ROUTES', `${where}: a route object`, JSON.stringify(input));
    const { source, keys, historyColumns, historyContext, ...adx } = input as LegacyAdxRoute;
    if (typeof source !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(source)) {
      throw new ConfigError('ADX_TABLE_ROUTES', `${where}: source "schema.table"`, typeof source === 'string' ? source : JSON.stringify(source));
    }
    if (places.has(source)) throw new ConfigError('ADX_TABLE_ROUTES', 'each source table routed once', source);
    places.set(source, where);
    const entry = merged[source] ?? {};
    const history: HistoryRoute = {
      ...entry.history,
      ...(historyColumns !== undefined ? { columns: historyColumns } : {}),
      ...(historyContext !== undefined ? { context: historyContext } : {}),
    };
    // Re-inserted, so the ADX tables keep the order of ADX_TABLE_ROUTES (adx:setup runs them in it).
    delete merged[source];
    merged[source] = { ...entry, keys, ...(Object.keys(history).length > 0 ? { history } : {}), adx };
  });
  return { routes: merged, places };
}

/**
 * The catalogue from `CDC_ROUTES` (default `DEFAULT_ROUTES`), with the deprecated `ADX_TABLE_ROUTES`
 * merged in when it is set (a warning on `logger` names the replacement).
 */
export function routerFromEnv(env: Env, logger: Logger = silentLogger): Router {
  const routes = getJson<RoutesConfig>(env, 'CDC_ROUTES', DEFAULT_ROUTES);
  const catalogue = new Router(routes);
  const legacy = getOptionalString(env, 'ADX_TABLE_ROUTES');
  if (legacy === undefined) return catalogue;
  logger.warn(
    'ADX_TABLE_ROUTES is deprecated: move each route into CDC_ROUTES as the table\'s "adx" section (docs/adx.md, "Migrating from ADX_TABLE_ROUTES")',
    {
      setting: 'ADX_TABLE_ROUTES',
      replacement: 'CDC_ROUTES',
    },
  );
  const merged = mergeAdxTableRoutes(routes, legacy);
  return new Router(merged.routes, merged.places);
}
