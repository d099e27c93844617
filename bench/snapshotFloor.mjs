// The floor under the reader's snapshot CPU (not a test; bench/snapshot.mjs runs it once per table).
// What any Node.js reader has to spend per row with the same two libraries and no encoding at all:
//   read:           the table through `pg` in keyset chunks (rowMode 'array', text type parsers, the
//                   reader's session options), rows dropped;
//   readAndProduce: the same, and every row published through the reader's own KafkaPublisher (acks=all),
//                   its value the row's text cells joined by tabs, padded with spaces to FLOOR_VALUE_BYTES
//                   (the reader's record size, so the broker and the client move as many bytes), its key
//                   the key cell.
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
  // In sends of at most ~900 kB, as the reader's pipeline keeps each batch under the broker's limit.
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
});
await publisher.close();
await client.end();
process.stdout.write(
  JSON.stringify({
    rows: read.rows,
    read: read.cpuUsPerRow,
    readAndProduce: readAndProduce.cpuUsPerRow,
    valueBytesPerRow: Math.round(valueTotal / readAndProduce.rows),
  }) + '\n',
);
