/**
 * `npm run status`: the pipeline's status in the terminal (README "Status"), from the same settings
 * the components read (the environment, and `.services.env` through `--env-file-if-exists`).
 * `--json` prints the JSON model instead; `--line` the one-line summary. Exit code 0 when every
 * configured source answered, 1 when one failed, 2 on a bad setting.
 */
import { ConfigError, describeError } from '../src/shared/core/errors.js';
import { collectStatus, statusSettingsFromEnv, statusSourcesFromEnv } from '../src/shared/status/collect.js';
import { statusLine, statusText } from '../src/shared/status/summary.js';
import { isPartError, type Part } from '../src/shared/status/types.js';

const args = new Set(process.argv.slice(2));
try {
  const settings = statusSettingsFromEnv(process.env);
  const sources = statusSourcesFromEnv(process.env);
  try {
    const status = await collectStatus(sources, { timeoutMs: settings.timeoutMs });
    process.stdout.write(args.has('--json') ? `${JSON.stringify(status, null, 2)}\n` : args.has('--line') ? `${statusLine(status)}\n` : statusText(status));
    const parts: Part<unknown>[] = [status.postgres, status.reader, status.hub, status.elasticsearch, status.deadLetters];
    if (parts.some((p) => isPartError(p) && p.configured !== false)) process.exitCode = 1;
  } finally {
    await sources.close();
  }
} catch (error) {
  process.stderr.write(`status: ${describeError(error)}\n`);
  process.exitCode = error instanceof ConfigError ? 2 : 1;
}
