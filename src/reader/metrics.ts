/**
 * Reader metrics. Kept in-process (served as JSON on /metrics of the health port, and logged every
 * minute); exported through OpenTelemetry when an exporter is attached (see `attachOpenTelemetry`).
 */

/** A fixed-bucket latency histogram with percentile estimates. */
export class Histogram {
  private readonly counts: number[];
  count = 0;
  sum = 0;
  constructor(readonly bounds: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }
  record(v: number): void {
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += v;
  }
  /** Upper bound of the bucket holding the p-th percentile (0..1). */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const target = Math.ceil(this.count * p);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= target) return i < this.bounds.length ? this.bounds[i]! : Infinity;
    }
    return null;
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
      commitToAckMs: { count: this.commitToAckMs.count, p50: this.commitToAckMs.percentile(0.5), p99: this.commitToAckMs.percentile(0.99) },
    };
  }
}
