/**
 * Index versions: what the Elasticsearch sink does when a table's schema changes in a way its index
 * cannot take (a column's field is mapped with another type than its new type gets, or the key
 * changed; README "Schema changes").
 *
 * The table's index `<index>` starts as a concrete index (version 1). On such a change (the reader's
 * `schema_change` control event, one copy per partition, ordered before the table's next change):
 * 1. `<index>-v<n+1>` is created with the new mapping, and every later write of the table (version above
 *    the change's `source.lsn`) goes there; earlier ones (lagging partitions) still go to the current version.
 *    The current version is left as it was at the change, so readers of `<index>` and `<index>-live` see the
 *    table as of the change until the new version is complete, never a half-built index.
 * 2. The reconcile snapshot (an incremental snapshot started after the change, by the reader with
 *    `CDC_SCHEMA_CHANGE_SNAPSHOT=auto`, or `npm run snapshot`) fills it with every current row.
 * 3. When its `snapshot_done` has arrived on every partition of the topic (each partition's consumer
 *    records its own in the control index), the aliases `<index>` and `<index>-live` move to the new
 *    version in one `_aliases` request. From version 1, the concrete `<index>` is first cloned to
 *    `<index>-v1` (so the old version outlives the swap) and removed in that same request
 *    (`remove_index`: an alias cannot share the name of an index).
 * 4. The old version is deleted after `ES_OLD_INDEX_GRACE_MINUTES`, at the next write of the table.
 *
 * The state lives in the control index (`versions:<index>`), updated with optimistic concurrency, so
 * the consumers of all partitions (other processes) agree; each process caches it and re-reads it on
 * every control event. A change the index can take (a new column, a compatible type) is applied in
 * place: the new fields are mapped by the next write, and the reconcile snapshot's rows (higher
 * versions) replace the documents whole, so dropped and renamed fields go and defaults appear.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import { describeError, TransientSinkError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { ControlMessage, SchemaChangeContent } from '../events/controlMessage.js';
import { fieldName } from '../events/fieldNames.js';
import { statusOf } from './bulkWriter.js';
import { commonComponentTemplate, createIndexIfMissing, LIVE_FILTER, type TemplateOptions } from './templates.js';
import { columnMapping, fieldTypeOf, mappingForType, typeNameOf } from './typeMappings.js';

export interface Building {
  /** The physical index being built: `<index>-v<version>`. */
  index: string;
  version: number;
  /** The schema change's `source.lsn`: writes above it go to the new version. */
  since: number;
  /** Partitions of the table's topic: the swap waits for a `snapshot_done` from each. */
  partitions: number;
  /** The reconcile snapshot's id: the first snapshot started after the change. */
  snapshot: string | null;
  /** Why the index could not take the change. */
  reason: string;
  /** Set by the consumer that moves the aliases (a crash after it lets the next `snapshot_done` finish the move). */
  swapping?: boolean;
}

export interface VersionState {
  /** The table's index name as routed (`<index>`; an alias once a second version took over). */
  index: string;
  table: string;
  /** The physical index the aliases point at (`<index>` itself until the first swap). */
  current: string;
  version: number;
  building: Building | null;
  /** Replaced versions, deleted after the grace period. */
  retired: { index: string; at: number }[];
  /** `source.lsn` of the latest schema change handled, so its other partitions' copies are not handled again. */
  lastChange: number;
}

interface Stored {
  state: VersionState;
  seq?: { if_seq_no: number; if_primary_term: number };
}

export interface IndexVersionsOptions {
  client: Client;
  controlIndex: string;
  templates?: TemplateOptions;
  /** Minutes an old version is kept after the swap (0: deleted at the swap). */
  graceMinutes: number;
  logger?: Logger;
  /** Claims `index` for `table` (the sink's one-table-per-index rule); resolves to the owner. */
  claim: (index: string, table: string) => Promise<string>;
}

const MAX_CONFLICTS = 10;
const REAP_INTERVAL_MS = 60_000;

function fresh(index: string, table: string): VersionState {
  return { index, table, current: index, version: 1, building: null, retired: [], lastChange: -1 };
}

export class IndexVersions {
  readonly #options: IndexVersionsOptions;
  readonly #cache = new Map<string, Promise<VersionState>>();
  readonly #reapedAt = new Map<string, number>();

  constructor(options: IndexVersionsOptions) {
    this.#options = options;
  }

