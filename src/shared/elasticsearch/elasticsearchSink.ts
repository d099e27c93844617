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
 * batch's bulk write, so a truncate cannot be undone. The watermarks are read once the bulk is done,
 * never before or alongside it: a truncate recorded after that read sweeps the index after the bulk,
 * and finds its writes (read alongside it, a truncate another consumer applied meanwhile could miss
 * them both ways). (No delete-by-query: it would forget versions, and the test cluster has no reindex
 * module.)
 *
 * One table per index: the first table to write an index claims it (an `owner:<index>` document in
 * the control index, created once); records of any other table routed there are dead-lettered with
 * the reason instead of mixing rows (and truncates) of two tables. The catalogue refuses such routes
 * at start-up; this catches what it cannot see, e.g. indices written before names were escaped.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { getBool, getInt, getList, getString, type Env } from '../core/env.js';
import { tableId, type ChangeEvent } from '../events/changeEvent.js';
import { documentId, keyText } from '../events/documentId.js';
import { fieldName, withFieldNames } from '../events/fieldNames.js';
import { rowVersion } from '../events/rowVersion.js';
import { DEFAULT_METADATA_FIELDS, parseMetadataFields, unwrap, type MetadataField } from '../events/unwrap.js';
import { AwaitingPartitionError, canRetry, ConfigError, describeError, PermanentRecordError, TransientSinkError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { qualifiedName, routerFromEnv, type Router } from '../routing/routes.js';
import type { BatchInfo, EventRecord, PreparedRecord, RecordOutcome, Sink } from '../batch/types.js';
import { statusOf, writeBulk, type BulkOp, type BulkWriterOptions } from './bulkWriter.js';
import { boundedId } from './documentIds.js';
import { storedDocuments, storedKey } from './storedDocuments.js';
import { createIndexIfMissing, putTableTemplates, type TemplateOptions } from './templates.js';
import { isJsonType, jsonText, mappingForType } from './typeMappings.js';
import { controlMessage, type ControlMessage } from '../events/controlMessage.js';
import { IndexVersions } from './indexVersions.js';

export type ElasticsearchItem =
  | {
      kind: 'write';
      index: string;
      /** The source table (`qualifiedName`): an index holds one table's documents. */
      table: string;
      id: string;
      version: number;
      document: Record<string, unknown>;
      unchangedToast?: string[];
      /** Fields to map explicitly before the write: field name → PostgreSQL type (from `source.types`). */
      types?: Record<string, string>;
      /** A create from a primary-key change: the `_id` of the old key, whose row holds the unchanged TOAST values. */
      fillFrom?: string;
      /** A delete with only the key in its before image: keep the stored row's values in the soft-deleted document. */
      mergeStored?: boolean;
      /**
       * Set when the write goes to a new index version being built (`index` is then that version): the
       * routed index, whose document gives the values the event lacks while the new version has none yet.
       */
      logical?: string;
    }
  | { kind: 'truncate'; index: string; version: number; /** The source table (`qualifiedName`). */ table: string }
  /** A control event of the reader (schema change, incremental snapshot boundary; indexVersions.ts). */
  | { kind: 'control'; index: string; table: string; message: ControlMessage; partition: string; properties?: Record<string, unknown> };

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
  /**
   * `external_gte` for a replay of dead letters (`npm run dlq:replay`): a version Elasticsearch refused
   * left a rejection marker at that very version, which the replayed event must replace; an equal
   * version is otherwise the same event, so rewriting it is harmless, and a newer one still wins (409).
   * Default `external`: an equal version is a duplicate, answered 409 without writing.
   */
  versionType?: 'external' | 'external_gte';
  /** Minutes an index version replaced after a schema change is kept (default 60; README "Schema changes"). */
  oldIndexGraceMinutes?: number;
}

const TRUNCATE_PAGE_SIZE = 1000;
/** Longest reason kept in a rejection marker (`__rejected`); the dead-letter keeps the full one. */
const MAX_REJECTED_REASON = 2000;

