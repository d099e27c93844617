/**
 * The ADX sink, a `Sink` of the batch core. `prepare` (pure, per record) finds the table's route and
 * shapes the event into its table row, history rows or truncates row, so a record that cannot be
 * shaped is dead-lettered alone. `write` ingests the invocation's rows once per ADX table, JSON lines
 * with a named mapping, tagged for redelivery (see `idempotency.ts`); new source columns are added to
 * the table and its mapping before the batch that carries them is ingested. A truncate is a row in
 * the truncates table (its LSN hides the table's older rows in the current-rows function) and a
 * history row.
 */
import { keyOf } from '../events/documentId.js';
import type { BatchInfo, EventRecord, PreparedRecord, RecordOutcome, Sink, SinkWriteContext } from '../batch/types.js';
import { controlMessage } from '../events/controlMessage.js';
import { schemaChangeRow } from '../history/pivot.js';
import type { Env } from '../core/env.js';
import { describeError, PermanentRecordError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { tableId, type ChangeEvent } from '../events/changeEvent.js';
import { createClients, type ControlClient, type Ingestor } from './clients.js';
import { alterMergeCommand, mappingCommand, showSchemaCommand, type AdxCommand } from './commands.js';
import { DEFAULT_TRUNCATES_TABLE, describeAdxConfig, loadAdxConfig } from './config.js';
import { toAdxSinkError } from './errors.js';
import { adxValue, rawColumnName, rawText, UNFIT } from './columnTypes.js';
import { deterministicSourceId, ingestionTag } from './idempotency.js';
import { columnTypes, toHistoryJsonLines, toHistoryRow, toHistoryRows, toJsonLines, toMarkRow, toTableRow, toTruncateRow, type AdxRow } from './rows.js';
import { CDC_COLUMN_NAMES, findNewColumns, parseSchemaRows, tableColumns, truncatesMapping, versionedMappingName } from './schema.js';
import type { AdxConfig, AdxTableRoute, ColumnDef, KqlType } from './types.js';

export interface AdxSinkOptions {
  /** `truncatesTable` defaults to `CdcTruncates` (as `ADX_TRUNCATES_TABLE`). */
  config: Pick<AdxConfig, 'routes'> & Partial<Pick<AdxConfig, 'truncatesTable'>>;
  ingestor: Ingestor;
  control: ControlClient;
}

/** What `prepare` makes of one change event: its rows, by the ADX table they go to. */
export interface AdxRecordRows {
  route: AdxTableRoute;
  /** The table row (null for a truncate). */
  row: AdxRow | null;
  /** The history table's rows (none for a snapshot read, or without a history table). */
  history: AdxRow[];
  /** The truncates table's row of a truncate. */
  truncate: AdxRow | null;
  /** The ADX types of the row's columns from `source.types` (for columns the table does not have yet). */
  types: ReadonlyMap<string, KqlType>;
  /** A schema change of the table: read the table's columns (and their types) before its next rows. */
  schemaChange?: boolean;
}

export class AdxSink implements Sink<AdxRecordRows> {
  readonly name = 'adx';
  private readonly routes: ReadonlyMap<string, AdxTableRoute>;
  private readonly truncatesTable: string;
  /** Columns added at run time, per ADX table (the declared ones come from the route). */
  private readonly discovered = new Map<string, ColumnDef[]>();
  /** Mapping this process ingests with, per ADX table, once it has added a column (default: the route's). */
  private readonly mappings = new Map<string, string>();

  constructor(private readonly options: AdxSinkOptions) {
    this.routes = new Map(options.config.routes.map((route) => [route.source, route]));
    this.truncatesTable = options.config.truncatesTable ?? DEFAULT_TRUNCATES_TABLE;
  }

  prepare(event: ChangeEvent): AdxRecordRows | null {
    const source = tableId(event.source);
    const route = this.routes.get(source);
    if (route === undefined) throw new PermanentRecordError('UNKNOWN_TABLE', `No ADX route for table ${source} (it has no adx section in CDC_ROUTES)`);
    if (event.op !== 't') keyOf(event); // the key rule of every sink (NO_KEY)
    const rows: AdxRecordRows = {
      route,
      row: toTableRow(event, route),
      history: toHistoryRows(event, route),
      truncate: toTruncateRow(event, route),
      types: columnTypes(event),
    };
    return rows.row === null && rows.history.length === 0 && rows.truncate === null ? null : rows;
  }

  /**
   * Control events of a routed table. A schema change is one history row, like a truncate: the
   * reader sends a copy to every partition, and ADX does not drop duplicates of other batches, so the
   * copy of partition 0 writes it; and it makes the sink read the table's columns again. A key change
   * and the start and end of a full incremental snapshot are marks in the truncates table, one per
   * partition's copy (`toMarkRow`: the key change hides the old-key rows once a snapshot after it is
   * done everywhere). Other control events, and tables without an ADX route: nothing.
   */
  prepareMessage(event: ChangeEvent, record: EventRecord): AdxRecordRows | null {
    const message = controlMessage(event);
    if (message === null) return null;
    const route = this.routes.get(tableId(event.source));
    if (route === undefined) return null;
    const schemaChange = message.kind === 'schema_change';
    const history =
      schemaChange && record.partitionId === '0' && route.historyTable !== null ? schemaChangeRow(event, message, route.history).map(toHistoryRow) : [];
    const truncate = toMarkRow(event, route, message, record.partitionId);
    if (!schemaChange && truncate === null) return null;
    return { route, row: null, history, truncate, types: new Map(), schemaChange };
  }

  /**
   * One group per source table, in batch order: its table, history and truncates rows share the
   * group's tag. A failing group takes all its records down the error's path (retry when `canRetry`,
   * dead-letter otherwise); the tables it wrote before failing are skipped on the retry by their tags.
   */
  async write(records: readonly PreparedRecord<AdxRecordRows>[], batch: BatchInfo, context: SinkWriteContext): Promise<ReadonlyMap<number, RecordOutcome>> {
    const groups = new Map<AdxTableRoute, PreparedRecord<AdxRecordRows>[]>();
    for (const record of records) {
      const group = groups.get(record.item.route);
      if (group) group.push(record);
      else groups.set(record.item.route, [record]);
    }
    const outcomes = new Map<number, RecordOutcome>();
    for (const [route, group] of groups) {
      try {
        await this.writeRoute(route, group, batch, context.logger);
      } catch (error) {
        const failure = toAdxSinkError(error, 'ADX write', { table: route.table, sourceTable: route.source });
        const outcome: RecordOutcome = failure.canRetry
          ? { status: 'retry', error: failure }
          : { status: 'deadLetter', reason: describeError(failure), error: failure };
        for (const { index } of group) outcomes.set(index, outcome);
      }
    }
    return outcomes;
  }

  private async writeRoute(route: AdxTableRoute, group: readonly PreparedRecord<AdxRecordRows>[], batch: BatchInfo, logger: Logger): Promise<void> {
    const rows = group.flatMap(({ item }) => (item.row === null ? [] : [item.row]));
    const history = group.flatMap(({ item }) => item.history);
    const truncates = group.flatMap(({ item }) => (item.truncate === null ? [] : [item.truncate]));
    // Names exactly the records whose rows go in (see idempotency.ts): a retry with more of them is not skipped.
    const tag = ingestionTag(
      route.source,
      batch,
      group.map(({ record }) => record),
    );
    // After a schema change the table's columns are read again, so the types of the columns this
    // process did not declare or add are known: a value its column's type cannot hold then goes to
    // `__raw_<column>` (fitKnownTypes), as it does for declared columns, instead of ADX nulling it.
    if (group.some(({ item }) => item.schemaChange === true)) await this.readColumns(route);
    if (rows.length > 0) {
      this.fitKnownTypes(route, rows);
      // The first record naming a column's type decides (a table's types change only with its schema).
      const types = new Map<string, KqlType>();
      for (const { item } of group) for (const [name, type] of item.types) if (!types.has(name)) types.set(name, type);
      await this.ensureColumns(route, rows, types, logger);
      await this.ingest(route, route.table, this.mappings.get(route.table) ?? route.mapping, rows, tag, logger);
    }
    if (history.length > 0 && route.historyTable !== null && route.historyMapping !== null) {
      await this.ingest(route, route.historyTable, route.historyMapping, history, tag, logger, toHistoryJsonLines);
    }
    if (truncates.length > 0) {
      // Same tag as the table's rows: a redelivered batch is skipped here too (per target table).
      await this.ingest(route, this.truncatesTable, truncatesMapping(this.truncatesTable), truncates, tag, logger);
      logger.info(`ADX: ${truncates.map((t) => `${String(t.Kind)} of ${route.source} at LSN ${String(t.Lsn)}`).join(', ')} recorded in ${this.truncatesTable}`);
    }
  }

  /** The table's columns as ADX reports them, beyond the declared and CDC ones, become the known ones (nothing if it cannot be read). */
  private async readColumns(route: AdxTableRoute): Promise<void> {
    let reported: ColumnDef[];
    try {
      reported = parseSchemaRows(await this.options.control.execute(showSchemaCommand(route.table).text));
    } catch (error) {
      throw toAdxSinkError(error, `ADX ${showSchemaCommand(route.table).description}`, { table: route.table, sourceTable: route.source });
    }
    if (reported.length === 0) return;
    const declared = new Set([...route.columns.map((c) => c.name), ...CDC_COLUMN_NAMES]);
    this.discovered.set(
      route.table,
      reported.filter((c) => !declared.has(c.name)),
    );
  }

  /**
   * Values of known, undeclared columns that their column's ADX type cannot hold (a column whose
   * PostgreSQL type changed: text in a `long` column): null in the typed column, the text in
   * `__raw_<column>` (a `string` column, added like any new column). Declared columns are handled
   * when the row is made (`toTableRow`).
   */
  private fitKnownTypes(route: AdxTableRoute, rows: AdxRow[]): void {
    const known = this.discovered.get(route.table);
    if (known === undefined || known.length === 0) return;
    const keys = new Set(route.keys);
    for (const { name, type } of known) {
      if (keys.has(name) || name.startsWith('__')) continue;
      for (const row of rows) {
        const value = row[name];
        if (value === null || value === undefined || adxValue(type, value) !== UNFIT) continue;
        row[name] = null;
        row[rawColumnName(name)] = rawText(value);
      }
    }
  }

  private knownColumns(route: AdxTableRoute): ColumnDef[] {
    return [...route.columns, ...(this.discovered.get(route.table) ?? [])];
  }

  /**
   * `.alter-merge table` for columns the table does not have yet, then a mapping of the table's schema
   * as ADX reports it (so columns another process or an earlier run added stay mapped; the columns this
   * process knows if the schema cannot be read), named after its columns (`versionedMappingName`):
   * this process ingests with that mapping from now on. The route's mapping (declared columns, written
   * by `adx:setup`) is left alone, so no instance can overwrite the mapping another one relies on.
   */
  private async ensureColumns(route: AdxTableRoute, rows: readonly AdxRow[], types: ReadonlyMap<string, KqlType>, logger: Logger): Promise<void> {
    const known = this.knownColumns(route);
    const added = findNewColumns(rows, new Set(known.map((c) => c.name)), types);
    if (added.length === 0) return;
    // The current-rows function fills unchanged TOAST values of the columns it was generated with.
    logger.info(
      `ADX: new columns on ${route.table}: ${added.map((c) => `${c.name}:${c.type}`).join(', ')} ` +
        `(${route.currentFunction}() fills their unchanged TOAST values once adx:setup has run again)`,
    );
    const run = async (command: AdxCommand): Promise<Record<string, unknown>[]> => {
      try {
        return await this.options.control.execute(command.text);
      } catch (error) {
        throw toAdxSinkError(error, `ADX ${command.description}`, { table: route.table, sourceTable: route.source });
      }
    };
    await run(alterMergeCommand(route, added));
    const reported = parseSchemaRows(await run(showSchemaCommand(route.table)));
    const columns = reported.length > 0 ? reported : tableColumns(route, [...known, ...added]);
    const mapping = versionedMappingName(route.mapping, columns);
    await run(mappingCommand(route.table, mapping, columns));
    this.mappings.set(route.table, mapping);
    const declared = new Set([...route.columns.map((c) => c.name), ...CDC_COLUMN_NAMES]);
    const extra = new Map([...known, ...added, ...columns].filter((c) => !declared.has(c.name)).map((c) => [c.name, c] as const));
    this.discovered.set(route.table, [...extra.values()]);
  }

  private async ingest(
    route: AdxTableRoute,
    table: string,
    mapping: string,
    rows: readonly AdxRow[],
    tag: string,
    logger: Logger,
    jsonLines: (rows: readonly AdxRow[]) => Buffer = toJsonLines,
  ): Promise<void> {
    const data = jsonLines(rows);
    try {
      await this.options.ingestor.ingest({ table, mapping, data, rows: rows.length, tag, sourceId: deterministicSourceId(table, tag) });
    } catch (error) {
      throw toAdxSinkError(error, `ADX ${this.options.ingestor.mode} ingestion of ${rows.length} rows`, { table, sourceTable: route.source });
    }
    logger.debug(`ADX: ${this.options.ingestor.mode} ingestion of ${rows.length} rows into ${table} (${tag})`);
  }

  close(): void {
    this.options.ingestor.close();
    this.options.control.close();
  }
}

/**
 * Reads and validates the ADX settings (throws `ConfigError` naming the variable) and connects. The
 * configuration (secret masked) and a deprecated `ADX_TABLE_ROUTES` are reported on `logger`.
 */
export function createAdxSinkFromEnv(env: Env, options: { logger?: Logger } = {}): AdxSink {
  const logger = options.logger ?? silentLogger;
  const config = loadAdxConfig(env, logger);
  logger.info('ADX sink', describeAdxConfig(config));
  return new AdxSink({ config, ...createClients(config) });
}
