/**
 * Reader configuration: every setting comes from an environment variable, is validated once at
 * start-up, and a bad value fails fast naming the variable and what it expects.
 */
import { availableParallelism } from 'node:os';
import { getInt, getOneOf, getOptionalString, getString, type Env } from '../shared/core/env.js';
import { appInsightsConnectionString } from '../shared/core/appInsights.js';
import { ConfigError } from '../shared/core/errors.js';
import { pgSettingsFromEnv, type PgSettings } from '../shared/core/postgres.js';
import { kafkaSettingsFromEnv, type KafkaSettings } from '../shared/core/kafka.js';
import { DEBEZIUM_DEFAULTS, type DebeziumSettings } from './encode/debezium.js';

export { ConfigError };

export type SnapshotMode = 'initial' | 'never' | 'initial_only';
/** What a schema change that is not purely additive starts (docs/reader.md "Incremental snapshots"). */
export type SchemaChangeSnapshot = 'auto' | 'manual' | 'off';
/** `native`: the reader's own event (docs/reader.md "The event"); `debezium`: what Debezium's connector writes. */
export type EventFormat = 'native' | 'debezium';
/**
 * `tables`: the publication lists tables (CDC_TABLES, or every table with a usable replica identity), so
 * PostgreSQL never refuses a write because of it; `all-tables`: `FOR ALL TABLES` (opt-in: PostgreSQL then
 * refuses UPDATE and DELETE on any table without a replica identity). docs/reader.md "Publication".
 */
export type PublicationMode = 'tables' | 'all-tables';

export interface TableRef {
  schema: string;
  table: string;
}

export interface ReaderConfig {
  /** The libpq variables, PGSSLMODE with libpq's meaning (src/shared/core/postgres.ts). */
  pg: PgSettings;
  slotName: string;
  publicationName: string;
  /** null = every table that has a usable replica identity (or, in `all-tables` mode, every table). */
  tables: TableRef[] | null;
  publicationMode: PublicationMode;
  /** How often the reader adds new qualifying tables and checks the publications (0 = at start-up only). */
  publicationRefreshMs: number;
  snapshotMode: SnapshotMode;
  snapshotChunkRows: number;
  /** CDC_SCHEMA_CHANGE_SNAPSHOT: auto (start an incremental snapshot), manual (log the command), off. */
  schemaChangeSnapshot: SchemaChangeSnapshot;
  /** Connections reading snapshot chunks at once (they share one snapshot). */
  snapshotParallelism: number;
  /** Threads reading and encoding the native format's snapshot ranges on connections of their own (CDC_SNAPSHOT_READER_THREADS); 0: none. */
  snapshotReaderThreads: number;
  stateSchema: string;
  serverName: string;
  topic: string;
  /** `{prefix}`, `{schema}`, `{table}` placeholders; null = every table to `topic`. */
  topicTemplate: string | null;
  eventFormat: EventFormat;
  /** `CDC_DEBEZIUM_SETTINGS` over Debezium's defaults (used with `eventFormat: 'debezium'` only). */
  debezium: DebeziumSettings;
  /** The shared connection settings (src/shared/core/kafka.ts) plus the reader's record size limit. */
  kafka: KafkaSettings & { maxMessageBytes: number };
  maxInflightBytes: number;
  statusIntervalMs: number;
  heartbeatIntervalMs: number;
  /** Claim-check Blob store for events too large for the hub (the DEADLETTER_* variables keep their historic names). */
  claimCheck: { connectionString: string | undefined; accountUrl: string | undefined; container: string };
  healthPort: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  appInsightsConnectionString: string | undefined;
  /** OpenTelemetry metric export (used only with `appInsightsConnectionString`). */
  otel: { exportIntervalMs: number; serviceName: string };
}

/** Slot names: PostgreSQL allows lower-case letters, digits and underscores only. */
function slotName(env: Env, name: string, fallback: string): string {
  const v = getString(env, name, fallback);
  if (!/^[a-z0-9_]{1,63}$/.test(v)) throw new ConfigError(name, 'lower-case letters, digits and _ (at most 63)', v);
  return v;
}