/** Copies `columns` the document lacks from `base` (with their `__json` text copies); returns those `base` lacks too. */
function copyColumns(document: Record<string, unknown>, base: Record<string, unknown> | undefined, columns: readonly string[]): string[] {
  const missing: string[] = [];
  for (const column of columns) {
    if (column in document) continue;
    if (!base || !(column in base)) {
      missing.push(column);
      continue;
    }
    document[column] = base[column];
    const copy = (base.__json as Record<string, unknown> | undefined)?.[column];
    if (typeof copy === 'string') document.__json = { ...(document.__json as Record<string, unknown> | undefined), [column]: copy };
  }
  return missing;
}

/** Whether a delete's before image holds the key columns only (REPLICA IDENTITY DEFAULT). */
function onlyKey(event: ChangeEvent): boolean {
  const key = event.key ?? {};
  return event.before === null || Object.keys(event.before).every((column) => column in key);
}

interface Watermark {
  index: string;
  version: number;
}

/** The control index's record of which table an index holds (`owner:<index>`). */
interface IndexOwner {
  index: string;
  table: string;
}

export class ElasticsearchSink implements Sink<ElasticsearchItem> {
  readonly name = 'elasticsearch';
  readonly #options: ElasticsearchSinkOptions;
  readonly #fields: readonly MetadataField[];
  readonly #controlIndex: string;
  #templates: Promise<unknown> | undefined;
  /** Per index, the fields whose explicit mapping this process has put (or is putting). */
  readonly #mappedFields = new Map<string, Map<string, Promise<void>>>();
  /** Per index, the table that owns it (read or claimed once per process; an owner never changes). */
  readonly #owners = new Map<string, Promise<string>>();
  readonly #versions: IndexVersions;