  get #log(): Logger {
    return this.#options.logger ?? silentLogger;
  }

  /** The physical index a write of `index` at `version` goes to. */
  async target(index: string, table: string, version: number): Promise<string> {
    const state = await this.#cached(index, table);
    const building = state.building;
    return building !== null && version > building.since ? building.index : index;
  }

  /** The physical indices a truncate at `version` applies to: the current version, and the one being built. */
  async truncateTargets(index: string, table: string, version: number): Promise<string[]> {
    const state = await this.#cached(index, table);
    const building = state.building;
    return building !== null && version > building.since ? [index, building.index] : [index];
  }

  /** Handles a control event of `index`'s table; `partition` is the partition it came from. */
  async apply(index: string, table: string, message: ControlMessage, partition: string, properties: Record<string, unknown> | undefined): Promise<void> {
    if (message.kind === 'schema_change') await this.#schemaChange(index, table, message.lsn, message.content, properties);
    else await this.#snapshot(index, table, message, partition);
  }

  /** Deletes the old versions whose grace period is over (at most once a minute per index and process). */
  async reap(index: string, table: string): Promise<void> {
    const now = Date.now();
    if (now - (this.#reapedAt.get(index) ?? now) < REAP_INTERVAL_MS) return;
    this.#reapedAt.set(index, now);
    // A fresh read (also refreshing this process's view of versions another consumer moved).
    await this.#reapNow(index, table);
  }

  async #reapNow(index: string, table: string): Promise<void> {
    const graceMs = this.#options.graceMinutes * 60_000;
    await this.#update(index, table, async (state) => {
      const due = state.retired.filter((r) => r.at + graceMs <= Date.now());
      if (due.length === 0) return false;
      for (const old of due) {
        try {
          await this.#options.client.indices.delete({ index: old.index, ignore_unavailable: true });
        } catch (error) {
          throw new TransientSinkError(`Could not delete the old index version ${old.index}`, error);
        }
        this.#log.info(`elasticsearch: deleted ${old.index}, the version of ${index} replaced at ${new Date(old.at).toISOString()}`);
      }
      state.retired = state.retired.filter((r) => !due.includes(r));
      return true;
    });
  }

  #cached(index: string, table: string): Promise<VersionState> {
    let state = this.#cache.get(index);
    if (!this.#reapedAt.has(index)) this.#reapedAt.set(index, Date.now());
    if (!state) {
      state = this.#read(index, table).then((s) => s.state);
      this.#cache.set(index, state);
      state.catch(() => {
        if (this.#cache.get(index) === state) this.#cache.delete(index);
      });
    }
    return state;
  }

  async #read(index: string, table: string): Promise<Stored> {
    try {
      const doc = await this.#options.client.get<VersionState>({ index: this.#options.controlIndex, id: `versions:${index}` });
      if (!doc._source) return { state: fresh(index, table) };
      return { state: doc._source, seq: { if_seq_no: doc._seq_no ?? 0, if_primary_term: doc._primary_term ?? 1 } };
    } catch (error) {
      if (statusOf(error) === 404) return { state: fresh(index, table) };
      throw new TransientSinkError(`Could not read the index versions of ${index}`, error);
    }
  }

  /**
   * Reads the state, lets `change` modify it (false: nothing to write), and writes it back unless
   * another consumer wrote it meanwhile, in which case it starts over from the newer state.
   */
  async #update(index: string, table: string, change: (state: VersionState) => Promise<boolean>): Promise<VersionState> {
    for (let attempt = 0; attempt < MAX_CONFLICTS; attempt++) {
      const stored = await this.#read(index, table);
      const state = stored.state;
      if (!(await change(state))) {
        this.#cache.set(index, Promise.resolve(state));
        return state;
      }
      try {
        await this.#options.client.index({
          index: this.#options.controlIndex,
          id: `versions:${index}`,
          document: state,
          refresh: false,
          ...(stored.seq ?? { op_type: 'create' }),
        });
        this.#cache.set(index, Promise.resolve(state));
        return state;
      } catch (error) {
        if (statusOf(error) !== 409) throw new TransientSinkError(`Could not record the index versions of ${index}`, error);
      }
    }
    throw new TransientSinkError(`Could not record the index versions of ${index}: ${MAX_CONFLICTS} concurrent updates in a row`);
  }

  async #schemaChange(index: string, table: string, lsn: number, change: SchemaChangeContent, properties: Record<string, unknown> | undefined): Promise<void> {
    let abandoned: string | undefined;
    let started: Building | undefined;
    await this.#update(index, table, async (state) => {
      abandoned = undefined;
      started = undefined;
      if (state.lastChange >= lsn) return false; // another partition's copy, or a redelivery
      const target = state.building?.index ?? state.current;
      const reason = await this.#incompatibility(target, change, properties);
      state.lastChange = lsn;
      if (reason === null) {
        this.#log.info(`elasticsearch: schema change of ${table} applied in place to ${target}`);
        return true;
      }
      const version = Math.max(state.version, state.building?.version ?? 0) + 1;
      const next = `${index}-v${version}`;
      await this.#createVersion(next, table, change, properties);
      abandoned = state.building?.index;
      started = { index: next, version, since: lsn, partitions: change.partitions, snapshot: null, reason };
      state.building = started;
      return true;
    });
    if (started) {
      this.#log.warn(
        `elasticsearch: ${index} cannot take the schema change of ${table} (${started.reason}): building ${started.index}; ` +
          `the aliases ${index} and ${index}-live move to it when an incremental snapshot of the table started after the change is done on all ` +
          `${started.partitions} partitions (the reader starts it with CDC_SCHEMA_CHANGE_SNAPSHOT=auto; else run npm run snapshot for the table)`,
      );
    }
    if (abandoned) {
      // A newer incompatible change while a version was being built: that version will never be complete.
      await this.#options.client.indices.delete({ index: abandoned, ignore_unavailable: true }).catch((error: unknown) => {
        this.#log.warn(`elasticsearch: could not delete the abandoned version ${abandoned}: ${describeError(error)}`);
      });
    }
  }

  /** Why the index cannot take the change (null: it can): a new key, or fields mapped with another type than their columns' new one. */
  async #incompatibility(target: string, change: SchemaChangeContent, properties: Record<string, unknown> | undefined): Promise<string | null> {
    if (change.key.join('\u0000') !== change.previous.key.join('\u0000')) {
      return `the key changed from (${change.previous.key.join(', ')}) to (${change.key.join(', ')})`;
    }
    const previous = new Map(change.previous.columns.map((c) => [c.name, c.type]));
    // Added or retyped columns only: a field whose column did not change keeps whatever it has.
    const changed = change.columns.filter((c) => previous.get(c.name) !== c.type);
    if (changed.length === 0) return null;
    let mapped: Record<string, estypes.MappingProperty>;
    try {
      const response = await this.#options.client.indices.getMapping({ index: target });
      mapped = Object.values(response)[0]?.mappings.properties ?? {};
    } catch (error) {
      if (statusOf(error) !== 404) throw new TransientSinkError(`Could not read the mapping of ${target}`, error);
      // No index yet: created now with the new columns mapped, so that values of the old shape still
      // on their way (another partition) cannot map a field for the old type first.
      await this.#createWithColumns(target, change, properties);
      return null;
    }
    const reasons: string[] = [];
    for (const column of changed) {
      const field = fieldName(column.name);
      if (properties !== undefined && Object.hasOwn(properties, field)) continue; // the route maps it
      const current = mapped[field];
      if (current === undefined) continue;
      const has = current.type ?? 'object';
      const wants = fieldTypeOf(column.type);
      if (has !== wants) reasons.push(`${field} is mapped ${has}, its column is now ${column.type} (${wants})`);
    }
    return reasons.length > 0 ? reasons.join('; ') : null;
  }

  /** Creates the table's index from its template with every column mapped as its type maps (idempotent). */
  async #createWithColumns(index: string, change: SchemaChangeContent, properties: Record<string, unknown> | undefined): Promise<void> {
    const columns: Record<string, estypes.MappingProperty> = {};
    for (const column of change.columns) {
      const field = fieldName(column.name);
      if (properties === undefined || !Object.hasOwn(properties, field)) columns[field] = columnMapping(column.type);
    }
    try {
      await createIndexIfMissing(this.#options.client, index);
      await this.#options.client.indices.putMapping({ index, properties: columns });
    } catch (error) {
      throw new TransientSinkError(`Could not create ${index} with the columns of the schema change`, error);
    }
  }

  /** Creates a version with the table template's mapping and the new columns' explicit mappings (idempotent). */
  async #createVersion(next: string, table: string, change: SchemaChangeContent, properties: Record<string, unknown> | undefined): Promise<void> {
    const owner = await this.#options.claim(next, table);
    if (owner !== table) {
      throw new TransientSinkError(`Cannot build ${next} for ${table}: the index belongs to ${owner} (route one of the tables to another index)`);
    }
    const common = commonComponentTemplate(this.#options.templates).template;
    const explicit: Record<string, unknown> = {};
    for (const column of change.columns) {
      const mapping = mappingForType(typeNameOf(column.type));
      if (mapping !== undefined) explicit[fieldName(column.name)] = mapping;
    }
    try {
      await this.#options.client.indices.create({
        index: next,
        settings: common.settings,
        mappings: {
          date_detection: common.mappings.date_detection,
          dynamic_templates: common.mappings.dynamic_templates as estypes.MappingTypeMapping['dynamic_templates'],
          properties: { ...common.mappings.properties, ...explicit, ...properties } as Record<string, estypes.MappingProperty>,
        },
      });
    } catch (error) {
      if ((error as { meta?: { body?: { error?: { type?: string } } } }).meta?.body?.error?.type === 'resource_already_exists_exception') return;
      throw new TransientSinkError(`Could not create ${next}`, error);
    }
  }

  async #snapshot(
    index: string,
    table: string,
    message: Extract<ControlMessage, { kind: 'snapshot_started' | 'snapshot_done' }>,
    partition: string,
  ): Promise<void> {
    const client = this.#options.client;
    const state = await this.#update(index, table, (s) => {
      const building = s.building;
      // Only a snapshot that started after the change reads every row with its new shape.
      if (message.kind !== 'snapshot_started' || building === null || message.lsn <= building.since || building.snapshot !== null)
        return Promise.resolve(false);
      building.snapshot = message.content.id;
      return Promise.resolve(true);
    });
    const building = state.building;
    if (message.kind !== 'snapshot_done' || building === null || building.snapshot !== message.content.id) return;
    const done = (p: string) => `rebuilt:${building.index}:${p}`;
    try {
      await client.index({
        index: this.#options.controlIndex,
        id: done(partition),
        document: { index: building.index, partition, snapshot: building.snapshot },
      });
      const ids = Array.from({ length: building.partitions }, (_, p) => done(String(p)));
      const found = await client.mget({ index: this.#options.controlIndex, ids });
      const missing = found.docs.filter((d) => !('found' in d) || !d.found).length;
      if (missing > 0) {
        this.#log.info(`elasticsearch: ${building.index} complete on partition ${partition}; ${missing} of ${building.partitions} partitions to go`);
        return;
      }
    } catch (error) {
      throw new TransientSinkError(`Could not record the end of the snapshot of ${table} for ${building.index}`, error);
    }
    await this.#swap(index, table, building.index);
  }

  /** Moves the aliases to the version `next` in one request (idempotent; one consumer does it). */
  async #swap(index: string, table: string, next: string): Promise<void> {
    const claimed = await this.#update(index, table, (s) => {
      if (s.building?.index !== next || s.building.swapping === true) return Promise.resolve(false);
      s.building.swapping = true;
      return Promise.resolve(true);
    });
    if (claimed.building?.index !== next) return; // done by another consumer
    const client = this.#options.client;
    const previous = claimed.current;
    const retired = previous === index ? `${index}-v${claimed.version}` : previous;
    try {
      const actions: estypes.IndicesUpdateAliasesAction[] = [
        { add: { index: next, alias: index, is_write_index: true } },
        { add: { index: next, alias: `${index}-live`, filter: LIVE_FILTER } },
        // The table template's own alias on the version (`{index}-live` → `<index>-v2-live`).
        { remove: { index: next, alias: `${next}-live`, must_exist: false } },
      ];
      if (previous === index) {
        if (await this.#isConcreteIndex(index)) {
          // An alias cannot take the name of an index: keep the old version as `<index>-v1` for the
          // grace period, then replace the index by the alias in the same request as the move.
          await client.indices.addBlock({ index, block: 'write' });
          if (!(await client.indices.exists({ index: retired }))) await client.indices.clone({ index, target: retired });
          actions.push({ remove_index: { index } });
        }
      } else {
        actions.push(
          { remove: { index: previous, alias: index, must_exist: false } },
          { remove: { index: previous, alias: `${index}-live`, must_exist: false } },
        );
      }
      if (!(await this.#aliasPointsAt(index, next))) await client.indices.updateAliases({ actions });
    } catch (error) {
      throw new TransientSinkError(`Could not move the aliases of ${index} to ${next}`, error);
    }
    await this.#update(index, table, (s) => {
      if (s.building?.index !== next) return Promise.resolve(false);
      s.retired.push({ index: retired, at: Date.now() });
      s.current = next;
      s.version = s.building.version;
      s.building = null;
      return Promise.resolve(true);
    });
    this.#log.warn(`elasticsearch: ${index} and ${index}-live now point at ${next}; ${retired} is deleted after ${this.#options.graceMinutes} minutes`);
    if (this.#options.graceMinutes === 0) await this.#reapNow(index, table);
  }

  async #isConcreteIndex(name: string): Promise<boolean> {
    try {
      const response = await this.#options.client.indices.get({ index: name });
      return Object.hasOwn(response, name);
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async #aliasPointsAt(alias: string, index: string): Promise<boolean> {
    try {
      const response = await this.#options.client.indices.getAlias({ name: alias });
      return Object.hasOwn(response, index) && !Object.hasOwn(response, alias);
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }
}
