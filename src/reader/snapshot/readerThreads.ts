/**
 * Snapshot reader threads (CDC_SNAPSHOT_READER_THREADS): each owns a PostgreSQL connection in the
 * snapshot's transaction and reads the ranges it is given with COPY, writing their records (`readWorker.ts`); the
 * main thread claims the ranges, queues the chunks in order and publishes them. Why: one thread that
 * reads and publishes a wide table tops out below the target whatever the encoding costs (the floor,
 * `bench/snapshotFloor.mjs`: 15 µs a row of 20 columns with no encoding at all, a third of it `pg`'s row
 * parsing); the threads move the parsing and the encoding onto the second core.
 *
 * A thread's connection is made from the reader's settings (`PgSettings`, plain data) and the TLS
 * choice the reader's first connection settled, since a `pg` config (a TLS `checkServerIdentity`, an
 * Entra ID password function) cannot be sent to a thread. With `PG_AUTH=entra` a thread asks its own
 * `DefaultAzureCredential` for its token.
 *
 * A thread that fails (its query, its connection, out of memory under its `resourceLimits`) fails the
 * snapshot with the reason; the reader starts again and resumes after the last delivered chunk.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { PgSettings } from '../../shared/core/postgres.js';
import type { RowsLayout } from '../encode/chunkRecords.js';
import type { CopyChunk } from '../encode/copyRows.js';
import type { DecoderSpec } from '../../shared/events/pgTypes.js';

/** A table's columns as a reader thread rebuilds its row JSON writer (`rowJsonEncoder`). */
export interface EncoderTable {
  /** Distinct per table run: the thread keeps the writer of the last table it saw. */
  id: number;
  columns: { name: string; spec: DecoderSpec; baseType: string }[];
  keyColumns: string[];
  wholeRowKey: boolean;
}

/** The thread itself failed (not its query): its ranges are read on a connection of the main thread. */
export class ReaderThreadFailed extends Error {}

/** How a thread connects: the reader's settings, and whether its TLS choice was a plain connection. */
export interface ThreadConnection {
  settings: PgSettings;
  plain: boolean;
}

export type ReaderRequest =
  | { type: 'open'; id: number; settings: PgSettings; plain: boolean; snapshot: string }
  | { type: 'read'; id: number; text: string; table: EncoderTable; layout: RowsLayout }
  | { type: 'close'; id: number };

/** What a thread read (`copyChunk`): its records, its row count, the estimate of its cells, and the rows the main thread needs as text. */
export interface ThreadChunk extends CopyChunk {
  id: number;
}

export type ReaderReply = ThreadChunk | { id: number } | { id: number; error: string };

/** Heap limits of a thread: its heap holds little (COPY's bytes and the records are Buffers outside it, and no cell over `THREAD_TEXT_CELL_BYTES` becomes a string there), and each MB of it counts against the reader's 200 MB RSS bound. */
const RESOURCE_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 };
const CLOSE_TIMEOUT_MS = 5_000;

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (r: ReaderReply) => void; reject: (e: Error) => void }>;
  failed: Error | null;
}

export class ReaderThreads {
  private readonly threads: Thread[] = [];
  private nextId = 0;

  private constructor(count: number) {
    // From dist, the compiled file. From the sources (`npm start`, the tests) the TypeScript file, with the
    // development loader's `./x.js` → `./x.ts` mapping; its imports use only type syntax Node strips by
    // default (no parameter properties or enums), since a thread cannot be given the process-wide
    // --experimental-transform-types.
    const ts = import.meta.url.endsWith('.ts');
    const file = new URL(ts ? './readWorker.ts' : './readWorker.js', import.meta.url);
    const execArgv = ts ? ['--no-warnings', '--import', fileURLToPath(new URL('../devLoader.mjs', import.meta.url))] : [];
    for (let i = 0; i < count; i++) {
      const thread: Thread = { worker: new Worker(file, { execArgv, resourceLimits: RESOURCE_LIMITS }), pending: new Map(), failed: null };
      const fail = (err: Error): void => {
        thread.failed ??= new ReaderThreadFailed(err.message, { cause: err });
        for (const p of thread.pending.values()) p.reject(thread.failed);
        thread.pending.clear();
      };
      thread.worker.on('message', (reply: ReaderReply) => {
        const p = thread.pending.get(reply.id);
        if (p === undefined) return;
        thread.pending.delete(reply.id);
        if ('error' in reply) p.reject(new Error(`snapshot reader thread: ${reply.error}`));
        else p.resolve(reply);
      });
      thread.worker.on('error', (err: Error) =>
        fail(
          new Error(
            `snapshot reader thread failed: ${err.message}${(err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? ' (lower CDC_SNAPSHOT_CHUNK_ROWS, or set CDC_SNAPSHOT_READER_THREADS=0 to read on the main thread)' : ''}`,
          ),
        ),
      );
      thread.worker.on('exit', (code) => fail(new Error(`snapshot reader thread exited (code ${code})`)));
      this.threads.push(thread);
    }
  }

  /** Starts `count` threads, each connected in the transaction snapshot `snapshot`; closes them all if one cannot connect. */
  static async open(count: number, connection: ThreadConnection, snapshot: string): Promise<ReaderThreads> {
    const threads = new ReaderThreads(count);
    try {
      await Promise.all(threads.threads.map((t) => threads.ask(t, (id) => ({ type: 'open', id, ...connection, snapshot }))));
    } catch (err) {
      await threads.close();
      throw err;
    }
    return threads;
  }

  get count(): number {
    return this.threads.length;
  }

  /** The threads that have not failed. */
  get working(): number[] {
    return this.threads.flatMap((t, i) => (t.failed === null ? [i] : []));
  }

  /** Reads a range on thread `i` (`text`: its `COPY (SELECT …) TO STDOUT`) and writes its records. */
  async read(i: number, text: string, table: EncoderTable, layout: RowsLayout): Promise<ThreadChunk> {
    const t = this.threads[i];
    if (t === undefined) throw new Error(`no snapshot reader thread ${i}`);
    return (await this.ask(t, (id) => ({ type: 'read', id, text, table, layout }))) as ThreadChunk;
  }

  private ask(t: Thread, request: (id: number) => ReaderRequest): Promise<ReaderReply> {
    if (t.failed !== null) return Promise.reject(t.failed);
    const id = this.nextId++;
    return new Promise<ReaderReply>((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      t.worker.postMessage(request(id));
    });
  }

  /** Ends each thread's transaction and connection (bounded), then the threads. */
  async close(): Promise<void> {
    await Promise.all(
      this.threads.map(async (t) => {
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
        await Promise.race([this.ask(t, (id) => ({ type: 'close', id })).catch(() => undefined), bound]);
        clearTimeout(timer);
        await t.worker.terminate();
      }),
    );
  }
}
