/**
 * `npm run bench:adx`: CPU time per event on the ADX path, without the network: parse the body (the
 * JSON string an event arrives as), unwrap it into the table row and the change-history rows,
 * serialise JSON lines (as the sink does: `toJsonLines`, `toHistoryJsonLines`), gzip (`gzipJsonLines`,
 * what queued ingestion uploads). Measured with `process.cpuUsage` (user +
 * system) over batches of BENCH_BATCH events (500, host.json maxEventBatchSize); best of BENCH_ROUNDS.
 * Standalone it writes bench/results/adx.json and the `adx*` keys of bench/results/sinks.json;
 * `bench:sinks` can call `measureAdxUsPerEvent()` instead.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { adxRoutes } from '../src/shared/adx/config.js';
import { gzipJsonLines } from '../src/shared/adx/clients.js';
import { toHistoryJsonLines, toHistoryRows, toJsonLines, toTableRow } from '../src/shared/adx/rows.js';
import { DEFAULT_ROUTES, Router } from '../src/shared/routing/routes.js';
import type { ChangeEvent } from '../src/shared/events/changeEvent.js';

export interface AdxBenchResult {
  /** CPU µs per event, all stages. */
  usPerEvent: number;
  /** CPU µs per event per stage. */
  stages: { parse: number; unwrap: number; serialise: number; compress: number };
  events: number;
  batch: number;
  rounds: number;
  /** Compressed bytes per event uploaded (table + history blobs). */
  gzipBytesPerEvent: number;
}

const CITIES = ['Austin', 'Chicago', 'New York', 'Seattle', 'Denver', 'Cleveland'];

/** Orders change events as the reader emits them: 70% inserts, 25% updates (with before image), 5% deletes. */
function bodies(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    const after = {
      orderid: String(i + 1),
      custid: String((i * 7) % 1000),
      city: CITIES[i % CITIES.length]!,
      amount: (i * 13) % 500,
      purchase_time: '2020-10-09 07:23:10',
    };
    const kind = i % 20;
    const op = kind < 14 ? 'c' : kind < 19 ? 'u' : 'd';
    const event: ChangeEvent = {
      before: op === 'c' ? null : op === 'u' ? { ...after, amount: after.amount + 1 } : { orderid: after.orderid },
      after: op === 'd' ? null : after,
      source: {
        version: 'bench',
        connector: 'postgresql',
        name: 'bench',
        ts_ms: 1_700_000_000_000 + i,
        snapshot: 'false',
        db: 'postgres',
        schema: 'retail',
        table: 'orders_info',
        txId: 1000 + i,
        lsn: 34_000_000 + i * 64,
        sequence: null,
        commit_lsn: 34_000_000 + i * 64 + 8,
      },
      op,
      ts_ms: 1_700_000_000_000 + i,
      key: { orderid: after.orderid },
      transaction: null,
    };
    return JSON.stringify(event);
  });
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

export function measureAdxUsPerEvent(options: { events?: number; batch?: number; rounds?: number } = {}): AdxBenchResult {
  const events = options.events ?? Number(process.env.BENCH_ADX_EVENTS ?? 100_000);
  const batch = options.batch ?? Number(process.env.BENCH_BATCH ?? 500);
  const rounds = options.rounds ?? Number(process.env.BENCH_ROUNDS ?? 3);
  const route = adxRoutes(new Router(DEFAULT_ROUTES))[0]!;
  const input = bodies(events);
  let best: AdxBenchResult | undefined;
  for (let round = 0; round < rounds; round++) {
    const spent = { parse: 0, unwrap: 0, serialise: 0, compress: 0 };
    let gzipBytes = 0;
    for (let offset = 0; offset < input.length; offset += batch) {
      const chunk = input.slice(offset, offset + batch);
      let t = cpuMicros();
      const parsed = chunk.map((b) => JSON.parse(b) as ChangeEvent);
      let now = cpuMicros();
      spent.parse += now - t;
      t = now;
      const rows = [];
      const history = [];
      for (const e of parsed) {
        const row = toTableRow(e, route);
        if (row !== null) rows.push(row);
        history.push(...toHistoryRows(e, route));
      }
      now = cpuMicros();
      spent.unwrap += now - t;
      t = now;
      const lines = [toJsonLines(rows), toHistoryJsonLines(history)];
      now = cpuMicros();
      spent.serialise += now - t;
      t = now;
      for (const l of lines) gzipBytes += gzipJsonLines(l).length;
      now = cpuMicros();
      spent.compress += now - t;
    }
    const per = (us: number) => Math.round((us / events) * 100) / 100;
    const result: AdxBenchResult = {
      usPerEvent: per(spent.parse + spent.unwrap + spent.serialise + spent.compress),
      stages: { parse: per(spent.parse), unwrap: per(spent.unwrap), serialise: per(spent.serialise), compress: per(spent.compress) },
      events,
      batch,
      rounds,
      gzipBytesPerEvent: Math.round((gzipBytes / events) * 10) / 10,
    };
    if (best === undefined || result.usPerEvent < best.usPerEvent) best = result;
  }
  return best!;
}

function writeResults(result: AdxBenchResult): void {
  mkdirSync('bench/results', { recursive: true });
  const measured = { measuredAt: new Date().toISOString(), node: process.version, ...result };
  writeFileSync('bench/results/adx.json', JSON.stringify(measured, null, 2) + '\n');
  // bench:sinks keeps the other keys of sinks.json; these are the ADX ones.
  const sinksFile = 'bench/results/sinks.json';
  const sinks = existsSync(sinksFile) ? (JSON.parse(readFileSync(sinksFile, 'utf8')) as Record<string, unknown>) : {};
  writeFileSync(
    sinksFile,
    JSON.stringify({ ...sinks, adxCpuUsPerEvent: result.usPerEvent, adxCpuStagesUsPerEvent: result.stages, adxMeasuredAt: measured.measuredAt }, null, 2) +
      '\n',
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = measureAdxUsPerEvent();
  writeResults(result);
  process.stdout.write(
    `bench:adx: ${result.usPerEvent} µs CPU per event (parse ${result.stages.parse}, unwrap ${result.stages.unwrap}, serialise ${result.stages.serialise}, gzip ${result.stages.compress}); ${result.gzipBytesPerEvent} gzip bytes/event; ${result.events} events, batches of ${result.batch}, best of ${result.rounds}\n`,
  );
}
