/**
 * Initial snapshot, chunked by key. Rows are read inside the slot's exported snapshot when it is still
 * available (first run), otherwise (resume after a crash) in a fresh REPEATABLE READ snapshot; both
 * converge (docs/reader.md "Versioning contract for sinks").
 *
 * Reading overlaps publishing: a chunk is queued for the broker and the next one is read at once, within
 * `CDC_MAX_INFLIGHT_BYTES`. A table is read by `parallelism` connections that share one snapshot
 * (`SET TRANSACTION SNAPSHOT`), each taking the next range: key ranges for a keyed table (the next
 * range's upper key is found with an index-only `OFFSET`), CTID block ranges for a keyless one
 * (`ctidRanges`; one cursor pass where TID range scans are not available); ranges are cut in order,
 * read in parallel, and queued in order.
 * A chunk's progress (its last key, or a keyless table's next block) is recorded only once the broker confirmed it and every chunk before
 * it (`TxEntry.onAcked`), so a crash resumes after the last chunk whose predecessors were all delivered.
 */
import type { Client } from 'pg';
import type { CheckedTable } from '../replication/checks.js';
import type { ProgressStore, TableProgress } from './progress.js';
import type { EventOutputDeps } from '../publish/pipeline.js';
import type { Lsn } from '../lsn.js';
import type { TableSnapshotProgress } from '../metrics.js';
import type { ChangeEvent, RowImage, SnapshotMarker } from '../../shared/events/changeEvent.js';
import type { DebeziumColumn } from '../encode/debezium.js';
import type { FieldDef } from 'pg';
import { buildEnvelope } from '../encode/envelope.js';
import { rowJsonEncoder } from '../encode/rowJson.js';
import type { RowJsonColumn, RowJsonEncoder } from '../encode/rowJson.js';
import { copyChunk, copyLineCells, CopyRowWriter } from '../encode/copyRows.js';
import type { CopyChunk } from '../encode/copyRows.js';
import { CAPTURED_COLUMN } from '../../shared/events/pgTables.js';
import { keyFrom, withDebeziumDetails } from '../replication/relations.js';
import { quoteIdent, quoteLiteral } from '../../shared/core/sql.js';
import { errorFields } from '../../shared/core/logger.js';
import type { Decoder } from '../../shared/events/pgTypes.js';
import type { RowsLayout } from '../encode/chunkRecords.js';
import { layoutRecord } from '../encode/toRecord.js';
import type { EncodedChunk } from '../encode/chunkRecords.js';
import { chunkHasRecord, RecordBuffers, writeChunk } from '../encode/chunkRecords.js';
import { snapshotHeapGrowth } from './heapGrowth.js';
import { ReaderThreadFailed, ReaderThreads } from './readerThreads.js';
import type { EncoderTable, ThreadConnection } from './readerThreads.js';
import { CELL_BYTES, chunkBytes, ROW_BYTES } from './chunkBytes.js';

/** A further snapshot connection (text type parsers, as `client`) and how to give it back. */
export interface SnapshotConnection {
  client: Client;
  release: () => Promise<void>;
}

export interface SnapshotDeps extends EventOutputDeps {
  /** A connection whose type parsers return text (see `textTypes`). */
  client: Client;
  /** Opens a further connection like `client`, for parallel chunk readers. Absent: `client` reads alone. */
  openClient?: () => Promise<SnapshotConnection>;
  /** Connections reading chunks at once, `client` included (CDC_SNAPSHOT_PARALLELISM); default 1. */
  parallelism?: number;
  /**
   * Threads that each read ranges on a connection of their own and encode them (CDC_SNAPSHOT_READER_THREADS,
   * the native format's tables with a row JSON writer); default 0: read on the main thread.
   */
  readerThreads?: number;
  /** How a reader thread connects (the reader's settings and TLS choice); required for `readerThreads`. */
  threadConnection?: ThreadConnection;
  /** Bound on the bytes of chunks read ahead of their turn (CDC_MAX_INFLIGHT_BYTES); default 8 MiB. */
  readAheadBytes?: number;
  progress: ProgressStore;
  /** The most rows a chunk holds (CDC_SNAPSHOT_CHUNK_ROWS); a table of wide rows gets fewer (`chunkRowsFor`). */
  chunkRows: number;
  isStopping: () => boolean;
  /** Progress of a table: at its start, after every delivered chunk (`added` rows), when skipped as done. */
  onProgress?: (p: TableSnapshotProgress, added: number) => void;
}

const DEFAULT_READ_AHEAD_BYTES = 8 * 1024 * 1024;

/**
 * A key or CTID range holds about this many bytes of cells (`chunkBytes`' estimate) at most, however
 * many rows `chunkRows` allows: with 5,000-row chunks of 1.2 KB rows (6 MB each, several read ahead and
 * their records in flight) the reader's peak RSS reached 201–202 MB, with ranges cut to this 185 MB, at
 * about the same rows/s (docs/reader.md, snapshot run 10).
 */
const CHUNK_TARGET_BYTES = 2.5 * 1024 * 1024;
/** The fewest rows a range is cut to for that (rows of megabytes each: a chunk per row would cost a query each). */
const MIN_CHUNK_ROWS = 16;

