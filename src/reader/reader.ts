/**
 * The reader: start-up checks, publication and slot, snapshot (fresh or resumed), then the change
 * stream until stopped. `main.ts` wires it to the process (signals, health port, exit codes).
 */
import pg from 'pg';
import type { ClientConfig } from 'pg';
import type { ReaderConfig } from './config.js';
import type { Logger } from '../shared/core/logger.js';
import { errorFields } from '../shared/core/logger.js';
import type { Lsn } from './lsn.js';
import { formatLsn, parseLsn } from './lsn.js';
import { ReaderMetrics } from './metrics.js';
import { TypeRegistry } from './encode/typeRegistry.js';
import type { Query } from './encode/typeRegistry.js';
import { RecordBuilder } from './encode/toRecord.js';
import { AckTracker } from './publish/ackTracker.js';
import { Pipeline } from './publish/pipeline.js';
import type { Publisher } from './publish/publisher.js';
import type { DeadLetterStore } from './publish/deadLetter.js';
import { checkReplicationPrivilege, checkSlotUsable, checkTables, checkWalLevel, ensurePublication, slotState } from './replication/checks.js';
import type { CheckedTable } from './replication/checks.js';
import { quoteIdent } from './replication/sql.js';
import { ChangeStream, SESSION_OPTIONS } from './replication/stream.js';
import { ProgressStore } from './snapshot/progress.js';
import { runSnapshot, textTypes } from './snapshot/snapshot.js';

export type ReaderPhase = 'starting' | 'snapshot' | 'streaming' | 'stopping' | 'stopped' | 'failed';

export interface ReaderDeps {
  config: ReaderConfig;
  log: Logger;
  publisher: Publisher;
  deadLetter: DeadLetterStore | null;
  metrics?: ReaderMetrics;
}

export class Reader {
  phase: ReaderPhase = 'starting';
  readonly metrics: ReaderMetrics;
  private stopping = false;
  private meta: pg.Client | null = null;
  private stream: ChangeStream | null = null;
  private pipeline: Pipeline | null = null;
  private timers: NodeJS.Timeout[] = [];
  private fatal: ((err: Error) => void) | null = null;
  private done: Promise<void> | null = null;
  /** Peak bytes queued for the broker (the reader's memory bound evidence). */
  peakInflightBytes = 0;

  constructor(private readonly d: ReaderDeps) {
    this.metrics = d.metrics ?? new ReaderMetrics();
  }

  private pgConfig(extra: Partial<ClientConfig> = {}): ClientConfig {
    const c = this.d.config.pg;
    return {
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password,
      database: c.database,
      ssl: c.ssl ? { rejectUnauthorized: false } : undefined,
      application_name: 'pg-cdc-reader',
      ...extra,
    };
  }

  get ready(): boolean {
    return (this.phase === 'snapshot' || this.phase === 'streaming') && (this.pipeline?.brokerHealthy ?? true);
  }

  /** Runs until stopped (resolves) or failed (rejects). In `initial_only` mode resolves after the snapshot. */
  async run(): Promise<void> {
    try {
      await this.runInner();
    } catch (err) {
      this.phase = 'failed';
      this.pipeline?.stop();
      await this.stream?.stop(0).catch(() => undefined);
      await this.close();
      throw err;
    } finally {
      this.ended = true;
      this.resolveDone();
    }
  }

  private ended = false;

  private async runInner(): Promise<void> {
    const { config, log } = this.d;
    let failWith: (err: Error) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => (failWith = reject));
    failed.catch(() => undefined);
    this.fatal = (err) => {
      this.phase = 'failed';
      failWith(err);
    };
    let stopped: () => void = () => undefined;
    this.done = new Promise<void>((r) => (stopped = r));
    this.resolveDone = stopped;

    const meta = new pg.Client(this.pgConfig({ options: SESSION_OPTIONS }));
    this.meta = meta;
    meta.on('error', (err) => this.fatal?.(err));
    await meta.connect();
    const query: Query = (sql, params) => meta.query(sql, params);

    await checkWalLevel(meta);
    await checkReplicationPrivilege(meta);
    const tables = await checkTables(meta, config.tables, config.stateSchema);
    let slot = await slotState(meta, config.slotName);
    checkSlotUsable(config.slotName, slot);
    const pub = await ensurePublication(meta, config.publicationName, tables, config.tables === null);
    log.info('start-up checks passed', {
      tables: tables.map((t) => `${t.schema}.${t.table}`),
      publication: config.publicationName,
      publicationState: pub,
      slot: config.slotName,
      slotExists: slot.exists,
    });

