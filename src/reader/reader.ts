/**
 * The reader, as phases that `run()` goes through in order:
 *  1. preflight (`preflight.ts`): start-up checks, publication, slot state, stored snapshot progress;
 *  2. the snapshot plan (`snapshot/plan.ts`, a pure function of those): fresh slot, resume an
 *     interrupted snapshot, or nothing to do;
 *  3. snapshot: create the slot when fresh, read the planned tables;
 *  4. streaming, with the monitors (`monitors.ts`) beside it, until stopped;
 *  5. shutdown (`shutdown()`): the one way out, whether stopped, finished (`initial_only`) or failed.
 * A stop ends within its bound in every phase: each phase is given up on once the bound has passed
 * (`untilStopped`), and nothing the broker did not confirm is acknowledged.
 * `main.ts` wires it to the process (signals, health port, exit codes).
 */
import { pgClientOptions, type PgSsl } from '../shared/core/postgres.js';
import pg from 'pg';
import type { ClientConfig } from 'pg';
import type { ReaderConfig } from './config.js';
import type { Logger } from '../shared/core/logger.js';
import { errorFields } from '../shared/core/logger.js';
import type { Lsn } from './lsn.js';
import { formatLsn, parseLsn } from './lsn.js';
import { bounded, deferred } from '../shared/core/async.js';
import { ReaderMetrics } from './metrics.js';
import { startMonitors } from './monitors.js';
import type { Monitors } from './monitors.js';
import { connectDatabase, preflight } from './preflight.js';
import type { Preflight } from './preflight.js';
import { TypeRegistry } from '../shared/events/typeRegistry.js';
import type { Query } from '../shared/events/typeRegistry.js';
import { RecordBuilder } from './encode/toRecord.js';
import { AckTracker } from './publish/ackTracker.js';
import { Pipeline } from './publish/pipeline.js';
import type { Publisher } from './publish/publisher.js';
import type { BrokerCheck } from './publish/brokerCheck.js';
import type { ClaimCheckStore } from './publish/claimCheck.js';
import { slotState } from './replication/checks.js';
import { quoteIdent } from '../shared/core/sql.js';
import { ChangeStream } from './replication/stream.js';
import { SESSION_OPTIONS, textTypes } from '../shared/events/pgTables.js';
import { freshSnapshotVersion, planSnapshot } from './snapshot/plan.js';
import type { SnapshotStep } from './snapshot/plan.js';
import type { SnapshotState } from './snapshot/progress.js';
import { runSnapshot } from './snapshot/snapshot.js';
import { IncrementalSnapshots } from './snapshot/incremental.js';
import { needsReconcile } from './replication/schemaChanges.js';
import type { SchemaChange } from './replication/schemaChanges.js';

export type ReaderPhase = 'starting' | 'snapshot' | 'streaming' | 'stopping' | 'stopped' | 'failed';

/** How long a stop waits for the broker to confirm what is queued (docs/reader.md "Delivery"). */
export const SHUTDOWN_TIMEOUT_MS = 30_000;
/** Bound on closing one connection at shutdown: a peer that vanished must not hold the exit. */
const CLOSE_TIMEOUT_MS = 5_000;
/** What `untilStopped` returns for work it gave up on. */
const STOPPED = Symbol('stopped');

export interface ReaderDeps {
  config: ReaderConfig;
  log: Logger;
  publisher: Publisher;
  /** The broker connection check: before the slot is created, and while streaming (readiness). */
  broker: BrokerCheck;
  /** Where events too large for the hub go (null: such an event stops the reader). */
  claimCheck: ClaimCheckStore | null;
  metrics?: ReaderMetrics;
  /**
   * How long a stop waits for the broker to confirm what is queued before giving up on it (default
   * SHUTDOWN_TIMEOUT_MS; tests shorten it). What it did not confirm is never acknowledged.
   */
  shutdownTimeoutMs?: number;
}

