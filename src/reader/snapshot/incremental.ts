/**
 * Incremental snapshots (docs/reader.md "Incremental snapshots"): re-reads a table, or the rows of it
 * that a filter selects, chunk by chunk by key while the stream goes on, so that no snapshot row ever
 * overwrites a newer change in a sink that keeps the highest version (`rowVersion`: `source.lsn`).
 *
 * Per chunk (a watermark window, as DBLog and Debezium's incremental snapshots, plus one wait that
 * the LSN versioning needs):
 *  1. a low watermark, a non-transactional logical message, at WAL position L (the stream receives it
 *     at its place in commit order);
 *  2. wait until every transaction that had a transaction id at that time has ended;
 *  3. read the chunk (`WHERE (filter) AND key > last ORDER BY key LIMIT n`, READ ONLY);
 *  4. a high watermark.
 * The chunk's rows get `source.lsn` = L (`op: 'r'`, `source.snapshot: 'incremental'`), emitted by the
 * stream at the high watermark. Why no row regresses, for a sink keeping the highest version per key:
 * - a change the read saw is older than (or equal to) the row the read returned, whatever its version;
 * - a change the read did not see belongs to a transaction that had not ended when the read's
 *   snapshot was taken, so (step 2) its transaction id was given after L was written, and all its
 *   writes, hence its `source.lsn`, are after L: it wins over the snapshot row, as it should;
 * - for one key, changes are in LSN order (the row lock, or the unique index, serialises writers).
 * So the sink ends with the newest state of every key whichever order events arrive in. Without step
 * 2, a transaction that wrote a row before L and committed after the read would carry a version below
 * the stale snapshot row and be refused (test/reader/snapshot/incremental.test.ts catches it; so is a
 * version taken at the high watermark, refused for every change written between the read and it).
 * The window still matters: between the watermarks the stream notes the key of every change of the
 * table, and those rows are not emitted (their change carries the row; fewer redundant writes), the
 * control events sit at the watermarks' places in the stream, and a chunk is confirmed in stream order.
 *
 * Progress (the last delivered key and the row count) is stored in `<CDC_STATE_SCHEMA>.incremental_snapshots`
 * after the broker confirmed each chunk, so a restarted reader resumes at the next chunk.
 */
import type pg from 'pg';
import { errorFields } from '../../shared/core/logger.js';
import { qualified, quoteIdent } from '../../shared/core/sql.js';
import type { ChangeEvent, RowImage } from '../../shared/events/changeEvent.js';
import { CAPTURED_COLUMN, catalogKeyColumns, tableCatalogByOid } from '../../shared/events/pgTables.js';
import type { TableCatalog } from '../../shared/events/pgTables.js';
import type { Query } from '../../shared/events/typeRegistry.js';
import type { DebeziumColumn } from '../encode/debezium.js';
import { buildEnvelope, READER_VERSION } from '../encode/envelope.js';
import type { Lsn } from '../lsn.js';
import { formatLsn } from '../lsn.js';
import type { TableSnapshotProgress } from '../metrics.js';
import type { TxEntry } from '../publish/ackTracker.js';
import type { EventOutputDeps } from '../publish/pipeline.js';
import { toEveryPartition, type OutRecord } from '../publish/publisher.js';
import type { CapturedTables } from '../replication/captured.js';
import { publicationMembers } from '../replication/publication.js';
import { keyFrom } from '../replication/relations.js';
import { checkFilter, parseSignal, resolveSignalTable, SignalError, splitTableName } from './signals.js';
import { CONTROL_PREFIX, type SnapshotMessage } from '../../shared/events/controlMessage.js';

/** How long a wait for older transactions goes before it is logged (and every such interval after). */
const WAIT_WARN_MS = 10_000;

/** One incremental snapshot of one table, as stored. */
export interface IncrementalRequest {
  /** The signal id (or `auto-…` for the reader's own: new table, schema change). */
  id: string;
  /** The captured name, `schema`.`table`, as in the events. */
  schema: string;
  table: string;
  oid: number;
  filter: string | null;
  /** Why it was started: `signal`, `new-table`, `schema-change`. */
  reason: string;
  lastKey: string[] | null;
  rows: number;
  done: boolean;
}