    const types = new TypeRegistry(query);
    const records = new RecordBuilder(
      { topic: config.topic, topicTemplate: config.topicTemplate, prefix: config.serverName, maxMessageBytes: config.kafka.maxMessageBytes },
      this.d.deadLetter,
      log,
      () => this.stopping,
    );

    const progress = config.snapshotMode === 'never' ? null : new ProgressStore(meta, config.stateSchema, config.slotName);
    if (progress) await progress.init();

    // Snapshot decision.
    let exported: { conn: pg.Client; snapshot: string } | null = null;
    let snapshotPlan: { versionLsn: Lsn; progress: Awaited<ReturnType<ProgressStore['load']>> } | null = null;
    if (!slot.exists) {
      if (progress) await progress.plan(tables);
      const created = await this.createSlot(config.snapshotMode !== 'never');
      exported = created.exported;
      slot = await slotState(meta, config.slotName);
      log.info('replication slot created', { slot: config.slotName, consistentPoint: created.consistentPoint, restartLsn: slot.restartLsn });
      if (progress) {
        const versionLsn = parseLsn(slot.restartLsn ?? created.consistentPoint) - 1n;
        await progress.setVersion(formatLsn(versionLsn));
        snapshotPlan = { versionLsn, progress: await progress.load() };
      }
    } else if (progress) {
      const state = await progress.load();
      if (state && state.tables.some((t) => !t.done)) {
        const versionLsn = state.versionLsn ? parseLsn(state.versionLsn) : parseLsn(slot.restartLsn ?? '0/1') - 1n;
        snapshotPlan = { versionLsn, progress: state };
        log.info('resuming interrupted snapshot with a fresh snapshot', { done: state.tables.filter((t) => t.done).length, of: state.tables.length });
      }
    }

    if (snapshotPlan) {
      this.phase = 'snapshot';
      const snapTracker = new AckTracker();
      const snapPipeline = new Pipeline(this.d.publisher, snapTracker, log, { maxInflightBytes: config.maxInflightBytes });
      this.pipeline = snapPipeline;
      const snapClient = new pg.Client(this.pgConfig({ options: SESSION_OPTIONS, types: textTypes }));
      snapClient.on('error', (err) => this.fatal?.(err));
      await snapClient.connect();
      const planned = snapshotPlan.progress?.tables ?? [];
      const toRead: CheckedTable[] = tables.filter((t) => planned.some((p) => p.schema === t.schema && p.table === t.table));
      try {
        const result = await Promise.race([
          runSnapshot(
            {
              client: snapClient,
              types,
              progress: progress!,
              records,
              pipeline: snapPipeline,
              tracker: snapTracker,
              log: log.child({ phase: 'snapshot' }),
              serverName: config.serverName,
              db: config.pg.database,
              chunkRows: config.snapshotChunkRows,
              isStopping: () => this.stopping,
              onProgress: (p, added) => this.metrics.snapshotProgress(p, added),
            },
            { tables: toRead, progress: planned, versionLsn: snapshotPlan.versionLsn, exportedSnapshot: exported?.snapshot ?? null },
          ),
          failed,
        ]);
        this.peakInflightBytes = Math.max(this.peakInflightBytes, snapPipeline.peakBytesInFlight);
        if (result === 'stopped') {
          snapPipeline.stop();
          await snapClient.end().catch(() => undefined);
          await exported?.conn.end().catch(() => undefined);
          await this.close();
          this.phase = 'stopped';
          stopped();
          return;
        }
        this.metrics.snapshotDone = true;
      } finally {
        await snapClient.end().catch(() => undefined);
        await exported?.conn.end().catch(() => undefined);
      }
    } else if (exported) {
      await exported.conn.end().catch(() => undefined);
    }

    if (config.snapshotMode === 'initial_only') {
      await meta
        .query('SELECT pg_catalog.pg_drop_replication_slot($1)', [config.slotName])
        .catch((err: unknown) => log.warn('could not drop the slot after initial_only snapshot', errorFields(err)));
      log.info('initial_only: snapshot delivered, slot dropped, exiting');
      await this.close();
      this.phase = 'stopped';
      stopped();
      return;
    }
    if (this.stopping) {
      await this.close();
      this.phase = 'stopped';
      stopped();
      return;
    }