/** The slot's exported snapshot: usable while the connection that created the slot stays open and idle. */
interface ExportedSnapshot {
  conn: pg.Client;
  name: string;
}

/** What every phase after preflight shares: the reader's own connection and the event encoding. */
interface Session extends Preflight {
  meta: pg.Client;
  query: Query;
  types: TypeRegistry;
  records: RecordBuilder;
}

export class Reader {
  phase: ReaderPhase = 'starting';
  readonly metrics: ReaderMetrics;
  private readonly deps: ReaderDeps;
  private readonly shutdownTimeoutMs: number;
  /** Resolved by `stop()`. Phases check `stopping` between their steps (the snapshot between chunks). */
  private readonly stopRequest = deferred<void>();
  private stopping = false;
  /** The phase a stop was requested in (logged). */
  private stoppedDuring: ReaderPhase | null = null;
  /** Set once `shutdown()` began: no new connections, errors of closing ones are not failures. */
  private shuttingDown = false;
  /** The TLS choice the first connection settled on (see startSession). */
  private pgSsl: PgSsl = false;
  /** Rejected by the first fatal error of a connection or of the replication stream. */
  private readonly failure = deferred<never>();
  /** Resolved when `run()` has returned or thrown. */
  private readonly finished = deferred<void>();
  private running = false;
  private ended = false;
  /** Every PostgreSQL connection the phases opened; `shutdown()` closes them. */
  private readonly connections = new Set<pg.Client>();
  private pipeline: Pipeline | null = null;
  private stream: ChangeStream | null = null;
  private monitors: Monitors | null = null;
  private incremental: IncrementalSnapshots | null = null;
  /** The broker probe's verdict while streaming (the pipeline's own covers what is being sent). */
  private brokerReachable = true;
  /** Peak bytes that the snapshot's pipeline queued for the broker (the stream's is `pipeline`'s own). */
  private snapshotPeakBytes = 0;

  constructor(deps: ReaderDeps) {
    this.deps = deps;
    this.shutdownTimeoutMs = deps.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS;
    this.metrics = deps.metrics ?? new ReaderMetrics();
    this.failure.promise.catch(() => undefined);
  }

  get ready(): boolean {
    return (this.phase === 'snapshot' || this.phase === 'streaming') && (this.pipeline?.brokerHealthy ?? true) && this.brokerReachable;
  }

  /** Highest bytes ever queued for the broker, snapshot and stream (the memory bound, observed). */
  get peakBytesInFlight(): number {
    return Math.max(this.snapshotPeakBytes, this.pipeline?.peakBytesInFlight ?? 0);
  }

  /** Most decoded messages ever waiting behind a paused socket. */
  get peakPendingMessages(): number {
    return this.stream?.peakPending ?? 0;
  }

  /** Acknowledged LSN reported to PostgreSQL (tests). */
  get acknowledged(): Lsn | null {
    return this.stream?.reportedFlush ?? null;
  }

  /** Runs until stopped (resolves) or failed (rejects). In `initial_only` mode resolves after the snapshot. */
  async run(): Promise<void> {
    this.running = true;
    try {
      await this.runPhases();
    } catch (err) {
      this.phase = 'failed';
      await this.shutdown('failed');
      throw err;
    } finally {
      this.ended = true;
      this.finished.resolve();
    }
  }

  /**
   * Graceful stop: no more reading, wait for the broker (at most `shutdownTimeoutMs`), acknowledge what
   * it confirmed, disconnect. Resolves once `run()` returned, within that bound in every phase.
   */
  async stop(): Promise<void> {
    if (this.ended) return;
    if (!this.stopping) {
      this.stopping = true;
      this.stoppedDuring = this.phase;
      if (this.phase !== 'failed') this.phase = 'stopping';
      this.stopRequest.resolve();
    }
    if (this.running) await this.finished.promise;
  }

