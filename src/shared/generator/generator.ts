/**
 * The change generator: the orders or holding workload driven at a rate (`runGenerator`: the command
 * line `npm run generate` and in-process callers) or once (`generateOnce`: the timer function).
 *
 * Pacing follows the wall clock, not a sleep per change: by time t since the start, rate × t changes
 * are due; each wake-up sends what is due in one transaction (at most MAX_BATCH changes), then sleeps
 * until the next change is due, but at least TICK_MS — so a few thousand changes/s go as ~50
 * transactions/s of tens of changes each, and a slow batch is caught up by the next instead of
 * drifting. When PostgreSQL falls more than a second behind, the older backlog is dropped (`dropped`)
 * rather than sent as one burst.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { CdcError, ConfigError, describeError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { connectPgClient, type PgSettings } from '../core/postgres.js';
import type { GeneratorConfig } from './config.js';
import { HoldingWorkload, createHoldingTableSql } from './holding.js';
import type { Mix } from './mix.js';
import { OrdersWorkload, createOrdersTableSql } from './orders.js';
import { seededRandom, type Random } from './random.js';
import type { ChangeCounts, Workload, WorkloadName } from './workload.js';

/** Most changes in one transaction. */
export const MAX_BATCH = 500;
/** Shortest sleep between batches: above a few dozen changes/s, changes are grouped per tick. */
export const TICK_MS = 20;
/** After a failed batch, wait this long before the next attempt (reconnecting). */
const RETRY_DELAY_MS = 1000;

export interface GeneratorTarget {
  workload: WorkloadName;
  table: string;
  mix: Mix;
  pg: PgSettings;
}

export interface GeneratorCounters extends ChangeCounts {
  /** Changes of failed (rolled-back) batches. */
  errors: number;
  /** Changes never sent because PostgreSQL was more than a second behind the schedule. */
  dropped: number;
}

export interface GeneratorSummary extends GeneratorCounters {
  /** Rows changed: inserts + updates + deletes. */
  changes: number;
  elapsedMs: number;
  /** Achieved changes per second. */
  rate: number;
}

export interface RunOptions extends GeneratorTarget {
  /** Changes per second, > 0. */
  rate: number;
  /** Stop after rate × durationSeconds changes; unset: until the signal fires. */
  durationSeconds?: number;
  /** Seed of the random values (repeatable runs); unset: Math.random. */
  seed?: number;
  /** Create the table (and schema) when missing, as the demo schema declares it. */
  createTable?: boolean;
  logger?: Logger;
}

export interface GeneratorRun {
  /** Live counters, updated after every batch (read them for a status line). */
  readonly counters: Readonly<GeneratorCounters>;
  /** The counters so far with elapsed time and achieved rate. */
  summary(): GeneratorSummary;
  /** Settles when the run ends (duration reached or signal fired); rejects when it cannot start. */
  readonly done: Promise<GeneratorSummary>;
}

export function createWorkload(target: Pick<GeneratorTarget, 'workload' | 'table' | 'mix'>, random: Random = Math.random): Workload {
  return target.workload === 'orders' ? new OrdersWorkload(target.table, target.mix, random) : new HoldingWorkload(target.table, random);
}

export function createTableSql(workload: WorkloadName, table: string): string {
  return workload === 'orders' ? createOrdersTableSql(table) : createHoldingTableSql(table);
}

/** Connects with the project's one PostgreSQL setting (libpq's PGSSLMODE, src/shared/core/postgres.ts). */
function connect(settings: PgSettings): Promise<pg.Client> {
  // A connection lost between batches would otherwise be an unhandled 'error' event; the next
  // query then fails, and the run counts it and reconnects.
  return connectPgClient(settings, 'pg-cdc-generator', { onError: () => undefined });
}

/** Fails naming the table and how to create it, rather than on the first INSERT. */
async function checkTable(client: pg.ClientBase, target: GeneratorTarget, create: boolean): Promise<void> {
  if (create) await client.query(createTableSql(target.workload, target.table));
  const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [target.table]);
  if (rows[0]?.present !== true) {
    throw new CdcError(
      'TABLE_MISSING',
      `table ${target.table} does not exist in PGDATABASE=${target.pg.database} at PGHOST=${target.pg.host}. ` +
        'Fix: create it with deploy/local/postgres-init/001-demo-schema.sql (docker compose loads it), or run npm run generate -- --create-table.',
      { canRetry: false },
    );
  }
}

