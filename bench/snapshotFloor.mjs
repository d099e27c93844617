// The floor under the reader's snapshot CPU (not a test; bench/snapshot.mjs runs it once per table).
// What any Node.js reader has to spend per row with the same two libraries and no encoding at all:
//   read:           the table through `pg` in keyset chunks (rowMode 'array', text type parsers, the
//                   reader's session options), rows dropped;
//   readAndProduce: the same, and every row published through the reader's own KafkaPublisher (acks=all),
//                   its value the row's text cells joined by tabs, padded with spaces to FLOOR_VALUE_BYTES
//                   (the reader's record size, so the broker and the client move as many bytes), its key
//                   the key cell.
//   copyRead, copyReadAndProduce: the same two passes with the rows read by COPY (`COPY (SELECT …) TO STDOUT`,
//                   each row's bytes), as the reader reads them since snapshot run 13; the value is the row's
//                   bytes padded to FLOOR_VALUE_BYTES.
// Prints one JSON line: CPU µs per row (this process, user + system, over each pass alone) and value bytes
// per row. Env: PG* and KAFKA_BROKERS, FLOOR_TABLE (schema.table), FLOOR_KEY (its bigint key column),
// FLOOR_TOPIC, FLOOR_CHUNK_ROWS (default 5000, the reader's CDC_SNAPSHOT_CHUNK_ROWS).
import pg from 'pg';
import { KafkaPublisher } from '../dist/src/reader/publish/kafkaPublisher.js';
import { kafkaSettingsFromEnv } from '../dist/src/shared/core/kafka.js';
import { SESSION_OPTIONS, textTypes } from '../dist/src/shared/events/pgTables.js';

const table = process.env.FLOOR_TABLE;
const key = process.env.FLOOR_KEY;
const topic = process.env.FLOOR_TOPIC;
if (!table || !key || !topic) throw new Error('FLOOR_TABLE, FLOOR_KEY and FLOOR_TOPIC are required');
const chunkRows = Number(process.env.FLOOR_CHUNK_ROWS ?? 5000);
const valueBytes = Number(process.env.FLOOR_VALUE_BYTES ?? 0);

const client = new pg.Client({ options: SESSION_OPTIONS, types: textTypes });
await client.connect();
const columns = await client.query({ text: `SELECT * FROM ${table} LIMIT 0`, rowMode: 'array' });
const at = columns.fields.findIndex((f) => f.name === key);
if (at < 0) throw new Error(`${table} has no column ${key}`);

/** A chunk's records in sends of at most ~900 kB, as the reader's pipeline keeps each batch under the broker's limit. */
async function sendInBatches(records) {
  let batch = [];
  let bytes = 0;
  for (const record of records) {
    if (batch.length > 0 && bytes + record.value.length > 900_000) {
      await publisher.send(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(record);
    bytes += record.value.length;
  }
  if (batch.length > 0) await publisher.send(batch);
}

/** One pass over the table; `perChunk` gets each chunk's rows. Returns rows and CPU µs per row. */
async function pass(perChunk) {
  const before = process.cpuUsage();
  let last = null;
  let rows = 0;
  for (;;) {
    const res = await client.query({
      text: `SELECT * FROM ${table}${last === null ? '' : ` WHERE ${key} > $1`} ORDER BY ${key} LIMIT ${chunkRows}`,
      values: last === null ? [] : [last],
      rowMode: 'array',
    });
    if (res.rows.length === 0) break;
    rows += res.rows.length;
    last = res.rows[res.rows.length - 1][at];
    await perChunk(res.rows);
  }
  const used = process.cpuUsage(before);
  return { rows, cpuUsPerRow: +((used.user + used.system) / rows).toFixed(2) };
}

const publisher = await KafkaPublisher.create(kafkaSettingsFromEnv(process.env, { clientId: 'bench-snapshot-floor' }));
// The topic exists and the connection is up before anything is timed.
await publisher.send([{ topic, key: Buffer.from('warm-up'), value: Buffer.from('warm-up') }]);
await pass(async () => undefined); // warm-up: JIT, PostgreSQL's buffers
const read = await pass(async () => undefined);
let valueTotal = 0;
const readAndProduce = await pass(async (rows) => {
  const records = rows.map((row) => {
    const value = Buffer.from(
      row
        .map((cell) => (cell === null ? '\\N' : cell))
        .join('\t')
        .padEnd(valueBytes),
    );
    valueTotal += value.length;
    return { topic, key: Buffer.from(row[at]), value };
  });
  await sendInBatches(records);
});

/** `COPY (…) TO STDOUT` through a `pg` submittable: each row's bytes (a view of pg's receive buffer) to `perRow`, as the reader reads. */
function copy(text, perRow) {
  return new Promise((resolve, reject) => {
    void client.query({
      submit: (connection) => connection.query(text),
      handleCopyData: (msg) => perRow(msg.chunk),
      handleCommandComplete() {},
      handleRowDescription() {},
      handleDataRow() {},
      handleEmptyQuery() {},
      handleReadyForQuery: () => resolve(),
      handleError: reject,
    });
  });
}

/** The key cell of a COPY row (the `at`-th tab-separated cell, without its newline). */
function keyBytes(row) {
  let start = 0;
  for (let i = 0; i < at; i++) start = row.indexOf(9, start) + 1;
  let end = row.indexOf(9, start);
  if (end < 0) end = row.length - 1;
  return row.subarray(start, end);
}

/** One pass over the table read with COPY (the reader's way since snapshot run 13); `perRow` gets each row's bytes. */
async function copyPass(perRow, perChunk = async () => undefined) {
  const before = process.cpuUsage();
  let last = null;
  let rows = 0;
  for (;;) {
    let n = 0;
    let lastRow = null;
    await copy(`COPY (SELECT * FROM ${table}${last === null ? '' : ` WHERE ${key} > ${last}`} ORDER BY ${key} LIMIT ${chunkRows}) TO STDOUT`, (row) => {
      n++;
      perRow(row);
      lastRow = row;
    });
    if (n === 0) break;
    rows += n;
    // The key is a bigint: its text is a literal as it is.
    last = keyBytes(lastRow).toString('latin1');
    await perChunk();
  }
  const used = process.cpuUsage(before);
  return { rows, cpuUsPerRow: +((used.user + used.system) / rows).toFixed(2) };
}

const copyRead = await copyPass(() => undefined);
let batch = [];
const copyReadAndProduce = await copyPass(
  (row) => {
    // The row's bytes copied into a value of the reader's record size (as the reader copies its records out of pg's buffer).
    const value = Buffer.alloc(Math.max(valueBytes, row.length), 32);
    row.copy(value);
    batch.push({ topic, key: Buffer.from(keyBytes(row)), value });
  },
  async () => {
    const chunk = batch;
    batch = [];
    await sendInBatches(chunk);
  },
);
await publisher.close();
await client.end();
process.stdout.write(
  JSON.stringify({
    rows: read.rows,
    read: read.cpuUsPerRow,
    readAndProduce: readAndProduce.cpuUsPerRow,
    copyRead: copyRead.cpuUsPerRow,
    copyReadAndProduce: copyReadAndProduce.cpuUsPerRow,
    valueBytesPerRow: Math.round(valueTotal / readAndProduce.rows),
  }) + '\n',
);