  private async runPhases(): Promise<void> {
    const { config, log } = this.deps;
    // Nothing to flush before the snapshot or the stream started: a stop gives those steps up at once.
    const session = await this.untilStopped(this.startSession(), 0);
    if (session === STOPPED) return this.shutdown('stopped');

    const plan = planSnapshot({ mode: config.snapshotMode, slot: session.slot, stored: session.stored });
    // The snapshot may deliver its current chunk within the bound (its progress is then stored).
    if ((await this.untilStopped(this.snapshotPhase(session, plan.step), this.shutdownTimeoutMs)) !== 'done') return this.shutdown('stopped');

    if (plan.afterwards === 'drop-slot-and-exit') {
      await session.meta
        .query('SELECT pg_catalog.pg_drop_replication_slot($1)', [config.slotName])
        .catch((err: unknown) => log.warn('could not drop the slot after initial_only snapshot', errorFields(err)));
      log.info('initial_only: snapshot delivered, slot dropped, exiting');
      return this.shutdown('finished');
    }
    if (this.stopping) return this.shutdown('stopped');

    if ((await this.untilStopped(this.streamingPhase(session), 0)) === STOPPED) return this.shutdown('stopped');
    await this.untilFailed(this.stopRequest.promise);
    return this.shutdown('stopped');
  }

  /** Preflight on the reader's own connection, then the encoding every later phase shares. */
  private async startSession(): Promise<Session> {
    const { config, log } = this.deps;
    // The first connection settles the TLS choice of PGSSLMODE (prefer/allow may fall back); every
    // later connection (snapshot, slot creation, replication) uses the same one.
    const meta = await this.untilFailed(
      connectDatabase(config.pg, async (ssl) => {
        this.pgSsl = ssl;
        const client = this.connection({ options: SESSION_OPTIONS });
        try {
          await client.connect();
          return client;
        } catch (error) {
          await this.release(client);
          throw error;
        }
      }),
    );
    const checked = await this.untilFailed(preflight(meta, this.deps.broker, config, log));
    const query: Query = (sql, params) => meta.query(sql, params);
    const records = new RecordBuilder(
      {
        topic: config.topic,
        topicTemplate: config.topicTemplate,
        prefix: config.serverName,
        maxMessageBytes: config.kafka.maxMessageBytes,
        onClaimCheck: () => void this.metrics.claimChecked++,
        debezium: config.eventFormat === 'debezium' ? config.debezium : undefined,
      },
      this.deps.claimCheck,
      log,
      () => this.stopping,
    );
    return { ...checked, meta, query, types: new TypeRegistry(query, { jsonAsText: config.eventFormat === 'debezium' }), records };
  }

  /** Carries out the plan's step: creates a fresh slot, then reads the planned tables (fresh or resumed). */
  private async snapshotPhase(session: Session, step: SnapshotStep): Promise<'done' | 'stopped'> {
    const { config, log } = this.deps;
    if (step.kind === 'none') return 'done';
    let exported: ExportedSnapshot | null = null;
    try {
      let versionLsn: Lsn;
      let stored: SnapshotState | null;
      if (step.kind === 'fresh') {
        // Progress is planned before the slot exists, so a crash in between is seen as "redo".
        if (step.exportSnapshot) await session.progress!.plan(session.tables);
        const created = await this.createSlot(step.exportSnapshot);
        exported = created.exported;
        const slot = await slotState(session.meta, config.slotName);
        log.info('replication slot created', { slot: config.slotName, consistentPoint: created.consistentPoint, restartLsn: slot.restartLsn });
        if (!step.exportSnapshot) return 'done';
        versionLsn = freshSnapshotVersion(slot.restartLsn, created.consistentPoint);
        await session.progress!.setVersion(formatLsn(versionLsn));
        stored = await session.progress!.load();
      } else {
        log.info('resuming interrupted snapshot with a fresh snapshot', { done: step.tablesDone, of: step.tablesTotal });
        versionLsn = step.versionLsn;
        stored = session.stored;
      }
      return await this.readSnapshot(session, versionLsn, stored, exported);
    } finally {
      if (exported) await this.release(exported.conn);
    }
  }