  constructor(options: ElasticsearchSinkOptions) {
    this.#options = options;
    this.#fields = options.unwrapFields ?? DEFAULT_METADATA_FIELDS;
    this.#controlIndex = options.controlIndex ?? 'cdc-control';
    const table = options.router.tableOfIndex(this.#controlIndex);
    if (table !== undefined) {
      throw new ConfigError('ES_CONTROL_INDEX', `an index no table is routed to (it is the index of ${table} in CDC_ROUTES)`, this.#controlIndex);
    }
    const versions: ConstructorParameters<typeof IndexVersions>[0] = {
      client: options.client,
      controlIndex: this.#controlIndex,
      graceMinutes: options.oldIndexGraceMinutes ?? 60,
      claim: (index, owner) => this.#claimIndex(index, owner),
    };
    if (options.templates) versions.templates = options.templates;
    if (options.logger) versions.logger = options.logger;
    this.#versions = new IndexVersions(versions);
  }

  /** The reader's control events of a routed table (schema changes, snapshot boundaries); other logical messages: nothing. */
  prepareMessage(event: ChangeEvent, record: EventRecord): ElasticsearchItem | null {
    const message = controlMessage(event);
    if (message === null) return null;
    const route = this.#options.router.route(event.source.schema, event.source.table);
    if (!route.elasticsearch) return null;
    const item: ElasticsearchItem = {
      kind: 'control',
      index: route.elasticsearch.index,
      table: qualifiedName(event.source.schema, event.source.table),
      message,
      partition: record.partitionId,
    };
    if (route.elasticsearch.properties) item.properties = route.elasticsearch.properties;
    return item;
  }

  prepare(event: ChangeEvent): ElasticsearchItem | null {
    const route = this.#options.router.route(event.source.schema, event.source.table);
    if (!route.elasticsearch) return null;
    const index = route.elasticsearch.index;
    const version = rowVersion(event);
    const table = qualifiedName(event.source.schema, event.source.table);
    // Column names Elasticsearch cannot hold, or that the metadata fields below would overwrite, are
    // escaped first (docs/sinks.md "Field names").
    const unwrapped = unwrap(withFieldNames(event), { fields: this.#fields });
    if (unwrapped.kind === 'truncate') return { kind: 'truncate', index, version, table };
    const id = boundedId(documentId(event));
    // unwrap's row is a fresh object: extended in place rather than copied once more.
    const document: Record<string, unknown> = unwrapped.row;
    document.__deleted = unwrapped.kind === 'delete';
    document.__version = version;
    const item: ElasticsearchItem = { kind: 'write', index, table, id, version, document };
    const toast = event.source.unchanged_toast;
    if (toast && toast.length > 0 && unwrapped.kind === 'upsert') {
      item.unchangedToast = toast.map(fieldName);
      if (event.op === 'c') {
        // A create has no stored predecessor under its key: after a primary-key change its unchanged
        // values are the old key's row (`old_key`, see #fillFromStored). Without the old key they are unknown.
        if (!event.old_key) {
          throw new PermanentRecordError(
            'REJECTED_BY_SINK',
            `Create of ${tableId(event.source)} without the values of ${toast.join(', ')} (unchanged TOAST) and without old_key to take them from`,
          );
        }
        item.fillFrom = boundedId(keyText(event.old_key));
      }
    }
    // With REPLICA IDENTITY DEFAULT a delete's before image is the key only; the soft-deleted document
    // keeps the stored row's values, which a primary-key change's create takes over (and -live hides).
    if (unwrapped.kind === 'delete' && onlyKey(event)) item.mergeStored = true;
    const columnTypes = event.source.types;
    if (columnTypes) this.#applyColumnTypes(item, columnTypes, route.elasticsearch.properties);
    return item;
  }

  /**
   * The column types of the event (`source.types`): which fields get an explicit mapping before the
   * write (those the route's own `properties` do not map), and a JSON text copy of every json/jsonb
   * value under `__json` (the value itself is stored, not indexed: see `typeMappings.ts`).
   */
  #applyColumnTypes(
    item: Extract<ElasticsearchItem, { kind: 'write' }>,
    columnTypes: Record<string, string>,
    properties: Record<string, unknown> | undefined,
  ): void {
    const document = item.document;
    let json: Record<string, string> | undefined;
    for (const [column, pgType] of Object.entries(columnTypes)) {
      const field = fieldName(column);
      if (properties !== undefined && Object.hasOwn(properties, field)) continue;
      if (mappingForType(pgType) === undefined) continue;
      (item.types ??= {})[field] = pgType;
      const value = document[field];
      if (isJsonType(pgType) && value !== null && value !== undefined) (json ??= {})[field] = jsonText(value);
    }
    if (json) document.__json = json;
  }

  async write(batchRecords: readonly PreparedRecord<ElasticsearchItem>[], batch: BatchInfo): Promise<ReadonlyMap<number, RecordOutcome>> {
    // A schema change splits the batch: what came before it is written first (it may create the
    // index the change is checked against), what came after it once the change is applied.
    const cut = batchRecords.findIndex((r, i) => i > 0 && r.item.kind === 'control' && r.item.message.kind === 'schema_change');
    if (cut < 0) return this.#writeSegment(batchRecords);
    const before = await this.#writeSegment(batchRecords.slice(0, cut));
    return new Map([...before, ...(await this.write(batchRecords.slice(cut), batch))]);
  }

  async #writeSegment(batchRecords: readonly PreparedRecord<ElasticsearchItem>[]): Promise<Map<number, RecordOutcome>> {
    await this.ensureTemplates();
    const client = this.#options.client;
    // Records of a table whose index another table owns go no further (not even a rejection marker).
    const failures = await this.#foreignRecords(batchRecords);
    // Schema changes first: they decide which index version the later writes go to. A table whose
    // schema change could not be applied writes nothing in this batch (retried as a whole).
    for (const [i, outcome] of await this.#applyControls(batchRecords, failures, 'schema_change')) failures.set(i, outcome);
    const held = new Set(batchRecords.flatMap((r) => (r.item.kind === 'control' && failures.get(r.index)?.status === 'retry' ? [r.item.index] : [])));
    for (const r of batchRecords) {
      if (held.has(r.item.index) && !failures.has(r.index))
        failures.set(r.index, { status: 'retry', error: new TransientSinkError(`Waits for the schema change of ${r.item.table} to be applied`) });
    }
    const records = failures.size === 0 ? batchRecords : batchRecords.filter((r) => !failures.has(r.index));
    // The routed indices, before the writes of a new index version are sent there: watermarks are by routed index.
    const indices = [...new Set(records.map((r) => r.item.index))];
    await this.#routeToVersions(records);

    for (const [i, outcome] of await this.#fillFromStored(records)) failures.set(i, outcome);
    await this.#ensureFieldMappings(records);
    const ops: BulkOp[] = [];
    for (const { index, item } of records) {
      if (item.kind !== 'write' || failures.has(index)) continue;
      ops.push({
        recordIndex: index,
        action: { index: { _index: item.index, _id: item.id, version: item.version, version_type: this.#options.versionType ?? 'external' } },
        document: item.document,
      });
    }
    if (ops.length > 0) for (const [i, outcome] of await writeBulk(client, ops, this.#options.bulk)) failures.set(i, outcome);
    await this.#markRejected(records, failures);

    // Read after the bulk (see the header): a write older than a truncate is soft-deleted again now.
    const watermarks = await this.#watermarks(indices);
    const superseded: BulkOp[] = [];
    for (const { index, item } of records) {
      if (item.kind !== 'write') continue;
      const watermark = watermarks.get(item.logical ?? item.index);
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
        for (const target of await this.#versions.truncateTargets(item.index, item.table, item.version)) await this.#truncate(target, item.version);
        (this.#options.logger ?? silentLogger).warn(`elasticsearch: truncate of ${item.table} applied to ${item.index} at version ${item.version}`);
      } catch (error) {
        failures.set(index, canRetry(error) ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error });
      }
    }
    // Snapshot boundaries last: a version complete with this batch's rows may take over the aliases,
    // but not while any of its table's records in this batch is still to be retried.
    for (const [i, outcome] of await this.#applyControls(records, failures, 'snapshot')) failures.set(i, outcome);
    for (const [index, table] of new Map(records.map((r) => [r.item.index, r.item.table]))) {
      await this.#versions.reap(index, table).catch((error: unknown) => {
        (this.#options.logger ?? silentLogger).warn(`elasticsearch: old versions of ${index} not deleted yet: ${describeError(error)}`);
      });
    }
    return failures;
  }

  /** Applies the batch's control events of one kind, in order; returns their outcomes when not ok. */
  async #applyControls(
    records: readonly PreparedRecord<ElasticsearchItem>[],
    failures: ReadonlyMap<number, RecordOutcome>,
    which: 'schema_change' | 'snapshot',
  ): Promise<Map<number, RecordOutcome>> {
    const outcomes = new Map<number, RecordOutcome>();
    const waiting = new Set<string>();
    for (const { index, item } of records) {
      if (which === 'snapshot' && failures.get(index)?.status === 'retry') waiting.add(item.index);
    }
    for (const { index, item } of records) {
      if (item.kind !== 'control' || failures.has(index)) continue;
      if ((which === 'schema_change') !== (item.message.kind === 'schema_change')) continue;
      if (waiting.has(item.index)) {
        outcomes.set(index, { status: 'retry', error: new TransientSinkError(`Waits for the other records of ${item.table} in the batch`) });
        continue;
      }
      try {
        await this.#versions.apply(item.index, item.table, item.message, item.partition, item.properties);
      } catch (error) {
        outcomes.set(index, canRetry(error) ? { status: 'retry', error } : { status: 'deadLetter', reason: describeError(error), error });
        waiting.add(item.index);
      }
    }
    return outcomes;
  }

  /** Writes above a schema change that built a new index version go to that version (indexVersions.ts). */
  async #routeToVersions(records: readonly PreparedRecord<ElasticsearchItem>[]): Promise<void> {
    for (const { item } of records) {
      if (item.kind !== 'write') continue;
      const target = await this.#versions.target(item.index, item.table, item.version);
      if (target === item.index) continue;
      item.logical = item.index;
      item.index = target;
    }
  }

  /**
   * The records whose index belongs to another table, dead-lettered with the reason. An index
   * this process has not seen yet is claimed for the first of the batch's tables that writes it
   * (or its recorded owner is read): one request per index and process.
   */
  async #foreignRecords(records: readonly PreparedRecord<ElasticsearchItem>[]): Promise<Map<number, RecordOutcome>> {
    for (const { item } of records) {
      if (this.#owners.has(item.index)) continue;
      const claim = this.#claimIndex(item.index, item.table);
      this.#owners.set(item.index, claim);
      // A claim that failed (cluster unavailable) is tried again with the batch's retry.
      claim.catch(() => {
        if (this.#owners.get(item.index) === claim) this.#owners.delete(item.index);
      });
    }
    const owners = new Map<string, string>();
    await Promise.all(
      [...new Set(records.map((r) => r.item.index))].map(async (index) => {
        owners.set(index, await this.#owners.get(index)!);
      }),
    );
    const foreign = new Map<number, RecordOutcome>();
    for (const { index, item } of records) {
      const owner = owners.get(item.index);
      if (owner === undefined || owner === item.table) continue;
      foreign.set(index, {
        status: 'deadLetter',
        reason:
          `Elasticsearch index ${item.index} holds the documents of ${owner}, and ${item.table} is routed there too: ` +
          `not written, so the two tables' rows (and truncates) stay apart. Route one of them to another index (CDC_ROUTES; docs/sinks.md "One table per index")`,
      });
    }
    return foreign;
  }

  /** The owner of `index`: `table` if this claim is the first, else the recorded one. */
  async #claimIndex(index: string, table: string): Promise<string> {
    const client = this.#options.client;
    const id = `owner:${index}`;
    try {
      await client.create({ index: this.#controlIndex, id, document: { index, table } satisfies IndexOwner });
      return table;
    } catch (error) {
      if (statusOf(error) !== 409) throw new TransientSinkError(`Could not record which table ${index} holds`, error);
    }
    try {
      // Real-time get: the claim that won is visible without a refresh.
      const recorded = await client.get<IndexOwner>({ index: this.#controlIndex, id });
      if (typeof recorded._source?.table !== 'string') throw new Error(`${this.#controlIndex}/${id} names no table`);
      return recorded._source.table;
    } catch (error) {
      throw new TransientSinkError(`Could not read which table ${index} holds`, error);
    }
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
   * Puts the explicit mappings of the fields this process has not mapped yet in their index (one
   * `PUT _mapping` per index with new fields; the dynamic templates handle the rest), before the
   * bulk write that carries them: a field's type must come from its column, not from whichever value
   * Elasticsearch sees first. A failure (cluster unavailable) fails the batch and is tried again.
   */
  async #ensureFieldMappings(records: readonly PreparedRecord<ElasticsearchItem>[]): Promise<void> {
    const waits = new Set<Promise<void>>();
    const fresh = new Map<string, Record<string, estypes.MappingProperty>>();
    for (const { item } of records) {
      if (item.kind !== 'write' || item.types === undefined) continue;
      let known = this.#mappedFields.get(item.index);
      if (!known) this.#mappedFields.set(item.index, (known = new Map<string, Promise<void>>()));
      for (const [field, pgType] of Object.entries(item.types)) {
        const pending = known.get(field);
        if (pending) {
          waits.add(pending);
          continue;
        }
        const mapping = mappingForType(pgType);
        if (mapping === undefined) continue;
        let properties = fresh.get(item.index);
        if (!properties) fresh.set(item.index, (properties = {}));
        properties[field] ??= mapping;
      }
    }
    for (const [index, properties] of fresh) {
      const known = this.#mappedFields.get(index)!;
      const put = this.#putFieldMappings(index, properties);
      for (const field of Object.keys(properties)) known.set(field, put);
      put.catch(() => {
        for (const field of Object.keys(properties)) if (known.get(field) === put) known.delete(field);
      });
      waits.add(put);
    }
    if (waits.size > 0) await Promise.all(waits);
  }

  async #putFieldMappings(index: string, properties: Record<string, estypes.MappingProperty>): Promise<void> {
    const client = this.#options.client;
    const put = () => client.indices.putMapping({ index, properties });
    try {
      try {
        await put();
      } catch (error) {
        // A new index: create it from its template (the -live alias), then map the fields.
        if (statusOf(error) !== 404) throw error;
        await createIndexIfMissing(client, index);
        await put();
      }
    } catch (error) {
      if (statusOf(error) !== 400) throw new TransientSinkError(`Could not put the field mappings of ${index}`, error);
      // A field an existing index already mapped otherwise (e.g. dynamically, before column types
      // were known) cannot change type: keep it, say so once, and map the other fields one by one.
      for (const [field, mapping] of Object.entries(properties)) {
        try {
          await client.indices.putMapping({ index, properties: { [field]: mapping } });
        } catch (fieldError) {
          if (statusOf(fieldError) !== 400) throw new TransientSinkError(`Could not put the field mappings of ${index}`, fieldError);
          (this.#options.logger ?? silentLogger).warn(
            `elasticsearch: field ${field} of ${index} keeps its existing mapping (reindex to get ${JSON.stringify(mapping)}): ${describeError(fieldError)}`,
          );
        }
      }
    }
  }

  /**
   * A version Elasticsearch refused (400) is dead-lettered; without more, the key's older document
   * would stay live as if it were current. So a marker takes the refused version: the metadata only,
   * `__deleted: true` (out of `-live`) and `__rejected` with the reason. A later version replaces it as
   * usual. If the marker cannot be written yet, the record is retried rather than dead-lettered.
   */
  async #markRejected(records: readonly PreparedRecord<ElasticsearchItem>[], failures: Map<number, RecordOutcome>): Promise<void> {
    const markers: BulkOp[] = [];
    for (const { index, item } of records) {
      const failure = failures.get(index);
      if (item.kind !== 'write' || failure?.status !== 'deadLetter') continue;
      const metadata = Object.fromEntries(Object.entries(item.document).filter(([field]) => field.startsWith('__') && field !== '__json'));
      markers.push({
        recordIndex: index,
        action: { index: { _index: item.index, _id: item.id, version: item.version, version_type: 'external' } },
        document: { ...metadata, __deleted: true, __version: item.version, __rejected: failure.reason.slice(0, MAX_REJECTED_REASON) },
      });
    }
    if (markers.length === 0) return;
    for (const [i, outcome] of await writeBulk(this.#options.client, markers, this.#options.bulk)) if (outcome.status === 'retry') failures.set(i, outcome);
  }

  /**
   * Values an event does not carry, taken from the row as Elasticsearch has it (one lossless `mget`
   * per batch, or the latest earlier write of the key in the batch):
   * - an update that left TOASTed columns unchanged (`unchangedToast`): from the key's own document;
   *   without one, the document lists them in `__unchanged_toast`;
   * - a delete with a key-only before image (`mergeStored`): the soft-deleted document keeps the row's
   *   values;
   * - the create of a primary-key change with unchanged TOAST columns (`fillFrom`): from the old key's
   *   document, but only once it is the old key's delete of the same change (same version, it may
   *   be on another partition): before that its values may be older than the change, so the record
   *   is retried, and so are the later changes of its new key in the batch (written first, an update
   *   would find no document to fill from, and its newer version would refuse the create). A newer old-key document (the old key was used again), or a column it does not
   *   have, cannot give the values: the record is dead-lettered with the reason, never written
   *   incomplete.
   * Returns the outcomes of the records that are not to be written now.
   */
  async #fillFromStored(records: readonly PreparedRecord<ElasticsearchItem>[]): Promise<Map<number, RecordOutcome>> {
    const outcomes = new Map<number, RecordOutcome>();
    const wanted = new Map<string, { _index: string; _id: string }>();
    for (const { item } of records) {
      if (item.kind !== 'write' || (item.unchangedToast === undefined && item.mergeStored !== true)) continue;
      const id = item.fillFrom ?? item.id;
      wanted.set(storedKey(item.index, id), { _index: item.index, _id: id });
      if (item.logical !== undefined) wanted.set(storedKey(item.logical, id), { _index: item.logical, _id: id });
    }
    if (wanted.size === 0) return outcomes;
    const found = await storedDocuments(this.#options.client, [...wanted.values()], 'fill values the events do not carry');
    // In a version being built, a row the snapshot has not reached yet takes its values from the current version.
    const stored = new Map(found);
    for (const { item } of records) {
      if (item.kind !== 'write' || item.logical === undefined) continue;
      const id = item.fillFrom ?? item.id;
      const key = storedKey(item.index, id);
      const fallback = found.get(storedKey(item.logical, id));
      if (!stored.has(key) && fallback !== undefined) stored.set(key, fallback);
    }
    const latest = new Map<string, Record<string, unknown>>();
    // Documents with a create waiting in this batch: their later changes in the batch wait with it.
    // Written now, an update would find no stored document to take its unchanged TOAST values from
    // (and carry `__unchanged_toast`), and its newer version would then refuse the create (409).
    const waiting = new Map<string, string>();
    for (const { index, item } of records) {
      if (item.kind !== 'write') continue;
      const key = storedKey(item.index, item.id);
      const waitingFor = waiting.get(key);
      if (waitingFor !== undefined) {
        outcomes.set(index, {
          status: 'retry',
          error: new AwaitingPartitionError(
            `Change of ${item.index}/${JSON.stringify(item.id)} waits for the earlier change of the same document: ${waitingFor}`,
          ),
        });
        continue;
      }
      if (item.fillFrom !== undefined && item.unchangedToast) {
        const from = storedKey(item.index, item.fillFrom);
        const base = latest.get(from) ?? stored.get(from);
        const version = typeof base?.__version === 'number' ? base.__version : -1;
        if (version < item.version) {
          const why =
            `Primary-key change in ${item.index}: waiting for the delete of the old key ${JSON.stringify(item.fillFrom)} at version ${item.version} ` +
            `(it holds the unchanged TOAST values of ${item.unchangedToast.join(', ')}; it may be on another partition)`;
          outcomes.set(index, { status: 'retry', error: new AwaitingPartitionError(why) });
          waiting.set(key, why);
          continue;
        }
        const missing = version > item.version ? item.unchangedToast : copyColumns(item.document, base, item.unchangedToast);
        if (missing.length > 0) {
          const why = version > item.version ? `the old key's document moved on to version ${version}` : `the old key's document has no ${missing.join(', ')}`;
          outcomes.set(index, {
            status: 'deadLetter',
            reason: `Primary-key change in ${item.index}: the unchanged TOAST values of ${item.unchangedToast.join(', ')} are unknown (${why})`,
          });
          continue;
        }
      } else if (item.unchangedToast) {
        const missing = copyColumns(item.document, latest.get(key) ?? stored.get(key), item.unchangedToast);
        if (missing.length > 0) item.document.__unchanged_toast = missing;
      } else if (item.mergeStored) {
        const base = latest.get(key) ?? stored.get(key);
        if (base)
          copyColumns(
            item.document,
            base,
            Object.keys(base).filter((field) => !field.startsWith('__') || field === '__unchanged_toast'),
          );
      }
      latest.set(key, item.document);
    }
    return outcomes;
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
      if (statusOf(error) === 404) return result;
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
      if (statusOf(error) !== 409) throw new TransientSinkError(`Could not record truncate of ${index}`, error);
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

export function elasticsearchSinkFromEnv(
  env: Env,
  client: Client,
  logger?: Logger,
  versionType: ElasticsearchSinkOptions['versionType'] = 'external',
): ElasticsearchSink {
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
    versionType,
    oldIndexGraceMinutes: getInt(env, 'ES_OLD_INDEX_GRACE_MINUTES', 60, { min: 0 }),
  };
  if (logger) options.logger = logger;
  return new ElasticsearchSink(options);
}
