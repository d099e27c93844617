/**
 * The ADX (Kusto) sink. The seam with the sink core: `createAdxSinkFromEnv(env)` once per host, then
 * `sink.writeBatch({ partitionId, firstOffset, lastOffset, rowsByTable })` per invocation.
 */
import type { Env } from '../core/env.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { AdxSink } from './adxSink.js';
import { createClients } from './clients.js';
import { describeAdxConfig, loadAdxConfig } from './config.js';

export { AdxSink, findNewColumns, parseSchemaRows, toJsonLines, versionedMappingName } from './adxSink.js';
export type { AdxSinkOptions } from './adxSink.js';
export { connectionFactory, createClients, inlineIngestCommand, KustoControlClient } from './clients.js';
export type { ControlClient, IngestRequest, Ingestor } from './clients.js';
export {
  addColumnsCommands,
  alterMergeCommand,
  currentFunctionBody,
  jsonMapping,
  latestViewQuery,
  mappingCommand,
  setupCommands,
  showMaterializedViewsCommand,
  showSchemaCommand,
  truncatesTableCommands,
  viewUpgradeCommands,
} from './commands.js';
export type { AdxCommand, ExistingView } from './commands.js';
export {
  adxRoutes,
  DEFAULT_BATCHING,
  DEFAULT_TRUNCATES_TABLE,
  deriveIngestUrl,
  describeAdxConfig,
  loadAdxConfig,
  loadAdxSchemaConfig,
  resolveRoute,
} from './config.js';
export { parseMaterializedViews, runAdxSetup } from './setup.js';
export type { SetupResult } from './setup.js';
export { AdxBatchWriteError, AdxSinkError, isTransient, toAdxSinkError } from './errors.js';
export type { AdxTableFailure } from './errors.js';
export { deterministicSourceId, ingestionTag } from './idempotency.js';
export { isChangeEvent, isPointerWithoutImage, toHistoryRow, toHistoryRows, toTableRow, toTruncateRow } from './rows.js';
export { CDC_COLUMNS, HISTORY_COLUMNS, TRUNCATE_COLUMNS, tableColumns, truncatesMapping } from './schema.js';
export type * from './types.js';

/** Reads and validates the ADX settings (throws `ConfigError` naming the variable) and connects. */
export function createAdxSinkFromEnv(env: Env, options: { logger?: Logger } = {}): AdxSink {
  const logger = options.logger ?? silentLogger;
  const config = loadAdxConfig(env, logger);
  logger.info('ADX sink', describeAdxConfig(config));
  return new AdxSink({ config, ...createClients(config), logger: logger });
}
