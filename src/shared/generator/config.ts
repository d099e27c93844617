/**
 * The generator's settings from the environment, shared by the timer function and `npm run generate`
 * (whose flags override them). Where to connect: `ORDERS_PG_CONNECTION_STRING` (a postgres:// URL),
 * else PGHOST, PGSSLMODE, ... exactly as the reader (src/shared/core/postgres.ts).
 */
import { getBool, getInt, getOneOf, getOptionalString, getString, type Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';
import { pgEnvFromUrl, pgSettingsFromEnv, type PgSettings } from '../core/postgres.js';
import { DEFAULT_MIX, parseMix, type Mix } from './mix.js';
import { TABLE_NAME, WORKLOADS, type WorkloadName } from './workload.js';

export interface GeneratorConfig {
  /** The timer's switch (`ORDERS_GENERATOR_ENABLED`); the command line ignores it. */
  enabled: boolean;
  /** Changes per timer run. */
  perRun: number;
  workload: WorkloadName;
  /** Target table, `schema.table`, of the chosen workload. */
  table: string;
  /** Inserts:updates:deletes of the orders workload; the holding workload follows its script instead. */
  mix: Mix;
  pg: PgSettings;
}

export function tableSetting(value: string, variable: string): string {
  if (!TABLE_NAME.test(value)) throw new ConfigError(variable, 'schema.table in lower case (letters, digits, _)', value);
  return value;
}

/** The holding workload has no mix: refuse one rather than ignore it. */
export function mixOf(workload: WorkloadName, mixText: string | undefined, variable: string, workloadVariable: string): Mix {
  if (mixText === undefined) return DEFAULT_MIX;
  if (workload === 'holding') {
    throw new ConfigError(
      variable,
      `no mix with ${workloadVariable}=holding (that workload follows the source script: buy, change quantity, sell, buy, change quantity, change stock); unset it`,
      mixText,
    );
  }
  return parseMix(mixText, variable);
}

export function generatorConfigFromEnv(env: Env): GeneratorConfig {
  const workload = getOneOf(env, 'ORDERS_GENERATOR_WORKLOAD', WORKLOADS, 'orders');
  const table =
    workload === 'orders'
      ? tableSetting(getString(env, 'ORDERS_TABLE', 'retail.orders_info'), 'ORDERS_TABLE')
      : tableSetting(getString(env, 'ORDERS_HOLDING_TABLE', 'bank.holding'), 'ORDERS_HOLDING_TABLE');
  const connectionString = getOptionalString(env, 'ORDERS_PG_CONNECTION_STRING');
  return {
    enabled: getBool(env, 'ORDERS_GENERATOR_ENABLED', false),
    perRun: getInt(env, 'ORDERS_PER_RUN', 10, { min: 1, max: 10_000 }),
    workload,
    table,
    mix: mixOf(workload, getOptionalString(env, 'ORDERS_GENERATOR_MIX'), 'ORDERS_GENERATOR_MIX', 'ORDERS_GENERATOR_WORKLOAD'),
    pg: pgSettingsFromEnv(connectionString === undefined ? env : pgEnvFromUrl(connectionString, 'ORDERS_PG_CONNECTION_STRING')),
  };
}
