/** Writes the change history to Elasticsearch (the ADX history table is filled by the ADX sink). */
import type { Client } from '@elastic/elasticsearch';
import type { BatchInfo, PreparedRecord, RecordOutcome, Sink } from '../batch/types.js';
import { getInt, getString, type Env } from '../core/env.js';
import type { ChangeEvent } from '../events/changeEvent.js';
import { keyOf } from '../events/documentId.js';
import { writeBulk, type BulkOp, type BulkWriterOptions } from '../elasticsearch/bulkWriter.js';
import { ConfigError, TransientSinkError } from '../core/errors.js';
import { declaredColumns, routerFromEnv, type Router } from '../routing/routes.js';
import { DEFAULT_HISTORY_INDEX, historyDocument, historyDocumentId, putHistoryTemplate } from './historyIndex.js';
import { historyRows, schemaChangeRow, type HistoryRow } from './pivot.js';
import { controlMessage } from '../events/controlMessage.js';

export interface HistorySinkOptions {
  client: Client;
  router: Router;
  index?: string;
  bulk?: BulkWriterOptions;
  replicas?: number;
}

export class ElasticsearchHistorySink implements Sink<HistoryRow[]> {
  readonly name = 'change-history';
  readonly index: string;
  #template: Promise<void> | undefined;

  constructor(private readonly options: HistorySinkOptions) {
    this.index = options.index ?? DEFAULT_HISTORY_INDEX;
    const table = options.router.tableOfIndex(this.index);
    if (table !== undefined) throw new ConfigError('HISTORY_INDEX', `an index no table is routed to (it is the index of ${table} in CDC_ROUTES)`, this.index);
  }

  prepare(event: ChangeEvent): HistoryRow[] | null {
    const route = this.options.router.route(event.source.schema, event.source.table);
    // The key rule every sink applies (rows of the same event are dead-lettered by the Elasticsearch
    // sink for the same reason); truncates have no key, snapshot reads write no history.
    if (route.history?.enabled !== false && (event.op === 'c' || event.op === 'u' || event.op === 'd')) keyOf(event);
    const rows = historyRows(event, route.history, declaredColumns(route));
    return rows.length > 0 ? rows : null;
  }

  /** A schema change is a row of its own (one per change: the copies on other partitions have the same `_id`). */
  prepareMessage(event: ChangeEvent): HistoryRow[] | null {
    const message = controlMessage(event);
    if (message?.kind !== 'schema_change') return null;
    const rows = schemaChangeRow(event, message, this.options.router.route(event.source.schema, event.source.table).history);
    return rows.length > 0 ? rows : null;
  }

  async write(records: readonly PreparedRecord<HistoryRow[]>[], _batch: BatchInfo): Promise<ReadonlyMap<number, RecordOutcome>> {
    this.#template ??= putHistoryTemplate(this.options.client, this.index, this.options.replicas).catch((error: unknown) => {
      this.#template = undefined;
      throw new TransientSinkError('Could not put the change-history index template', error);
    });
    await this.#template;
    const ops: BulkOp[] = [];
    for (const { index, item } of records) {
      for (const row of item) {
        ops.push({ recordIndex: index, action: { create: { _index: this.index, _id: historyDocumentId(row) } }, document: historyDocument(row) });
      }
    }
    return writeBulk(this.options.client, ops, this.options.bulk);
  }
}

export function historySinkFromEnv(env: Env, client: Client): ElasticsearchHistorySink {
  return new ElasticsearchHistorySink({
    client,
    router: routerFromEnv(env),
    index: getString(env, 'HISTORY_INDEX', DEFAULT_HISTORY_INDEX),
    bulk: { maxAttempts: getInt(env, 'ES_BULK_MAX_ATTEMPTS', 3, { min: 1 }), backoffMs: getInt(env, 'ES_BULK_BACKOFF_MS', 200, { min: 0 }) },
    replicas: getInt(env, 'ES_NUMBER_OF_REPLICAS', 1, { min: 0 }),
  });
}