/**
 * Parses `schema.table` entries separated by commas. A part may be double-quoted to hold dots,
 * commas or upper case (`"My Schema"."Weird Name"`); unquoted parts are folded to lower case as
 * PostgreSQL does.
 */
export function parseTableList(raw: string, variable = 'CDC_TABLES'): TableRef[] {
  const out: TableRef[] = [];
  let i = 0;
  const parts: string[] = [];
  let current = '';
  const fail = (): never => {
    throw new ConfigError(variable, 'a comma-separated list of schema.table (quote parts with "")', raw);
  };
  const flushPart = (quoted: boolean) => {
    if (!quoted) current = current.trim().toLowerCase();
    if (current === '') fail();
    parts.push(current);
    current = '';
  };
  const flushEntry = () => {
    if (parts.length !== 2) fail();
    out.push({ schema: parts[0]!, table: parts[1]! });
    parts.length = 0;
  };
  while (i < raw.length) {
    const ch = raw[i]!;
    if (ch === '"' && current.trim() === '') {
      let j = i + 1;
      let v = '';
      for (;;) {
        if (j >= raw.length) fail();
        if (raw[j] === '"') {
          if (raw[j + 1] === '"') {
            v += '"';
            j += 2;
            continue;
          }
          break;
        }
        v += raw[j];
        j++;
      }
      current = v;
      i = j + 1;
      while (i < raw.length && raw[i] === ' ') i++;
      if (i < raw.length && raw[i] !== '.' && raw[i] !== ',') fail();
      if (i >= raw.length) {
        flushPart(true);
        break;
      }
      flushPart(true);
      if (raw[i] === ',') flushEntry();
      i++;
      if (i >= raw.length && raw[i - 1] === '.') fail();
      continue;
    }
    if (ch === '.') {
      flushPart(false);
    } else if (ch === ',') {
      flushPart(false);
      flushEntry();
    } else {
      current += ch;
    }
    i++;
  }
  if (current.trim() !== '') flushPart(false);
  if (parts.length > 0) flushEntry();
  if (out.length === 0) fail();
  return out;
}

const DEBEZIUM_VAR = 'CDC_DEBEZIUM_SETTINGS';

/** Debezium properties the reader implements, each with the values it supports (Debezium's default first). */
const DEBEZIUM_MODES = {
  'decimal.handling.mode': ['precise', 'string'],
  'time.precision.mode': ['adaptive', 'isostring'],
  'interval.handling.mode': ['numeric', 'string'],
  'binary.handling.mode': ['bytes', 'base64'],
  'tombstones.on.delete': ['true', 'false'],
  'value.converter.schemas.enable': ['false', 'true'],
  'key.converter.schemas.enable': ['false', 'true'],
} as const;
const DEBEZIUM_OPS = ['c', 'u', 'd', 't'];
const DEBEZIUM_KEYS = [...Object.keys(DEBEZIUM_MODES), 'skipped.operations', 'unavailable.value.placeholder'];

/**
 * `CDC_DEBEZIUM_SETTINGS`: Debezium connector properties by their own names, so a connector
 * configuration carries over as it is. Either one line (`a=x,b=y`) or properties form (one per line,
 * `#` comments). A comma-separated value (`skipped.operations=t,d`) stays whole: a part without `=`
 * continues the previous value. Unknown properties and unsupported values are refused, naming them.
 */
