/**
 * `npm start` settings: command-line flags over environment variables, validated once; a bad value
 * stops the launcher naming the flag or variable and what it expects (exit code 2).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { getInt, getOptionalString, type Env } from '../shared/core/env.js';
import { ConfigError } from '../shared/core/errors.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface StartConfig {
  /** The one folder of everything `npm start` keeps: the services' data, the children's logs, the pid list. */
  stateDir: string;
  /** Remove `stateDir` first (`--fresh`). */
  fresh: boolean;
  /** Orders inserted per second; 0 = no generator. */
  ordersPerSec: number;
  statusIntervalMs: number;
  /** Port of the status page and JSON (`/`, `/status`); 0 = any free port. */
  statusPort: number;
  help: boolean;
}

export const USAGE = `usage: npm start [-- --fresh] [-- --rate N]
  --fresh     start clean: remove the state folder (START_STATE_DIR, default .pg-cdc) first
  --rate N    changes per second from the generator (START_ORDERS_PER_SEC, default 5; 0 = none);
              the mix and workload are the generator's settings (ORDERS_GENERATOR_MIX, default 70:25:5)
  --help      this text
Everything else is set by environment variables (README "Configuration", npm start).`;

const MAX_RATE = 10_000;
/** A fixed default, so the page's address stays the same between runs; a taken port falls back to a free one. */
export const DEFAULT_STATUS_PORT = 8790;

export function loadStartConfig(argv: string[], env: Env = process.env): StartConfig {
  let values: { fresh?: boolean; rate?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { fresh: { type: 'boolean' }, rate: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError('npm start flags', '--fresh, --rate N or --help', argv.join(' '), { cause: err });
  }
  const ordersPerSec =
    values.rate === undefined
      ? getInt(env, 'START_ORDERS_PER_SEC', 5, { min: 0, max: MAX_RATE })
      : getInt({ '--rate': values.rate }, '--rate', 5, { min: 0, max: MAX_RATE });
  return {
    stateDir: path.resolve(repoRoot, getOptionalString(env, 'START_STATE_DIR') ?? '.pg-cdc'),
    fresh: values.fresh === true,
    ordersPerSec,
    statusIntervalMs: getInt(env, 'START_STATUS_INTERVAL_MS', 5_000, { min: 200, max: 600_000 }),
    statusPort: getInt(env, 'START_STATUS_PORT', DEFAULT_STATUS_PORT, { min: 0, max: 65_535 }),
    help: values.help === true,
  };
}
