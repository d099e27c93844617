/**
 * Which LSN may be confirmed to PostgreSQL. Transactions are registered in WAL (commit) order; each
 * counts its events still waiting for the broker. The acknowledged LSN is the commit LSN of the last
 * transaction that is closed (its commit was seen) and whose events, and all earlier transactions'
 * events, were confirmed by the broker.
 */
import type { Lsn } from '../lsn.js';

export class TxEntry {
  pending = 0;
  commitLsn: Lsn | null = null;
  /** Commit time in ms since the epoch (0 for snapshot chunks): commit-to-ack latency, lag. */
  commitTimeMs = 0;
  /**
   * Called once the entry is acknowledged, that is after it and every earlier entry were confirmed
   * (the snapshot records a chunk's progress here, so it never claims a chunk before its predecessors).
   */
  onAcked: (() => void) | null = null;
  /** Broker-confirmed before the entry closed: still waiting for the commit. */
  get done(): boolean {
    return this.commitLsn !== null && this.pending === 0;
  }
}

export class AckTracker {
  private readonly queue: TxEntry[] = [];
  private head = 0;
  private acked: Lsn | null;

  constructor(
    initial: Lsn | null = null,
    private readonly onAcked?: (entry: TxEntry) => void,
  ) {
    this.acked = initial;
  }

  /** Opens an entry for the next transaction (or snapshot chunk). */
  open(): TxEntry {
    const e = new TxEntry();
    this.queue.push(e);
    return e;
  }

  /** Marks the entry complete: no more events will be added; `commitLsn` is what it confirms. */
  close(entry: TxEntry, commitLsn: Lsn): void {
    entry.commitLsn = commitLsn;
    this.advance();
  }

  /** One event of `entry` was confirmed by the broker. */
  confirm(entry: TxEntry, count = 1): void {
    entry.pending -= count;
    if (entry.pending < 0) throw new Error('ack tracker: more confirmations than events');
  }

  /** Recomputes the acknowledged LSN; returns it (null = nothing acknowledged yet). */
  advance(): Lsn | null {
    while (this.head < this.queue.length) {
      const e = this.queue[this.head]!;
      if (!e.done) break;
      if (this.acked === null || e.commitLsn! > this.acked) this.acked = e.commitLsn;
      this.head++;
      this.onAcked?.(e);
      e.onAcked?.();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return this.acked;
  }

  /**
   * Moves the acknowledged LSN to `lsn` when nothing is open (every transaction registered so far is
   * acknowledged); returns whether it moved. For positions the server vouches for with nothing of
   * ours in between (a keepalive's WAL end while idle).
   */
  idleAdvance(lsn: Lsn): boolean {
    if (this.openCount > 0 || (this.acked !== null && lsn <= this.acked)) return false;
    this.acked = lsn;
    return true;
  }

  get ackedLsn(): Lsn | null {
    return this.acked;
  }

  /** The oldest transaction not yet acknowledged, if any. */
  get oldestOpen(): TxEntry | undefined {
    return this.queue[this.head];
  }

  /** Transactions not yet fully acknowledged. */
  get openCount(): number {
    return this.queue.length - this.head;
  }
}
