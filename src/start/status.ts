/**
 * The live status line of `npm start`, from what the processes expose: the reader's and the worker's
 * GET /metrics (src/reader/metrics.ts, src/worker/metrics.ts) and the generator's counter. Counts are
 * those of the running processes (a restarted child starts from zero).
 */

export interface StatusSources {
  ordersWritten: number;
  /** The reader's /metrics JSON, or undefined when it did not answer. */
  reader: Record<string, unknown> | undefined;
  /** The worker's /metrics JSON, or undefined when it did not answer. */
  worker: Record<string, unknown> | undefined;
}

interface SinkJson {
  records?: { ok?: number; deadLettered?: number };
  partitions?: Record<string, { lag?: number | null }>;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * `orders 120 | published 118 | indexed 117 | dead-letters 0 | lag 0 s (slot) + 1 events (topic)`:
 * orders the generator wrote, events the reader published (streamed changes plus snapshot rows),
 * documents the Elasticsearch sink wrote, records any sink dead-lettered, and the lag end to end as
 * its two halves: the reader's slot lag in seconds and the Elasticsearch sink's consumer lag.
 */
export function statusLine({ ordersWritten, reader, worker }: StatusSources): string {
  const sinks = (worker?.sinks ?? {}) as Record<string, SinkJson>;
  const es = sinks.elasticsearchSink;
  const deadLetters = Object.values(sinks).reduce((n, s) => n + num(s.records?.deadLettered), 0);
  const topicLag = Object.values(es?.partitions ?? {}).reduce((n, p) => n + num(p.lag), 0);
  const published = reader === undefined ? '?' : String(num(reader.changes) + num(reader.snapshotRows));
  const indexed = es === undefined ? '?' : String(num(es.records?.ok));
  const slotLag = reader === undefined ? '?' : `${num(reader.slotLagSeconds)} s`;
  return (
    `orders ${ordersWritten} | published ${published} | indexed ${indexed} | dead-letters ${worker === undefined ? '?' : deadLetters} | ` +
    `lag ${slotLag} (slot) + ${es === undefined ? '?' : topicLag} events (topic)`
  );
}
