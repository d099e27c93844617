/**
 * The table catalogue: one entry per source table (`schema.table`, or `"*"` for every other table)
 * saying what every sink does with it, each sink reading its own section:
 * - `keys`: the primary-key columns (ADX keeps the latest row per key);
 * - `history`: the per-column change history (columns, context, enabled), one section for both
 *   stores (the ADX history table and the Elasticsearch history index);
 * - `elasticsearch`: the index and its explicit field mapping;
 * - `adx`: the ADX table, its typed columns, mapping, history table, latest-state view and
 *   current-rows function (defaults and checks in src/shared/adx/config.ts).
 * Configured as JSON in `CDC_ROUTES`; the `"*"` entry's index uses `{schema}` and `{table}`, filled
 * with each name escaped (`indexNamePart`) so that no two tables share an index. Every table has its
 * own index: two entries naming one index, or an entry naming an index the `"*"` entry gives another
 * table, are refused at start-up (the Elasticsearch sink also refuses a second table at run time).
 * A table without an entry is a permanent failure for that record (dead-letter), not a retry; an
 * entry without a sink's section is skipped by that sink (ADX dead-letters it: it has no table).
 * `ADX_TABLE_ROUTES` (deprecated) is still read and merged into the `adx` sections.
 */
import { createHash } from 'node:crypto';
import { getJson, getOptionalString, type Env } from '../core/env.js';
import { ConfigError, PermanentRecordError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { KqlType } from '../adx/types.js';

export interface ElasticsearchRoute {
  /** Target index (lowercase; in the `"*"` entry with `{schema}` and `{table}`). */
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

/** The demo tables (`retail.orders_info` of the Kafka Connect → ADX demo, `bank.holding` of the per-field history demo), for every sink. */
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
    // Stock type and quantity, with the owning user as context: the questions of the per-field history demo.
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

/** What a configured index name (or the literal text of the `"*"` entry's) may hold. */
const INDEX_NAME = /^[a-z0-9][a-z0-9._-]*$/;
/** Elasticsearch's bound is 255 bytes, for the `-live` alias too: an index leaves room for its suffix. */
const MAX_INDEX_BYTES = 255 - '-live'.length;
const PLACEHOLDER = /\{(schema|table)\}/g;
/** Bounded wildcard indices end their last name with `~` + this many hex digits of a SHA-256. */
const HASH_HEX = 32;
/** The fewest bytes of each name a bounded wildcard index keeps (the template must leave room for them). */
const MIN_NAME_BYTES = 16;

/**
 * Whether a character of a PostgreSQL name stands for itself in an index name: letters that are
 * lower case already, digits, combining marks, `_` and `$` (so a plain lower-case name, quoted or
 * not, keeps the index it always had).
 */
function verbatim(char: string): boolean {
  return /^[\p{L}\p{N}\p{M}_$]$/u.test(char) && char.toLowerCase() === char;
}

/**
 * One PostgreSQL name (schema or table) as it goes into an Elasticsearch index name: every other
 * character — upper case (Elasticsearch wants lower case), `.` (the separator of the `"*"` entry's
 * names), `+` (the escape), `-` (the `-live` suffix), `~` (bounded names), and whatever Elasticsearch
 * refuses (`\ / * ? " < > | , # :`, spaces) — becomes `+XX` per UTF-8 byte, lower-case hex
 * (`App` → `+41pp`, `a.b` → `a+2eb`). Injective: two names never give the same text.
 */
export function indexNamePart(name: string): string {
  let out = '';
  for (const char of name) {
    if (verbatim(char)) out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `+${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The name `indexNamePart` made `part` from, or undefined when no name gives exactly `part`. */
function nameOfIndexPart(part: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < part.length;) {
    if (part[i] === '+') {
      const hex = part.slice(i + 1, i + 3);
      if (!/^[0-9a-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      const char = String.fromCodePoint(part.codePointAt(i)!);
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length;
    }
  }
  let name: string;
  try {
    name = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
  return indexNamePart(name) === part ? name : undefined;
}

/** The longest prefix of `text` (whole characters) of at most `bytes` UTF-8 bytes. */
function prefixOfBytes(text: string, bytes: number): string {
  let out = '';
  let used = 0;
  for (const char of text) {
    used += Buffer.byteLength(char);
    if (used > bytes) break;
    out += char;
  }
  return out;
}

/**
 * The `"*"` entry's index of `schema.table`: the template with both names escaped. Past
 * `MAX_INDEX_BYTES` (two long names, escaped, can be that long) each name is cut to an equal share and
 * the last one ends with `~` + a SHA-256 of the whole unbounded index, so the index still matches the
 * template's pattern, and no bounded index equals another table's (no unbounded index holds a `~`).
 */
function wildcardIndex(template: string, schema: string, table: string): string {
  const parts = { schema: indexNamePart(schema), table: indexNamePart(table) };
  const full = template.replace(PLACEHOLDER, (_, p: 'schema' | 'table') => parts[p]);
  if (Buffer.byteLength(full) <= MAX_INDEX_BYTES) return full;
  const hash = createHash('sha256').update(full, 'utf8').digest('hex').slice(0, HASH_HEX);
  const count = template.match(PLACEHOLDER)?.length ?? 0;
  const share = Math.floor((MAX_INDEX_BYTES - literalBytes(template) - 1 - HASH_HEX) / count);
  let seen = 0;
  return template.replace(PLACEHOLDER, (_, p: 'schema' | 'table') => {
    const cut = prefixOfBytes(parts[p], share);
    return ++seen === count ? `${cut}~${hash}` : cut;
  });
}

function literalBytes(template: string): number {
  return Buffer.byteLength(template.replace(PLACEHOLDER, ''));
}

/**
 * Why the `"*"` entry's index cannot give every table its own index, or undefined when it can. Its
 * literal text is a lowercase index name; it starts with it (an escaped name may start with `_`,
 * which Elasticsearch refuses first); it names `{schema}` and `{table}`, with a `.` between any two
 * placeholders (escaped names hold no `.`, so the names can be read back: no two tables collide);
 * and it leaves room for bounded names.
 */
function wildcardTemplateProblem(template: string): string | undefined {
  const literal = template.replace(PLACEHOLDER, 'x');
  if (!INDEX_NAME.test(literal) || template.startsWith('{')) return 'a lowercase index name that starts with a letter or digit';
  if (!template.includes('{schema}') || !template.includes('{table}'))
    return 'both {schema} and {table} (tables of the same name in two schemas, or every table, would share one index)';
  if (template.split('.').some((segment) => (segment.match(PLACEHOLDER)?.length ?? 0) > 1))
    return 'a "." between {schema} and {table} (e.g. cdc-{schema}.{table})';
  const count = template.match(PLACEHOLDER)?.length ?? 0;
  if (literalBytes(template) + 1 + HASH_HEX + count * MIN_NAME_BYTES > MAX_INDEX_BYTES)
    return `at most ${MAX_INDEX_BYTES - 1 - HASH_HEX - count * MIN_NAME_BYTES} bytes besides the placeholders`;
  return undefined;
}

/** A regular expression reading `{schema}` and `{table}` back out of the `"*"` entry's unbounded indices. */
function wildcardReader(template: string): RegExp {
  const seen = new Set<string>();
  const source = template
    .split(/(\{schema\}|\{table\})/)
    .map((piece) => {
      const placeholder = /^\{(schema|table)\}$/.exec(piece)?.[1];
      if (placeholder === undefined) return piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (seen.has(placeholder)) return `\\k<${placeholder}>`;
      seen.add(placeholder);
      return `(?<${placeholder}>[^.~]+)`;
    })
    .join('');
  return new RegExp(`^${source}$`, 'u');
}

/**
 * A table's name as PostgreSQL writes it: each part double-quoted unless it is a plain lower-case
 * identifier (`"App"."T"`, `"a.b".c`, `public.items`). Unambiguous, unlike `schema.table`.
 */
export function qualifiedName(schema: string, table: string): string {
  const quote = (name: string) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`);
  return `${quote(schema)}.${quote(table)}`;
}

/** The variable of a place (`CDC_ROUTES["a.b"]` → `CDC_ROUTES`, `ADX_TABLE_ROUTES[0]` → `ADX_TABLE_ROUTES`). */
export function variableOf(place: string): string {
  return place.replace(/\[.*$/, '');
}

export class Router {
  readonly #routes: ReadonlyMap<string, TableRoute>;
  readonly #wildcard: TableRoute | undefined;
  readonly #wildcardReader: RegExp | undefined;
  readonly #places: ReadonlyMap<string, string>;
  /** The `"*"` entry's routes filled so far, by `schema\u0000table` (one per table, so few). */
  readonly #filled = new Map<string, TableRoute>();

  /** `places`: where a table's `adx` section and keys came from when not `CDC_ROUTES` (see `placeOf`). */
  constructor(routes: RoutesConfig, places: ReadonlyMap<string, string> = new Map()) {
    if (typeof routes !== 'object' || routes === null || Array.isArray(routes)) {
      throw new ConfigError('CDC_ROUTES', 'a JSON object { "schema.table": route }', JSON.stringify(routes));
    }
    for (const [table, route] of Object.entries(routes)) validateRoute(table, route);
    this.#routes = new Map(Object.entries(routes).filter(([name]) => name !== '*'));
    this.#wildcard = routes['*'];
    const template = this.#wildcard?.elasticsearch?.index;
    this.#wildcardReader = template === undefined ? undefined : wildcardReader(template);
    this.#places = places;
    this.#refuseSharedIndices();
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
    const cacheKey = `${schema}\u0000${table}`;
    let route = this.#filled.get(cacheKey);
    if (route === undefined) {
      route = { ...wildcard };
      if (wildcard.elasticsearch) route.elasticsearch = { ...wildcard.elasticsearch, index: wildcardIndex(wildcard.elasticsearch.index, schema, table) };
      this.#filled.set(cacheKey, route);
    }
    return route;
  }

  /**
   * The table whose Elasticsearch index, or its `-live` alias, is called `name`: an entry's (its
   * `CDC_ROUTES` key), or the table the `"*"` entry puts there (its `qualifiedName`). Undefined
   * when no table can write there, so the name is free for other uses (control, history).
   */
  tableOfIndex(name: string): string | undefined {
    for (const [table, route] of this.#routes) {
      const index = route.elasticsearch?.index;
      if (index !== undefined && (name === index || name === `${index}-live`)) return table;
    }
    return this.#wildcardTableOf(name) ?? (name.endsWith('-live') ? this.#wildcardTableOf(name.slice(0, -'-live'.length)) : undefined);
  }

  /** The table the `"*"` entry puts into `index` (an unbounded one), unless an entry of its own routes it. */
  #wildcardTableOf(index: string): string | undefined {
    const groups = this.#wildcardReader?.exec(index)?.groups;
    if (!groups) return undefined;
    const schema = nameOfIndexPart(groups.schema ?? '');
    const table = nameOfIndexPart(groups.table ?? '');
    if (schema === undefined || table === undefined || this.#routes.has(`${schema}.${table}`)) return undefined;
    return qualifiedName(schema, table);
  }

  /**
   * Refuses a catalogue in which two tables share an Elasticsearch index or alias: two entries naming
   * one index (or one naming the other's `-live` alias), or an entry naming an index the `"*"` entry
   * gives another table. Their rows would mix, and a truncate of one soft-deletes the other's.
   */
  #refuseSharedIndices(): void {
    // Index sections come from CDC_ROUTES only (ADX_TABLE_ROUTES has none), so that is the place named.
    const at = (table: string) => `CDC_ROUTES["${table}"]`;
    const owners = new Map<string, string>();
    for (const [table, route] of this.#routes) {
      const index = route.elasticsearch?.index;
      if (index === undefined) continue;
      for (const name of [index, `${index}-live`]) {
        const other = owners.get(name);
        if (other !== undefined) throw sharedIndex(name, at(other), at(table), `give one of them its own elasticsearch.index`);
      }
      owners.set(index, table);
      owners.set(`${index}-live`, table);
      const wildcardTable = [index, `${index}-live`, ...(index.endsWith('-live') ? [index.slice(0, -'-live'.length)] : [])]
        .map((name) => this.#wildcardTableOf(name))
        .find((found) => found !== undefined);
      if (wildcardTable !== undefined) {
        throw sharedIndex(
          index,
          at(table),
          `table ${wildcardTable} (through CDC_ROUTES["*"])`,
          `give ${at(table)} an index the "*" entry cannot produce, or give ${wildcardTable} an entry of its own`,
        );
      }
    }
  }
}

function sharedIndex(index: string, first: string, second: string, fix: string): ConfigError {
  return new ConfigError(
    'CDC_ROUTES',
    `one Elasticsearch index per table, but ${first} and ${second} both write ${index} (their rows would mix, ` +
      `and a truncate of one soft-deletes the other's documents): ${fix}`,
    index,
  );
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
    const index: unknown = route.elasticsearch.index;
    const place = `${where}.elasticsearch.index`;
    if (table === '*') {
      const problem = typeof index === 'string' ? wildcardTemplateProblem(index) : 'a string';
      if (problem !== undefined) throw new ConfigError('CDC_ROUTES', `${problem} in ${place}`, JSON.stringify(index));
    } else if (typeof index !== 'string' || !INDEX_NAME.test(index) || Buffer.byteLength(index) > MAX_INDEX_BYTES) {
      // Placeholders belong to the "*" entry: an entry's index is used as written.
      throw new ConfigError('CDC_ROUTES', `a lowercase index name of at most ${MAX_INDEX_BYTES} bytes (no placeholders) in ${place}`, JSON.stringify(index));
    }
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