/**
 * Rows per range for rows of `bytesPerRow` (`chunkBytes`' estimate): `chunkRows`, or fewer for wide rows.
 * Estimated first from the table's size on disk per row (`pg_table_size`, TOAST included, compressed
 * values at their compressed size), then from each chunk read.
 */
export function chunkRowsFor(chunkRows: number, bytesPerRow: number): number {
  if (!(bytesPerRow > 0)) return chunkRows;
  return Math.min(chunkRows, Math.max(MIN_CHUNK_ROWS, Math.floor(CHUNK_TARGET_BYTES / bytesPerRow)));
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
 * `last` on the very last (a table's last chunk is known before it is read: its range has no upper
 * key, and the next table's rows are asked for), `true` between; and a `txId`, the snapshot's xmax
 * (the first transaction it does not see: an integer as Debezium's, which is its own snapshot
 * transaction's id; a READ ONLY transaction has none).
 */
interface DebeziumSnapshot {
  txId: number;
  /** No row has been emitted yet in this run. */
  first: boolean;
}

/**
 * Records delivered chunks' progress in delivery order. Saves are chained (one connection); the first
 * failure is kept and thrown by `settle()`. After `close()`, confirmations arriving late (the reader is
 * stopping) are not recorded: those chunks are read again on resume, never skipped.
 */
class ProgressRecorder {
  private chain: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private closed = false;
  constructor(private readonly store: ProgressStore) {}

  record(p: TableProgress, after?: () => void): void {
    if (this.closed) return;
    const copy: TableProgress = { ...p, lastKey: p.lastKey === null ? null : [...p.lastKey] };
    this.chain = this.chain.then(async () => {
      if (this.error !== null || this.closed) return;
      try {
        await this.store.save(copy);
        after?.();
      } catch (err) {
        this.error = err instanceof Error ? err : new Error(String(err));
      }
    });
  }

  get failed(): Error | null {
    return this.error;
  }

  async settle(): Promise<void> {
    await this.chain;
    if (this.error !== null) throw this.error;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
  }
}

/** Queues chunks to the pipeline in their index order, whichever reader finished first. */
class Turns {
  private next = 0;
  private readonly waiters = new Map<number, () => void>();
  aborted = false;

  wait(index: number): Promise<void> {
    if (index === this.next || this.aborted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(index, resolve));
  }

  done(): void {
    this.next++;
    const w = this.waiters.get(this.next);
    if (w) {
      this.waiters.delete(this.next);
      w();
    }
  }

  /** Releases every waiter (a reader failed or the reader is stopping); they check `aborted`. */
  abort(): void {
    this.aborted = true;
    for (const w of this.waiters.values()) w();
    this.waiters.clear();
  }
}

/**
 * Bytes of chunks read but not yet queued (read early, waiting for their turn), kept under a bound
 * (CDC_MAX_INFLIGHT_BYTES) like the pipeline's: a reader takes a new range only below it, so memory is
 * the in-flight bound, this bound, and at most one chunk per reader over it.
 */
class ReadAhead {
  private held = 0;
  private waiters: (() => void)[] = [];
  private aborted = false;
  constructor(private readonly limit: number) {}

  async room(): Promise<void> {
    while (this.held >= this.limit && !this.aborted) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  take(bytes: number): void {
    this.held += bytes;
  }

  give(bytes: number): void {
    this.held -= bytes;
    for (const w of this.waiters.splice(0)) w();
  }

  abort(): void {
    this.aborted = true;
    for (const w of this.waiters.splice(0)) w();
  }
}

interface TableRun {
  deps: SnapshotDeps;
  plan: SnapshotPlan;
  table: CheckedTable;
  p: TableProgress;
  dbz: DebeziumSnapshot | null;
  laterRows: (client: Client) => Promise<boolean>;
  recorder: ProgressRecorder;
  select: string;
  estimate: number;
  started: number;
  startRows: number;
  lastLog: number;
  /** Rows queued so far (in key order), this table. */
  queuedRows: number;
  /** The Debezium format: the table's columns with their catalog details (`withDebeziumDetails`), read at its first chunk. */
  debeziumColumns?: DebeziumColumn[];
  /** The native format: the table's row and key JSON writer, made at its first chunk (null: rows go through the row object). */
  rowJson?: RowJsonEncoder | null;
  /** This table run's id for the reader threads, and its columns as they take them (made at its first chunk). */
  id: number;
  encoderTable?: EncoderTable;
  /** Where this thread writes the table's records (`writeChunk`): a chunk goes on in the buffer the last one left. */
  buffers: RecordBuffers;
  /** Rows in the next key or CTID range (`chunkRowsFor`): updated from every chunk read. */
  chunkRows: number;
  /** Reader threads (CDC_SNAPSHOT_READER_THREADS), or null. */
  threads: ReaderThreads | null;
  /** A further connection in the snapshot's transaction, for a reader whose thread failed. */
  fallbackClient: () => Promise<Client>;
}

export async function runSnapshot(deps: SnapshotDeps, plan: SnapshotPlan): Promise<'done' | 'stopped'> {
  const { client, log } = deps;
  const extra: SnapshotConnection[] = [];
  const readers: Client[] = [client];
  const recorder = new ProgressRecorder(deps.progress);
  let threads: ReaderThreads | null = null;
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  snapshotHeapGrowth(true);
  try {
    let snapshotName = plan.exportedSnapshot;
    if (snapshotName !== null) await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName.replace(/'/g, "''")}'`);
    const join = async (conn: SnapshotConnection, name: string): Promise<Client> => {
      extra.push(conn);
      await conn.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await conn.client.query(`SET TRANSACTION SNAPSHOT '${name.replace(/'/g, "''")}'`);
      return conn.client;
    };
    // Resume: no exported snapshot; this transaction's own is exported, so every reader sees the same rows.
    const shared = async (): Promise<string> => {
      snapshotName ??= (await client.query<{ s: string }>('SELECT pg_catalog.pg_export_snapshot() AS s')).rows[0]?.s ?? null;
      if (snapshotName === null) throw new Error('pg_export_snapshot() returned no snapshot');
      return snapshotName;
    };
    const parallelism = Math.max(1, deps.parallelism ?? 1);
    if (parallelism > 1 && deps.openClient && plan.tables.length > 0) {
      for (let i = 1; i < parallelism; i++) readers.push(await join(await deps.openClient(), await shared()));
    }
    // Only the native format has the shortcut the threads write (Debezium's markers need the next table's rows).
    const threadCount = deps.records.format === 'native' && deps.threadConnection ? (deps.readerThreads ?? 0) : 0;
    if (threadCount > 0 && plan.tables.length > 0) threads = await ReaderThreads.open(threadCount, deps.threadConnection!, await shared());
    // A further connection in the same snapshot, for a reader whose thread failed (threads, hence a shared snapshot).
    const fallbackClient = async (): Promise<Client> => {
      if (!deps.openClient) throw new Error('no further connection for a failed snapshot reader thread');
      return join(await deps.openClient(), await shared());
    };
    log.info('snapshot started', {
      tables: plan.tables.length,
      exported: plan.exportedSnapshot !== null,
      versionLsn: plan.versionLsn.toString(),
      readers: readers.length,
      readerThreads: threads?.count ?? 0,
    });
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
      // Whether a row after this table's last one exists (only asked, in the Debezium format, at its last chunk).
      const laterRows = async (c: Client): Promise<boolean> => {
        for (const later of plan.tables.slice(i + 1).filter(pending)) {
          const r = await c.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${later.relation}) AS e`);
          if (r.rows[0]?.e) return true;
        }
        return false;
      };
      const result = await snapshotTable(deps, plan, table, p, dbz, laterRows, recorder, readers, threads, fallbackClient, i);
      if (result === 'stopped') return 'stopped';
      if (recorder.failed !== null) throw recorder.failed;
    }
    await deps.pipeline.drain();
    // Records still pending after drain(): the pipeline was stopped first. Their chunks are not recorded as delivered.
    if (deps.pipeline.pendingRecords > 0) return 'stopped';
    await recorder.settle();
    log.info('snapshot finished');
    return 'done';
  } finally {
    snapshotHeapGrowth(false);
    await recorder.close();
    await threads?.close();
    for (const c of readers) await c.query('COMMIT').catch(() => undefined);
    for (const conn of extra) await conn.release();
  }
}

async function snapshotTable(
  deps: SnapshotDeps,
  plan: SnapshotPlan,
  table: CheckedTable,
  p: TableProgress,
  dbz: DebeziumSnapshot | null,
  laterRows: (client: Client) => Promise<boolean>,
  recorder: ProgressRecorder,
  readers: Client[],
  threads: ReaderThreads | null,
  fallbackClient: () => Promise<Client>,
  id: number,
): Promise<'done' | 'stopped'> {
  const { client } = deps;
  const keyed = !table.wholeRowKey;
  // Exactly the columns the stream carries (not `SELECT *`: generated columns are not replicated), read
  // in this transaction's snapshot, so snapshot rows have the stream's column set and order, and a
  // whole-row key is the stream's.
  const cols = await client.query<{ name: string }>(
    `SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1 AND ${CAPTURED_COLUMN} ORDER BY a.attnum`,
    [table.oid],
  );
  const columns = cols.rows.map((c) => c.name);
  const est = await client.query<{ n: string; disk: string | null }>(
    `SELECT greatest(reltuples, 0)::bigint::text AS n,
            CASE WHEN reltuples > 0 THEN (pg_catalog.pg_table_size(oid)::float8 / reltuples)::text END AS disk
       FROM pg_catalog.pg_class WHERE oid = $1`,
    [table.oid],
  );
  // The first ranges' size: cells take about their size on disk, plus chunkBytes' per-row and per-cell overhead.
  const disk = Number(est.rows[0]?.disk ?? 0);
  const run: TableRun = {
    deps,
    plan,
    table,
    p,
    dbz,
    laterRows,
    recorder,
    select: columns.map(quoteIdent).join(', '),
    estimate: Number(est.rows[0]?.n ?? 0),
    started: Date.now(),
    startRows: p.rows,
    lastLog: Date.now(),
    queuedRows: 0,
    threads,
    fallbackClient,
    id,
    buffers: new RecordBuffers(true),
    chunkRows: chunkRowsFor(deps.chunkRows, disk > 0 ? ROW_BYTES + CELL_BYTES * columns.length + disk : 0),
  };
  // A keyed table by key ranges; a keyless one by CTID ranges where the server can (else one cursor pass).
  const source = keyed ? keyRanges(run) : await ctidRanges(run);
  run.startRows = run.queuedRows = source === null ? 0 : p.rows;
  deps.onProgress?.({ schema: table.schema, table: table.table, rowsDone: run.queuedRows, rowsTotal: run.estimate, done: false }, 0);
  return source === null ? snapshotKeyless(run) : snapshotRanges(run, readers, source);
}

/** What a reader reads next: its rows' condition, and the progress key once they are delivered. */
interface Range {
  /** ` WHERE …` (or nothing), its bounds as literals (`quoteLiteral`): a range is read with COPY, which takes no parameters. */
  where: string;
  /** The table's last range (no upper bound). */
  last: boolean;
  /** The stored progress key once this range and every earlier one are delivered. */
  lastKey: (fields: FieldDef[], rows: (string | null)[][]) => string[] | null;
}

interface RangeSource {
  /** The range after the last one claimed (claims run one at a time, in order). */
  claim: (c: Client) => Promise<Range>;
  /** Row order inside a range: ` ORDER BY …` or nothing. */
  order: string;
}

/**
 * Key ranges after the stored key: each range's upper key is the chunkRows-th key after the previous
 * one, found with an index-only `OFFSET`, and whether any key follows it (if none does, the range is the
 * table's last and is read without an upper key).
 */
function keyRanges(run: TableRun): RangeSource {
  const { deps, table, p } = run;
  const key = table.keyColumns;
  const order = key.map(quoteIdent).join(', ');
  const params = (from: number): string => key.map((_, i) => `$${from + i}`).join(', ');
  const literals = (values: string[]): string => values.map(quoteLiteral).join(', ');
  if (p.lastKey !== null && p.lastKey.length !== key.length) {
    // The key changed since that progress was stored (or it is a keyless table's CTID position).
    deps.log.warn('stored snapshot progress does not fit the table key: reading the table from its start', {
      table: `${table.schema}.${table.table}`,
      keyColumns: key,
    });
    p.lastKey = null;
    p.rows = 0;
  }
  let from = p.lastKey;
  return {
    order: ` ORDER BY ${order}`,
    claim: async (c) => {
      const after = from;
      const res = await c.query<string[]>({
        text: `SELECT ${order} FROM ${table.relation}${after ? ` WHERE (${order}) > (${params(1)})` : ''} ORDER BY ${order} OFFSET ${run.chunkRows - 1} LIMIT 2`,
        values: after ?? [],
        rowMode: 'array',
      });
      const upTo = res.rows.length === 2 ? res.rows[0]! : null;
      if (upTo !== null) from = upTo;
      const conds: string[] = [];
      if (after) conds.push(`(${order}) > (${literals(after)})`);
      if (upTo) conds.push(`(${order}) <= (${literals(upTo)})`);
      return {
        where: conds.length ? ` WHERE ${conds.join(' AND ')}` : '',
        last: upTo === null,
        // A bounded range ends at its upper key; the last range's key is never needed again (done).
        lastKey: (fields, rows) => upTo ?? (rows.length > 0 ? keyOf(fields, key, rows[rows.length - 1]!) : after),
      };
    },
  };
}

/** A keyless table's stored position: `ctid:<relfilenode>:<block>`, the first block not yet delivered. */
const CTID_PROGRESS = /^ctid:(\d+):(\d+)$/;
/** Rows per 8 KiB block assumed for a table never analysed (about 100-byte rows): only sizes chunks. */
const DEFAULT_ROWS_PER_BLOCK = 60;
const tid = (block: number): string => `(${block},0)`;

/**
 * A keyless table's chunks by CTID ranges of about chunkRows rows (blocks at the table's analysed
 * density), read with TID range scans (PostgreSQL 14+), so they are split over the connections and
 * resumable like key ranges: the stored position is the next range's first block. A range is the
 * table's last (no upper bound) once it reaches the size read at the start or no visible row follows
 * it. Resuming by block is sound in a fresh snapshot for the same reason resuming by key is (rows
 * changed since were streamed after the slot's start), as long as rows did not move without a change:
 * VACUUM FULL, CLUSTER and TRUNCATE rewrite the table into a new file, so the position carries the
 * file (`pg_relation_filenode`) and a different one restarts the table. Null: read the table in one
 * cursor pass (a partitioned table, whose rows are in its partitions; a server before 14).
 */
async function ctidRanges(run: TableRun): Promise<RangeSource | null> {
  const { deps, table, p } = run;
  const info = await deps.client.query<{ kind: string; node: string | null; blocks: string; pages: string; tuples: string; version: string }>(
    `SELECT c.relkind::text AS kind, pg_catalog.pg_relation_filenode(c.oid)::text AS node,
            (pg_catalog.pg_relation_size(c.oid) / pg_catalog.current_setting('block_size')::bigint)::text AS blocks,
            c.relpages::text AS pages, c.reltuples::text AS tuples, pg_catalog.current_setting('server_version_num') AS version
       FROM pg_catalog.pg_class c WHERE c.oid = $1`,
    [table.oid],
  );
  const r = info.rows[0];
  if (r === undefined || r.kind !== 'r' || r.node === null || Number(r.version) < 140000) return null;
  const node = r.node;
  const blocks = Number(r.blocks);
  const density = Number(r.tuples) > 0 && Number(r.pages) > 0 ? Number(r.tuples) / Number(r.pages) : DEFAULT_ROWS_PER_BLOCK;
  const stored = p.lastKey?.length === 1 ? CTID_PROGRESS.exec(p.lastKey[0]!) : null;
  let from = 0;
  if (stored !== null && stored[1] === node) {
    from = Number(stored[2]);
  } else {
    if (p.lastKey !== null)
      deps.log.warn(
        'stored snapshot position is of another table file (rewritten by VACUUM FULL, CLUSTER or TRUNCATE) or of a key: reading the table from its start',
        {
          table: `${table.schema}.${table.table}`,
        },
      );
    p.lastKey = null;
    p.rows = 0;
  }
  return {
    order: '',
    claim: async (c) => {
      const lo = from;
      let hi: number | null = lo + Math.max(1, Math.floor(run.chunkRows / density));
      if (hi >= blocks) hi = null;
      else {
        const after = await c.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table.relation} WHERE ctid >= $1::tid) AS e`, [tid(hi)]);
        if (!after.rows[0]?.e) hi = null;
      }
      if (hi !== null) from = hi;
      const upTo = hi;
      return {
        where: ` WHERE ctid >= ${quoteLiteral(tid(lo))}::tid${upTo === null ? '' : ` AND ctid < ${quoteLiteral(tid(upTo))}::tid`}`,
        last: upTo === null,
        lastKey: () => (upTo === null ? null : [`ctid:${node}:${upTo}`]),
      };
    },
  };
}

