/**
 * The Elasticsearch sink: one index per table, `_id` = primary key, external version = row version,
 * so duplicates and out-of-order deliveries can never regress a document (an older version gets a 409,
 * which counts as done).
 *
 * Deletes are soft: the document is re-indexed as `{ ...before/key, __deleted: true }` with the
 * delete's version, so the version is never forgotten (a real delete's version is only remembered for
 * `index.gc_deletes`, after which a late older write would resurrect the row). Queries use the
 * `<index>-live` alias, which filters `__deleted`.
 *
 * Truncate: a watermark `{ index, version }` goes to the control index, then every live document of
 * the index with `__version` below the truncate's is soft-deleted with the truncate's version
 * (`__op: 't'`). Later writes below the watermark (events from before the truncate that arrive late,
 * e.g. from a lagging partition) are soft-deleted again at the watermark's version right after the
 * batch's bulk write (the watermarks are read in parallel with it), so a truncate cannot be undone. (No delete-by-query: it would
 * forget versions, and the test cluster has no reindex module.)
 */
import type { Client } from '@elastic/elasticsearch';
import { getBool, getInt, getList, getString, type Env } from '../core/env.js';
import { tableId, type ChangeEvent } from '../events/changeEvent.js';
import { documentId } from '../events/documentId.js';
import { fieldName, withFieldNames } from '../events/fieldNames.js';
import { rowVersion } from '../events/rowVersion.js';
import { DEFAULT_METADATA_FIELDS, parseMetadataFields, unwrap, type MetadataField } from '../events/unwrap.js';
import { canRetry, describeError, TransientSinkError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { routerFromEnv, type Router } from '../routing/routes.js';
import type { BatchInfo, PreparedRecord, RecordOutcome, Sink } from '../batch/types.js';
import { writeBulk, type BulkOp, type BulkWriterOptions } from './bulkWriter.js';
import { boundedId } from './documentIds.js';
import { putTableTemplates, type TemplateOptions } from './templates.js';

export type ElasticsearchItem =
  | { kind: 'write'; index: string; id: string; version: number; document: Record<string, unknown>; unchangedToast?: string[] }
  | { kind: 'truncate'; index: string; version: number; table: string };

export interface ElasticsearchSinkOptions {
  client: Client;
  router: Router;
  unwrapFields?: readonly MetadataField[];
  bulk?: BulkWriterOptions;
  /** Index holding truncate watermarks (default `cdc-control`). */
  controlIndex?: string;
  /** Put the index templates before the first write (default true). */
  ensureTemplates?: boolean;
  templates?: TemplateOptions;
  logger?: Logger;
}

const TRUNCATE_PAGE_SIZE = 1000;

interface Watermark {
  index: string;
  version: number;
}

export class ElasticsearchSink implements Sink<ElasticsearchItem> {
  readonly name = 'elasticsearch';
  readonly #options: ElasticsearchSinkOptions;
  readonly #fields: readonly MetadataField[];
  readonly #controlIndex: string;
  #templates: Promise<unknown> | undefined;

  constructor(options: ElasticsearchSinkOptions) {
    this.#options = options;
    this.#fields = options.unwrapFields ?? DEFAULT_METADATA_FIELDS;
    this.#controlIndex = options.controlIndex ?? 'cdc-control';
  }

  prepare(event: ChangeEvent): ElasticsearchItem | null {
    const route = this.#options.router.route(event.source.schema, event.source.table);
    if (!route.elasticsearch) return null;
    const index = route.elasticsearch.index;
    const version = rowVersion(event);
    // Column names Elasticsearch cannot hold, or that the metadata fields below would overwrite, are
    // escaped first (docs/sinks.md "Field names").
    const unwrapped = unwrap(withFieldNames(event), { fields: this.#fields });
    if (unwrapped.kind === 'truncate') return { kind: 'truncate', index, version, table: tableId(event.source) };
    const id = boundedId(documentId(event));
    const item: ElasticsearchItem = {
      kind: 'write',
      index,
      id,
      version,
      document: { ...unwrapped.row, __deleted: unwrapped.kind === 'delete', __version: version },
    };
    const toast = event.source.unchanged_toast;
    if (toast && toast.length > 0 && unwrapped.kind === 'upsert') item.unchangedToast = toast.map(fieldName);
    return item;
  }

  async write(records: readonly PreparedRecord<ElasticsearchItem>[], _batch: BatchInfo): Promise<ReadonlyMap<number, RecordOutcome>> {
    await this.ensureTemplates();
    const client = this.#options.client;
    const indices = [...new Set(records.map((r) => r.item.index))];
    // Truncate watermarks are read alongside the bulk write (no extra round trip on the hot path);
    // a write that turns out to be older than a truncate is soft-deleted again right after.
    const watermarksRead = this.#watermarks(indices);
    watermarksRead.catch(() => undefined);
    const failures = new Map<number, RecordOutcome>();

    await this.#fillUnchangedToast(records);
    const ops: BulkOp[] = [];
    for (const { index, item } of records) {
      if (item.kind !== 'write') continue;
      ops.push({
        recordIndex: index,
        action: { index: { _index: item.index, _id: item.id, version: item.version, version_type: 'external' } },
        document: item.document,
      });
    }
    if (ops.length > 0) for (const [i, outcome] of await writeBulk(client, ops, this.#options.bulk)) failures.set(i, outcome);

    const watermarks = await watermarksRead;
    const superseded: BulkOp[] = [];
    for (const { index, item } of records) {
      if (item.kind !== 'write') continue;
      const watermark = watermarks.get(item.index);
      if (watermark === undefined || item.version >= watermark) continue;
      failures.set(index, { status: 'skipped', reason: `superseded by truncate of ${item.index} at version ${watermark}` });
      superseded.push({
        recordIndex: index,
        action: { index: { _index: item.index, _id: item.id, version: watermark, version_type: 'external' } },
        document: { ...item.document, __op: 't', __deleted: true, __version: watermark },
      });
    }
    if (superseded.length > 0) {
      for (const [i, outcome] of await writeBulk(client, superseded, this.#options.bulk)) if (outcome.status === 'retry') failures.set(i, outcome);
    }

    for (const { index, item } of records) {
      if (item.kind !== 'truncate') continue;
      try {
        await this.#truncate(item.index, item.version);
        (this.#options.logger ?? silentLogger).warn(`elasticsearch: truncate of ${item.table} applied to ${item.index} at version ${item.version}`);
      } catch (error) {
        failures.set(index, canRetry(error) ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error });
      }
    }
    return failures;
  }

  /** Puts the index templates once per process (again after a failure). */
  ensureTemplates(): Promise<unknown> {
    if (this.#options.ensureTemplates === false) return Promise.resolve();
    this.#templates ??= putTableTemplates(
      this.#options.client,
      this.#options.router,
      this.#options.templates,
      this.#options.router.wildcard()?.elasticsearch?.index,
    ).catch((error: unknown) => {
      this.#templates = undefined;
      throw new TransientSinkError('Could not put Elasticsearch index templates', error);
    });
    return this.#templates;
  }

  /**
   * An update that left a TOASTed column unchanged carries no value for it; indexing the row as is
   * would drop the column from the document. Its value is taken from the latest earlier write of the
   * same key in this batch, else from the document in the index (one mget per batch). Without either,
   * the document lists the columns in `__unchanged_toast`.
   */
  async #fillUnchangedToast(records: readonly PreparedRecord<ElasticsearchItem>[]): Promise<void> {
    const needing = records.filter((r) => r.item.kind === 'write' && r.item.unchangedToast !== undefined);
    if (needing.length === 0) return;
    const keyOf = (index: string, id: string) => `${index}\u0000${id}`;
    const stored = new Map<string, Record<string, unknown>>();
    const wanted = new Map<string, { _index: string; _id: string }>();
    for (const { item } of needing) if (item.kind === 'write') wanted.set(keyOf(item.index, item.id), { _index: item.index, _id: item.id });
    try {
      const response = await this.#options.client.mget<Record<string, unknown>>({ docs: [...wanted.values()] });
      for (const doc of response.docs) if ('found' in doc && doc.found && doc._source) stored.set(keyOf(doc._index, doc._id), doc._source);
    } catch (error) {
      if ((error as { meta?: { statusCode?: number } }).meta?.statusCode !== 404)
        throw new TransientSinkError('Could not read documents to fill unchanged TOAST columns', error);
    }
    const latest = new Map<string, Record<string, unknown>>();
    for (const { item } of records) {
      if (item.kind !== 'write') continue;
      const key = keyOf(item.index, item.id);
      if (item.unchangedToast) {
        const base = latest.get(key) ?? stored.get(key);
        const missing: string[] = [];
        for (const column of item.unchangedToast) {
          if (column in item.document) continue;
          if (base && column in base) item.document[column] = base[column];
          else missing.push(column);
        }
        if (missing.length > 0) item.document.__unchanged_toast = missing;
      }
      latest.set(key, item.document);
    }
  }

  async #watermarks(indices: readonly string[]): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    if (indices.length === 0) return result;
    try {
      const response = await this.#options.client.mget<Watermark>({ index: this.#controlIndex, ids: indices.map((i) => `truncate:${i}`) });
      for (const doc of response.docs) {
        if ('found' in doc && doc.found && doc._source) result.set(doc._source.index, doc._source.version);
      }
    } catch (error) {
      if ((error as { meta?: { statusCode?: number } }).meta?.statusCode === 404) return result;
      throw new TransientSinkError('Could not read truncate watermarks', error);
    }
    return result;
  }

  async #truncate(index: string, version: number): Promise<void> {
    const client = this.#options.client;
    try {
      await client.index({
        index: this.#controlIndex,
        id: `truncate:${index}`,
        version,
        version_type: 'external',
        document: { index, version } satisfies Watermark,
        refresh: true,
      });
    } catch (error) {
      // 409: a newer truncate is already recorded; the delete-by-query below is still harmless.
      if ((error as { meta?: { statusCode?: number } }).meta?.statusCode !== 409) throw new TransientSinkError(`Could not record truncate of ${index}`, error);
    }
    // Soft-delete every live document older than the truncate, page by page. Each page leaves the
    // query (its `__version` becomes the truncate's), so the loop ends; documents changed meanwhile
    // by newer events answer 409 and stay. No delete-by-query: soft deletes keep versions forever.
    try {
      for (;;) {
        await client.indices.refresh({ index, ignore_unavailable: true, allow_no_indices: true });
        const page = await client.search<Record<string, unknown>>({
          index,
          size: TRUNCATE_PAGE_SIZE,
          ignore_unavailable: true,
          allow_no_indices: true,
          query: { bool: { filter: [{ range: { __version: { lt: version } } }], must_not: [{ term: { __deleted: true } }] } },
        });
        const hits = page.hits.hits;
        if (hits.length === 0) break;
        const ops: BulkOp[] = hits.map((hit) => ({
          recordIndex: 0,
          action: { index: { _index: hit._index, _id: hit._id ?? '', version, version_type: 'external' } },
          document: { ...hit._source, __op: 't', __deleted: true, __version: version },
        }));
        const failures = await writeBulk(client, ops, { ...this.#options.bulk });
        const failure = [...failures.values()].find((f) => f.status !== 'skipped');
        if (failure) throw failure.status === 'retry' ? failure.error : new Error(`truncate: ${failure.status}`);
      }
    } catch (error) {
      throw new TransientSinkError(`Truncate of ${index} failed`, error);
    }
  }
}

export function elasticsearchSinkFromEnv(env: Env, client: Client, logger?: Logger): ElasticsearchSink {
  const options: ElasticsearchSinkOptions = {
    client,
    router: routerFromEnv(env),
    unwrapFields: parseMetadataFields(getList(env, 'CDC_UNWRAP_FIELDS', DEFAULT_METADATA_FIELDS)),
    bulk: {
      maxAttempts: getInt(env, 'ES_BULK_MAX_ATTEMPTS', 3, { min: 1 }),
      backoffMs: getInt(env, 'ES_BULK_BACKOFF_MS', 200, { min: 0 }),
    },
    controlIndex: getString(env, 'ES_CONTROL_INDEX', 'cdc-control'),
    ensureTemplates: getBool(env, 'ES_ENSURE_TEMPLATES', true),
    templates: { replicas: getInt(env, 'ES_NUMBER_OF_REPLICAS', 1, { min: 0 }) },
  };
  if (logger) options.logger = logger;
  return new ElasticsearchSink(options);
}
