/**
 * `npm run snapshot -- --table schema.table [--where "SQL condition"]`: asks the running reader for an
 * incremental snapshot of a table (docs/reader.md "Incremental snapshots") by inserting an
 * `execute-snapshot` signal into `<CDC_STATE_SCHEMA>.signals`, as any SQL client can. Reads the
 * reader's settings (PG*, CDC_STATE_SCHEMA, CDC_PUBLICATION, CDC_SLOT) from the environment. Checks
 * first that the table exists and is captured, and that the condition is valid SQL on it; prints what
 * it requested. Exit code 0 when the signal is written, 1 when the request is refused (with why and
 * the fix), 2 when it could not run.
 */
import { parseArgs } from 'node:util';
import { describeError } from '../src/shared/core/errors.js';
import { connectPgClient } from '../src/shared/core/postgres.js';
import { qualified } from '../src/shared/core/sql.js';
import { loadConfig, secretsOf } from '../src/reader/config.js';
import { redact } from '../src/shared/core/redact.js';
import { publicationMembers } from '../src/reader/replication/publication.js';
import { checkFilter, insertSnapshotSignal, resolveSignalTable, SIGNALS_TABLE, SignalError } from '../src/reader/snapshot/signals.js';

const USAGE = 'usage: npm run snapshot -- --table schema.table [--where "SQL condition"]';

function args(): { table: string; where: string | null } {
  const { values } = parseArgs({ options: { table: { type: 'string' }, where: { type: 'string' } }, strict: true });
  if (values.table === undefined || values.table.trim() === '') throw new Error('--table is required: the captured table to re-read, as schema.table');
  if (values.where !== undefined && values.where.trim() === '') throw new Error('--where needs a condition, e.g. --where "id > 1000"');
  return { table: values.table.trim(), where: values.where ?? null };
}

let options: ReturnType<typeof args>;
try {
  options = args();
} catch (error) {
  process.stderr.write(`snapshot: ${describeError(error)}\n${USAGE}\n`);
  process.exit(2);
}

const config = loadConfig(process.env);
const secrets = secretsOf(config);
const client = await connectPgClient(config.pg, 'pg-cdc-snapshot').catch((error: unknown) => {
  process.stderr.write(`snapshot: cannot connect to PostgreSQL: ${redact(describeError(error), secrets)}\n`);
  process.exit(2);
});
try {
  const query = (sql: string, params: unknown[]) => client.query(sql, params);
  const signals = qualified(config.stateSchema, SIGNALS_TABLE);
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [signals]);
  if (exists.rows[0]?.t == null)
    throw new SignalError(`${signals} does not exist`, 'start the reader once with this CDC_STATE_SCHEMA: it creates the signal table and publishes it');
  const captured = qualified(config.stateSchema, 'captured_tables');
  const hasCaptured = (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [captured])).rows[0]?.t != null;
  const capturedOids = hasCaptured
    ? (
        await client.query<{ relid: number; schema_name: string; table_name: string }>(
          `SELECT relid::int AS relid, schema_name, table_name FROM ${captured} WHERE slot_name = $1`,
          [config.slotName],
        )
      ).rows
    : [];
  const cat = await resolveSignalTable(query, options.table, {
    members: await publicationMembers(client, config.publicationName),
    capturedOid: (schema, table) => capturedOids.find((r) => r.schema_name === schema && r.table_name === table)?.relid,
    stateSchema: config.stateSchema,
  });
  if (options.where !== null) await checkFilter(client, qualified(cat.schema, cat.table), options.where);
  const id = await insertSnapshotSignal(client, config.stateSchema, options.table, options.where);
  process.stdout.write(
    `snapshot: requested an incremental snapshot of ${options.table}${options.where === null ? '' : ` where ${options.where}`} (signal ${id} in ${signals}).\n` +
      `The reader logs "incremental snapshot progress" (rows, rows/s, ETA) and shows it in /metrics (incrementalSnapshots); a bad request is logged as "signal refused".\n`,
  );
} catch (error) {
  if (error instanceof SignalError) {
    process.stderr.write(`snapshot: refused: ${error.message}\nfix: ${error.fix}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`snapshot failed: ${redact(describeError(error), secrets)}\n`);
    process.exitCode = 2;
  }
} finally {
  await client.end().catch(() => undefined);
}
