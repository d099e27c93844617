/**
 * Which source table goes where: ADX table (+ ingestion mapping), Elasticsearch index (+ explicit
 * field mapping) and which columns the change history keeps as context. Configured as JSON in
 * `CDC_ROUTES`; a `"*"` entry catches every other table, with `{schema}` and `{table}` placeholders.
 * A table without a route is a permanent failure for that record (dead-letter), not a retry.
 */
import { getJson, type Env } from '../config/env.js';
import { ConfigError, PermanentRecordError } from '../errors.js';

export interface AdxRoute {
  /** Target ADX table. */
  table: string;
  /** Ingestion mapping reference (JSON mapping) in that table, if any. */
  mapping?: string;
}

export interface ElasticsearchRoute {
  /** Target index (lowercase). */
  index: string;
  /** Explicit field mappings for the table's columns (`properties` of the index mapping). */
  properties?: Record<string, unknown>;
}

export interface HistoryRoute {
  /** Columns copied into every change-history row of the table (e.g. `user_id`), to filter by. */
  context?: string[];
  /** Columns left out of the history (e.g. `datetime_updated`). */
  exclude?: string[];
}

export interface TableRoute {
  adx?: AdxRoute;
  elasticsearch?: ElasticsearchRoute;
  history?: HistoryRoute;
}

export type RoutesConfig = Record<string, TableRoute>;

/** The source document's tables, routed like the source documents do. */
export const DEFAULT_ROUTES: RoutesConfig = {
  'retail.orders_info': {
    adx: { table: 'Orders', mapping: 'OrdersEventMapping' },
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
  },
  'bank.holding': {
    adx: { table: 'Holding' },
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
    history: { context: ['user_id'], exclude: ['datetime_created', 'datetime_updated'] },
  },
};

const INDEX_NAME = /^[a-z0-9][a-z0-9._-]*$/;

function substitute(template: string, schema: string, table: string): string {
  return template.replaceAll('{schema}', schema).replaceAll('{table}', table);
}

export class Router {
  readonly #routes: ReadonlyMap<string, TableRoute>;
  readonly #wildcard: TableRoute | undefined;

  constructor(routes: RoutesConfig) {
    for (const [table, route] of Object.entries(routes)) validateRoute(table, route);
    this.#routes = new Map(Object.entries(routes).filter(([name]) => name !== '*'));
    this.#wildcard = routes['*'];
  }

  /** Explicitly configured tables (without the wildcard). */
  tables(): [string, TableRoute][] {
    return [...this.#routes.entries()];
  }

  /** The `"*"` route, if any. */
  wildcard(): TableRoute | undefined {
    return this.#wildcard;
  }

  /** The route of `schema.table`, or a permanent error naming the table. */
  route(schema: string, table: string): TableRoute {
    const exact = this.#routes.get(`${schema}.${table}`);
    if (exact) return exact;
    const wildcard = this.#wildcard;
    if (!wildcard) throw new PermanentRecordError('UNKNOWN_TABLE', `No route for table ${schema}.${table}`);
    const route: TableRoute = { ...wildcard };
    if (wildcard.adx) route.adx = { ...wildcard.adx, table: substitute(wildcard.adx.table, schema, table) };
    if (wildcard.elasticsearch) {
      route.elasticsearch = { ...wildcard.elasticsearch, index: substitute(wildcard.elasticsearch.index, schema, table).toLowerCase() };
    }
    return route;
  }
}

function validateRoute(table: string, route: TableRoute): void {
  const where = `CDC_ROUTES["${table}"]`;
  if (table !== '*' && !/^[^.]+\.[^.]+$/.test(table)) throw new ConfigError(`${where}: key must be "schema.table" or "*"`);
  if (typeof route !== 'object' || route === null) throw new ConfigError(`${where} must be an object`);
  if (route.adx !== undefined && (typeof route.adx.table !== 'string' || route.adx.table === '')) {
    throw new ConfigError(`${where}.adx.table must be a non-empty string`);
  }
  if (route.elasticsearch !== undefined) {
    const index = route.elasticsearch.index;
    const probe = typeof index === 'string' ? substitute(index, 'schema', 'table') : '';
    if (!INDEX_NAME.test(probe)) throw new ConfigError(`${where}.elasticsearch.index must be a lowercase index name, got ${JSON.stringify(index)}`);
  }
}

export function routerFromEnv(env: Env): Router {
  return new Router(getJson<RoutesConfig>(env, 'CDC_ROUTES', DEFAULT_ROUTES));
}