    // Streaming.
    slot = await slotState(meta, config.slotName);
    const confirmedFlush = slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : null;
    const tracker = new AckTracker(null, (e) => {
      if (e.commitTimeMs > 0) this.metrics.commitToAckMs.record(performance.timeOrigin + performance.now() - e.commitTimeMs);
    });
    const pipeline = new Pipeline(this.d.publisher, tracker, log, {
      maxInflightBytes: config.maxInflightBytes,
      onAck: () => this.stream?.ackAdvanced(),
    });
    this.pipeline = pipeline;
    const stream = new ChangeStream({
      pg: this.pgConfig(),
      slot: config.slotName,
      publication: config.publicationName,
      query,
      types,
      records,
      pipeline,
      tracker,
      log: log.child({ phase: 'stream' }),
      serverName: config.serverName,
      db: config.pg.database,
      statusIntervalMs: config.statusIntervalMs,
      stateSchema: config.stateSchema,
      confirmedFlush,
      onFatal: (err) => this.fatal?.(err),
      onEvent: (schema, table, op) => this.metrics.countChange(schema, table, op),
    });
    this.stream = stream;
    await Promise.race([stream.start(), failed]);
    this.phase = 'streaming';

    this.timers.push(
      setInterval(() => {
        this.metrics.inflightBytes = pipeline.bytesInFlight;
        this.peakInflightBytes = Math.max(this.peakInflightBytes, pipeline.peakBytesInFlight);
        const oldest = tracker.oldestOpen;
        this.metrics.slotLagSeconds = oldest && oldest.commitTimeMs > 0 ? (Date.now() - oldest.commitTimeMs) / 1000 : 0;
        this.metrics.tick();
      }, 1000),
    );
    this.timers.push(
      setInterval(() => {
        meta
          .query<{ lag: string | null }>(
            'SELECT (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS lag FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
            [config.slotName],
          )
          .then((r) => (this.metrics.slotLagBytes = r.rows[0]?.lag == null ? null : Number(r.rows[0].lag)))
          .catch((err: unknown) => log.warn('slot lag query failed', errorFields(err)));
      }, 10_000),
    );
    if (config.heartbeatIntervalMs > 0) {
      this.timers.push(
        setInterval(() => {
          // A transactional logical message: an empty transaction the reader acknowledges, so the slot
          // advances even when no captured table changes while other databases write WAL.
          meta
            .query("SELECT pg_catalog.pg_logical_emit_message(true, 'pg-cdc-heartbeat', now()::text)")
            .catch((err: unknown) => log.warn('heartbeat failed', errorFields(err)));
        }, config.heartbeatIntervalMs),
      );
    }
    this.timers.push(setInterval(() => log.info('reader metrics', this.metrics.toJSON()), 60_000));
    for (const t of this.timers) t.unref();

    await Promise.race([this.done, failed]);
  }

  /** Graceful stop: no more reading, flush to the broker, acknowledge, disconnect. */
  async stop(): Promise<void> {
    if (this.ended) return;
    if (this.stopping) return this.done ?? undefined;
    this.stopping = true;
    if (this.phase === 'streaming' && this.stream) {
      this.phase = 'stopping';
      await this.stream.stop();
      await this.close();
      this.phase = 'stopped';
      this.d.log.info('stopped', { acknowledged: this.stream.reportedFlush === null ? null : formatLsn(this.stream.reportedFlush) });
      this.resolveDone();
      return;
    }
    // Snapshot (or start-up) in progress: run() notices `stopping` at the next chunk and returns.
    await this.done;
  }

  private resolveDone: () => void = () => undefined;

  /** Highest bytes ever queued for the broker, snapshot and stream (the memory bound, observed). */
  get peakBytesInFlight(): number {
    return Math.max(this.peakInflightBytes, this.pipeline?.peakBytesInFlight ?? 0);
  }

  /** Most decoded messages ever waiting behind a paused socket. */
  get peakPendingMessages(): number {
    return this.stream?.peakPending ?? 0;
  }

  /** Acknowledged LSN reported to PostgreSQL (tests). */
  get acknowledged(): Lsn | null {
    return this.stream?.reportedFlush ?? null;
  }

  private async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.pipeline?.stop();
    await this.meta?.end().catch(() => undefined);
    this.meta = null;
  }

  private async createSlot(exportSnapshot: boolean): Promise<{ consistentPoint: string; exported: { conn: pg.Client; snapshot: string } | null }> {
    const conn = new pg.Client(this.pgConfig({ replication: 'database' } as Partial<ClientConfig>));
    await conn.connect();
    const sql = `CREATE_REPLICATION_SLOT ${quoteIdent(this.d.config.slotName)} LOGICAL pgoutput ${exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`;
    const res = await conn.query<{ consistent_point: string; snapshot_name: string | null }>(sql);
    const row = res.rows[0];
    if (!row) throw new Error('CREATE_REPLICATION_SLOT returned no row');
    if (!exportSnapshot || !row.snapshot_name) {
      await conn.end();
      return { consistentPoint: row.consistent_point, exported: null };
    }
    // The exported snapshot lives while this connection stays open and idle.
    return { consistentPoint: row.consistent_point, exported: { conn, snapshot: row.snapshot_name } };
  }
}
