/**
 * `npm run generate -- --rate N --duration S [--mix 70:25:5] [--workload orders|holding]`: changes on
 * the demo tables at a steady rate, for demos and load (src/shared/generator). Prints a summary at the
 * end or on Ctrl-C (exit 0); a bad flag or setting exits 2, a failure to start or failed batches exit 1.
 */
import { parseGenerateArgs, USAGE, UsageError } from '../src/shared/generator/args.js';
import { formatMix } from '../src/shared/generator/mix.js';
import { runGenerator, type GeneratorSummary } from '../src/shared/generator/generator.js';
import { ConfigError, describeError } from '../src/shared/core/errors.js';
import { createLogger } from '../src/shared/core/logger.js';

function line(text: string): void {
  process.stdout.write(`generate: ${text}\n`);
}

function summaryLine(s: GeneratorSummary): string {
  return (
    `${s.changes} changes (inserts ${s.inserts}, updates ${s.updates}, deletes ${s.deletes}, errors ${s.errors}, dropped ${s.dropped}) ` +
    `in ${(s.elapsedMs / 1000).toFixed(2)} s, ${s.rate.toFixed(1)} changes/s`
  );
}

let command;
try {
  command = parseGenerateArgs(process.argv.slice(2), process.env);
} catch (error) {
  // A bad flag or setting (exit 2: fix the command line or the environment); anything else is a bug (1).
  const bad = error instanceof UsageError || error instanceof ConfigError;
  process.stderr.write(`generate: ${bad ? error.message : describeError(error)}\n`);
  process.exit(bad ? 2 : 1);
}
if (command.help) {
  process.stdout.write(`${USAGE}\n`);
} else {
  const { options } = command;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const logger = createLogger({ write: (l) => void process.stderr.write(`${l}\n`), secrets: options.pg.password === undefined ? [] : [options.pg.password] });
  line(
    `${options.workload} → ${options.table} at ${options.rate} changes/s ` +
      `${options.durationSeconds === undefined ? 'until Ctrl-C' : `for ${options.durationSeconds} s`}` +
      `${options.workload === 'orders' ? `, mix ${formatMix(options.mix)}` : ''}`,
  );
  try {
    const summary = await runGenerator({ ...options, logger }, { signal: controller.signal }).done;
    line(summaryLine(summary));
    if (summary.errors > 0) process.exitCode = 1;
  } catch (error) {
    process.stderr.write(`generate failed: ${describeError(error)}\n`);
    process.exitCode = 1;
  }
}