/** A chunk read: its rows as text (a reader thread's: only the rows the main thread needs, at their index), their size, how they are encoded. */
interface ChunkRead {
  fields: FieldDef[];
  rows: (string | null)[][];
  /** Bytes held until the chunk is queued (`ReadAhead`), and `chunkBytes` of its cells (the next ranges' size). */
  held: number;
  cellBytes: number;
  prep: ChunkPrep;
  /** The records a reader thread wrote (null: written here at the chunk's turn). */
  early: EncodedChunk | null;
  lastOfAll: boolean;
}

type ChunkReader = {
  /** The connection a reader claims its ranges with. */
  claims: Client;
  read: (range: Range) => Promise<ChunkRead>;
};

/** A range's rows, in `source`'s order. */
function rangeSelect(run: TableRun, source: RangeSource, range: Range): string {
  return `SELECT ${run.select} FROM ${run.table.relation}${range.where}${source.order}`;
}

/**
 * A reader on a connection of this thread that reads a range's rows as text (`pg`'s rows), for the
 * tables COPY's transcoder does not take (the Debezium format; a column name that is an array index).
 * The chunk is encoded at its turn (nothing would overlap, and its records would only be held longer).
 */
function connectionReader(run: TableRun, source: RangeSource, c: Client): ChunkReader {
  return {
    claims: c,
    read: async (range) => {
      const res = await c.query<unknown[]>({ text: rangeSelect(run, source, range), rowMode: 'array' });
      const lastOfAll = run.dbz !== null && range.last && res.rows.length > 0 && !(await run.laterRows(c));
      const rows = res.rows as (string | null)[][];
      const held = chunkBytes(rows);
      const prep = await prepareChunk(run, res.fields);
      return { fields: res.fields, rows, held, cellBytes: held, prep, early: null, lastOfAll };
    },
  };
}

