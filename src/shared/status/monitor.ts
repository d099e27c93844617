/**
 * What a status server keeps between requests: the newest status, and a ring buffer of samples of
 * the counters (events published, documents indexed, dead letters, reader changes) over the last
 * 15 minutes, from which the page draws its throughput chart. Collections are coalesced: a request
 * that arrives while one runs waits for it instead of starting another.
 */
import type { PipelineStatus } from './types.js';
import { headline } from './summary.js';

export interface StatusSample {
  /** ms since the epoch. */
  at: number;
  published: number | null;
  indexed: number | null;
  deadLetters: number | null;
  changes: number | null;
}

export const CHART_WINDOW_MS = 15 * 60_000;

/** A fixed-capacity ring of samples; the oldest is overwritten. */
export class SampleRing {
  readonly #items: (StatusSample | undefined)[];
  #next = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    this.#items = new Array<StatusSample | undefined>(capacity);
  }

  push(sample: StatusSample): void {
    this.#items[this.#next] = sample;
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.#size + 1, this.capacity);
  }

  /** Oldest first, only those newer than `since`. */
  values(since = -Infinity): StatusSample[] {
    const out: StatusSample[] = [];
    for (let i = 0; i < this.#size; i++) {
      const item = this.#items[(this.#next - this.#size + i + this.capacity) % this.capacity];
      if (item !== undefined && item.at > since) out.push(item);
    }
    return out;
  }
}

export interface MonitorOptions {
  /** Background sampling interval (`STATUS_SAMPLE_INTERVAL_MS`); 0 = sample only when a status is requested. */
  sampleIntervalMs: number;
  now?: () => number;
}

export class StatusMonitor {
  readonly #collect: () => Promise<PipelineStatus>;
  readonly #options: MonitorOptions;
  // Enough for one sample a second over the window, whatever the interval.
  readonly #ring = new SampleRing(CHART_WINDOW_MS / 1000);
  #running: Promise<PipelineStatus> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(collect: () => Promise<PipelineStatus>, options: MonitorOptions) {
    this.#collect = collect;
    this.#options = options;
  }

  /** A fresh status (joining a collection already under way), sampled into the ring. */
  current(): Promise<PipelineStatus> {
    this.#running ??= this.#collect()
      .then((status) => {
        const h = headline(status);
        this.#ring.push({ at: this.#now(), published: h.published, indexed: h.indexed, deadLetters: h.deadLetters, changes: h.changes });
        return status;
      })
      .finally(() => (this.#running = undefined));
    return this.#running;
  }

  /** Samples of the last 15 minutes, oldest first. */
  samples(): StatusSample[] {
    return this.#ring.values(this.#now() - CHART_WINDOW_MS);
  }

  /** Starts background sampling (unref'd: it never keeps the process alive). */
  start(): void {
    if (this.#timer !== undefined || this.#options.sampleIntervalMs <= 0) return;
    void this.current().catch(() => undefined);
    this.#timer = setInterval(() => void this.current().catch(() => undefined), this.#options.sampleIntervalMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }
}
