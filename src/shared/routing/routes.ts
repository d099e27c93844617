/**
 * Which source table goes to which Elasticsearch index (+ explicit field mapping) and which columns
 * the change history keeps as context. (ADX routing is `ADX_TABLE_ROUTES`, owned by the ADX sink.) Configured as JSON in
 * `CDC_ROUTES`; a `"*"` entry catches every other table, with `{schema}` and `{table}` placeholders.
 * A table without a route is a permanent failure for that record (dead-letter), not a retry.
 */
import { getJson, type Env } from '../core/env.js';
import { ConfigError, PermanentRecordError } from '../core/errors.js';

export interface ElasticsearchRoute {
  /** Target index (lowercase). */
  index: string;
  /** Explicit field mappings for the table's columns (`properties` of the index mapping). */
  properties?: Record<string, unknown>;
}

/** Same meaning as `historyColumns` / `historyContext` of the ADX routes. */
export interface HistoryRoute {
  /** Columns tracked in the change history. Default: every column that is not part of the key. */
  columns?: string[];
  /** Columns copied into every change-history row's `Context` (e.g. `user_id`), to filter by. */
  context?: string[];
  /** Set false to keep the table out of the change history. */
  enabled?: boolean;
}

/** ADX routes live in `ADX_TABLE_ROUTES` (see `src/shared/adx/config.ts`). */
export interface TableRoute {
  elasticsearch?: ElasticsearchRoute;
  history?: HistoryRoute;
}

export type RoutesConfig = Record<string, TableRoute>;

/** The source document's tables, routed like the source documents do. */
export const DEFAULT_ROUTES: RoutesConfig = {
  'retail.orders_info': {
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
    history: { columns: ['holding_stock', 'holding_quantity'], context: ['user_id'] },
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
    if (wildcard.elasticsearch) {
      route.elasticsearch = { ...wildcard.elasticsearch, index: substitute(wildcard.elasticsearch.index, schema, table).toLowerCase() };
    }
    return route;
  }
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
}

export function routerFromEnv(env: Env): Router {
  return new Router(getJson<RoutesConfig>(env, 'CDC_ROUTES', DEFAULT_ROUTES));
}