  /** Reads the planned tables on a connection of its own, publishing through a pipeline of its own. */
  private async readSnapshot(session: Session, versionLsn: Lsn, stored: SnapshotState | null, exported: ExportedSnapshot | null): Promise<'done' | 'stopped'> {
    const { config, log } = this.deps;
    if (this.stopping) return 'stopped';
    this.phase = 'snapshot';
    const tracker = new AckTracker();
    const pipeline = new Pipeline(this.deps.publisher, tracker, log, { maxInflightBytes: config.maxInflightBytes });
    this.pipeline = pipeline;
    const client = this.connection({ options: SESSION_OPTIONS, types: textTypes });
    try {
      await this.untilFailed(client.connect());
      const planned = stored?.tables ?? [];
      const result = await this.untilFailed(
        runSnapshot(
          {
            client,
            types: session.types,
            progress: session.progress!,
            records: session.records,
            pipeline,
            tracker,
            log: log.child({ phase: 'snapshot' }),
            serverName: config.serverName,
            db: config.pg.database,
            chunkRows: config.snapshotChunkRows,
            parallelism: config.snapshotParallelism,
            readerThreads: config.snapshotReaderThreads,
            threadConnection: { settings: config.pg, plain: this.pgSsl === false },
            readAheadBytes: config.maxInflightBytes,
            openClient: async () => {
              const extra = this.connection({ options: SESSION_OPTIONS, types: textTypes });
              try {
                await extra.connect();
              } catch (error) {
                await this.release(extra);
                throw error;
              }
              return { client: extra, release: () => this.release(extra) };
            },
            isStopping: () => this.stopping,
            onProgress: (p, added) => this.metrics.snapshotProgress(p, added),
          },
          {
            tables: session.tables.filter((t) => planned.some((p) => p.schema === t.schema && p.table === t.table)),
            progress: planned,
            versionLsn,
            exportedSnapshot: exported?.name ?? null,
          },
        ),
      );
      if (result === 'done') this.metrics.snapshotDone = true;
      return result;
    } finally {
      this.snapshotPeakBytes = Math.max(this.snapshotPeakBytes, pipeline.peakBytesInFlight);
      pipeline.stop();
      await this.release(client);
    }
  }

