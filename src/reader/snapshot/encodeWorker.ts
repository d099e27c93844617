/**
 * A snapshot encoder thread (`worker_threads`, started by `ChunkEncoders`): turns a chunk's text cells
 * into its records' bytes (`writeChunk`) and sends them back, buffers transferred. Only pure encoding
 * runs here; reading, ordering and publishing stay on the main thread.
 */
import { parentPort } from 'node:worker_threads';
import { rowJsonEncoder } from '../encode/rowJson.js';
import type { RowJsonEncoder } from '../encode/rowJson.js';
import { RecordBuffers, writeChunk } from '../encode/chunkRecords.js';
import { decoderOf } from '../../shared/events/pgTypes.js';
import type { EncodeReply, EncodeRequest } from './encoders.js';

if (parentPort === null) throw new Error('encodeWorker.ts runs as a worker thread (ChunkEncoders), not on its own');
const port = parentPort;

// The encoder of the table the last chunk was of (chunks come table by table).
let table: { id: number; json: RowJsonEncoder } | null = null;

port.on('message', (req: EncodeRequest) => {
  let reply: EncodeReply;
  let transfer: ArrayBuffer[] = [];
  try {
    if (table?.id !== req.table.id) {
      const json = rowJsonEncoder(
        req.table.columns.map((c) => ({ name: c.name, decoder: decoderOf(c.spec), baseType: c.baseType })),
        req.table.keyColumns,
        req.table.wholeRowKey,
      );
      if (json === null) throw new Error('the table has no row JSON encoder (a column name is an array index); it is encoded on the main thread');
      table = { id: req.table.id, json };
    }
    // Buffers of this chunk's own: they are transferred.
    const chunk = writeChunk(table.json, req.layout, req.rows, new RecordBuffers());
    reply = { id: req.id, chunk };
    transfer = [...chunk.segments, chunk.index.buffer as ArrayBuffer];
  } catch (err) {
    reply = { id: req.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply, transfer);
});
