/**
 * The pgoutput change stream: decodes each message, builds events, queues them on the pipeline in WAL
 * order, and confirms to PostgreSQL only what the broker acknowledged (manual acknowledgement).
 *
 * Protocol v1 (no in-progress streaming): the server decodes a transaction once it commits, spilling
 * large ones to disk, and sends it message by message; the reader never holds a transaction, it holds
 * at most `CDC_MAX_INFLIGHT_BYTES` of events (flow control pauses the socket while the handler waits
 * for capacity). Aborted transactions are never sent, so nothing uncommitted reaches a sink.
 */
import { bounded } from '../../shared/core/async.js';
import type { ClientConfig } from 'pg';
import { LogicalReplicationService } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import type { ChangeEvent, ChangeOp, RowImage } from '../../shared/events/changeEvent.js';
import { buildEnvelope } from '../encode/envelope.js';
import { SESSION_OPTIONS } from '../../shared/events/pgTables.js';
import type { Query } from '../../shared/events/typeRegistry.js';
import { errorFields } from '../../shared/core/logger.js';
import type { Lsn } from '../lsn.js';
import { formatLsn, parseLsn } from '../lsn.js';
import type { TxEntry } from '../publish/ackTracker.js';
import type { EventOutputDeps } from '../publish/pipeline.js';
import { BeginMessage, InsertMessage, lsnAt, TextPgoutputPlugin } from './plugin.js';
import type { TupleValue } from './plugin.js';
import type { RelationInfo } from './relations.js';
import { decodeTuple, decodeValues, describeRelation, relationKey } from './relations.js';
import type { CapturedTables, RelationShape } from './captured.js';
import { relationShape, schemaChangeFields, schemaDiff } from './schemaChanges.js';
import type { SchemaChange } from './schemaChanges.js';
import { schemaChangeEvent } from './schemaChangeEvent.js';
import { toEveryPartition } from '../publish/publisher.js';
import type { OutRecord } from '../publish/publisher.js';
import type { InsertRecords } from '../encode/toRecord.js';
import { SIGNALS_TABLE } from '../snapshot/signals.js';

export interface StreamDeps extends EventOutputDeps {
  pg: ClientConfig;
  slot: string;
  publication: string;
  query: Query;
  statusIntervalMs: number;
  /** Tables of this schema are never published (the reader's own state). */
  stateSchema: string;
  /** The slot's confirmed_flush_lsn at start (what is already acknowledged). */
  confirmedFlush: Lsn | null;
  onFatal: (err: Error) => void;
  /** Called for every change event handed to the pipeline. */
  onEvent?: (schema: string, table: string, op: string) => void;
  /** The captured tables: the name every event carries, and the shapes schema changes are told by. */
  captured: CapturedTables;
  /** Called with every schema change (after it was logged); the stream waits for what it returns. */
  onSchemaChange?: (change: SchemaChange) => void | Promise<void>;
  /** Partitions of a topic (the broker's metadata): a schema change goes to each (schemaChangeEvent.ts). Unset: not published. */
  topicPartitions?: (topic: string) => Promise<number>;
  /** The incremental snapshots (snapshot/incremental.ts): signals, watermarks and the keys changed in a chunk's window. */
  incremental?: IncrementalHooks;
}

/** What the stream tells the incremental snapshots. */
export interface IncrementalHooks {
  /** A chunk window is open: report the key of every change (`touched`). */
  readonly active: boolean;
  touched(table: string, keyJson: string): void;
  truncated(table: string): void;
  /** A logical message; a promise when the stream must wait (pipeline full). */
  message(prefix: string, content: string, lsn: Lsn): Promise<void> | undefined;
  /** A row inserted into the signal table (never rejects). */
  signal(row: Record<string, unknown>): Promise<void>;
}

/** Streaming replication protocol: the CopyData message types of a logical replication stream. */
const XLOG_DATA = 0x77; // 'w'
const KEEPALIVE = 0x6b; // 'k'
/** pgoutput: the first byte of a Begin and of a Commit message. */
const PGOUTPUT_BEGIN = 0x42; // 'B'
const PGOUTPUT_COMMIT = 0x43; // 'C'