/**
 * A chunk whose records were written as it was read (COPY's transcoder, here or on a reader thread):
 * this thread holds the records' bytes, and as text the rows without a record (built here from the row
 * object) and the last one (its key is the range's progress), at their index.
 */
function transcodedRead(fields: FieldDef[], prep: ChunkPrep, got: CopyChunk, held: number): ChunkRead {
  // Sparse: only the rows that came back as text are there (`queueChunk` reads no other).
  const rows = new Array<(string | null)[]>(got.count);
  for (const [j, row] of got.spare) rows[j] = row;
  for (const [j, bytes] of got.spareBytes) rows[j] = copyLineCells(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), 0, bytes.length, fields.length);
  return { fields, rows, held: held + got.chunk.index.byteLength, cellBytes: got.cellBytes, prep, early: got.chunk, lastOfAll: false };
}

/** A reader on a connection of this thread that reads a range with COPY and writes its records as the bytes arrive (`copyChunk`). */
function copyReader(run: TableRun, source: RangeSource, c: Client, fields: FieldDef[], writer: CopyRowWriter): ChunkReader {
  return {
    claims: c,
    read: async (range) => {
      const prep = await prepareChunk(run, fields);
      writer.begin(prep.layout!, run.buffers);
      const got = await copyChunk(c, copyStatement(run, source, range), writer);
      return transcodedRead(fields, prep, got, got.recordBytes);
    },
  };
}

