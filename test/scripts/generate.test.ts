/** `npm run generate` (scripts/generate.ts) as a child process against the real PostgreSQL. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createTableSql } from '../../src/shared/generator/generator.js';
import { spawnEntryPoint, type ChildRun } from '../helpers/childProcess.js';
import { eventually, serviceEnv, uniqueName } from '../helpers/services.js';
import { addAudit, auditRows, countOps } from '../shared/generator/audit.js';

const { pg: pgEnv } = serviceEnv();
const pgVars = { PGHOST: pgEnv.host, PGPORT: String(pgEnv.port), PGUSER: pgEnv.user, PGDATABASE: pgEnv.database };
const client = new pg.Client({ host: pgEnv.host, port: pgEnv.port, user: pgEnv.user, database: pgEnv.database });
const schema = uniqueName('gen_cli');

function generate(args: string[], env: Record<string, string> = pgVars): ChildRun {
  return spawnEntryPoint('scripts/generate.ts', env, args);
}

function stderrOf(run: ChildRun): string {
  return run.lines
    .map((l) => l.stderr)
    .filter((s): s is string => typeof s === 'string')
    .join('');
}

function stdoutOf(run: ChildRun): string[] {
  return run.lines.filter((l) => typeof l.msg === 'string').map((l) => l.msg as string);
}

/** The numbers of the summary line. */
function summaryOf(run: ChildRun): { changes: number; inserts: number; updates: number; deletes: number; errors: number; dropped: number } {
  const line = stdoutOf(run).find((l) => l.includes(' changes (inserts '));
  const m = /^generate: (\d+) changes \(inserts (\d+), updates (\d+), deletes (\d+), errors (\d+), dropped (\d+)\) in [\d.]+ s, [\d.]+ changes\/s$/.exec(
    line ?? '',
  );
  if (m === null) throw new Error(`no summary line in ${JSON.stringify(run.lines)}`);
  const [changes, inserts, updates, deletes, errors, dropped] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return { changes, inserts, updates, deletes, errors, dropped };
}

beforeAll(async () => {
  await client.connect();
});

afterAll(async () => {
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

describe('npm run generate', () => {
  it.each([
    [['--rat', '200'], /^generate: unknown flag --rat: the flags are --rate, --duration, /],
    [['--rate', 'fast'], /^generate: --rate: expected a number of changes per second > 0, e.g. --rate 200; got "fast"/],
    [['--rate'], /^generate: --rate: missing its value, e.g. --rate 200/],
    [['--duration=-1'], /^generate: --duration: expected a number of seconds > 0, e.g. --duration 30; got "-1"/],
    [['--mix', '70:25'], /^generate: --mix: expected three non-negative integers inserts:updates:deletes with a sum > 0, e.g. 70:25:5, got "70:25"/],
    [['--workload', 'trades'], /^generate: --workload: expected one of orders, holding; got "trades"/],
    [['--workload', 'holding', '--mix', '70:25:5'], /^generate: --mix: expected no mix with --workload=holding /],
    [['--table', 'Orders'], /^generate: --table: expected schema.table in lower case/],
    [['200'], /^generate: unexpected argument "200": the flags are /],
  ])('%j exits 2 naming the flag', async (args, message) => {
    const run = generate(args);
    expect(await run.exited).toBe(2);
    expect(stderrOf(run)).toMatch(message);
    expect(stderrOf(run)).toMatch(/Run npm run generate -- --help for the flags\.\n$/);
  });

  it('exits 2 on a bad setting in the environment, naming the variable', async () => {
    const run = generate([], { ...pgVars, ORDERS_GENERATOR_MIX: '1:2' });
    expect(await run.exited).toBe(2);
    expect(stderrOf(run)).toMatch(/^generate: ORDERS_GENERATOR_MIX: expected three non-negative integers/);
  });

  it('--help prints the flags and exits 0', async () => {
    const run = generate(['--help']);
    expect(await run.exited).toBe(0);
    expect(stdoutOf(run).join('\n')).toMatch(/^Usage: npm run generate -- \[--rate N\] \[--duration S\] \[--mix I:U:D\] \[--workload orders\|holding\]/);
  });

  it('--rate 200 --duration 2 writes what its summary says', async () => {
    const table = `${schema}.orders_info`;
    await client.query(createTableSql('orders', table));
    await addAudit(client, table);
    const run = generate(['--rate', '200', '--duration', '2', '--mix', '70:25:5', '--table', table, '--seed', '4']);
    expect(await run.exited).toBe(0);
    expect(stdoutOf(run)[0]).toBe(`generate: orders → ${table} at 200 changes/s for 2 s, mix 70:25:5`);
    const summary = summaryOf(run);
    expect(summary.errors).toBe(0);
    expect(summary.changes + summary.dropped).toBe(400);
    const audit = countOps(await auditRows(client, table));
    expect(audit).toEqual({ inserts: summary.inserts, updates: summary.updates, deletes: summary.deletes });
    expect(audit.updates).toBeGreaterThan(0);
    expect(audit.deletes).toBeGreaterThan(0);
  });

  it('stops on SIGINT with the summary and exit 0 (holding workload, table created with --create-table)', async () => {
    const table = `${schema}.holding`;
    const run = generate(['--workload', 'holding', '--rate', '300', '--table', table, '--create-table'], { ...pgVars, ORDERS_GENERATOR_MIX: '70:25:5' });
    await eventually('rows in the table', async () => {
      const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`).catch(() => ({ rows: [] as { n: number }[] }));
      return (rows[0]?.n ?? 0) > 0 ? true : undefined;
    });
    run.proc.kill('SIGINT');
    expect(await run.exited).toBe(0);
    expect(stdoutOf(run)[0]).toBe(`generate: holding → ${table} at 300 changes/s until Ctrl-C`);
    const summary = summaryOf(run);
    expect(summary.errors).toBe(0);
    const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    expect(rows[0]?.n).toBe(summary.inserts - summary.deletes);
  });
});
