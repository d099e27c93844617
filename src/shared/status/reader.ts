/**
 * The reader's part: its own figures, as it serves them on GET /metrics of its health port
 * (`HEALTH_PORT`, src/reader/metrics.ts). Read over HTTP, by field name: the status never imports
 * the reader.
 */
import type { ReaderIncrementalSnapshot, ReaderSchemaChange, ReaderStatus } from './types.js';

const numberOr = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const numberOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

/** One entry of the reader's `recentSchemaChanges` (src/reader/replication/schemaChanges.ts `schemaChangeFields`). */
function incrementalSnapshot(v: unknown): ReaderIncrementalSnapshot {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  return {
    table: `${typeof o.schema === 'string' ? o.schema : '?'}.${typeof o.table === 'string' ? o.table : '?'}`,
    rowsDone: numberOr(o.rowsDone, 0),
    rowsTotal: numberOr(o.rowsTotal, 0),
    done: o.done === true,
    rowsPerSec: numberOr(o.rowsPerSec, 0),
    etaSec: numberOrNull(o.etaSec),
  };
}

function schemaChange(v: unknown): ReaderSchemaChange {
  const c = record(v);
  return {
    table: typeof c.table === 'string' ? c.table : '?',
    at: typeof c.at === 'string' ? c.at : null,
    changed: strings(c.changed),
    added: strings(c.added),
    dropped: strings(c.dropped),
    retyped: strings(c.retyped),
    keyBefore: strings(record(c.before).key),
    keyAfter: strings(record(c.after).key),
  };
}

/** `url`: the reader's metrics endpoint (`READER_METRICS_URL`, e.g. `http://reader:8080/metrics`). */
export async function collectReader(url: string, timeoutMs: number): Promise<ReaderStatus> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (error) {
    const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    throw new Error(`cannot reach the reader's metrics at ${url} (READER_METRICS_URL): ${reason}. Fix: the reader's HEALTH_PORT, host and /metrics path`, {
      cause: error,
    });
  }
  if (!response.ok) throw new Error(`the reader's metrics at ${url} (READER_METRICS_URL) answered HTTP ${response.status}`);
  let body: Record<string, unknown>;
  try {
    body = (await response.json()) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`the reader's metrics at ${url} (READER_METRICS_URL) are not JSON: is it the reader's /metrics?`, { cause: error });
  }
  if (typeof body.changes !== 'number')
    throw new Error(`${url} (READER_METRICS_URL) answered JSON without the reader's "changes": is it the reader's /metrics?`);
  const latency = (typeof body.commitToAckMs === 'object' && body.commitToAckMs !== null ? body.commitToAckMs : {}) as Record<string, unknown>;
  return {
    url,
    changes: body.changes,
    changesPerSec: numberOr(body.changesPerSec, 0),
    snapshotRows: numberOr(body.snapshotRows, 0),
    snapshotDone: body.snapshotDone === true,
    claimChecked: numberOr(body.claimChecked, 0),
    slotLagBytes: numberOrNull(body.slotLagBytes),
    slotLagSeconds: numberOr(body.slotLagSeconds, 0),
    inflightBytes: numberOr(body.inflightBytes, 0),
    lastPublishedCommitTime: typeof body.lastPublishedCommitTime === 'string' ? body.lastPublishedCommitTime : null,
    commitToAckMs: { count: numberOr(latency.count, 0), p50: numberOrNull(latency.p50), p99: numberOrNull(latency.p99) },
    // A reader older than schema-change reporting has neither field.
    schemaChanges: numberOr(body.schemaChanges, 0),
    recentSchemaChanges: Array.isArray(body.recentSchemaChanges) ? body.recentSchemaChanges.map(schemaChange) : [],
    // A reader older than incremental snapshots has none.
    incrementalSnapshots: Array.isArray(body.incrementalSnapshots) ? body.incrementalSnapshots.map(incrementalSnapshot) : [],
  };
}
