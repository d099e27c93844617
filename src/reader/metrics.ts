/**
 * Reader metrics: the single place where the reader's figures are kept. Served as JSON on /metrics of
 * the health port, logged every minute, and observed by the OpenTelemetry instruments of `otel.ts`
 * (Application Insights export), which read these fields and never keep counts of their own.
 */
import type { SchemaChange } from './replication/schemaChanges.js';
import { schemaChangeFields } from './replication/schemaChanges.js';

/** Latency histogram: exact percentiles over the most recent `window` samples (a ring buffer). */
export class Histogram {
  private readonly samples: Float64Array;
  private next = 0;
  count = 0;
  sum = 0;
  /** Called with every recorded value (the OpenTelemetry histogram subscribes here). */
  private listeners: ((v: number) => void)[] = [];
  constructor(readonly window = 100_000) {
    this.samples = new Float64Array(window);
  }
  /** Subscribes to recorded values; returns the unsubscribe function. */
  subscribe(listener: (v: number) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }
  record(v: number): void {
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i]!(v);
    this.samples[this.next] = v;
    this.next = (this.next + 1) % this.window;
    this.count++;
    this.sum += v;
  }
  /** The p-th percentile (0..1) of the recent samples, null when empty. */
  percentile(p: number): number | null {
    const n = Math.min(this.count, this.window);
    if (n === 0) return null;
    const sorted = this.samples.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.max(0, Math.ceil(n * p) - 1))]!;
  }
  reset(): void {
    this.count = 0;
    this.sum = 0;
    this.next = 0;
  }
}

/** Streamed change events of one table, by `op` (c, u, d, t). */
export interface TableChanges {
  schema: string;
  table: string;
  byOp: Record<string, number>;
}

/** Snapshot progress of one table. */
export interface TableSnapshotProgress {
  schema: string;
  table: string;
  /** Rows delivered to the broker (including those of an interrupted earlier run). */
  rowsDone: number;
  /** The planner's estimate (`pg_class.reltuples`) while the table is read, the exact count once done. */
  rowsTotal: number;
  done: boolean;
}

/** Schema changes kept for /metrics and the status (the latest ones). */
export const RECENT_SCHEMA_CHANGES = 10;

export class ReaderMetrics {
  /** Schema changes seen (Relation messages that differ from the previous one of their table). */
  schemaChanges = 0;
  /** `schema.table` (captured name) → schema changes seen. */
  readonly schemaChangesByTable = new Map<string, number>();
  /** The latest schema changes, newest last. */
  readonly recentSchemaChanges: SchemaChange[] = [];
  /** Streamed change events (snapshot rows not included), the sum of `changesByTable`. */
  changes = 0;
  /** schema → table → counts by op. */
  readonly changesByTable = new Map<string, Map<string, TableChanges>>();
  snapshotRows = 0;
  /** `schema.table` → progress (rows, total, done). */
  readonly snapshotTables = new Map<string, TableSnapshotProgress>();
  snapshotDone = false;
  /** Rows emitted by incremental snapshots. */
  incrementalSnapshotRows = 0;
  /** `schema.table` → the latest incremental snapshot's progress, with its rate and ETA. */
  readonly incrementalTables = new Map<string, TableSnapshotProgress & { rowsPerSec: number; etaSec: number | null; startedAt: number; startRows: number }>();
  /** Events too large for the hub, published as a claim-check pointer. */
  claimChecked = 0;
  slotLagBytes: number | null = null;
  slotLagSeconds = 0;
  inflightBytes = 0;
  readonly commitToAckMs = new Histogram();
  /** Commit time (ms) of the newest streamed transaction the broker confirmed: the status's newest committed change. */
  lastPublishedCommitTimeMs: number | null = null;
  private lastChanges = 0;
  private lastAt = Date.now();
  changesPerSec = 0;

