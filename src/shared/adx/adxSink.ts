/**
 * The ADX sink: one ingestion per ADX table per invocation, JSON lines with a named mapping, tagged
 * for redelivery (see `idempotency.ts`). New source columns are added to the table and its mapping
 * before the batch that carries them is ingested. A truncate is a row in the truncates table (its
 * LSN hides the table's older rows in the current-rows function) and a history row.
 */
import { createHash } from 'node:crypto';
import { silentLogger, type Logger } from '../core/logger.js';
import { alterMergeCommand, mappingCommand, showSchemaCommand, type AdxCommand } from './commands.js';
import { AdxBatchWriteError, AdxSinkError, toAdxSinkError, type AdxTableFailure } from './errors.js';
import { deterministicSourceId, ingestionTag } from './idempotency.js';
import { DEFAULT_TRUNCATES_TABLE } from './config.js';
import { isChangeEvent, isPointerWithoutImage, toHistoryRows, toTableRow, toTruncateRow, type AdxRow } from './rows.js';
import { CDC_COLUMN_NAMES, inferKqlType, tableColumns, truncatesMapping } from './schema.js';
import { KQL_TYPES } from './types.js';
import type { ControlClient, Ingestor } from './clients.js';
import type { AdxBatch, AdxConfig, AdxTableRoute, AdxTableWrite, ColumnDef } from './types.js';

export interface AdxSinkOptions {
  /** `truncatesTable` defaults to `CdcTruncates` (as `ADX_TRUNCATES_TABLE`). */
  config: Pick<AdxConfig, 'routes' | 'database' | 'mode'> & Partial<Pick<AdxConfig, 'truncatesTable'>>;
  ingestor: Ingestor;
  control: ControlClient;
  logger?: Logger;
}

/** JSON lines; bigint values (int8 beyond 2^53, if a producer sends them) become strings. */
export function toJsonLines(rows: readonly AdxRow[]): Buffer {
  let text = '';
  for (const row of rows) {
    let line: string;
    try {
      // No replacer on the fast path: a replacer function makes JSON.stringify several times slower.
      line = JSON.stringify(row);
    } catch {
      line = JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    }
    text += line + '\n';
  }
  return Buffer.from(text, 'utf8');
}

/** Columns of `rows` that `known` lacks, typed from their first non-null value (all-null ones wait). */
export function findNewColumns(rows: readonly AdxRow[], known: ReadonlySet<string>): ColumnDef[] {
  const found = new Map<string, ColumnDef>();
  for (const row of rows) {
    for (const [name, value] of Object.entries(row)) {
      if (known.has(name) || found.has(name) || CDC_COLUMN_NAMES.has(name)) continue;
      const type = inferKqlType(value);
      if (type !== undefined) found.set(name, { name, type });
    }
  }
  return [...found.values()];
}

/** Columns from the result of `.show table T schema as json` (empty if it cannot be read). */
export function parseSchemaRows(rows: readonly Record<string, unknown>[]): ColumnDef[] {
  const schema = rows[0]?.Schema;
  if (typeof schema !== 'string') return [];
  try {
    const parsed = JSON.parse(schema) as { OrderedColumns?: { Name?: unknown; CslType?: unknown }[] };
    const columns: ColumnDef[] = [];
    for (const c of parsed.OrderedColumns ?? []) {
      if (typeof c.Name !== 'string' || !(KQL_TYPES as readonly unknown[]).includes(c.CslType)) return [];
      columns.push({ name: c.Name, type: c.CslType as ColumnDef['type'] });
    }
    return columns;
  } catch {
    return [];
  }
}

/**
 * The mapping name for a column set: `<mapping>_<12 hex of the columns' names and types>`. A name
 * always denotes the same mapping, so instances that add different columns at the same moment never
 * overwrite a mapping another one ingests with (each ingests with the mapping of the schema it read).
 */
export function versionedMappingName(mapping: string, columns: readonly ColumnDef[]): string {
  const hash = createHash('sha256')
    .update(columns.map((c) => `${c.name}:${c.type}`).join('\n'))
    .digest('hex');
  return `${mapping}_${hash.slice(0, 12)}`;
}

export class AdxSink {
  private readonly routesByName = new Map<string, AdxTableRoute>();
  /** Columns added at run time, per ADX table (the declared ones come from the route). */
  private readonly discovered = new Map<string, ColumnDef[]>();
  /** Mapping this process ingests with, per ADX table, once it has added a column (default: the route's). */
  private readonly mappings = new Map<string, string>();
  private readonly logger: Logger;

  constructor(private readonly options: AdxSinkOptions) {
    this.logger = options.logger ?? silentLogger;
    for (const route of options.config.routes) {
      this.routesByName.set(route.source, route);
      this.routesByName.set(route.table, route);
    }
  }

  get mode(): string {
    return this.options.ingestor.mode;
  }

