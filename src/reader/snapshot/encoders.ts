/**
 * Snapshot encoder threads (CDC_SNAPSHOT_ENCODERS): the native format's chunks are encoded off the main
 * thread, which keeps reading the next chunks and publishing. Why: the main thread was the snapshot's
 * bound (docs/reader.md "Snapshot benchmark"): it read, encoded and published every row, while
 * PostgreSQL and the broker waited on it. A chunk's text cells are copied to a thread (structured
 * clone, about a tenth of what encoding them costs) and its records' bytes come back transferred, not
 * copied (`EncodedChunk`).
 *
 * A thread that fails (out of memory under its `resourceLimits`, a crash) fails the chunks given to it
 * with the reason and takes no more; the snapshot encodes those chunks, and every later one once no
 * thread is left, on the main thread (`queueChunk`), and logs why once.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { DecoderSpec } from '../../shared/events/pgTypes.js';
import type { EncodedChunk } from '../encode/chunkRecords.js';
import type { RowsLayout } from '../encode/chunkRecords.js';

/** A table's columns as an encoder thread rebuilds its row JSON writer (`rowJsonEncoder`). */
export interface EncoderTable {
  /** Distinct per table run: the thread keeps the writer of the last table it saw. */
  id: number;
  columns: { name: string; spec: DecoderSpec; baseType: string }[];
  keyColumns: string[];
  wholeRowKey: boolean;
}

export interface EncodeRequest {
  id: number;
  table: EncoderTable;
  layout: RowsLayout;
  rows: (string | null)[][];
}

export type EncodeReply = { id: number; chunk: EncodedChunk } | { id: number; error: string };

/** Heap limits of a thread: a chunk's cells and its records at a time (the reader's RSS bound is 200 MB). */
const RESOURCE_LIMITS = { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 };

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (c: EncodedChunk) => void; reject: (e: Error) => void }>;
  failed: Error | null;
}

export class ChunkEncoders {
  private readonly threads: Thread[] = [];
  private nextId = 0;
  private fellBack = false;

  /** Starts `count` threads (≥ 1). */
  constructor(count: number) {
    // From dist, the compiled file. From the sources (`npm start`, the tests) the TypeScript file,
    // with the development loader's `./x.js` → `./x.ts` mapping; its imports use only type syntax
    // Node strips by default (no parameter properties or enums), since a thread cannot be given the
    // process-wide --experimental-transform-types.
    const ts = import.meta.url.endsWith('.ts');
    const file = new URL(ts ? './encodeWorker.ts' : './encodeWorker.js', import.meta.url);
    const execArgv = ts ? ['--no-warnings', '--import', fileURLToPath(new URL('../devLoader.mjs', import.meta.url))] : [];
    for (let i = 0; i < count; i++) {
      const thread: Thread = { worker: new Worker(file, { execArgv, resourceLimits: RESOURCE_LIMITS }), pending: new Map(), failed: null };
      const fail = (err: Error): void => {
        thread.failed ??= err;
        for (const p of thread.pending.values()) p.reject(thread.failed);
        thread.pending.clear();
        thread.worker.unref();
      };
      thread.worker.on('message', (reply: EncodeReply) => {
        const p = thread.pending.get(reply.id);
        if (p === undefined) return;
        thread.pending.delete(reply.id);
        if (thread.pending.size === 0) thread.worker.unref();
        if ('error' in reply) p.reject(new Error(`snapshot encoder thread: ${reply.error}`));
        else p.resolve(reply.chunk);
      });
      thread.worker.on('error', (err: Error) =>
        fail(
          new Error(
            `snapshot encoder thread failed: ${err.message}${(err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY' ? ' (lower CDC_SNAPSHOT_CHUNK_ROWS, or set CDC_SNAPSHOT_ENCODERS=0 to encode on the main thread)' : ''}`,
          ),
        ),
      );
      thread.worker.on('exit', (code) => fail(new Error(`snapshot encoder thread exited (code ${code})`)));
      // Referenced only while it has chunks to encode: an idle thread never keeps a stopping reader alive.
      thread.worker.unref();
      this.threads.push(thread);
    }
  }

  /** Whether a thread is left to take chunks. */
  get available(): boolean {
    return this.threads.some((t) => t.failed === null);
  }

  /** True only the first time it is asked: the caller says once that chunks fall back to the main thread. */
  firstFallback(): boolean {
    const first = !this.fellBack;
    this.fellBack = true;
    return first;
  }

  /** Encodes a chunk on the working thread with the fewest chunks waiting; rejects with the reason when none is left. */
  encode(table: EncoderTable, layout: RowsLayout, rows: (string | null)[][]): Promise<EncodedChunk> {
    let thread: Thread | null = null;
    for (const t of this.threads) if (t.failed === null && (thread === null || t.pending.size < thread.pending.size)) thread = t;
    if (thread === null) return Promise.reject(this.threads[0]?.failed ?? new Error('no snapshot encoder thread'));
    const id = this.nextId++;
    const t = thread;
    return new Promise<EncodedChunk>((resolve, reject) => {
      t.pending.set(id, { resolve, reject });
      t.worker.ref();
      const req: EncodeRequest = { id, table, layout, rows };
      t.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