function zero(): GeneratorCounters {
  return { inserts: 0, updates: 0, deletes: 0, errors: 0, dropped: 0 };
}

function add(counters: GeneratorCounters, counts: ChangeCounts): void {
  counters.inserts += counts.inserts;
  counters.updates += counts.updates;
  counters.deletes += counts.deletes;
}

function summarise(counters: GeneratorCounters, elapsedMs: number): GeneratorSummary {
  const changes = counters.inserts + counters.updates + counters.deletes;
  return { ...counters, changes, elapsedMs, rate: elapsedMs > 0 ? (changes * 1000) / elapsedMs : 0 };
}

/**
 * One timer run: connect, make `n` changes of the configured workload (in transactions of at most
 * MAX_BATCH), disconnect. A failure fails the run (the host logs it; the next run starts afresh).
 */
export async function generateOnce(config: GeneratorConfig, n: number = config.perRun, random: Random = Math.random): Promise<GeneratorSummary> {
  const started = performance.now();
  const client = await connect(config.pg);
  try {
    await checkTable(client, config, false);
    const workload = createWorkload(config, random);
    const counters = zero();
    for (let left = n; left > 0; left -= MAX_BATCH) add(counters, await workload.runBatch(client, Math.min(left, MAX_BATCH)));
    return summarise(counters, performance.now() - started);
  } finally {
    await client.end();
  }
}

function validate(options: RunOptions): void {
  if (!Number.isFinite(options.rate) || options.rate <= 0) throw new ConfigError('rate', 'a number of changes per second > 0', String(options.rate));
  const d = options.durationSeconds;
  if (d !== undefined && (!Number.isFinite(d) || d <= 0)) throw new ConfigError('durationSeconds', 'a number of seconds > 0, or unset', String(d));
}

/**
 * Drives the workload at `rate` changes/s for `durationSeconds` (or until `signal` fires). Returns at
 * once; `counters` move as batches commit, `done` gives the summary. A failed batch is counted in
 * `errors`, logged, and followed by a reconnect; the run goes on.
 */
export function runGenerator(options: RunOptions, { signal }: { signal?: AbortSignal } = {}): GeneratorRun {
  validate(options);
  const logger = options.logger ?? silentLogger;
  const counters = zero();
  let started = performance.now();
  let ended: number | undefined;
  const summary = () => summarise(counters, (ended ?? performance.now()) - started);

  const run = async (): Promise<GeneratorSummary> => {
    const random = options.seed === undefined ? Math.random : seededRandom(options.seed);
    const workload = createWorkload(options, random);
    let client: pg.Client | undefined = await connect(options.pg);
    try {
      await checkTable(client, options, options.createTable === true);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    const rate = options.rate;
    const total = options.durationSeconds === undefined ? Infinity : Math.round(rate * options.durationSeconds);
    const backlog = Math.max(1, Math.ceil(rate)); // one second of changes
    let planned = 0; // changes sent or dropped
    started = performance.now();
    try {
      while (!signal?.aborted && planned < total) {
        const elapsed = performance.now() - started;
        const due = Math.min(total, Math.floor((rate * elapsed) / 1000));
        if (due - planned > backlog) {
          counters.dropped += due - planned - backlog;
          planned = due - backlog;
        }
        if (due > planned) {
          const n = Math.min(due - planned, MAX_BATCH);
          planned += n;
          try {
            client ??= await connect(options.pg);
            add(counters, await workload.runBatch(client, n));
          } catch (error) {
            counters.errors += n;
            workload.reset();
            logger.warn('generator: batch failed, reconnecting', { table: options.table, changes: n, error: describeError(error) });
            await client?.end().catch(() => undefined);
            client = undefined;
            await sleep(RETRY_DELAY_MS, undefined, { signal }).catch(() => undefined);
          }
          continue;
        }
        const nextDue = ((planned + 1) * 1000) / rate - elapsed;
        await sleep(Math.max(nextDue, TICK_MS), undefined, { signal }).catch(() => undefined);
      }
    } finally {
      ended = performance.now();
      await client?.end().catch(() => undefined);
    }
    return summary();
  };
  return { counters, summary, done: run() };
}