  /** Starts the change stream from the slot's confirmed position, and the monitors beside it. */
  private async streamingPhase(session: Session): Promise<void> {
    const { config, log } = this.deps;
    const slot = await slotState(session.meta, config.slotName);
    const tracker = new AckTracker(null, (e) => {
      if (e.commitTimeMs > 0) {
        this.metrics.commitToAckMs.record(performance.timeOrigin + performance.now() - e.commitTimeMs);
        this.metrics.lastPublishedCommitTimeMs = Math.max(this.metrics.lastPublishedCommitTimeMs ?? 0, e.commitTimeMs);
      }
    });
    const pipeline = new Pipeline(this.deps.publisher, tracker, log, {
      maxInflightBytes: config.maxInflightBytes,
      onAck: () => this.stream?.ackAdvanced(),
    });
    this.pipeline = pipeline;
    const reads = this.connection({ options: SESSION_OPTIONS, types: textTypes });
    const marks = this.connection({ options: SESSION_OPTIONS });
    await this.untilFailed(Promise.all([reads.connect(), marks.connect()]));
    const publisher = this.deps.publisher;
    const incremental = new IncrementalSnapshots({
      query: session.query,
      reads,
      marks,
      store: session.incremental,
      captured: session.captured,
      slot: config.slotName,
      publication: config.publicationName,
      stateSchema: config.stateSchema,
      chunkRows: config.snapshotChunkRows,
      partitions: async (topic) => (publisher.partitions ? publisher.partitions(topic) : null),
      isStopping: () => this.stopping || this.shuttingDown,
      onProgress: (p, added) => this.metrics.incrementalProgress(p, added),
      types: session.types,
      records: session.records,
      pipeline,
      tracker,
      log: log.child({ phase: 'incremental-snapshot' }),
      serverName: config.serverName,
      db: config.pg.database,
    });
    this.incremental = incremental;
    this.stream = new ChangeStream({
      pg: this.pgConfig(),
      slot: config.slotName,
      publication: config.publicationName,
      query: session.query,
      types: session.types,
      records: session.records,
      pipeline,
      tracker,
      log: log.child({ phase: 'stream' }),
      serverName: config.serverName,
      db: config.pg.database,
      statusIntervalMs: config.statusIntervalMs,
      stateSchema: config.stateSchema,
      confirmedFlush: slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : null,
      onFatal: (err) => this.fail(err),
      onEvent: (schema, table, op) => this.metrics.countChange(schema, table, op),
      captured: session.captured,
      onSchemaChange: (change) => this.onSchemaChange(session, change),
      topicPartitions: this.deps.publisher.partitions?.bind(this.deps.publisher),
      incremental,
    });
    await this.untilFailed(this.stream.start());
    if (this.stopping) return;
    await this.untilFailed(incremental.start());
    if (config.snapshotMode !== 'never')
      session.keeper.onAdded = async (_table, oid, hadRows) => {
        if (hadRows) await incremental.requestOid(oid, 'new-table');
      };
    for (const t of session.newTables) {
      log.info('table captured for the first time by this slot: snapshotting it incrementally', { table: `${t.schema}.${t.table}` });
      await this.untilFailed(incremental.requestOid(t.oid, 'new-table'));
    }
    this.phase = 'streaming';
    this.monitors = startMonitors({
      metrics: this.metrics,
      pipeline,
      tracker,
      query: session.query,
      slotName: config.slotName,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      log,
      broker: this.deps.broker,
      onBrokerReachable: (reachable) => (this.brokerReachable = reachable),
      publication: { keeper: session.keeper, refreshMs: config.publicationRefreshMs },
    });
  }

  /** A schema change: counted, and (CDC_SCHEMA_CHANGE_SNAPSHOT) reconciled by an incremental snapshot of the table. */
  private async onSchemaChange(session: Session, change: SchemaChange): Promise<void> {
    const { config, log } = this.deps;
    this.metrics.schemaChange(change);
    if (config.schemaChangeSnapshot === 'off') return;
    try {
      if (!(await needsReconcile(session.query, change))) return;
      if (config.schemaChangeSnapshot === 'manual') {
        log.warn('schema change: documents of existing rows keep their old shape until the table is snapshotted', {
          table: change.table,
          changed: change.changed,
          fix: `npm run snapshot -- --table ${change.table}`,
          note: 'CDC_SCHEMA_CHANGE_SNAPSHOT=auto starts it by itself',
        });
        return;
      }
      await this.incremental?.requestOid(change.oid, 'schema-change');
    } catch (err) {
      log.warn('could not start the incremental snapshot after a schema change', {
        table: change.table,
        ...errorFields(err),
        fix: `npm run snapshot -- --table ${change.table}`,
      });
    }
  }