interface OpenTx {
  xid: number;
  commitLsn: Lsn;
  commitTimeMs: number;
  entry: TxEntry;
  /**
   * Keys (key JSON, per relation OID) that a key-changing update of this transaction created; see
   * `toEvents`. Created on the first key change only; dropped with the transaction at commit.
   */
  keyChangeCreated: Map<number, Set<string>> | null;
}

export class ChangeStream {
  private readonly service: LogicalReplicationService;
  private readonly plugin: TextPgoutputPlugin;
  private readonly relations = new Map<number, RelationInfo>();
  /** The shape of the last Relation message of each relation in this run. */
  private readonly shapes = new Map<number, RelationShape>();
  private tx: OpenTx | null = null;
  /** Schema changes read from Relation messages, published with the change that follows them (publishSchemaChanges). */
  private schemaChanges: { change: SchemaChange; info: RelationInfo; topic: string; partitions: number }[] = [];
  private lastCommitLsn: Lsn | null = null;
  /** Each relation's insert records (`insertRecord`; null: not for this relation), made at its first insert. */
  private readonly insertWriters = new WeakMap<RelationInfo, InsertRecords | null>();
  private statusTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private failed = false;
  private lastStatusSent = 0;
  private statusScheduled = false;
  private lastReportedFlush: Lsn | null = null;
  /** Messages parsed from the socket chunk being read while an asynchronous step waits (see onData). */
  private pending: ({ lsn: Lsn; msg: Pgoutput.Message } | undefined)[] = [];
  private pendingHead = 0;
  private busy = false;
  /** Most messages ever waiting while the socket was paused (memory-bound evidence). */
  peakPending = 0;

  /** Events carry their columns for the encoder in the Debezium format only (no per-event cost in the native one). */
  private readonly withColumns: boolean;

