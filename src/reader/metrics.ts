/**
 * Reader metrics. Kept in-process (served as JSON on /metrics of the health port, and logged every
 * minute); exported through OpenTelemetry when an exporter is attached (see `attachOpenTelemetry`).
 */

/** Latency histogram: exact percentiles over the most recent `window` samples (a ring buffer). */
export class Histogram {
  private readonly samples: Float64Array;
  private next = 0;
  count = 0;
  sum = 0;
  constructor(readonly window = 100_000) {
    this.samples = new Float64Array(window);
  }
  record(v: number): void {
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

export class ReaderMetrics {
  changes = 0;
  snapshotRows = 0;
  snapshotDone = false;
  deadLettered = 0;
  slotLagBytes: number | null = null;
  slotLagSeconds = 0;
  inflightBytes = 0;
  readonly commitToAckMs = new Histogram();
  private lastChanges = 0;
  private lastAt = Date.now();
  changesPerSec = 0;

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
      changesPerSec: Math.round(this.changesPerSec),
      snapshotRows: this.snapshotRows,
      snapshotDone: this.snapshotDone,
      deadLettered: this.deadLettered,
      slotLagBytes: this.slotLagBytes,
      slotLagSeconds: this.slotLagSeconds,
      inflightBytes: this.inflightBytes,
      memory: (({ rss, heapUsed, external, arrayBuffers }) => ({ rss, heapUsed, external, arrayBuffers }))(process.memoryUsage()),
      commitToAckMs: { count: this.commitToAckMs.count, p50: this.commitToAckMs.percentile(0.5), p99: this.commitToAckMs.percentile(0.99) },
    };
  }
}