function copyStatement(run: TableRun, source: RangeSource, range: Range): string {
  return `COPY (${rangeSelect(run, source, range)}) TO STDOUT`;
}

/** A reader thread's reader: the thread reads the range with COPY and writes its records (readWorker.ts). */
function threadReader(
  run: TableRun,
  source: RangeSource,
  threads: ReaderThreads,
  i: number,
  fields: FieldDef[],
  onConnection: (c: Client) => ChunkReader,
): ChunkReader {
  // Once the thread failed (out of memory on a chunk of huge rows, a crash): this and every later range
  // of this reader on a connection of this thread, the failed range read again.
  let fallback: ChunkReader | null = null;
  return {
    claims: run.deps.client,
    read: async (range) => {
      if (fallback !== null) return fallback.read(range);
      const prep = await prepareChunk(run, fields);
      let got;
      try {
        got = await threads.read(i, copyStatement(run, source, range), encoderTableOf(run, prep), prep.layout!);
      } catch (err) {
        if (!(err instanceof ReaderThreadFailed)) throw err;
        run.deps.log.warn('snapshot reader thread failed: its ranges are read on a connection of the main thread', {
          ...errorFields(err),
          threadsLeft: threads.working.length,
        });
        fallback = onConnection(await run.fallbackClient());
        return fallback.read(range);
      }
      // The thread's buffers are the chunk's own: all of them are held, and freed once it is delivered.
      let held = 0;
      for (const segment of got.chunk.segments) {
        held += segment.byteLength;
        run.buffers.hold(segment);
      }
      return transcodedRead(fields, prep, got, held);
    },
  };
}

