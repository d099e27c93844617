/**
 * `npm run adx:setup [-- --dry-run]`: the truncates table (ADX_TRUNCATES_TABLE), then for every table
 * with an `adx` section in CDC_ROUTES the table (source columns + CDC columns), its JSON mapping, the
 * change-history table and mapping, the ingestion batching policy, the latest-state materialized view
 * (`autoUpdateSchema`; an existing view is upgraded / re-enabled first) and the `<Table>Current()`
 * function. Safe to run again. `--dry-run` prints the commands without connecting (only the routing
 * settings are needed).
 */
import { KustoControlClient, connectionFactory } from '../src/shared/adx/clients.js';
import { describeAdxConfig, loadAdxConfig, loadAdxSchemaConfig } from '../src/shared/adx/config.js';
import { runAdxSetup } from '../src/shared/adx/setup.js';
import { describeError } from '../src/shared/core/errors.js';
import { createLogger } from '../src/shared/core/logger.js';

const write = (line: string): void => void process.stdout.write(line);
const dryRun = process.argv.includes('--dry-run');
// Warnings (a deprecated setting) go to stderr, so a --dry-run's stdout stays a runnable script.
const logger = createLogger({ level: 'warn', write: (line) => void process.stderr.write(line + '\n') });

try {
  if (dryRun) {
    await runAdxSetup(loadAdxSchemaConfig(process.env, logger), null, write);
  } else {
    const config = loadAdxConfig(process.env, logger);
    write(`adx:setup: ${JSON.stringify(describeAdxConfig(config))}\n`);
    const control = new KustoControlClient(connectionFactory(config)(config.clusterUrl), config.database);
    try {
      const result = await runAdxSetup(config, control, write);
      write(`adx:setup: ${result.executed.length} commands ok\n`);
    } finally {
      control.close();
    }
  }
} catch (error) {
  process.stderr.write(`adx:setup failed: ${describeError(error)}\n`);
  process.exitCode = 1;
}