export function parseDebeziumSettings(raw: string | undefined): DebeziumSettings {
  const s: DebeziumSettings = { ...DEBEZIUM_DEFAULTS };
  if (raw === undefined) return s;
  const entries: [string, string][] = [];
  for (const line of raw.split(/\r?\n/)) {
    const text = line.trim();
    if (text === '' || text.startsWith('#') || text.startsWith('!')) continue;
    for (const part of text.split(',')) {
      const i = part.indexOf('=');
      const last = entries[entries.length - 1];
      if (i < 0 && last !== undefined) last[1] += `,${part.trim()}`;
      else if (i < 0) throw new ConfigError(DEBEZIUM_VAR, 'property=value entries separated by commas or new lines', raw);
      else entries.push([part.slice(0, i).trim(), part.slice(i + 1).trim()]);
    }
  }
  for (const [key, value] of entries) {
    if (key in DEBEZIUM_MODES) {
      const allowed: readonly string[] = DEBEZIUM_MODES[key as keyof typeof DEBEZIUM_MODES];
      const v = value.toLowerCase();
      if (!allowed.includes(v)) throw new ConfigError(DEBEZIUM_VAR, `${key} one of ${allowed.join(', ')} (the supported values)`, value);
      if (key === 'decimal.handling.mode') s.decimalHandlingMode = v as DebeziumSettings['decimalHandlingMode'];
      else if (key === 'time.precision.mode') s.timePrecisionMode = v as DebeziumSettings['timePrecisionMode'];
      else if (key === 'interval.handling.mode') s.intervalHandlingMode = v as DebeziumSettings['intervalHandlingMode'];
      else if (key === 'binary.handling.mode') s.binaryHandlingMode = v as DebeziumSettings['binaryHandlingMode'];
      else if (key === 'value.converter.schemas.enable') s.valueSchemasEnable = v === 'true';
      else if (key === 'key.converter.schemas.enable') s.keySchemasEnable = v === 'true';
      else s.tombstonesOnDelete = v === 'true';
    } else if (key === 'skipped.operations') {
      const ops = value
        .split(',')
        .map((o) => o.trim().toLowerCase())
        .filter(Boolean);
      if (ops.length === 1 && ops[0] === 'none') s.skippedOperations = new Set();
      else if (ops.length > 0 && ops.every((o) => DEBEZIUM_OPS.includes(o))) s.skippedOperations = new Set(ops);
      else throw new ConfigError(DEBEZIUM_VAR, `skipped.operations none or a list of ${DEBEZIUM_OPS.join(', ')}`, value);
    } else if (key === 'unavailable.value.placeholder') {
      s.unavailableValuePlaceholder = value;
    } else {
      throw new ConfigError(DEBEZIUM_VAR, `supported properties only (${DEBEZIUM_KEYS.join(', ')})`, key);
    }
  }
  return s;
}

/** Every value that must never reach a log line or an error message. */
export function secretsOf(config: ReaderConfig): string[] {
  return [config.pg.password, config.kafka.saslPassword, config.claimCheck.connectionString, config.appInsightsConnectionString].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
}