/**
 * The readers of a table's ranges: in the native format with a row JSON writer, COPY's transcoder, on
 * the reader threads if there are any working, else on `readers`; otherwise rows read as text on `readers`.
 */
async function rangeReaders(run: TableRun, source: RangeSource, readers: Client[]): Promise<ChunkReader[]> {
  const text = (): ChunkReader[] => readers.map((c) => connectionReader(run, source, c));
  if (run.dbz !== null) return text();
  // COPY has no row description: the columns' types come from an empty SELECT of the same columns.
  const probe = await run.deps.client.query<unknown[]>({ text: `SELECT ${run.select} FROM ${run.table.relation} LIMIT 0`, rowMode: 'array' });
  const prep = await prepareChunk(run, probe.fields);
  if (prep.layout === null || prep.json === null) return text();
  const writer = (): CopyRowWriter | null => CopyRowWriter.of(prep.rowColumns, prep.chunkKey, run.table.wholeRowKey);
  if (writer() === null) return text();
  const onConnection = (c: Client): ChunkReader => copyReader(run, source, c, probe.fields, writer()!);
  const threads = run.threads;
  if (threads !== null && threads.working.length > 0) return threads.working.map((i) => threadReader(run, source, threads, i, probe.fields, onConnection));
  return readers.map(onConnection);
}

/** Readers take consecutive ranges of `source`, read them at once, and queue their chunks in range order. */
async function snapshotRanges(run: TableRun, readers: Client[], source: RangeSource): Promise<'done' | 'stopped'> {
  const { deps } = run;
  // `ended` once the last range was handed out.
  let ended = false;
  let index = 0;
  let claims: Promise<unknown> = Promise.resolve();
  const claim = (c: Client): Promise<(Range & { index: number }) | null> => {
    const next = claims.then(async () => {
      if (ended) return null;
      const range = await source.claim(c);
      if (range.last) ended = true;
      return { ...range, index: index++ };
    });
    claims = next.catch(() => undefined);
    return next;
  };
  const turns = new Turns();
  const readAhead = new ReadAhead(deps.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES);
  const reader = async (r: ChunkReader): Promise<'done' | 'stopped'> => {
    for (;;) {
      if (deps.isStopping() || turns.aborted) return 'stopped';
      await readAhead.room();
      if (deps.isStopping() || turns.aborted) return 'stopped';
      const chunk = await claim(r.claims);
      if (chunk === null) return 'done';
      const { fields, rows, held, cellBytes, prep, early, lastOfAll } = await r.read(chunk);
      readAhead.take(held);
      if (rows.length > 0) run.chunkRows = chunkRowsFor(deps.chunkRows, cellBytes / rows.length);
      await turns.wait(chunk.index);
      if (turns.aborted || deps.isStopping()) return 'stopped';
      const lastKey = chunk.lastKey(fields, rows);
      await queueChunk(run, prep, rows, early, lastOfAll, (rowsDone) => ({ ...run.p, rows: rowsDone, lastKey, done: chunk.last }));
      turns.done();
      readAhead.give(held);
    }
  };
  const chunkReaders = await rangeReaders(run, source, readers);
  // Every reader settles before the table ends (none is left querying); the first failure is thrown.
  const results = await Promise.allSettled(
    chunkReaders.map((r) =>
      // A reader that stops or fails releases the others (waiting for its chunk's turn or for room).
      reader(r).then(
        (result) => {
          if (result === 'stopped') {
            turns.abort();
            readAhead.abort();
          }
          return result;
        },
        (err: unknown) => {
          turns.abort();
          readAhead.abort();
          throw err;
        },
      ),
    ),
  );
  turns.abort();
  readAhead.abort();
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  return results.every((r) => r.status === 'fulfilled' && r.value === 'done') ? 'done' : 'stopped';
}

