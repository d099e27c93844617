/**
 * The flags of `npm run generate` (scripts/generate.ts), over the generator's environment settings
 * (config.ts). A bad flag is a `UsageError` naming the flag and the fix; the script exits 2 on it.
 */
import type { Env } from '../core/env.js';
import { CdcError } from '../core/errors.js';
import { generatorConfigFromEnv, mixOf, tableSetting } from './config.js';
import type { RunOptions } from './generator.js';
import { WORKLOADS, type WorkloadName } from './workload.js';

export const USAGE = `Usage: npm run generate -- [--rate N] [--duration S] [--mix I:U:D] [--workload orders|holding] [--table schema.table] [--seed N] [--create-table]

  --rate N          changes per second, > 0 (default 10)
  --duration S      seconds to run, > 0 (default: until Ctrl-C)
  --mix I:U:D       inserts:updates:deletes of the orders workload (default ORDERS_GENERATOR_MIX, else 70:25:5)
  --workload W      orders (retail.orders_info) or holding (bank.holding, the change-history script) (default ORDERS_GENERATOR_WORKLOAD, else orders)
  --table T         target table (default ORDERS_TABLE or ORDERS_HOLDING_TABLE)
  --seed N          seed of the random values, for a repeatable run
  --create-table    create the table when missing, as deploy/local/postgres-init/001-demo-schema.sql declares it
  --help            this text

PostgreSQL: ORDERS_PG_CONNECTION_STRING, else PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT.`;

/** A bad command-line flag. */
export class UsageError extends CdcError {
  readonly flag: string;
  constructor(flag: string, message: string) {
    super('USAGE', `${message}\nRun npm run generate -- --help for the flags.`, { canRetry: false });
    this.flag = flag;
  }
}

const VALUED = ['--rate', '--duration', '--mix', '--workload', '--table', '--seed'] as const;
const SWITCHES = ['--create-table', '--help'] as const;
type Valued = (typeof VALUED)[number];

function positiveNumber(flag: string, text: string, what: string, example: string): number {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(value > 0) || !Number.isFinite(value))
    throw new UsageError(flag, `${flag}: expected ${what} > 0, e.g. ${flag} ${example}; got ${JSON.stringify(text)}`);
  return value;
}

export type GenerateCommand = { help: true } | { help: false; options: RunOptions };

export function parseGenerateArgs(argv: readonly string[], env: Env): GenerateCommand {
  const values: Partial<Record<Valued, string>> = {};
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if ((VALUED as readonly string[]).includes(flag)) {
      const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '' || (value.startsWith('--') && flag === arg))
        throw new UsageError(flag, `${flag}: missing its value, e.g. ${flag} ${example(flag)}`);
      if (values[flag as Valued] !== undefined) throw new UsageError(flag, `${flag}: given twice; give it once`);
      values[flag as Valued] = value;
    } else if ((SWITCHES as readonly string[]).includes(arg)) {
      switches.add(arg);
    } else {
      const what = arg.startsWith('-') ? `unknown flag ${flag}` : `unexpected argument ${JSON.stringify(arg)}`;
      throw new UsageError(flag, `${what}: the flags are ${[...VALUED, ...SWITCHES].join(', ')}`);
    }
  }
  if (switches.has('--help')) return { help: true };

  const rate = values['--rate'] === undefined ? 10 : positiveNumber('--rate', values['--rate'], 'a number of changes per second', '200');
  if (rate > 100_000) throw new UsageError('--rate', `--rate: expected at most 100000 changes per second, got ${values['--rate']}`);
  const durationSeconds = values['--duration'] === undefined ? undefined : positiveNumber('--duration', values['--duration'], 'a number of seconds', '30');
  let seed: number | undefined;
  if (values['--seed'] !== undefined) {
    seed = /^\d+$/.test(values['--seed']) ? Number(values['--seed']) : NaN;
    if (!Number.isSafeInteger(seed) || seed > 0xffffffff)
      throw new UsageError('--seed', `--seed: expected an integer 0..4294967295, e.g. --seed 42; got ${JSON.stringify(values['--seed'])}`);
  }
  let workload: WorkloadName | undefined;
  if (values['--workload'] !== undefined) {
    workload = WORKLOADS.find((w) => w === values['--workload']?.toLowerCase());
    if (workload === undefined)
      throw new UsageError('--workload', `--workload: expected one of ${WORKLOADS.join(', ')}; got ${JSON.stringify(values['--workload'])}`);
  }

  // The environment's settings, with the workload the flag chose (ORDERS_GENERATOR_MIX is the timer's
  // orders mix: it does not follow a --workload holding given here).
  const overlay: Record<string, string | undefined> = { ...env };
  if (workload !== undefined) {
    overlay.ORDERS_GENERATOR_WORKLOAD = workload;
    if (workload === 'holding') delete overlay.ORDERS_GENERATOR_MIX;
  }
  const config = generatorConfigFromEnv(overlay);
  const table = values['--table'] === undefined ? config.table : asFlag('--table', () => tableSetting(values['--table'] ?? '', '--table'));
  const mix = values['--mix'] === undefined ? config.mix : asFlag('--mix', () => mixOf(config.workload, values['--mix'], '--mix', '--workload'));
  return {
    help: false,
    options: { workload: config.workload, table, mix, pg: config.pg, rate, durationSeconds, seed, createTable: switches.has('--create-table') },
  };
}

/** A ConfigError about a flag as a UsageError (exit 2). */
function asFlag<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(flag, error instanceof Error ? error.message : String(error));
  }
}

function example(flag: string): string {
  return { '--rate': '200', '--duration': '30', '--mix': '70:25:5', '--workload': 'holding', '--table': 'retail.orders_info', '--seed': '42' }[flag] ?? '';
}