/** The state table of the incremental snapshots of a slot. */
export class IncrementalStore {
  private readonly t: string;
  constructor(
    private readonly query: Query,
    private readonly schema: string,
    private readonly slot: string,
  ) {
    this.t = qualified(schema, 'incremental_snapshots');
  }

  async init(): Promise<void> {
    await this.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`, []);
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${this.t} (
         slot_name text NOT NULL, id text NOT NULL, schema_name text NOT NULL, table_name text NOT NULL, relid oid NOT NULL,
         filter text, reason text NOT NULL, last_key jsonb, rows bigint NOT NULL DEFAULT 0, done boolean NOT NULL DEFAULT false,
         created_at timestamptz NOT NULL DEFAULT clock_timestamp(), updated_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (slot_name, id, schema_name, table_name))`,
      [],
    );
  }

  /** Stores a request; false when one of that id and table exists already (a signal read again after a restart, or a reused id). */
  async add(r: IncrementalRequest): Promise<boolean> {
    const res = await this.query(
      `INSERT INTO ${this.t} (slot_name, id, schema_name, table_name, relid, filter, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT DO NOTHING RETURNING 1 AS added`,
      [this.slot, r.id, r.schema, r.table, r.oid, r.filter, r.reason],
    );
    return res.rows.length > 0;
  }

  /** The unfinished requests, oldest first. */
  async pending(): Promise<IncrementalRequest[]> {
    const { rows } = await this.query(
      `SELECT id, schema_name, table_name, relid::int AS relid, filter, reason, last_key, rows::text AS rows FROM ${this.t}
        WHERE slot_name = $1 AND NOT done ORDER BY created_at, id, schema_name, table_name`,
      [this.slot],
    );
    return (
      rows as { id: string; schema_name: string; table_name: string; relid: number; filter: string | null; reason: string; last_key: unknown; rows: string }[]
    ).map((r) => ({
      id: r.id,
      schema: r.schema_name,
      table: r.table_name,
      oid: Number(r.relid),
      filter: r.filter,
      reason: r.reason,
      lastKey: (typeof r.last_key === 'string' ? JSON.parse(r.last_key) : r.last_key) as string[] | null,
      rows: Number(r.rows),
      done: false,
    }));
  }

  /** Stores a request's progress (after the broker confirmed a chunk) or its end. */
  async save(r: IncrementalRequest): Promise<void> {
    await this.query(
      `UPDATE ${this.t} SET last_key = $5::jsonb, rows = $6, done = $7, updated_at = now() WHERE slot_name = $1 AND id = $2 AND schema_name = $3 AND table_name = $4`,
      [this.slot, r.id, r.schema, r.table, JSON.stringify(r.lastKey), r.rows, r.done],
    );
  }
}

export interface IncrementalDeps extends EventOutputDeps {
  /** The reader's own connection (catalog look-ups, state tables). */
  query: Query;
  /** A connection whose type parsers return text (`textTypes`): the chunk reads. */
  reads: pg.Client;
  /** A connection for the watermarks and the waits (autocommit). */
  marks: pg.Client;
  store: IncrementalStore;
  captured: CapturedTables;
  slot: string;
  publication: string;
  stateSchema: string;
  chunkRows: number;
  /** The partition count of a topic (control events go to each); null when the publisher cannot tell. */
  partitions: (topic: string) => Promise<number | null>;
  isStopping: () => boolean;
  onProgress?: (p: TableSnapshotProgress, added: number) => void;
}

/** A chunk row, decoded, waiting for its high watermark. */
interface ChunkRow {
  keyJson: string;
  key: RowImage;
  after: RowImage;
}

/** The chunk between its watermarks. The stream fills `touched` and emits at the high watermark. */
interface Window {
  /** Watermark content: unique per chunk and run (an old run's watermarks, read again, match nothing). */
  mark: string;
  /** `schema.table` as the events name it. */
  table: string;
  req: IncrementalRequest;
  cat: TableCatalog;
  open: boolean;
  lowLsn: Lsn | null;
  touched: Set<string>;
  truncated: boolean;
  /** Set before the high watermark is written. */
  rows: ChunkRow[] | null;
  columnTypes: Record<string, string> | undefined;
  columns: DebeziumColumn[] | undefined;
  /** The table's last chunk (fewer rows than a chunk): the done event follows its rows. */
  last: boolean;
  /** Control records to send around the rows (started before, done after). */
  started: OutRecord[];
  done: OutRecord[];
  /** Resolved by the stream at the high watermark with what it enqueued. */
  emitted: (r: { entry: TxEntry; emittedRows: number; highLsn: Lsn }) => void;
}