  /** The route for a `rowsByTable` key: a source table `schema.table` or an ADX table name. */
  routeFor(tableKey: string): AdxTableRoute | undefined {
    return this.routesByName.get(tableKey);
  }

  /**
   * Writes one invocation's batch: one ingestion per ADX table. Throws `AdxSinkError` (`canRetry`
   * tells transient from permanent, `table` names the table; with several failing tables an
   * `AdxBatchWriteError` listing them, retryable if any of them is). Tables written before a failure
   * are skipped on the retry by their tags, so failing part-way is safe.
   */
  async writeBatch(batch: AdxBatch): Promise<AdxTableWrite[]> {
    const { written, failures } = await this.writeTables(batch);
    if (failures.length === 1) throw failures[0]!.error;
    if (failures.length > 1) throw new AdxBatchWriteError(failures);
    return written;
  }

  /** Like `writeBatch`, but every table is attempted and failures are returned per source table. */
  async writeTables(batch: AdxBatch): Promise<{ written: AdxTableWrite[]; failures: AdxTableFailure[] }> {
    const written: AdxTableWrite[] = [];
    const failures: AdxTableFailure[] = [];
    const logger = batch.logger ?? this.logger;
    for (const [tableKey, records] of batch.rowsByTable) {
      const route = this.routeFor(tableKey);
      if (route === undefined) {
        const error = new AdxSinkError(`No ADX route for table ${tableKey} (it has no adx section in CDC_ROUTES)`, { canRetry: false, sourceTable: tableKey });
        failures.push({ tableKey, error });
        continue;
      }
      try {
        written.push(...(await this.writeRoute(route, records, batch, logger)));
      } catch (error) {
        failures.push({ tableKey, error: toAdxSinkError(error, 'ADX write', { table: route.table, sourceTable: route.source }) });
      }
    }
    return { written, failures };
  }

  private async writeRoute(route: AdxTableRoute, records: readonly Record<string, unknown>[], batch: AdxBatch, logger: Logger): Promise<AdxTableWrite[]> {
    const rows: AdxRow[] = [];
    const history: AdxRow[] = [];
    const truncates: AdxRow[] = [];
    for (const record of records) {
      if (isChangeEvent(record)) {
        const truncate = toTruncateRow(record, route);
        if (truncate !== null) truncates.push(truncate);
        if (isPointerWithoutImage(record)) {
          // Not written: the full event is in the reader's dead-letter Blob; replay it from there.
          logger.warn(
            `ADX: ${route.source} ${record.op} at LSN ${record.source.lsn} arrived as a pointer to ${record.deadletter?.container}/${record.deadletter?.blob}; not written to ${route.table}`,
          );
          continue;
        }
        const row = toTableRow(record);
        if (row !== null) rows.push(row);
        if (route.historyTable !== null) history.push(...toHistoryRows(record, route));
      } else {
        rows.push(record);
      }
    }
    const results: AdxTableWrite[] = [];
    const tag = ingestionTag(route.source, batch.partitionId, batch.firstOffset, batch.lastOffset);
    if (rows.length > 0) {
      const addedColumns = await this.ensureColumns(route, rows, logger);
      await this.ingest(route, route.table, this.mappings.get(route.table) ?? route.mapping, rows, tag, logger);
      results.push({ table: route.table, sourceTable: route.source, rows: rows.length, tag, addedColumns });
    }
    if (history.length > 0 && route.historyTable !== null && route.historyMapping !== null) {
      await this.ingest(route, route.historyTable, route.historyMapping, history, tag, logger);
      results.push({ table: route.historyTable, sourceTable: route.source, rows: history.length, tag, addedColumns: [] });
    }
    if (truncates.length > 0) {
      // Same tag as the table's rows: a redelivered batch is skipped here too (per target table).
      const table = this.options.config.truncatesTable ?? DEFAULT_TRUNCATES_TABLE;
      await this.ingest(route, table, truncatesMapping(table), truncates, tag, logger);
      logger.info(`ADX: truncate of ${route.source} at LSN ${truncates.map((t) => String(t.Lsn)).join(', ')} recorded in ${table}`);
      results.push({ table, sourceTable: route.source, rows: truncates.length, tag, addedColumns: [] });
    }
    return results;
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
  private async ensureColumns(route: AdxTableRoute, rows: readonly AdxRow[], logger: Logger): Promise<ColumnDef[]> {
    const known = this.knownColumns(route);
    const added = findNewColumns(rows, new Set(known.map((c) => c.name)));
    if (added.length === 0) return [];
    logger.info(`ADX: new columns on ${route.table}: ${added.map((c) => `${c.name}:${c.type}`).join(', ')}`);
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
    return added;
  }

  private async ingest(route: AdxTableRoute, table: string, mapping: string, rows: readonly AdxRow[], tag: string, logger: Logger): Promise<void> {
    const data = toJsonLines(rows);
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
