/**
 * `npm run verify [-- --max N]`: compares a running pipeline's sinks (Elasticsearch `-live` indices,
 * the change history, ADX `<Table>Current()`) with its source tables and prints each difference
 * (the first N per table and store, 20 by default, with totals), and the dead letters by sink and
 * reason. Exit code 0: no differences; 1: differences; 2: the check could not run. Reads the
 * pipeline's own settings (PG*, CDC_PUBLICATION, CDC_ROUTES, ELASTICSEARCH_*, HISTORY_INDEX, ADX_*,
 * SINK_DEADLETTER_*); docs/verify.md says what is and is not verified.
 */
import { parseArgs } from 'node:util';
import { describeError } from '../src/shared/core/errors.js';
import { redact } from '../src/shared/core/redact.js';
import { secretsOf } from '../src/shared/sinks/secrets.js';
import { verifyDepsFromEnv, verifyPipeline } from '../src/shared/verify/verify.js';

let max = 20;
try {
  const { values } = parseArgs({ options: { max: { type: 'string' } }, strict: true });
  if (values.max !== undefined) {
    max = Number(values.max);
    if (!Number.isSafeInteger(max) || max < 0) throw new Error(`--max expects a whole number of differences to show per table, got ${values.max}`);
  }
} catch (error) {
  process.stderr.write(`verify: ${describeError(error)}\nusage: npm run verify [-- --max N]\n`);
  process.exit(2);
}

const secrets = secretsOf(process.env);
const notes: string[] = [];
try {
  const deps = await verifyDepsFromEnv(process.env, notes);
  try {
    for (const note of notes) process.stdout.write(`verify: ${redact(note, secrets)}\n`);
    const report = await verifyPipeline({ ...deps, maxShown: max });
    process.stdout.write(`${report.format()}\n`);
    process.exitCode = report.differences === 0 ? 0 : 1;
  } finally {
    await deps.close();
  }
} catch (error) {
  process.stderr.write(`verify failed: ${redact(describeError(error), secrets)}\n`);
  process.exitCode = 2;
}
