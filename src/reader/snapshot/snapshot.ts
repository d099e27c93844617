/**
 * Initial snapshot, chunked by key. Rows are read inside the slot's exported snapshot when it is still
 * available (first run), otherwise (resume after a crash) in a fresh REPEATABLE READ snapshot; both
 * converge (docs/reader.md "Versioning contract for sinks"). After each chunk the reader waits for the
 * broker, then records the chunk's last key, so a crash resumes at the last delivered chunk.
 */
import type { Client } from 'pg';
import type { CheckedTable } from '../replication/checks.js';
import type { ProgressStore, TableProgress } from './progress.js';
import type { EventOutputDeps } from '../publish/pipeline.js';
import type { Lsn } from '../lsn.js';
import type { TableSnapshotProgress } from '../metrics.js';
import type { RowImage } from '../../shared/events/changeEvent.js';
import { buildEnvelope } from '../encode/envelope.js';
import { CAPTURED_COLUMN, keyFrom } from '../replication/relations.js';
import { qualified, quoteIdent } from '../replication/sql.js';

export interface SnapshotDeps extends EventOutputDeps {
  /** A connection whose type parsers return text (see `textTypes`). */
  client: Client;
  progress: ProgressStore;
  chunkRows: number;
  isStopping: () => boolean;
  /** Progress of a table: at its start, after every delivered chunk (`added` rows), when skipped as done. */
  onProgress?: (p: TableSnapshotProgress, added: number) => void;
}

export interface SnapshotPlan {
  tables: CheckedTable[];
  progress: TableProgress[];
  versionLsn: Lsn;
  /** Exported snapshot name (first run) or null (resume: fresh snapshot). */
  exportedSnapshot: string | null;
}

/** pg type overrides: every column arrives as PostgreSQL text. */
export const textTypes = { getTypeParser: () => (v: string | Buffer) => (typeof v === 'string' ? v : v.toString('utf8')) };

export async function runSnapshot(deps: SnapshotDeps, plan: SnapshotPlan): Promise<'done' | 'stopped'> {
  const { client, log } = deps;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    if (plan.exportedSnapshot !== null) await client.query(`SET TRANSACTION SNAPSHOT '${plan.exportedSnapshot.replace(/'/g, "''")}'`);
    log.info('snapshot started', { tables: plan.tables.length, exported: plan.exportedSnapshot !== null, versionLsn: plan.versionLsn.toString() });
    for (const table of plan.tables) {
      const p = plan.progress.find((x) => x.schema === table.schema && x.table === table.table) ?? {
        schema: table.schema,
        table: table.table,
        lastKey: null,
        rows: 0,
        done: false,
      };
      if (p.done) {
        deps.onProgress?.({ schema: p.schema, table: p.table, rowsDone: p.rows, rowsTotal: p.rows, done: true }, 0);
        continue;
      }
      const result = await snapshotTable(deps, plan, table, p);
      if (result === 'stopped') return 'stopped';
    }
    log.info('snapshot finished');
    return 'done';
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
}