/** No usable unique key and no TID range scans (a partitioned table, a server before 14): one pass through a cursor (a crash restarts this table). */
async function snapshotKeyless(run: TableRun): Promise<'done' | 'stopped'> {
  const { deps, table } = run;
  const { client } = deps;
  await client.query(`DECLARE cdc_snap NO SCROLL CURSOR FOR SELECT ${run.select} FROM ${table.relation}`);
  run.p.rows = 0;
  // The Debezium format reads one row ahead to know the table's last row (its `last` marker): the
  // extra row is carried into the next chunk.
  const ahead = run.dbz === null ? 0 : 1;
  let carry: (string | null)[][] = [];
  for (;;) {
    if (deps.isStopping()) return 'stopped';
    const res = await client.query<unknown[]>({ text: `FETCH ${deps.chunkRows + ahead - carry.length} FROM cdc_snap`, rowMode: 'array' });
    const fetched = res.rows as (string | null)[][];
    const read = carry.length === 0 ? fetched : [...carry, ...fetched];
    const rows = read.length > deps.chunkRows ? read.slice(0, deps.chunkRows) : read;
    carry = read.slice(rows.length);
    // Native: a short chunk ends the table. Debezium: no row beyond this chunk ends it.
    const tableDone = run.dbz === null ? rows.length < deps.chunkRows : read.length <= deps.chunkRows;
    const lastOfAll = run.dbz !== null && tableDone && rows.length > 0 && !(await run.laterRows(client));
    const prep = await prepareChunk(run, res.fields);
    await queueChunk(
      run,
      prep,
      rows,
      // One cursor: nothing to overlap a thread's encoding with.
      null,
      lastOfAll,
      (rowsDone) => ({ ...run.p, rows: rowsDone, lastKey: null, done: tableDone }),
      !tableDone,
    );
    if (tableDone) break;
  }
  await client.query('CLOSE cdc_snap');
  return 'done';
}

function keyOf(fields: FieldDef[], key: string[], row: (string | null)[]): string[] {
  return key.map((k) => row[fields.findIndex((f) => f.name === k)] as string);
}

/** What a chunk's rows are encoded with: made per chunk, before its turn, so its encoding can start at once. */
interface ChunkPrep {
  fields: FieldDef[];
  decoders: Decoder[];
  names: string[];
  chunkKey: string[];
  envelope: (row: RowImage | null, key: RowImage | null, marker: SnapshotMarker) => ChangeEvent;
  /** Native format: the chunk's shared envelope as data (null: the Debezium format). */
  layout: RowsLayout | null;
  /** Native format: the table's row and key JSON writer (null: rows go through the row object). */
  json: RowJsonEncoder | null;
  /** The columns as the row JSON writers take them. */
  rowColumns: RowJsonColumn[];
}

