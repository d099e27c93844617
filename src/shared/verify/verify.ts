/**
 * The checker (`npm run verify`): a running pipeline's sinks against its source tables. Each captured
 * table is read once, in chunks (sourceTable.ts), and every chunk goes to the check of each store the
 * table is routed to: Elasticsearch latest state (elasticsearch.ts), the change history (history.ts),
 * ADX (adx.ts). Every difference is counted and the first few of each table and store are kept
 * (report.ts); the dead-letter containers are summarised per sink and reason. Host-independent: the
 * CLI (scripts/verify.ts) builds the dependencies from the environment (`verifyDepsFromEnv`), the
 * tests build them from the test services.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Client } from '@elastic/elasticsearch';
import type pg from 'pg';
import type { AdxTableRoute } from '../adx/types.js';
import { CdcError, describeError } from '../core/errors.js';
import { getInt, getOptionalString, getString, type Env } from '../core/env.js';
import { connectPgClient, pgSettingsFromEnv } from '../core/postgres.js';
import { readDeadLetters, REPLAYED_AT } from '../deadletter/readDeadLetters.js';
import { deadLetterStoreFromEnv } from '../deadletter/blobDeadLetterStore.js';
import { elasticsearchClientFromEnv } from '../elasticsearch/client.js';
import { elasticsearchSinkFromEnv, type ElasticsearchSink } from '../elasticsearch/elasticsearchSink.js';
import type { ChangeEvent, RowImage } from '../events/changeEvent.js';
import { SESSION_OPTIONS, textTypes } from '../events/pgTables.js';
import { TypeRegistry } from '../events/typeRegistry.js';
import { DEFAULT_HISTORY_INDEX } from '../history/historyIndex.js';
import { declaredColumns, routerFromEnv, type Router, type TableRoute } from '../routing/routes.js';
import { loadAdxConfig } from '../adx/config.js';
import { createClients } from '../adx/clients.js';
import { AdxTableCheck, KustoCurrentRows, type AdxRowsSource } from './adx.js';
import { ElasticsearchTableCheck } from './elasticsearch.js';
import { HistoryTableCheck } from './history.js';
import { VerifyReport, type DeadLetterSummary } from './report.js';
import { describeSourceTable, readSourceTable, rowKey, type SourceTable } from './sourceTable.js';

export interface VerifyDeps {
  /** A session opened with `SESSION_OPTIONS` and `textTypes` (values as PostgreSQL text). */
  pg: pg.Client;
  router: Router;
  /** The tables to check; default: those of `publication`, else the catalogue's entries. */
  tables?: readonly { schema: string; table: string }[];
  /** The reader's publication (`CDC_PUBLICATION`): its tables are what is captured. */
  publication?: string;
  /** The reader's state schema (`CDC_STATE_SCHEMA`): its tables (the signal table is in the publication) are never captured. */
  stateSchema?: string;
  elasticsearch?: { client: Client; sink: ElasticsearchSink };
  history?: { client: Client; index: string };
  adx?: { source: AdxRowsSource; routes: readonly AdxTableRoute[] };
  deadLetters?: readonly ContainerClient[];
  /** Rows per chunk (default 500). */
  chunkRows?: number;
  /** Differences shown per table and store (default 20; all are counted). */
  maxShown?: number;
}

/** The tables of the publication, or (without one) the catalogue's explicit entries. */
export async function capturedTables(
  client: pg.Client,
  router: Router,
  publication: string | undefined,
  stateSchema = 'cdc_reader',
): Promise<{ schema: string; table: string }[]> {
  if (publication !== undefined) {
    const exists = await client.query('SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1', [publication]);
    if (exists.rows.length > 0) {
      const { rows } = await client.query<{ schema: string; table: string }>(
        'SELECT schemaname::text AS schema, tablename::text AS table FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname <> $2 ORDER BY 1, 2',
        [publication, stateSchema],
      );
      return rows;
    }
  }
  return router.tables().map(([name]) => {
    const dot = name.indexOf('.');
    return { schema: name.slice(0, dot), table: name.slice(dot + 1) };
  });
}

/** What a snapshot read of the row would carry: the event every sink's `prepare` renders. */
export function snapshotEventOf(table: SourceTable, row: RowImage, types: Record<string, string>): ChangeEvent {
  return {
    op: 'r',
    before: null,
    after: row,
    key: rowKey(table, row),
    ts_ms: 0,
    source: {
      version: 'verify',
      connector: 'postgresql',
      name: 'verify',
      ts_ms: 0,
      snapshot: 'true',
      db: '',
      schema: table.schema,
      table: table.table,
      txId: null,
      lsn: 0,
      sequence: null,
      types,
    },
  };
}

interface Check {
  chunk(events: readonly ChangeEvent[]): Promise<void> | void;
  finish(): Promise<void> | void;
}

