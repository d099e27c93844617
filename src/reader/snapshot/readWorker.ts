/**
 * A snapshot reader thread (`worker_threads`, started by `ReaderThreads`): it owns a PostgreSQL
 * connection in the snapshot's transaction (`SET TRANSACTION SNAPSHOT`), reads the ranges the main
 * thread claims for it with COPY, and turns their rows into records' bytes (`copyChunk`), sent back transferred.
 * So the rows' parsing and encoding, most of a wide table's cost, run off the main thread, which only
 * claims ranges, orders the chunks and publishes them. Only type syntax Node strips is used here and in
 * what it imports (see `ReaderThreads`).
 */
import { parentPort } from 'node:worker_threads';
import pg from 'pg';
import { RecordBuffers } from '../encode/chunkRecords.js';
import { copyChunk, CopyRowWriter } from '../encode/copyRows.js';
import { decoderOf } from '../../shared/events/pgTypes.js';
import { pgClientOptions, sslAttempts } from '../../shared/core/postgres.js';
import { SESSION_OPTIONS, textTypes } from '../../shared/events/pgTables.js';
import type { ReaderRequest, ReaderReply } from './readerThreads.js';

if (parentPort === null) throw new Error('readWorker.ts runs as a worker thread (ReaderThreads), not on its own');
const port = parentPort;

let client: pg.Client | null = null;
// The encoder of the table the last chunk was of (chunks come table by table).
let table: { id: number; writer: CopyRowWriter } | null = null;
// A query runs at a time (the main thread sends the next range after this one's reply).
let queue: Promise<void> = Promise.resolve();

async function handle(req: ReaderRequest): Promise<{ reply: ReaderReply; transfer: ArrayBuffer[] }> {
  switch (req.type) {
    case 'open': {
      const attempts = sslAttempts(req.settings);
      // The main thread's TLS choice (allow/prefer may have fallen back to the other attempt).
      const ssl = attempts.find((a) => (a === false) === req.plain) ?? attempts[0] ?? false;
      const c = new pg.Client({ ...pgClientOptions(req.settings, ssl, 'pg-cdc-reader'), options: SESSION_OPTIONS, types: textTypes });
      // A lost connection fails the next read (its query rejects); it must not crash the thread first.
      c.on('error', () => undefined);
      await c.connect();
      client = c;
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query(`SET TRANSACTION SNAPSHOT '${req.snapshot.replace(/'/g, "''")}'`);
      return { reply: { id: req.id }, transfer: [] };
    }
    case 'read': {
      if (client === null) throw new Error('the reader thread has no connection (it was not opened)');
      if (table?.id !== req.table.id) {
        const writer = CopyRowWriter.of(
          req.table.columns.map((c) => ({ name: c.name, decoder: decoderOf(c.spec), baseType: c.baseType })),
          req.table.keyColumns,
          req.table.wholeRowKey,
          true,
        );
        if (writer === null) throw new Error('the table has no row JSON writer (a column name is an array index)');
        table = { id: req.table.id, writer };
      }
      // Buffers of this chunk's own: they are transferred. The rows the main thread needs as text come
      // back with them as their bytes: those without a record (built there from the row object, which
      // names the problem or takes the claim-check path), and the last (its range's progress key).
      table.writer.begin(req.layout, new RecordBuffers());
      const got = await copyChunk(client, req.text, table.writer);
      return { reply: { id: req.id, ...got }, transfer: [...got.chunk.segments, got.chunk.index.buffer as ArrayBuffer] };
    }
    case 'close': {
      const c = client;
      client = null;
      if (c !== null) await c.query('COMMIT').finally(() => c.end());
      return { reply: { id: req.id }, transfer: [] };
    }
  }
}

port.on('message', (req: ReaderRequest) => {
  queue = queue.then(async () => {
    try {
      const { reply, transfer } = await handle(req);
      port.postMessage(reply, transfer);
    } catch (err) {
      port.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) } satisfies ReaderReply);
    }
  });
});
