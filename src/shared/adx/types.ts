/** Types shared by the ADX (Kusto) sink, its setup commands and its configuration. */
import type { HistoryRoute } from '../routing/routes.js';

/** The scalar types an ADX column can have. */
export const KQL_TYPES = ['bool', 'datetime', 'decimal', 'dynamic', 'guid', 'int', 'long', 'real', 'string', 'timespan'] as const;
export type KqlType = (typeof KQL_TYPES)[number];

export interface ColumnDef {
  name: string;
  type: KqlType;
}

/** A table's catalogue entry as the ADX sink uses it: its `adx` section with the defaults filled, its keys and history. */
export interface AdxTableRoute {
  /** Source table, `schema.table` (as `tableId()` of the change event). */
  source: string;
  table: string;
  /** ADX names of the key columns (`adxColumnName` of the catalogue's `keys`). */
  keys: string[];
  /** The declared columns with their ADX names (`adxColumnName`) and types, in table order. */
  columns: ColumnDef[];
  /** The declared columns' PostgreSQL names (what the change events and the history pivot use). */
  sourceColumns: string[];
  mapping: string;
  /** Null when the table has no change history in ADX. */
  historyTable: string | null;
  historyMapping: string | null;
  /** The catalogue's history section (the same for the Elasticsearch history). */
  history: HistoryRoute;
  latestView: string;
  currentFunction: string;
}

export interface IngestionBatchingPolicy {
  MaximumBatchingTimeSpan: string;
  MaximumNumberOfItems: number;
  MaximumRawDataSizeMB: number;
}

export type AdxIngestionMode = 'queued' | 'managed-streaming' | 'inline';
export type AdxAuth = 'managed-identity' | 'default' | 'app-key' | 'none';

export interface AdxAuthConfig {
  kind: AdxAuth;
  /** Managed identity (user-assigned) or application client id. */
  clientId?: string;
  tenantId?: string;
  /** Application key; never logged (see `describeAdxConfig`). */
  clientSecret?: string;
}

export interface AdxConfig {
  clusterUrl: string;
  ingestUrl: string;
  database: string;
  mode: AdxIngestionMode;
  auth: AdxAuthConfig;
  routes: AdxTableRoute[];
  batching: IngestionBatchingPolicy;
  /** Folder for the tables, views and functions the setup creates. */
  folder: string;
  /**
   * Per-database table of truncates (`TRUNCATE_COLUMNS`): one row per `t` event; each route's
   * current-rows function leaves out rows below its table's latest truncate. Default `CdcTruncates`.
   */
  truncatesTable: string;
}