export async function verifyPipeline(deps: VerifyDeps): Promise<VerifyReport> {
  const report = new VerifyReport(deps.maxShown ?? 20);
  const types = new TypeRegistry((sql, params) => deps.pg.query(sql, params));
  const tables = deps.tables ?? (await capturedTables(deps.pg, deps.router, deps.publication, deps.stateSchema));
  for (const { schema, table } of tables) {
    const name = `${schema}.${table}`;
    const source = await describeSourceTable(deps.pg, schema, table);
    if (source === undefined) {
      report.add(report.store(name, 'source', 'PostgreSQL'), { kind: 'config', key: null, detail: 'no such table in PostgreSQL' });
      continue;
    }
    let route: TableRoute;
    try {
      route = deps.router.route(schema, table);
    } catch (error) {
      report.add(report.store(name, 'source', 'CDC_ROUTES'), {
        kind: 'config',
        key: null,
        detail: `${describeError(error)}: every change of it is dead-lettered by the sinks (add an entry or a "*" entry to CDC_ROUTES)`,
      });
      continue;
    }
    const checks: Check[] = [];
    if (route.elasticsearch && deps.elasticsearch) {
      const index = route.elasticsearch.index;
      checks.push(new ElasticsearchTableCheck(deps.elasticsearch.client, deps.elasticsearch.sink, report, report.store(name, 'elasticsearch', index), index));
    }
    if (route.history?.enabled !== false && deps.history) {
      const { client, index } = deps.history;
      checks.push(new HistoryTableCheck(client, report, report.store(name, 'history', index), index, name, route.history, declaredColumns(route)));
    }
    const adxRoute = deps.adx?.routes.find((r) => r.source === name);
    if (adxRoute && deps.adx) {
      checks.push(
        new AdxTableCheck(
          report,
          report.store(name, 'adx', `${adxRoute.table} (${deps.adx.source.name})`),
          adxRoute,
          await deps.adx.source.currentRows(adxRoute),
        ),
      );
    }
    if (checks.length === 0) continue;
    for await (const chunk of readSourceTable(deps.pg, types, source, deps.chunkRows ?? 500)) {
      const events = chunk.rows.map((row) => snapshotEventOf(source, row, chunk.types));
      for (const check of checks) await check.chunk(events);
    }
    for (const check of checks) await check.finish();
  }
  for (const container of deps.deadLetters ?? []) report.deadLetters.push(await summarizeDeadLetters(container));
  return report;
}

/** Dead letters of a container: how many, how many replayed, and the others by sink and reason. */
export async function summarizeDeadLetters(container: ContainerClient): Promise<DeadLetterSummary> {
  const summary: DeadLetterSummary = { container: container.containerName, total: 0, replayed: 0, reasons: [] };
  const counts = new Map<string, { functionName: string; reason: string; count: number }>();
  for await (const letter of readDeadLetters(container)) {
    summary.total++;
    if (!('document' in letter)) {
      const key = `?\u0000${letter.problem}`;
      const entry = counts.get(key) ?? { functionName: '(unreadable blob)', reason: letter.problem, count: 0 };
      entry.count++;
      counts.set(key, entry);
      continue;
    }
    if (letter.metadata[REPLAYED_AT] !== undefined) {
      summary.replayed++;
      continue;
    }
    const key = `${letter.document.functionName}\u0000${letter.document.reason}`;
    const entry = counts.get(key) ?? { functionName: letter.document.functionName, reason: letter.document.reason, count: 0 };
    entry.count++;
    counts.set(key, entry);
  }
  summary.reasons = [...counts.values()].sort((a, b) => b.count - a.count);
  return summary;
}

/** Everything `npm run verify` checks, from the sinks' own settings; `close` releases it. */
export async function verifyDepsFromEnv(env: Env, notes: string[]): Promise<VerifyDeps & { close(): Promise<void> }> {
  const settings = pgSettingsFromEnv(env);
  const client = await connectPgClient(settings, 'pg-cdc-verify', { extra: { options: SESSION_OPTIONS, types: textTypes } });
  const closers: (() => Promise<void> | void)[] = [() => client.end()];
  try {
    const router = routerFromEnv(env);
    const deps: VerifyDeps = {
      pg: client,
      router,
      publication: getString(env, 'CDC_PUBLICATION', 'pg_cdc_publication'),
      stateSchema: getString(env, 'CDC_STATE_SCHEMA', 'cdc_reader'),
      chunkRows: getInt(env, 'VERIFY_CHUNK_ROWS', 500, { min: 1, max: 10_000 }),
    };
    if (getOptionalString(env, 'ELASTICSEARCH_URL') !== undefined) {
      const es = elasticsearchClientFromEnv(env);
      closers.push(() => es.close());
      deps.elasticsearch = { client: es, sink: elasticsearchSinkFromEnv(env, es) };
      deps.history = { client: es, index: getString(env, 'HISTORY_INDEX', DEFAULT_HISTORY_INDEX) };
    } else notes.push('ELASTICSEARCH_URL is not set: Elasticsearch and the change history are not checked');
    if (getOptionalString(env, 'ADX_CLUSTER_URL') !== undefined) {
      const config = loadAdxConfig(env);
      const { control, ingestor } = createClients(config);
      ingestor.close();
      const source = new KustoCurrentRows(control);
      closers.push(() => source.close());
      deps.adx = { source, routes: config.routes };
    } else notes.push('ADX_CLUSTER_URL is not set: ADX is not checked');
    try {
      deps.deadLetters = [deadLetterStoreFromEnv(env).container];
    } catch (error) {
      if (!(error instanceof CdcError)) throw error;
      notes.push(`dead letters are not counted: ${describeError(error)}`);
    }
    return {
      ...deps,
      close: async () => {
        for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
    throw error;
  }
}