  constructor(private readonly deps: StreamDeps) {
    this.withColumns = deps.records.format === 'debezium';
    this.plugin = new TextPgoutputPlugin(deps.publication);
    this.service = new LogicalReplicationService(
      { ...deps.pg, options: SESSION_OPTIONS },
      // Flow control is done here (see onData): messages are handled synchronously and the socket is
      // paused only while an asynchronous step (relation lookup, claim-check write, waiting for broker
      // capacity) is in progress, instead of the library's promise per message.
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    // Emitted once the server answered START_REPLICATION, before its first CopyData message.
    this.service.on('start', () => this.readCopyData());
    this.service.on('error', (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))));
  }

  /** Starts streaming from the slot's confirmed position; resolves once the server started. */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.service.once('start', () => resolve());
      this.service.once('error', reject);
    });
    this.service.subscribe(this.plugin, this.deps.slot).then(
      () => {
        if (!this.stopping) this.fail(new Error('replication stream ended unexpectedly'));
      },
      (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
    );
    await started;
    this.statusTimer = setInterval(() => this.sendStatus(), this.deps.statusIntervalMs);
    this.deps.log.info('streaming started', {
      slot: this.deps.slot,
      publication: this.deps.publication,
      from: this.deps.confirmedFlush === null ? null : formatLsn(this.deps.confirmedFlush),
    });
  }

  /** Graceful stop: take no more messages, wait for the broker, confirm, disconnect. */
  async stop(drainTimeoutMs = 30_000): Promise<void> {
    this.stopping = true;
    await bounded(this.deps.pipeline.drain(), drainTimeoutMs);
    this.deps.tracker.advance();
    this.sendStatus(true);
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.statusTimer = null;
    await this.service.stop().catch(() => undefined);
  }

  /** The LSN most recently confirmed to PostgreSQL (commit LSN; PostgreSQL stores it + 1). */
  get reportedFlush(): Lsn | null {
    return this.lastReportedFlush;
  }

  /** Sends a standby status update with the acknowledged position. */
  sendStatus(force = false): void {
    if (this.failed && !force) return;
    const acked = this.deps.tracker.ackedLsn;
    // The library reports lsn + 1: a commit LSN confirms its transaction; before any ack, re-confirm
    // the slot's own position (confirmed_flush − 1) so nothing moves.
    let lsn: Lsn | null = acked ?? (this.deps.confirmedFlush !== null && this.deps.confirmedFlush > 0n ? this.deps.confirmedFlush - 1n : null);
    if (lsn === null) return;
    if (this.lastReportedFlush !== null && lsn < this.lastReportedFlush) lsn = this.lastReportedFlush;
    this.lastStatusSent = Date.now();
    this.lastReportedFlush = lsn;
    void this.service.acknowledge(formatLsn(lsn)).catch(() => undefined);
  }

  /**
   * A keepalive's WAL end is the position up to which the walsender has decoded, and every change
   * before it was sent ahead of the keepalive on the same socket. When nothing is open, queued behind
   * a paused socket or waiting for the broker, everything before it is delivered, so it can be
   * confirmed: otherwise a database whose writes touch only unpublished tables (PostgreSQL 15+ sends
   * nothing for them) would pin its WAL forever behind the last captured change.
   */
  private onKeepalive(walEnd: Lsn): void {
    if (this.failed || this.stopping || this.busy || this.tx !== null || this.pendingHead < this.pending.length) return;
    if (this.deps.confirmedFlush !== null && walEnd <= this.deps.confirmedFlush) return;
    // The library reports lsn + 1 (a commit LSN confirms its transaction); walEnd itself is the target.
    if (this.deps.tracker.idleAdvance(walEnd - 1n)) this.ackAdvanced();
  }

  /** Called when the acknowledged LSN advanced: report it soon (at most every 100 ms). */
  ackAdvanced(): void {
    if (this.statusScheduled) return;
    const wait = Math.max(0, 100 - (Date.now() - this.lastStatusSent));
    this.statusScheduled = true;
    setTimeout(() => {
      this.statusScheduled = false;
      this.sendStatus();
    }, wait).unref();
  }

  private fail(err: Error): void {
    if (this.failed || this.stopping) return;
    this.failed = true;
    this.deps.log.error('replication stream failed', errorFields(err));
    this.deps.onFatal(err);
  }

  /**
   * The replication connection's CopyData messages are read here, not by pg-logical-replication's
   * handler: that one formats each message's WAL position as hex text (which the reader parsed back
   * into a number), emits each through an event emitter and calls an async function per message (a
   * promise each), about 0.6 µs per single-row transaction (docs/reader.md "Benchmark", run 18). pg's
   * own copyData handler is removed with it: for a replication query it does nothing
   * (`Query.handleCopyData` is a no-op in pg 8). The message formats are PostgreSQL's streaming
   * replication protocol: XLogData `w` (Int64 start of the data, Int64 end of WAL, Int64 send time,
   * then the pgoutput message) and the primary keepalive `k` (Int64 end of WAL, Int64 send time, Byte
   * reply requested).
   */
  private readCopyData(): void {
    const connection = this.connection();
    if (!connection || connection.listenerCount('copyData') === 0) {
      this.fail(
        new Error('pg-logical-replication has no copyData handler on its connection: its internals changed (this reader is built for its 2.x releases)'),
      );
      return;
    }
    connection.removeAllListeners('copyData');
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => {
      const kind = chunk[0];
      if (kind === XLOG_DATA) {
        // Begin and Commit carry their own positions (their header's is never read): no BigInt made for them.
        const tag = chunk[25];
        this.onData(tag === PGOUTPUT_BEGIN || tag === PGOUTPUT_COMMIT ? 0n : lsnAt(chunk, 1), this.plugin.parse(chunk.subarray(25)));
      } else if (kind === KEEPALIVE) {
        this.onKeepalive(lsnAt(chunk, 1));
        if (chunk[17] !== 0) this.sendStatus();
      } else this.fail(new Error(`unexpected replication message type ${kind} (expected XLogData or a keepalive)`));
    });
  }

  /** pg's connection of the replication client (pg-logical-replication keeps it private). */
  private connection(): (NodeJS.EventEmitter & { stream?: { pause(): unknown; resume(): unknown } }) | null | undefined {
    return (this.service as unknown as { _connection?: (NodeJS.EventEmitter & { stream?: { pause(): unknown; resume(): unknown } }) | null })._connection;
  }

  /** The replication socket (the library's own flow control pauses the same stream). */
  private socket(): { pause(): unknown; resume(): unknown } | undefined {
    return this.connection()?.stream;
  }

  private onData(lsn: Lsn, msg: Pgoutput.Message): void {
    if (this.failed || this.stopping) {
      // Not handled, so never acknowledged: the slot sends it again after a restart.
      this.socket()?.pause();
      return;
    }
    if (this.busy) {
      // Already parsed from the socket chunk being read when the socket was paused: bounded by it.
      this.pending.push({ lsn, msg });
      const n = this.pending.length - this.pendingHead;
      if (n > this.peakPending) this.peakPending = n;
      return;
    }
    const p = this.step(lsn, msg);
    if (p) this.waitThenDrain(p);
  }

  /** Handles one message; returns a promise only when it has to wait. */
  private step(lsn: Lsn, msg: Pgoutput.Message): Promise<void> | undefined {
    try {
      return this.handle(lsn, msg);
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      this.socket()?.pause();
      return undefined;
    }
  }

  private waitThenDrain(p: Promise<void>): void {
    this.busy = true;
    this.socket()?.pause();
    p.then(
      () => this.drainPending(),
      (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
    );
  }

  private drainPending(): void {
    while (this.pendingHead < this.pending.length) {
      if (this.failed || this.stopping) return; // stay paused
      const item = this.pending[this.pendingHead]!;
      this.pending[this.pendingHead++] = undefined;
      const p = this.step(item.lsn, item.msg);
      if (this.failed) return;
      if (p) {
        p.then(
          () => this.drainPending(),
          (err: unknown) => this.fail(err instanceof Error ? err : new Error(String(err))),
        );
        return;
      }
    }
    this.pending = [];
    this.pendingHead = 0;
    this.busy = false;
    if (!this.failed && !this.stopping) this.socket()?.resume();
  }

  private handle(lsn: Lsn, msg: Pgoutput.Message): Promise<void> | undefined {
    switch (msg.tag) {
      case 'begin':
        this.onBegin(msg);
        return undefined;
      case 'commit':
        this.onCommit();
        return undefined;
      case 'relation':
        return this.onRelation(msg);
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        return this.onChange(lsn, msg);
      case 'message':
        return this.onMessage(lsn, msg);
      default:
        return undefined; // type, origin
    }
  }

  private onBegin(msg: Pgoutput.MessageBegin): void {
    const entry = this.deps.tracker.open();
    // BeginMessage (TextPgoutputPlugin) carries the numbers already; the library's shape otherwise.
    const fast = msg instanceof BeginMessage;
    const commitTimeMs = fast ? msg.commitTimeMs : Number(msg.commitTime) / 1000;
    entry.commitTimeMs = commitTimeMs;
    this.tx = {
      xid: msg.xid,
      commitLsn: fast ? msg.commitLsnValue : msg.commitLsn ? parseLsn(msg.commitLsn) : 0n,
      commitTimeMs,
      entry,
      keyChangeCreated: null,
    };
  }

  private onCommit(): void {
    const tx = this.tx;
    if (!tx) return;
    this.tx = null;
    const before = this.deps.tracker.ackedLsn;
    this.deps.tracker.close(tx.entry, tx.commitLsn);
    this.lastCommitLsn = tx.commitLsn;
    if (this.deps.tracker.ackedLsn !== before) this.ackAdvanced();
  }

  private async onRelation(msg: Pgoutput.MessageRelation): Promise<void> {
    const { captured, log } = this.deps;
    // The reader's own state tables (published only in all-tables mode, never emitted) are not captured.
    if (msg.schema === this.deps.stateSchema) {
      this.relations.set(msg.relationOid, await describeRelation(this.deps.query, this.deps.types, msg));
      return;
    }
    // Events carry the name the table was captured under, whatever it is called now (docs/reader.md "Renames").
    const name = await captured.register(msg.relationOid, msg.schema, msg.name);
    const info = await describeRelation(this.deps.query, this.deps.types, msg, name, this.withColumns);
    this.relations.set(msg.relationOid, info);
    const shape = await relationShape(this.deps.query, msg, info.keyColumns, info.replicaIdentity);
    const lsn = this.tx?.commitLsn ?? null;
    const inRun = this.shapes.get(msg.relationOid);
    this.shapes.set(msg.relationOid, shape);
    const stored = captured.shapeOf(msg.relationOid);
    // A stored shape newer than this message: WAL read again after a restart, already reported.
    const replay = stored !== undefined && stored.lsn !== null && lsn !== null && lsn < stored.lsn;
    const before = inRun ?? (replay ? undefined : stored?.shape);
    if (!replay && (stored === undefined || schemaDiff(stored.shape, shape).length > 0)) {
      const save = () => captured.saveShape(msg.relationOid, shape, lsn);
      // Stored only once the transaction is acknowledged (its events, the schema_change control event
      // among them, confirmed by the broker): after a crash before that, the slot sends the transaction
      // again, and the Relation message is compared with the shape before the change, so the
      // schema_change is published again (a duplicate at worst; the sinks are idempotent).
      if (this.tx)
        whenAcked(this.tx.entry, save, (err) => log.warn('could not store the table shape', { table: `${info.schema}.${info.table}`, ...errorFields(err) }));
      else await save();
    }
    if (before === undefined) return;
    const changed = schemaDiff(before, shape);
    if (changed.length === 0) return;
    const change: SchemaChange = {
      table: `${info.schema}.${info.table}`,
      oid: msg.relationOid,
      lsn: lsn === null ? null : formatLsn(lsn),
      at: new Date().toISOString(),
      changed,
      acrossRestart: inRun === undefined,
      before,
      after: shape,
    };
    // A new key re-addresses the table's rows in every key-addressed sink: worth a warning.
    const fields = schemaChangeFields(change);
    if (changed.includes('key')) log.warn('table schema changed: key columns changed', fields);
    else log.info('table schema changed', fields);
    await this.deps.onSchemaChange?.(change);
    if (this.tx && this.deps.records.format === 'native' && this.deps.topicPartitions) {
      const topic = this.deps.records.topicOf(info.schema, info.table);
      this.schemaChanges.push({ change, info, topic, partitions: await this.deps.topicPartitions(topic) });
    }
  }

  /**
   * The schema changes of the Relation messages just read, as control events on every partition of
   * their tables' topics, ahead of the change that follows them (pgoutput sends a Relation message
   * right before its table's next change, with no WAL position of its own): versioned just below it.
   */
  private publishSchemaChanges(tx: OpenTx, lsn: Lsn): void {
    for (const { change, info, topic, partitions } of this.schemaChanges) {
      const event = schemaChangeEvent({
        change,
        schema: info.schema,
        table: info.table,
        lsn,
        serverName: this.deps.serverName,
        db: this.deps.db,
        txId: tx.xid,
        commitTimeMs: tx.commitTimeMs,
        partitions,
        nowMs: Date.now(),
      });
      this.deps.pipeline.enqueueBuilt(toEveryPartition(topic, event, partitions), tx.entry);
    }
    this.schemaChanges = [];
  }

  /** Logical messages: the incremental snapshots' watermarks (others, e.g. heartbeats, are ignored). */
  private onMessage(lsn: Lsn, msg: Pgoutput.MessageMessage): Promise<void> | undefined {
    const inc = this.deps.incremental;
    if (!inc || msg.transactional) return undefined;
    return inc.message(msg.prefix, Buffer.from(msg.content).toString('utf8'), msg.messageLsn ? parseLsn(msg.messageLsn) : lsn);
  }

  private relation(oid: number): RelationInfo {
    const r = this.relations.get(oid);
    if (!r) throw new Error(`change for unknown relation ${oid} (no Relation message seen)`);
    return r;
  }

  private onChange(
    lsn: Lsn,
    msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete | Pgoutput.MessageTruncate,
  ): Promise<void> | undefined {
    const tx = this.tx;
    if (!tx) throw new Error(`${msg.tag} outside a transaction`);
    if (this.schemaChanges.length > 0) this.publishSchemaChanges(tx, lsn);
    const inc = this.deps.incremental;
    if (inc && msg.tag === 'insert') {
      const rel = this.relations.get(msg.relation.relationOid);
      // A signal (snapshot/signals.ts): read in commit order, stored before the transaction is acknowledged.
      if (rel && rel.schema === this.deps.stateSchema && rel.table === SIGNALS_TABLE) return inc.signal(decodeTuple(rel, msg.new).row);
    }
    if (msg instanceof InsertMessage && !inc?.active) {
      // The common case, a row inserted: its record straight from the column texts (insertRecord).
      const rel = this.relation(msg.relation.relationOid);
      const record = this.insertRecord(tx, rel, lsn, msg.values);
      if (record !== null) {
        this.deps.pipeline.enqueueBuilt(record, tx.entry);
        this.deps.onEvent?.(rel.schema, rel.table, 'c');
        return this.deps.pipeline.saturated ? this.deps.pipeline.waitForCapacity() : undefined;
      }
    }
    const events = this.toEvents(lsn, tx, msg);
    if (inc?.active) {
      for (const e of events) {
        const table = `${e.source.schema}.${e.source.table}`;
        if (e.op === 't') inc.truncated(table);
        else if (e.key) inc.touched(table, JSON.stringify(e.key));
      }
    }
    for (let i = 0; i < events.length; i++) {
      const built = this.deps.records.tryBuild(events[i]!);
      if (built === null) return this.publishSlow(events.slice(i), tx);
      this.deps.pipeline.enqueueBuilt(built, tx.entry);
      const e = events[i]!;
      // A skipped op (Debezium `skipped.operations`) builds no record and is not a published change.
      if (!Array.isArray(built) || built.length > 0) this.deps.onEvent?.(e.source.schema, e.source.table, e.op);
    }
    return this.deps.pipeline.saturated ? this.deps.pipeline.waitForCapacity() : undefined;
  }

  /** Events too large for the hub: claim-check write first (awaited), in order. */
  private async publishSlow(events: ChangeEvent[], tx: OpenTx): Promise<void> {
    for (const event of events) {
      const built = await this.deps.records.build(event);
      this.deps.pipeline.enqueueBuilt(built, tx.entry);
      if (!Array.isArray(built) || built.length > 0) this.deps.onEvent?.(event.source.schema, event.source.table, event.op);
    }
    if (this.deps.pipeline.saturated) await this.deps.pipeline.waitForCapacity();
  }

  /**
   * The record of an insert made without the row, key and event objects: the row's and key's JSON from
   * the column texts (`RelationInfo.rowJson`) inside the envelope the transaction's inserts into this
   * relation share (`InsertRecords`), byte-identical to the event's own record.
   * Null where that does not apply (the Debezium format, the state schema's tables, a binary or
   * missing value, a NULL key column, a record too large for the hub): the event's path then, which
   * also names any problem.
   */
  private insertRecord(tx: OpenTx, rel: RelationInfo, lsn: Lsn, values: readonly TupleValue[]): OutRecord | null {
    const json = rel.rowJson;
    if (!json || rel.schema === this.deps.stateSchema || values.length !== rel.columns.length) return null;
    for (const v of values) if (typeof v !== 'string' && v !== null) return null;
    let writer = this.insertWriters.get(rel);
    if (writer === undefined) {
      // The table's envelope (its transaction, position and clock fields are the writer's to fill in).
      writer = this.deps.records.insertRecords(this.envelope(tx, lsn, Date.now(), rel, 'c', null, null, null));
      this.insertWriters.set(rel, writer);
    }
    if (writer === null) return null;
    const texts = values as readonly (string | null)[];
    const after = json.row(texts);
    const keyJson = json.keyIsRow ? after : json.key(texts);
    return keyJson === null ? null : writer.write(tx, this.lastCommitLsn, after, keyJson, lsn, Date.now());
  }

  /** A change's event; one input object per event (no shared base object spread into each). */
  private envelope(
    tx: OpenTx,
    lsn: Lsn,
    now: number,
    rel: RelationInfo,
    op: ChangeOp,
    before: RowImage | null,
    after: RowImage | null,
    key: RowImage | null,
    unchangedToast?: string[],
    oldKey?: RowImage,
  ): ChangeEvent {
    return buildEnvelope({
      op,
      before,
      after,
      key,
      unchangedToast,
      oldKey,
      columnTypes: rel.types,
      columns: this.withColumns ? rel.debeziumColumns : undefined,
      serverName: this.deps.serverName,
      db: this.deps.db,
      schema: rel.schema,
      table: rel.table,
      lsn,
      commitLsn: tx.commitLsn,
      lastCommitLsn: this.lastCommitLsn,
      txId: tx.xid,
      sourceTsMs: tx.commitTimeMs,
      snapshot: 'false',
      nowMs: now,
      renamedTo: rel.renamedTo,
    });
  }

  private toEvents(
    lsn: Lsn,
    tx: OpenTx,
    msg: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete | Pgoutput.MessageTruncate,
  ): ChangeEvent[] {
    const now = Date.now();
    if (msg.tag === 'truncate') {
      const rels = msg.relations.map((r) => this.relation(r.relationOid)).filter((rel) => rel.schema !== this.deps.stateSchema);
      for (const rel of rels) tx.keyChangeCreated?.delete(rel.oid); // those rows are gone
      return rels.map((rel) => this.envelope(tx, lsn, now, rel, 't', null, null, null));
    }
    const rel = this.relation(msg.relation.relationOid);
    if (rel.schema === this.deps.stateSchema) return [];
    if (msg.tag === 'insert') {
      // InsertMessage (TextPgoutputPlugin) carries the column texts in order; the library's tuple otherwise.
      const { row, unchanged } = msg instanceof InsertMessage ? decodeValues(rel, msg.values) : decodeTuple(rel, msg.new);
      return [this.envelope(tx, lsn, now, rel, 'c', null, row, relationKey(rel, row), unchanged)];
    }
    if (msg.tag === 'delete') {
      const before = msg.old ? decodeTuple(rel, msg.old).row : msg.key ? decodeTuple(rel, msg.key).row : null;
      if (before === null) throw new Error(`delete of ${rel.schema}.${rel.table} without an old key or row`);
      const key = relationKey(rel, before);
      // A plain DELETE is always emitted; the row a key change created there is gone with it.
      tx.keyChangeCreated?.get(rel.oid)?.delete(JSON.stringify(key));
      return [this.envelope(tx, lsn, now, rel, 'd', before, null, key)];
    }
    const old = msg.old ? decodeTuple(rel, msg.old).row : msg.key ? decodeTuple(rel, msg.key).row : null;
    const { row: after, unchanged } = decodeTuple(rel, msg.new);
    const newKey = relationKey(rel, { ...(old ?? {}), ...after });
    const oldKey = old ? relationKey(rel, old) : null;
    // Only an update with an old key (the key changed, or REPLICA IDENTITY FULL) can change the key.
    const oldJson = oldKey ? JSON.stringify(oldKey) : null;
    const newJson = oldJson === null ? null : JSON.stringify(newKey);
    if (oldJson !== null && newJson !== null && oldJson !== newJson) {
      // Key changed: a delete of the old key and a create of the new one (as Debezium does), so
      // key-addressed sinks do not keep the old row.
      const create = this.envelope(tx, lsn, now, rel, 'c', null, after, newKey, unchanged, oldKey ?? undefined);
      // A key that is unique row by row (a non-deferrable index) is held by one row at a time: the row
      // leaving it is the one there, and its delete is always right (also when this transaction moved it
      // there, e.g. a swap through a temporary key). So is a whole-row key's (the same row updated twice
      // in a transaction).
      if (!rel.keyMayRepeat) return [this.envelope(tx, lsn, now, rel, 'd', old, null, oldKey), create];
      // A deferrable key lets one statement shift keys: `SET id = id + 1` decodes
      // as 1→2, 2→3, …, and the delete of 2 would remove the row that moved into 2 just before. So when
      // a key change earlier in this transaction created the old key, the row leaving it has already
      // been replaced there and only its create is emitted. (The WAL does not tell this from one row
      // moved twice in one transaction, 1→2 then 2→3, which then leaves key 2 in the sinks:
      // docs/reader.md "Key shifts".)
      let created = tx.keyChangeCreated?.get(rel.oid);
      const oldReplaced = created?.has(oldJson) ?? false;
      if (!created) {
        tx.keyChangeCreated ??= new Map();
        created = new Set();
        tx.keyChangeCreated.set(rel.oid, created);
      }
      created.add(newJson);
      return oldReplaced ? [create] : [this.envelope(tx, lsn, now, rel, 'd', old, null, oldKey), create];
    }
    return [this.envelope(tx, lsn, now, rel, 'u', old, after, newKey, unchanged)];
  }
}

/** Runs `action` once `entry` is acknowledged (after any callback it already has). */
function whenAcked(entry: TxEntry, action: () => Promise<void>, onError: (err: unknown) => void): void {
  const previous = entry.onAcked;
  entry.onAcked = () => {
    previous?.();
    action().catch(onError);
  };
}
