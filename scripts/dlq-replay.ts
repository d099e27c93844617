/**
 * `npm run dlq:replay -- --container C [--since T] [--reason R] [--dry-run]`: re-applies the dead
 * letters of Blob container C (on the sink dead-letter account, SINK_DEADLETTER_* /
 * AZURE_STORAGE_CONNECTION_STRING) through the sinks that refused them, with their original
 * positions and versions (src/shared/sinks/replay.ts), once their cause is fixed. `--since`: only those
 * stored at or after an ISO time; `--reason`: only those whose reason contains the text; `--dry-run`:
 * decode and prepare only, write and mark nothing. Prints each record's outcome; exit code 0 when
 * nothing still fails, 1 when some do (with why), 2 when the replay could not run.
 */
import { parseArgs } from 'node:util';
import { createLogger } from '../src/shared/core/logger.js';
import { describeError } from '../src/shared/core/errors.js';
import { deadLetterStoreFromEnv } from '../src/shared/deadletter/blobDeadLetterStore.js';
import { redact } from '../src/shared/core/redact.js';
import { replayDeadLetters } from '../src/shared/sinks/replay.js';
import { secretsOf } from '../src/shared/sinks/secrets.js';

const USAGE = 'usage: npm run dlq:replay -- --container C [--since 2024-01-01T00:00:00Z] [--reason TEXT] [--dry-run]';

function args(): { container: string; since?: Date; reason?: string; dryRun: boolean } {
  const { values } = parseArgs({
    options: { container: { type: 'string' }, since: { type: 'string' }, reason: { type: 'string' }, 'dry-run': { type: 'boolean' } },
    strict: true,
  });
  if (values.container === undefined || values.container === '') throw new Error('--container is required: the dead-letter Blob container to replay');
  const out: { container: string; since?: Date; reason?: string; dryRun: boolean } = { container: values.container, dryRun: values['dry-run'] === true };
  if (values.since !== undefined) {
    const at = Date.parse(values.since);
    if (Number.isNaN(at)) throw new Error(`--since expects an ISO time such as 2024-01-01T00:00:00Z, got ${JSON.stringify(values.since)}`);
    out.since = new Date(at);
  }
  if (values.reason !== undefined) out.reason = values.reason;
  return out;
}

let options: ReturnType<typeof args>;
try {
  options = args();
} catch (error) {
  process.stderr.write(`dlq:replay: ${describeError(error)}\n${USAGE}\n`);
  process.exit(2);
}

const secrets = secretsOf(process.env);
const write = (line: string) => process.stdout.write(`${redact(line, secrets)}\n`);
try {
  const env = process.env;
  const container = deadLetterStoreFromEnv({ ...env, SINK_DEADLETTER_CONTAINER: options.container }).container;
  // The sinks' own batch lines go to stderr as JSON, the replay's outcome to stdout.
  const logger = createLogger({ level: 'warn', secrets, write: (line: string) => process.stderr.write(`${line}\n`) });
  const result = await replayDeadLetters({
    container,
    ...(options.since ? { since: options.since } : {}),
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    dryRun: options.dryRun,
    sinkDeps: (definition) => definition.depsFromEnv(env, undefined, 'replay'),
    logger,
  });
  const verb = options.dryRun ? 'would replay' : 'replayed';
  write(
    `dlq:replay: ${options.container}: ${result.read} dead letters, ${result.alreadyReplayed} already replayed (skipped), ${result.filteredOut} left out by --since/--reason`,
  );
  for (const r of result.replayed)
    write(`${verb} ${r.blob} (${r.functionName} partition ${r.partitionId} offset ${r.offset}): ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`);
  for (const f of result.failed)
    write(
      `still fails ${f.blob} (${f.functionName} partition ${f.partitionId} offset ${f.offset}): ${f.status === 'retry' ? 'transient, try again later' : 'refused'}: ${f.reason}`,
    );
  for (const u of result.unreadable) write(`not a dead letter: ${u.blob}: ${u.problem}`);
  write(`dlq:replay: ${result.replayed.length} ${verb}, ${result.failed.length} still fail${options.dryRun ? ' (dry run: nothing written or marked)' : ''}`);
  process.exitCode = result.failed.length === 0 ? 0 : 1;
} catch (error) {
  process.stderr.write(`dlq:replay failed: ${redact(describeError(error), secrets)}\n`);
  process.exitCode = 2;
}