  /** Counts one streamed change event. */
  countChange(schema: string, table: string, op: string): void {
    this.changes++;
    let bySchema = this.changesByTable.get(schema);
    if (bySchema === undefined) this.changesByTable.set(schema, (bySchema = new Map<string, TableChanges>()));
    let t = bySchema.get(table);
    if (t === undefined) bySchema.set(table, (t = { schema, table, byOp: {} }));
    t.byOp[op] = (t.byOp[op] ?? 0) + 1;
  }

  /** Counts a schema change and keeps it among the latest. */
  schemaChange(change: SchemaChange): void {
    this.schemaChanges++;
    this.schemaChangesByTable.set(change.table, (this.schemaChangesByTable.get(change.table) ?? 0) + 1);
    this.recentSchemaChanges.push(change);
    if (this.recentSchemaChanges.length > RECENT_SCHEMA_CHANGES) this.recentSchemaChanges.shift();
  }

  /** Records the snapshot progress of a table; `added` rows were delivered since the last call. */
  snapshotProgress(p: TableSnapshotProgress, added: number): void {
    this.snapshotRows += added;
    this.snapshotTables.set(`${p.schema}.${p.table}`, { ...p, rowsTotal: p.done ? p.rowsDone : Math.max(p.rowsTotal, p.rowsDone) });
  }

  /** Records the progress of an incremental snapshot of a table; `added` rows were delivered since the last call. */
  incrementalProgress(p: TableSnapshotProgress, added: number, now = Date.now()): void {
    this.incrementalSnapshotRows += added;
    const key = `${p.schema}.${p.table}`;
    const prev = this.incrementalTables.get(key);
    const fresh = prev === undefined || (prev.done && !p.done);
    const startedAt = fresh ? now : prev.startedAt;
    const startRows = fresh ? p.rowsDone : prev.startRows;
    const rate = ((p.rowsDone - startRows) / Math.max(1, now - startedAt)) * 1000;
    const rowsTotal = p.done ? p.rowsDone : Math.max(p.rowsTotal, p.rowsDone);
    this.incrementalTables.set(key, {
      ...p,
      rowsTotal,
      rowsPerSec: Math.round(rate),
      etaSec: p.done ? 0 : rate > 0 ? Math.round((rowsTotal - p.rowsDone) / rate) : null,
      startedAt,
      startRows,
    });
  }

  /** Updates the rate gauges; call periodically. */
  tick(now = Date.now()): void {
    const dt = (now - this.lastAt) / 1000;
    if (dt <= 0) return;
    this.changesPerSec = (this.changes - this.lastChanges) / dt;
    this.lastChanges = this.changes;
    this.lastAt = now;
  }

  toJSON(): Record<string, unknown> {
    return {
      changes: this.changes,
      changesByTable: Object.fromEntries(
        [...this.changesByTable.values()].flatMap((m) => [...m.values()].map((t) => [`${t.schema}.${t.table}`, { ...t.byOp }])),
      ),
      changesPerSec: Math.round(this.changesPerSec),
      snapshotRows: this.snapshotRows,
      snapshotDone: this.snapshotDone,
      snapshotTables: [...this.snapshotTables.values()],
      incrementalSnapshotRows: this.incrementalSnapshotRows,
      incrementalSnapshots: [...this.incrementalTables.values()].map(({ startedAt: _s, startRows: _r, ...t }) => t),
      claimChecked: this.claimChecked,
      schemaChanges: this.schemaChanges,
      recentSchemaChanges: this.recentSchemaChanges.map((c) => ({ ...schemaChangeFields(c), at: c.at })),
      slotLagBytes: this.slotLagBytes,
      slotLagSeconds: this.slotLagSeconds,
      inflightBytes: this.inflightBytes,
      memory: (({ rss, heapUsed, external, arrayBuffers }) => ({ rss, heapUsed, external, arrayBuffers }))(process.memoryUsage()),
      lastPublishedCommitTime: this.lastPublishedCommitTimeMs === null ? null : new Date(this.lastPublishedCommitTimeMs).toISOString(),
      commitToAckMs: { count: this.commitToAckMs.count, p50: this.commitToAckMs.percentile(0.5), p99: this.commitToAckMs.percentile(0.99) },
    };
  }
}
