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
import type { RowImage, SnapshotMarker } from '../../shared/events/changeEvent.js';
import type { DebeziumColumn } from '../encode/debezium.js';
import { buildEnvelope } from '../encode/envelope.js';
import { CAPTURED_COLUMN } from '../../shared/events/pgTables.js';
import { keyFrom, withDebeziumDetails } from '../replication/relations.js';
import { quoteIdent } from '../../shared/core/sql.js';

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

/**
 * What the Debezium format adds to snapshot rows (null in the native format, whose rows stay
 * `snapshot: "true"`, `txId: null`): Debezium's markers, `first` on the first row this run reads,
 * `last` on the very last (found by reading one row ahead, across chunks and tables), `true` between;
 * and a `txId`, the snapshot's xmax (the first transaction it does not see: an integer as Debezium's,
 * which is its own snapshot transaction's id; a READ ONLY transaction has none).
 */
interface DebeziumSnapshot {
  txId: number;
  /** No row has been emitted yet in this run. */
  first: boolean;
}

export async function runSnapshot(deps: SnapshotDeps, plan: SnapshotPlan): Promise<'done' | 'stopped'> {
  const { client, log } = deps;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    if (plan.exportedSnapshot !== null) await client.query(`SET TRANSACTION SNAPSHOT '${plan.exportedSnapshot.replace(/'/g, "''")}'`);
    log.info('snapshot started', { tables: plan.tables.length, exported: plan.exportedSnapshot !== null, versionLsn: plan.versionLsn.toString() });
    let dbz: DebeziumSnapshot | null = null;
    if (deps.records.format === 'debezium') {
      const x = await client.query<{ x: string }>('SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::text AS x');
      dbz = { txId: Number(x.rows[0]?.x ?? 0), first: true };
    }
    const pending = (t: CheckedTable): boolean => !(plan.progress.find((x) => x.schema === t.schema && x.table === t.table)?.done ?? false);
    for (const [i, table] of plan.tables.entries()) {
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
      // Whether a row after this table's last one exists (only asked, in the Debezium format, at its last row).
      const laterRows = async (): Promise<boolean> => {
        for (const later of plan.tables.slice(i + 1).filter(pending)) {
          const r = await client.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${later.relation}) AS e`);
          if (r.rows[0]?.e) return true;
        }
        return false;
      };
      const result = await snapshotTable(deps, plan, table, p, dbz, laterRows);
      if (result === 'stopped') return 'stopped';
    }
    log.info('snapshot finished');
    return 'done';
  } finally {
    await client.query('COMMIT').catch(() => undefined);
  }
}

async function snapshotTable(
  deps: SnapshotDeps,
  plan: SnapshotPlan,
  table: CheckedTable,
  p: TableProgress,
  dbz: DebeziumSnapshot | null,
  laterRows: () => Promise<boolean>,
): Promise<'done' | 'stopped'> {
  const { client, log } = deps;
  const name = table.relation;
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
  // The Debezium format reads one row ahead to know a table's last row (its `last` marker): a keyed
  // chunk asks for one row more than it emits (the next chunk starts after the last emitted key), the
  // one-pass cursor carries the extra row into the next chunk. The native format reads exactly a chunk.
  const ahead = dbz === null ? 0 : 1;
  let carry: Record<string, string | null>[] = [];
  let tableColumns: DebeziumColumn[] | undefined;
  for (;;) {
    if (deps.isStopping()) return 'stopped';
    let res;
    if (keyed) {
      const where = p.lastKey ? ` WHERE (${order}) > (${p.lastKey.map((_, i) => `$${i + 1}`).join(', ')})` : '';
      res = await client.query({ text: `SELECT ${select} FROM ${name}${where} ORDER BY ${order} LIMIT ${deps.chunkRows + ahead}`, values: p.lastKey ?? [] });
    } else {
      res = await client.query(`FETCH ${deps.chunkRows + ahead - carry.length} FROM cdc_snap`);
    }
    const read = carry.length === 0 ? (res.rows as Record<string, string | null>[]) : [...carry, ...(res.rows as Record<string, string | null>[])];
    const rows = read.length > deps.chunkRows ? read.slice(0, deps.chunkRows) : read;
    carry = keyed ? [] : read.slice(rows.length);
    // Native: a short chunk ends the table. Debezium: no row beyond this chunk ends it.
    const tableDone = dbz === null ? rows.length < deps.chunkRows : read.length <= deps.chunkRows;
    const lastOfAll = dbz !== null && tableDone && rows.length > 0 && !(await laterRows());
    const fields = res.fields;
    await deps.types.ensure(fields.map((f) => f.dataTypeID));
    const decoders = fields.map((f) => deps.types.decoder(f.dataTypeID));
    const columnTypes = deps.types.columnTypes(fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })));
    // the table's catalog details once per table (a chunk's fields are the same), for Debezium's schema
    const columns: DebeziumColumn[] | undefined =
      dbz === null
        ? undefined
        : (tableColumns ??= await withDebeziumDetails(
            (sql, params) => client.query(sql, params),
            fields[0]?.tableID ?? 0,
            fields.map((f) => ({ name: f.name, type: deps.types.baseTypeName(f.dataTypeID), typmod: f.dataTypeModifier })),
          ));
    const entry = deps.tracker.open();
    const now = Date.now();
    for (const [j, raw] of rows.entries()) {
      const row: RowImage = {};
      fields.forEach((f, i) => {
        const v = raw[f.name];
        row[f.name] = v === null || v === undefined ? null : decoders[i]!(v);
      });
      const key = keyFrom(table, chunkKey, table.wholeRowKey, row);
      let marker: SnapshotMarker = 'true';
      if (dbz !== null && dbz.first) {
        dbz.first = false;
        marker = 'first';
      } else if (lastOfAll && j === rows.length - 1) {
        marker = 'last';
      }
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
        txId: dbz?.txId ?? null,
        sourceTsMs: now,
        snapshot: marker,
        nowMs: now,
        columnTypes,
        columns,
        renamedTo: table.renamedTo,
      });
      const built = deps.records.tryBuild(event) ?? (await deps.records.buildLarge(event));
      deps.pipeline.enqueueBuilt(built, entry);
      if (deps.pipeline.saturated) await deps.pipeline.waitForCapacity();
    }
    deps.tracker.close(entry, 0n);
    await deps.pipeline.drain();
    // Records still pending after drain(): the pipeline was stopped first. The chunk is not recorded as delivered.
    if (deps.pipeline.pendingRecords > 0) return 'stopped';
    const n = rows.length;
    p.rows += n;
    const last = rows[n - 1];
    if (keyed && last) p.lastKey = chunkKey.map((k) => last[k] as string);
    p.done = tableDone;
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