export function loadConfig(env: Env = process.env): ReaderConfig {
  const kafka = kafkaSettingsFromEnv(env, { clientId: 'pg-cdc-reader' });
  const maxMessageBytes = getInt(env, 'KAFKA_MAX_MESSAGE_BYTES', 1_000_000, { min: 1024, max: 1_046_527 });
  const tablesRaw = getOptionalString(env, 'CDC_TABLES');
  const eventFormat = getOneOf<EventFormat>(env, 'CDC_EVENT_FORMAT', ['native', 'debezium'], 'native');
  const debeziumRaw = getOptionalString(env, DEBEZIUM_VAR);
  if (debeziumRaw !== undefined && eventFormat !== 'debezium') {
    // Silently ignored settings would look applied.
    throw new ConfigError(DEBEZIUM_VAR, 'to be unset unless CDC_EVENT_FORMAT=debezium', debeziumRaw);
  }
  // Debezium's topic naming (`topic.prefix`.schema.table) unless a template says otherwise.
  const topicTemplate = getOptionalString(env, 'CDC_TOPIC_TEMPLATE') ?? (eventFormat === 'debezium' ? '{prefix}.{schema}.{table}' : null);
  if (topicTemplate !== null && !topicTemplate.includes('{table}')) {
    throw new ConfigError('CDC_TOPIC_TEMPLATE', 'a template containing {table} (and optionally {prefix}, {schema})', topicTemplate);
  }
  const dlCs = getOptionalString(env, 'DEADLETTER_CONNECTION_STRING') ?? getOptionalString(env, 'AZURE_STORAGE_CONNECTION_STRING');
  const dlUrl = getOptionalString(env, 'DEADLETTER_ACCOUNT_URL');
  if (dlUrl !== undefined && !/^https?:\/\//.test(dlUrl)) throw new ConfigError('DEADLETTER_ACCOUNT_URL', 'an https:// Blob service URL', dlUrl);
  const container = getString(env, 'DEADLETTER_CONTAINER', 'cdc-deadletter');
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(container))
    throw new ConfigError('DEADLETTER_CONTAINER', 'a Blob container name (3-63 lower-case letters, digits, -)', container);
  const stateSchema = getString(env, 'CDC_STATE_SCHEMA', 'cdc_reader');
  const tables = tablesRaw === undefined || tablesRaw === '*' ? null : parseTableList(tablesRaw);
  const publicationMode = getOneOf<PublicationMode>(env, 'CDC_PUBLICATION_MODE', ['tables', 'all-tables'], 'tables');
  // FOR ALL TABLES publishes every table: with a list it would stream tables the list leaves out.
  if (publicationMode === 'all-tables' && tables !== null)
    throw new ConfigError(
      'CDC_PUBLICATION_MODE',
      'tables (the default) when CDC_TABLES lists tables; all-tables only with CDC_TABLES unset or *',
      publicationMode,
    );

  // Replaced (encoding threads no longer paid once chunks were written a buffer at a time): a setting that did something must not be ignored silently.
  const encoders = env.CDC_SNAPSHOT_ENCODERS?.trim();
  if (encoders !== undefined && encoders !== '' && encoders !== '0')
    throw new ConfigError(
      'CDC_SNAPSHOT_ENCODERS',
      'unset: it was replaced by CDC_SNAPSHOT_READER_THREADS (threads that read and encode snapshot ranges)',
      encoders,
    );
  return {
    pg: pgSettingsFromEnv(env),
    slotName: slotName(env, 'CDC_SLOT', 'pg_cdc_reader'),
    publicationName: getString(env, 'CDC_PUBLICATION', 'pg_cdc_publication'),
    tables,
    publicationMode,
    publicationRefreshMs: getInt(env, 'CDC_PUBLICATION_REFRESH_MS', 60_000, { min: 0, max: 86_400_000 }),
    snapshotMode: getOneOf<SnapshotMode>(env, 'CDC_SNAPSHOT_MODE', ['initial', 'never', 'initial_only'], 'initial'),
    snapshotChunkRows: getInt(env, 'CDC_SNAPSHOT_CHUNK_ROWS', 5000, { min: 1, max: 1_000_000 }),
    schemaChangeSnapshot: getOneOf<SchemaChangeSnapshot>(env, 'CDC_SCHEMA_CHANGE_SNAPSHOT', ['auto', 'manual', 'off'], 'auto'),
    snapshotParallelism: getInt(env, 'CDC_SNAPSHOT_PARALLELISM', Math.min(32, availableParallelism()), { min: 1, max: 32 }),
    snapshotReaderThreads: getInt(env, 'CDC_SNAPSHOT_READER_THREADS', 0, { min: 0, max: 8 }),
    stateSchema,
    serverName: getString(env, 'CDC_SERVER_NAME', 'pgcdc'),
    topic: getString(env, 'CDC_TOPIC', 'cdc-events'),
    topicTemplate,
    eventFormat,
    debezium: parseDebeziumSettings(debeziumRaw),
    kafka: { ...kafka, maxMessageBytes },
    maxInflightBytes: getInt(env, 'CDC_MAX_INFLIGHT_BYTES', 8 * 1024 * 1024, { min: 1024 * 1024, max: 1024 * 1024 * 1024 }),
    statusIntervalMs: getInt(env, 'CDC_STATUS_INTERVAL_MS', 10_000, { min: 100, max: 600_000 }),
    heartbeatIntervalMs: getInt(env, 'CDC_HEARTBEAT_INTERVAL_MS', 0, { min: 0, max: 3_600_000 }),
    claimCheck: { connectionString: dlCs, accountUrl: dlUrl, container },
    healthPort: getInt(env, 'HEALTH_PORT', 8080, { min: 0, max: 65535 }),
    logLevel: getOneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'], 'info'),
    appInsightsConnectionString: appInsightsConnectionString(env),
    otel: {
      // The standard OpenTelemetry SDK variable (milliseconds, default 60000).
      exportIntervalMs: getInt(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, { min: 500, max: 3_600_000 }),
      serviceName: getString(env, 'OTEL_SERVICE_NAME', 'pg-cdc-reader'),
    },
  };
}