async function prepareChunk(run: TableRun, fields: FieldDef[]): Promise<ChunkPrep> {
  const { deps, table, dbz } = run;
  await deps.types.ensure(fields.map((f) => f.dataTypeID));
  const decoders = fields.map((f) => deps.types.decoder(f.dataTypeID));
  const names = fields.map((f) => f.name);
  const columnTypes = deps.types.columnTypes(fields.map((f) => ({ name: f.name, typeOid: f.dataTypeID })));
  // the table's catalog details once per table (a chunk's fields are the same), for Debezium's schema
  const columns: DebeziumColumn[] | undefined =
    dbz === null
      ? undefined
      : (run.debeziumColumns ??= await withDebeziumDetails(
          (sql, params) => deps.client.query(sql, params),
          fields[0]?.tableID ?? 0,
          fields.map((f) => ({ name: f.name, type: deps.types.baseTypeName(f.dataTypeID), typmod: f.dataTypeModifier })),
        ));
  const chunkKey = table.wholeRowKey ? names : table.keyColumns;
  const now = Date.now();
  const envelope = (row: RowImage | null, key: RowImage | null, marker: SnapshotMarker): ChangeEvent =>
    buildEnvelope({
      op: 'r',
      serverName: deps.serverName,
      db: deps.db,
      schema: table.schema,
      table: table.table,
      before: null,
      after: row,
      key,
      lsn: run.plan.versionLsn,
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
  // Native format: every row of the chunk shares one envelope, serialised once (RecordBuilder.rowsLayout),
  // and each row's JSON is written from its text cells without a row object (rowJsonEncoder).
  const layout = dbz === null ? deps.records.rowsLayout(envelope(null, null, 'true')) : null;
  const rowColumns = fields.map((f, i) => ({ name: f.name, decoder: decoders[i]!, baseType: deps.types.baseTypeName(f.dataTypeID) }));
  const json = layout === null ? null : (run.rowJson ??= rowJsonEncoder(rowColumns, chunkKey, table.wholeRowKey));
  return { fields, decoders, names, chunkKey, envelope, layout, json, rowColumns };
}

/** The table's columns as a reader thread rebuilds its row JSON writer (made at its first chunk). */
function encoderTableOf(run: TableRun, prep: ChunkPrep): EncoderTable {
  const { types } = run.deps;
  return (run.encoderTable ??= {
    id: run.id,
    columns: prep.fields.map((f) => ({ name: f.name, spec: types.decoderSpec(f.dataTypeID), baseType: types.baseTypeName(f.dataTypeID) })),
    keyColumns: prep.chunkKey,
    wholeRowKey: run.table.wholeRowKey,
  });
}

/**
 * Queues one chunk's records (waiting for room under the in-flight bound): a reader thread's
 * (`early`: for rows it gave no record, `rows` has their text), else written here a buffer at a time
 * (`writeChunk`), else, for a row neither has, built from the row object. Its progress
 * (`progressAt(rows done)`) is recorded once the broker confirmed it and every earlier chunk.
 * `skipRecord`: a keyless table's chunk before its last (only its end is recorded).
 */
async function queueChunk(
  run: TableRun,
  prep: ChunkPrep,
  rows: (string | null)[][],
  early: EncodedChunk | null,
  lastOfAll: boolean,
  progressAt: (rowsDone: number) => TableProgress,
  skipRecord = false,
): Promise<void> {
  const { deps, table, dbz } = run;
  const { decoders, names, chunkKey, layout, json } = prep;
  let encoded = early;
  const writeHere = encoded === null && layout !== null && json !== null;
  // Row j's record is the (j − base)-th of `encoded`, which has the rows up to its `end`.
  let base = 0;
  // The buffers the chunk's records are in, released once they are delivered (`RecordBuffers`, tracked).
  const segments = early === null ? [] : [...early.segments];
  const entry = deps.tracker.open();
  for (let j = 0; j < rows.length; j++) {
    if (writeHere && (encoded === null || j >= encoded.end)) {
      encoded = writeChunk(json, layout, rows, run.buffers, j, true);
      segments.push(...encoded.segments);
      base = j;
    }
    if (encoded !== null && layout !== null && chunkHasRecord(encoded, j - base)) {
      // The rows from here that have a record, up to the first without one or the end of `encoded`, as one span.
      const to = Math.min(rows.length, encoded.end) - base;
      let k = j - base + 1;
      while (k < to && chunkHasRecord(encoded, k)) k++;
      deps.pipeline.enqueueSpan({ chunk: encoded, from: j - base, to: k, topic: layout.topic }, entry);
      j = base + k - 1;
      if (deps.pipeline.saturated) await deps.pipeline.waitForCapacity();
      continue;
    }
    const raw = rows[j]!;
    const row: RowImage = {};
    for (let i = 0; i < names.length; i++) {
      const v = raw[i];
      row[names[i]!] = v === null || v === undefined ? null : decoders[i]!(v);
    }
    const key = keyFrom(table, chunkKey, table.wholeRowKey, row);
    const fast = json === null && layout !== null ? layoutRecord(layout, JSON.stringify(row), JSON.stringify(key)) : null;
    if (fast) {
      deps.pipeline.enqueue(fast, entry);
    } else {
      let marker: SnapshotMarker = 'true';
      if (dbz !== null && dbz.first) {
        dbz.first = false;
        marker = 'first';
      } else if (lastOfAll && j === rows.length - 1) {
        marker = 'last';
      }
      const event = prep.envelope(row, key, marker);
      const built = deps.records.tryBuild(event) ?? (await deps.records.buildLarge(event));
      deps.pipeline.enqueueBuilt(built, entry);
    }
    if (deps.pipeline.saturated) await deps.pipeline.waitForCapacity();
  }
  run.queuedRows += rows.length;
  const progress = progressAt(run.queuedRows);
  const added = rows.length;
  entry.onAcked = () => {
    run.buffers.release(segments);
    Object.assign(run.p, progress);
    if (!skipRecord) run.recorder.record(progress);
    reportProgress(run, progress, added);
  };
  deps.tracker.close(entry, 0n);
}

/** Metrics after a delivered chunk, and a log line every 5 s with rows/s and the ETA. */
function reportProgress(run: TableRun, p: TableProgress, added: number): void {
  const { deps, table } = run;
  deps.onProgress?.({ schema: table.schema, table: table.table, rowsDone: p.rows, rowsTotal: run.estimate, done: p.done }, added);
  const t = Date.now();
  if (p.done || t - run.lastLog > 5_000) {
    run.lastLog = t;
    const rate = ((p.rows - run.startRows) / Math.max(1, t - run.started)) * 1000;
    const remaining = Math.max(0, run.estimate - p.rows);
    deps.log.info('snapshot progress', {
      table: `${table.schema}.${table.table}`,
      rows: p.rows,
      rowsPerSec: Math.round(rate),
      estimatedRows: run.estimate,
      etaSec: p.done ? 0 : rate > 0 ? Math.round(remaining / rate) : null,
      done: p.done,
      chunkRows: run.chunkRows,
    });
  }
}