  /**
   * The one way out of `run()`, bounded. Stops the monitors and the stream (which waits for the broker
   * at most `shutdownTimeoutMs`, unless failed, then reports as flushed only what the broker
   * confirmed), the pipeline (what it still holds stays unacknowledged), and every connection.
   */
  private async shutdown(outcome: 'stopped' | 'finished' | 'failed'): Promise<void> {
    this.shuttingDown = true;
    this.monitors?.stop();
    this.monitors = null;
    const incremental = this.incremental;
    this.incremental = null;
    if (incremental) await bounded(incremental.stop(), CLOSE_TIMEOUT_MS);
    if (outcome !== 'failed' && this.phase !== 'failed') this.phase = 'stopping';
    if (this.stream) {
      const drainMs = outcome === 'failed' ? 0 : this.shutdownTimeoutMs;
      await bounded(
        this.stream.stop(drainMs).catch(() => undefined),
        drainMs + CLOSE_TIMEOUT_MS,
      );
    }
    const unconfirmedRecords = this.pipeline?.pendingRecords ?? 0;
    this.pipeline?.stop();
    await Promise.all([...this.connections].map((c) => this.release(c)));
    if (outcome === 'failed') return;
    this.phase = 'stopped';
    if (outcome !== 'stopped') return;
    const acknowledged = this.stream?.reportedFlush ?? null;
    this.deps.log.info('stopped', {
      during: this.stoppedDuring,
      acknowledged: acknowledged === null ? null : formatLsn(acknowledged),
      // False when the bound passed first: those records are not acknowledged and are read again after a restart.
      brokerConfirmedAll: unconfirmedRecords === 0,
      unconfirmedRecords,
    });
  }

  /** A fatal error of a connection or the stream: fails the phase waiting in `untilFailed`. */
  private fail(err: Error): void {
    if (this.ended || this.shuttingDown) return;
    this.phase = 'failed';
    this.failure.reject(err);
  }

  /** Waits for `work`, or rejects with the first fatal connection error. */
  private untilFailed<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failure.promise]);
  }

  /**
   * Waits for `work`, or rejects with the first fatal connection error. After a stop request `work`
   * has `graceMs` more to finish by itself (the snapshot delivering its chunk); then it is given up
   * on: STOPPED. `shutdown()` closes what it was using, so it ends in an error nobody waits for.
   */
  private async untilStopped<T>(work: Promise<T>, graceMs: number): Promise<T | typeof STOPPED> {
    work.catch(() => undefined);
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = this.stopRequest.promise.then(
      () =>
        new Promise<typeof STOPPED>((resolve) => {
          if (!settled) timer = setTimeout(() => resolve(STOPPED), graceMs);
        }),
    );
    try {
      return await Promise.race([work, this.failure.promise, giveUp]);
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  /**
   * A PostgreSQL connection that `shutdown()` closes. Its errors fail the reader, unless `fatal` is
   * false (the slot-creating connection: once its exported snapshot was imported it is not needed).
   */
  private connection(extra: Partial<ClientConfig>, fatal = true): pg.Client {
    if (this.shuttingDown) throw new Error('the reader is shutting down');
    const client = new pg.Client(this.pgConfig(extra));
    client.on('error', (err) => (fatal ? this.fail(err) : this.deps.log.warn('connection error', errorFields(err))));
    this.connections.add(client);
    return client;
  }

  private async release(client: pg.Client): Promise<void> {
    this.connections.delete(client);
    await bounded(
      client.end().catch(() => undefined),
      CLOSE_TIMEOUT_MS,
    );
  }

  private pgConfig(extra: Partial<ClientConfig> = {}): ClientConfig {
    // Never leave `ssl` unset: node-postgres would then read PGSSLMODE itself, with other rules.
    return { ...pgClientOptions(this.deps.config.pg, this.pgSsl, 'pg-cdc-reader'), ...extra };
  }

  private async createSlot(exportSnapshot: boolean): Promise<{ consistentPoint: string; exported: ExportedSnapshot | null }> {
    const conn = this.connection({ replication: 'database' } as Partial<ClientConfig>, false);
    await conn.connect();
    const sql = `CREATE_REPLICATION_SLOT ${quoteIdent(this.deps.config.slotName)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`;
    const res = await conn.query<{ consistent_point: string; snapshot_name: string | null }>(sql);
    const row = res.rows[0];
    if (!row) throw new Error('CREATE_REPLICATION_SLOT returned no row');
    if (!exportSnapshot || !row.snapshot_name) {
      await this.release(conn);
      return { consistentPoint: row.consistent_point, exported: null };
    }
    // The exported snapshot lives while this connection stays open and idle.
    return { consistentPoint: row.consistent_point, exported: { conn, name: row.snapshot_name } };
  }
}