async function snapshotTable(deps: SnapshotDeps, plan: SnapshotPlan, table: CheckedTable, p: TableProgress): Promise<'done' | 'stopped'> {
  const { client, log } = deps;
  const name = qualified(table.schema, table.table);
  const keyed = !table.wholeRowKey;
  // Exactly the columns the stream carries (not `SELECT *`: generated columns are not replicated), read
  // in this transaction's snapshot, so snapshot rows have the stream's column set and order, and a
  // whole-row key is the stream's.
  const cols = await client.query<{ name: string }>(
    `SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND ${CAPTURED_COLUMN} ORDER BY a.attnum`,
    [table.oid],
  );
  const columns = cols.rows.map((c) => c.name);
  const select = columns.map(quoteIdent).join(', ');
  const chunkKey = keyed ? table.keyColumns : columns;
  const est = await client.query<{ n: string }>('SELECT greatest(reltuples, 0)::bigint::text AS n FROM pg_catalog.pg_class WHERE oid = $1', [table.oid]);
  const estimate = Number(est.rows[0]?.n ?? 0);
  const started = Date.now();
  const startRows = p.rows;
  let lastLog = started;
  const order = chunkKey.map(quoteIdent).join(', ');
  deps.onProgress?.({ schema: table.schema, table: table.table, rowsDone: keyed ? p.rows : 0, rowsTotal: estimate, done: false }, 0);
  if (!keyed) {
    // No usable unique key: read in one pass (a crash restarts this table).
    await client.query(`DECLARE cdc_snap NO SCROLL CURSOR FOR SELECT ${select} FROM ${name}`);
    p.rows = 0;
  }
  for (;;) {
    if (deps.isStopping()) return 'stopped';
    let res;
    if (keyed) {
      const where = p.lastKey ? ` WHERE (${order}) > (${p.lastKey.map((_, i) => `$${i + 1}`).join(', ')})` : '';
      res = await client.query({ text: `SELECT ${select} FROM ${name}${where} ORDER BY ${order} LIMIT ${deps.chunkRows}`, values: p.lastKey ?? [] });
    } else {
      res = await client.query(`FETCH ${deps.chunkRows} FROM cdc_snap`);
    }
    const fields = res.fields;
    await deps.types.ensure(fields.map((f) => f.dataTypeID));
    const decoders = fields.map((f) => deps.types.decoder(f.dataTypeID));
    const columnTypes = deps.types.columnTypes(fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })));
    const entry = deps.tracker.open();
    const now = Date.now();
    for (const raw of res.rows as Record<string, string | null>[]) {
      const row: RowImage = {};
      fields.forEach((f, i) => {
        const v = raw[f.name];
        row[f.name] = v === null || v === undefined ? null : decoders[i]!(v);
      });
      const key = keyFrom(table, chunkKey, table.wholeRowKey, row);
      const event = buildEnvelope({
        op: 'r',
        serverName: deps.serverName,
        db: deps.db,
        schema: table.schema,
        table: table.table,
        before: null,
        after: row,
        key,
        lsn: plan.versionLsn,
        commitLsn: null,
        lastCommitLsn: null,
        txId: null,
        sourceTsMs: now,
        snapshot: 'true',
        nowMs: now,
        columnTypes,
      });
      const record = deps.records.tryBuild(event) ?? (await deps.records.buildLarge(event));
      deps.pipeline.enqueue(record, entry);
      if (deps.pipeline.saturated) await deps.pipeline.waitForCapacity();
    }
    deps.tracker.close(entry, 0n);
    await deps.pipeline.drain();
    // Records still pending after drain(): the pipeline was stopped first. The chunk is not recorded as delivered.
    if (deps.pipeline.pendingRecords > 0) return 'stopped';
    const n = res.rows.length;
    p.rows += n;
    const last = res.rows[n - 1] as Record<string, string | null> | undefined;
    if (keyed && last) p.lastKey = chunkKey.map((k) => last[k] as string);
    p.done = n < deps.chunkRows;
    deps.onProgress?.({ schema: table.schema, table: table.table, rowsDone: p.rows, rowsTotal: estimate, done: p.done }, n);
    if (keyed || p.done) await deps.progress.save(p);
    const t = Date.now();
    if (p.done || t - lastLog > 5_000) {
      lastLog = t;
      const rate = ((p.rows - startRows) / Math.max(1, t - started)) * 1000;
      const remaining = Math.max(0, estimate - p.rows);
      log.info('snapshot progress', {
        table: `${table.schema}.${table.table}`,
        rows: p.rows,
        rowsPerSec: Math.round(rate),
        estimatedRows: estimate,
        etaSec: p.done ? 0 : rate > 0 ? Math.round(remaining / rate) : null,
        done: p.done,
      });
    }
    if (p.done) break;
  }
  if (!keyed) await client.query('CLOSE cdc_snap');
  return 'done';
}