/** The control event published to every partition of a table's topic at the start and end of its incremental snapshot. */
export interface ControlEvent {
  op: 'm';
  before: null;
  after: null;
  key: null;
  source: ChangeEvent['source'];
  ts_ms: number;
  message: SnapshotMessage;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class IncrementalSnapshots {
  private queue: IncrementalRequest[] = [];
  private window: Window | null = null;
  private wake: (() => void) | null = null;
  private running: Promise<void> | null = null;
  private readonly stopped = new Set<string>();
  private readonly run = Math.random().toString(36).slice(2, 10);
  private seq = 0;
  /** `schema.table` of the request being read, for `stop-snapshot`. */
  private current: IncrementalRequest | null = null;
  private readonly prefix: string;
  private readsLock: Promise<void> = Promise.resolve();

  constructor(private readonly deps: IncrementalDeps) {
    this.prefix = `pg-cdc-watermark:${deps.slot}`;
  }

  /** True while a chunk window is open: the stream then reports each change's key (`touched`). */
  get active(): boolean {
    return this.window !== null && this.window.open;
  }

  /** Loads the unfinished requests (a restart resumes them) and starts working. */
  async start(): Promise<void> {
    // Requests the stream queued while this loaded (a signal, a schema change) are stored too: kept once.
    const stored = await this.deps.store.pending();
    const same = (a: IncrementalRequest, b: IncrementalRequest) => a.id === b.id && a.schema === b.schema && a.table === b.table;
    this.queue = [...stored, ...this.queue.filter((q) => !stored.some((r) => same(r, q)))];
    if (this.queue.length > 0)
      this.deps.log.info('incremental snapshots resumed', {
        pending: this.queue.map((r) => ({ id: r.id, table: `${r.schema}.${r.table}`, rows: r.rows, resumeAfter: r.lastKey })),
      });
    this.running = this.loop().catch((err: unknown) => {
      if (!this.deps.isStopping()) this.deps.log.error('incremental snapshots stopped', errorFields(err));
    });
  }

  /** Waits for the work loop to end (after a stop). */
  async stop(): Promise<void> {
    this.wake?.();
    await this.running;
  }

  /**
   * Queues an incremental snapshot of a table (by its current catalog entry), stored before this
   * resolves. False when that id and table were queued before.
   */
  async request(cat: TableCatalog, id: string, filter: string | null, reason: string): Promise<boolean> {
    const name = this.deps.captured.nameOf(cat.oid) ?? { schema: cat.schema, table: cat.table };
    const req: IncrementalRequest = { id, schema: name.schema, table: name.table, oid: cat.oid, filter, reason, lastKey: null, rows: 0, done: false };
    if (!(await this.deps.store.add(req))) return false;
    this.queue.push(req);
    this.deps.log.info('incremental snapshot queued', { id, table: `${req.schema}.${req.table}`, filter, reason, queued: this.queue.length });
    this.wake?.();
    return true;
  }

  /** Queues an incremental snapshot of the table with relation id `oid` (the reader's own: new table, schema change). */
  async requestOid(oid: number, reason: string): Promise<void> {
    const cat = await tableCatalogByOid(this.deps.query, oid);
    if (!cat) return;
    if (catalogKeyColumns(cat).wholeRowKey) {
      this.deps.log.warn('no incremental snapshot for a table without a key', {
        table: `${cat.schema}.${cat.table}`,
        reason,
        why: 'an incremental snapshot reads by key; rows of a table keyed by all their columns cannot be told from changed ones',
        fix: `add a primary key, or re-read the table with a new CDC_SLOT and CDC_SNAPSHOT_MODE=initial`,
      });
      return;
    }
    await this.request(cat, `auto-${reason}-${new Date().toISOString()}-${oid}`, null, reason);
  }

  /**
   * A row inserted into the signal table, from the stream (in commit order). Validates it and queues
   * what it asks; a bad signal is logged with the reason and the fix. Never throws: a signal never
   * stops the stream.
   */
  async signal(row: Record<string, unknown>): Promise<void> {
    const { log } = this.deps;
    try {
      const s = parseSignal(row);
      if (s.kind === 'ignored') {
        log.info('signal ignored: type not supported', { id: s.id, type: s.type, supported: ['execute-snapshot', 'stop-snapshot'] });
        return;
      }
      if (s.kind === 'stop-snapshot') {
        const names = s.tables;
        const named = names?.map((n) => splitTableName(n) ?? { schema: '', table: n });
        const hit = (r: IncrementalRequest) => named === undefined || named.some((n) => n.schema === r.schema && n.table === r.table);
        const stopping = [...this.queue.filter(hit), ...(this.current && hit(this.current) ? [this.current] : [])];
        for (const r of stopping) this.stopped.add(`${r.id}\u0000${r.schema}.${r.table}`);
        this.queue = this.queue.filter((r) => !hit(r));
        for (const r of stopping) {
          r.done = true;
          await this.deps.store.save(r);
        }
        log.info('incremental snapshots stopped by signal', {
          id: s.id,
          stopped: stopping.map((r) => ({ id: r.id, table: `${r.schema}.${r.table}`, rows: r.rows })),
        });
        return;
      }
      const members = await this.withReads(() => publicationMembers(this.deps.reads, this.deps.publication));
      const resolved: { cat: TableCatalog; filter: string | null }[] = [];
      for (const t of s.targets) {
        const cat = await resolveSignalTable(this.deps.query, t.name, {
          members,
          capturedOid: (schema, table) => this.deps.captured.oidOf(schema, table),
          stateSchema: this.deps.stateSchema,
        });
        const filter = t.filter;
        if (filter !== null) await this.withReads(() => checkFilter(this.deps.reads, qualified(cat.schema, cat.table), filter));
        resolved.push({ cat, filter: t.filter });
      }
      for (const r of resolved) {
        if (!(await this.request(r.cat, s.id, r.filter, 'signal')))
          log.warn('signal ignored: its id was used before for this table', {
            id: s.id,
            table: `${r.cat.schema}.${r.cat.table}`,
            fix: 'give each signal a new id',
          });
      }
    } catch (err) {
      const id = typeof row.id === 'string' ? row.id : null;
      if (err instanceof SignalError) log.warn('signal refused', { id, reason: err.message, fix: err.fix, signal: row });
      else log.warn('signal refused: it could not be carried out', { id, ...errorFields(err), signal: row });
    }
  }

  /** The stream: a change of `table` (`schema.table` of its events) with this key, while a window is open. */
  touched(table: string, keyJson: string): void {
    const w = this.window;
    if (w && w.open && w.table === table) w.touched.add(keyJson);
  }

  /** The stream: `table` was truncated while a window is open: none of the chunk's rows is emitted. */
  truncated(table: string): void {
    const w = this.window;
    if (w && w.open && w.table === table) w.truncated = true;
  }

  /**
   * The stream: a logical message at `lsn`. At our low watermark the window opens; at our high one
   * the chunk's rows that no change touched are queued on the stream's pipeline, at this point of the
   * stream. Returns a promise when the pipeline is full (the stream waits, as for its own events).
   */
  message(prefix: string, content: string, lsn: Lsn): Promise<void> | undefined {
    if (prefix !== this.prefix) return undefined;
    const w = this.window;
    let m: { mark?: string; kind?: string };
    try {
      m = JSON.parse(content) as typeof m;
    } catch {
      return undefined;
    }
    if (!w || m.mark !== w.mark) return undefined; // an earlier chunk's or run's, read again
    if (m.kind === 'low') {
      w.open = true;
      w.lowLsn = lsn;
      return undefined;
    }
    if (m.kind !== 'high' || !w.open || w.rows === null || w.lowLsn === null) return undefined;
    this.window = null;
    const { pipeline, tracker, records } = this.deps;
    const entry = tracker.open();
    const version = w.lowLsn;
    const now = Date.now();
    const events: ChangeEvent[] = [];
    for (const r of w.truncated ? [] : w.rows) {
      if (w.touched.has(r.keyJson)) continue;
      events.push(
        buildEnvelope({
          op: 'r',
          serverName: this.deps.serverName,
          db: this.deps.db,
          schema: w.req.schema,
          table: w.req.table,
          before: null,
          after: r.after,
          key: r.key,
          lsn: version,
          commitLsn: null,
          lastCommitLsn: null,
          txId: null,
          sourceTsMs: now,
          snapshot: 'incremental',
          nowMs: now,
          columnTypes: w.columnTypes,
          columns: w.columns,
          renamedTo: w.cat.schema !== w.req.schema || w.cat.table !== w.req.table ? `${w.cat.schema}.${w.cat.table}` : undefined,
        }),
      );
    }
    const patch = (recs: OutRecord[], at: Lsn, rows: number): OutRecord[] =>
      recs.map((rec) => {
        const ev = JSON.parse(rec.value!.toString()) as ControlEvent;
        ev.source.lsn = Number(at);
        ev.message.content.rows = rows;
        return { ...rec, value: Buffer.from(JSON.stringify(ev)) };
      });
    const finish = () => {
      // The done event: the high watermark's LSN and the rows emitted in all.
      if (w.last) for (const rec of patch(w.done, lsn, w.req.rows + events.length)) pipeline.enqueue(rec, entry);
      tracker.close(entry, 0n);
      w.emitted({ entry, emittedRows: events.length, highLsn: lsn });
    };
    // The started event: the first chunk's low watermark.
    for (const rec of patch(w.started, version, 0)) pipeline.enqueue(rec, entry);
    for (let i = 0; i < events.length; i++) {
      const built = records.tryBuild(events[i]!);
      if (built === null) {
        return (async () => {
          for (const e of events.slice(i)) pipeline.enqueueBuilt(await records.buildLarge(e), entry);
          finish();
          if (pipeline.saturated) await pipeline.waitForCapacity();
        })();
      }
      pipeline.enqueueBuilt(built, entry);
    }
    finish();
    return pipeline.saturated ? pipeline.waitForCapacity() : undefined;
  }

  private async loop(): Promise<void> {
    const { log } = this.deps;
    while (!this.deps.isStopping()) {
      const req = this.queue.shift();
      if (!req) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      this.current = req;
      try {
        await this.snapshot(req);
      } catch (err) {
        if (this.deps.isStopping()) return;
        // A table dropped or changed under the snapshot, a connection error: logged, retried after a pause.
        log.warn('incremental snapshot chunk failed; retried', { id: req.id, table: `${req.schema}.${req.table}`, ...errorFields(err) });
        this.window = null;
        if (!req.done) this.queue.unshift(req);
        await sleep(2_000);
      } finally {
        this.current = null;
      }
    }
  }

  /** The read connection is shared by the chunk reads and the filter checks of signals: one at a time. */
  private withReads<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.readsLock.then(fn, fn);
    this.readsLock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private isStopped(req: IncrementalRequest): boolean {
    return this.stopped.has(`${req.id}\u0000${req.schema}.${req.table}`);
  }

  private async snapshot(req: IncrementalRequest): Promise<void> {
    const { log, reads, types } = this.deps;
    const table = `${req.schema}.${req.table}`;
    const cat = await tableCatalogByOid(this.deps.query, req.oid);
    if (!cat) {
      log.warn('incremental snapshot given up: the table no longer exists', { id: req.id, table });
      req.done = true;
      await this.deps.store.save(req);
      return;
    }
    const { keyColumns, wholeRowKey } = catalogKeyColumns(cat);
    if (wholeRowKey) {
      log.warn('incremental snapshot given up: the table has no key any more', { id: req.id, table, fix: 'add a primary key and signal again' });
      req.done = true;
      await this.deps.store.save(req);
      return;
    }
    const relation = qualified(cat.schema, cat.table);
    const est = await this.deps.query('SELECT greatest(reltuples, 0)::bigint::text AS n FROM pg_catalog.pg_class WHERE oid = $1', [cat.oid]);
    const estimate = Number((est.rows[0] as { n?: string } | undefined)?.n ?? 0);
    const started = Date.now();
    const startRows = req.rows;
    let lastLog = started;
    const order = keyColumns.map(quoteIdent).join(', ');
    const first = req.lastKey === null && req.rows === 0;
    log.info(first ? 'incremental snapshot started' : 'incremental snapshot resumed', {
      id: req.id,
      table,
      filter: req.filter,
      reason: req.reason,
      estimatedRows: estimate,
      resumeAfter: req.lastKey,
    });
    this.deps.onProgress?.({ schema: req.schema, table: req.table, rowsDone: req.rows, rowsTotal: estimate, done: false }, 0);
    let firstChunk = first;
    for (;;) {
      if (this.deps.isStopping() || this.isStopped(req)) return;
      const mark = `${this.run}:${++this.seq}`;
      let emitted!: (r: { entry: TxEntry; emittedRows: number; highLsn: Lsn }) => void;
      const emittedP = new Promise<{ entry: TxEntry; emittedRows: number; highLsn: Lsn }>((resolve) => (emitted = resolve));
      const w: Window = {
        mark,
        table,
        req,
        cat,
        open: false,
        lowLsn: null,
        touched: new Set(),
        truncated: false,
        rows: null,
        columnTypes: undefined,
        columns: undefined,
        last: false,
        started: [],
        done: [],
        emitted,
      };
      if (firstChunk && this.deps.records.format === 'native') w.started = await this.controlRecords(req, 'snapshot_started');
      this.window = w;
      await this.watermark(mark, 'low');
      await this.waitForOlderTransactions(req);
      // The chunk read: exactly the stream's columns (generated ones are not replicated), in a READ ONLY
      // transaction, the filter (user SQL) as one statement of the extended protocol.
      const result = await this.withReads(async () => {
        await reads.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        try {
          const cols = await reads.query<{ name: string }>(
            `SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND ${CAPTURED_COLUMN} ORDER BY a.attnum`,
            [cat.oid],
          );
          const select = cols.rows.map((c) => quoteIdent(c.name)).join(', ');
          const conds: string[] = [];
          if (req.filter !== null) conds.push(`(${req.filter}\n)`);
          if (req.lastKey) conds.push(`(${order}) > (${req.lastKey.map((_, i) => `$${i + 1}`).join(', ')})`);
          const where = conds.length > 0 ? ` WHERE ${conds.join(' AND ')}` : '';
          const config: pg.QueryConfig & { queryMode: 'extended' } = {
            text: `SELECT ${select} FROM ${relation}${where} ORDER BY ${order} LIMIT ${this.deps.chunkRows}`,
            values: req.lastKey ?? [],
            queryMode: 'extended',
          };
          return await reads.query<Record<string, string | null>>(config);
        } finally {
          await reads.query('COMMIT').catch(() => undefined);
        }
      });
      const fields = result.fields;
      await types.ensure(fields.map((f) => f.dataTypeID));
      const decoders = fields.map((f) => types.decoder(f.dataTypeID));
      w.columnTypes = types.columnTypes(fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })));
      w.columns =
        this.deps.records.format === 'debezium'
          ? fields.map((f) => ({ name: f.name, type: types.baseTypeName(f.dataTypeID), typmod: f.dataTypeModifier }))
          : undefined;
      const rows: ChunkRow[] = result.rows.map((raw) => {
        const after: RowImage = {};
        fields.forEach((f, i) => {
          const v = raw[f.name];
          after[f.name] = v === null || v === undefined ? null : decoders[i]!(v);
        });
        const key = keyFrom(req, keyColumns, false, after);
        return { keyJson: JSON.stringify(key), key, after };
      });
      const lastRaw = result.rows[result.rows.length - 1];
      w.last = result.rows.length < this.deps.chunkRows;
      if (w.last && this.deps.records.format === 'native') w.done = await this.controlRecords(req, 'snapshot_done');
      w.rows = rows;
      await this.watermark(mark, 'high');
      const out = await this.untilEmitted(emittedP);
      if (out === null) return;
      // Delivered (broker-confirmed) before the progress moves: a crash redoes at most this chunk.
      while (out.entry.pending > 0) {
        if (this.deps.isStopping()) return;
        await sleep(10);
      }
      req.rows += out.emittedRows;
      if (lastRaw) req.lastKey = keyColumns.map((k) => lastRaw[k] as string);
      // A stop-snapshot signal read meanwhile marked it done: it stays done.
      req.done = w.last || this.isStopped(req);
      await this.deps.store.save(req);
      firstChunk = false;
      this.deps.onProgress?.({ schema: req.schema, table: req.table, rowsDone: req.rows, rowsTotal: estimate, done: req.done }, out.emittedRows);
      const t = Date.now();
      if (req.done || t - lastLog > 5_000) {
        lastLog = t;
        const rate = ((req.rows - startRows) / Math.max(1, t - started)) * 1000;
        const remaining = Math.max(0, estimate - req.rows);
        log.info(req.done ? 'incremental snapshot finished' : 'incremental snapshot progress', {
          id: req.id,
          table,
          filter: req.filter,
          rows: req.rows,
          rowsPerSec: Math.round(rate),
          estimatedRows: estimate,
          etaSec: req.done ? 0 : rate > 0 ? Math.round(remaining / rate) : null,
          done: req.done,
          highWatermark: formatLsn(out.highLsn),
        });
      }
      if (req.done) return;
    }
  }

  /** Waits for the stream to reach the high watermark (null: stopping). */
  private async untilEmitted<T>(p: Promise<T>): Promise<T | null> {
    let done: T | null = null;
    void p.then((v) => (done = v));
    while (done === null) {
      if (this.deps.isStopping()) return null;
      await Promise.race([p, sleep(100)]);
    }
    return done;
  }

  private async watermark(mark: string, kind: 'low' | 'high'): Promise<void> {
    // Non-transactional: the stream receives it at its place in commit order, with no transaction around it.
    await this.deps.marks.query('SELECT pg_catalog.pg_logical_emit_message(false, $1, $2)', [this.prefix, JSON.stringify({ mark, kind })]);
  }

  /**
   * Waits until every transaction that has a transaction id now has ended (committed or aborted):
   * takes an id (which is above every id given so far) and waits until the oldest running id is above it.
   */
  private async waitForOlderTransactions(req: IncrementalRequest): Promise<void> {
    const { marks, log } = this.deps;
    const x = await marks.query<{ x: string }>('SELECT pg_catalog.pg_current_xact_id()::text AS x');
    const xid = x.rows[0]!.x;
    const started = Date.now();
    let warned = started;
    for (let i = 0; ; i++) {
      const r = await marks.query<{ ok: boolean }>('SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot()) > $1::xid8 AS ok', [xid]);
      if (r.rows[0]?.ok) return;
      if (this.deps.isStopping()) throw new Error('stopping');
      if (Date.now() - warned > WAIT_WARN_MS) {
        warned = Date.now();
        const blockers = await marks.query(
          `SELECT pid, datname::text AS database, usename::text AS "user", state, backend_xid::text AS xid, xact_start::text AS "transactionStart", left(query, 200) AS query
             FROM pg_catalog.pg_stat_activity WHERE backend_xid IS NOT NULL AND backend_xid::text::bigint <= ($1::xid8::text::bigint % 4294967296) ORDER BY xact_start LIMIT 5`,
          [xid],
        );
        const prepared = await marks.query('SELECT gid, prepared::text, owner::text, database::text FROM pg_catalog.pg_prepared_xacts LIMIT 5');
        log.warn('incremental snapshot waits for older transactions to end', {
          id: req.id,
          table: `${req.schema}.${req.table}`,
          waitingSec: Math.round((Date.now() - started) / 1000),
          why: 'a chunk is emitted only once every transaction that could have written its rows unseen has ended (no snapshot row may overwrite a newer change)',
          blockers: blockers.rows,
          preparedTransactions: prepared.rows,
          fix: 'end or terminate the long transactions (SELECT pg_terminate_backend(pid)), COMMIT/ROLLBACK PREPARED forgotten prepared ones',
        });
      }
      await sleep(Math.min(100, 2 ** i));
    }
  }

  /** One control event per partition of the table's topic (native format only: `message` is not a Debezium field). */
  private async controlRecords(req: IncrementalRequest, kind: 'snapshot_started' | 'snapshot_done'): Promise<OutRecord[]> {
    const now = Date.now();
    const event: ControlEvent = {
      op: 'm',
      before: null,
      after: null,
      key: null,
      source: {
        version: READER_VERSION,
        connector: 'postgresql',
        name: this.deps.serverName,
        ts_ms: now,
        snapshot: 'incremental',
        db: this.deps.db,
        schema: req.schema,
        table: req.table,
        txId: null,
        lsn: null, // set when it is queued: the low (started) or high (done) watermark's LSN
        sequence: null,
      },
      ts_ms: now,
      message: { prefix: CONTROL_PREFIX, kind, content: { table: `${req.schema}.${req.table}`, id: req.id, where: req.filter, rows: req.rows } },
    };
    const topic = this.deps.records.topicOf(req.schema, req.table);
    const n = await this.deps.partitions(topic).catch(() => null);
    if (n === null || n < 1) return [{ topic, key: undefined, value: Buffer.from(JSON.stringify(event)) }];
    return toEveryPartition(topic, event, n);
  }
}
