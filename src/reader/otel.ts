/**
 * OpenTelemetry metrics exported to Application Insights (`APPLICATIONINSIGHTS_CONNECTION_STRING`).
 *
 * The instruments observe `ReaderMetrics` (the single source of the reader's figures): the observable
 * counter and gauges read its fields at each collection, and the histogram subscribes to the values the
 * reader records in `commitToAckMs`. A `PeriodicExportingMetricReader` collects every
 * `OTEL_METRIC_EXPORT_INTERVAL` ms and hands the batch to `AzureMonitorMetricExporter`, which POSTs
 * envelopes to `<IngestionEndpoint>/v2.1/track`. Export failures are logged (warn) and never affect
 * the change stream.
 */
import { hostname } from 'node:os';
import { DiagLogLevel, diag } from '@opentelemetry/api';
import type { Attributes, DiagLogger } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AzureMonitorMetricExporter } from '@azure/monitor-opentelemetry-exporter';
import type { Logger } from '../shared/core/logger.js';
import type { ReaderMetrics } from './metrics.js';

export interface OtelOptions {
  connectionString: string;
  exportIntervalMs: number;
  serviceName: string;
  /** `cloud_RoleInstance`; the host name (the pod name in a container) by default. */
  serviceInstanceId?: string;
  /** Replication slot: an attribute of every data point, to tell readers apart. */
  slot: string;
  /** The reader's readiness (what `/readyz` answers), exported as `cdc.reader.ready` (1 or 0) for the readiness alert. */
  ready?: () => boolean;
}

export interface OtelHandle {
  /** Collects and exports now (tests, shutdown). */
  forceFlush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

/** Metric names (also the names in Application Insights `customMetrics`). */
export const METRIC_NAMES = {
  changes: 'cdc.reader.changes',
  changesPerSec: 'cdc.reader.changes.rate',
  slotLagBytes: 'cdc.reader.slot.lag.bytes',
  slotLagSeconds: 'cdc.reader.slot.lag.seconds',
  commitToAckMs: 'cdc.reader.commit_to_ack.ms',
  inflightBytes: 'cdc.reader.inflight.bytes',
  snapshotRowsDone: 'cdc.reader.snapshot.rows.done',
  snapshotRowsTotal: 'cdc.reader.snapshot.rows.total',
  schemaChanges: 'cdc.reader.schema_changes',
  ready: 'cdc.reader.ready',
} as const;

/** Routes OpenTelemetry's internal diagnostics (export failures) to the reader's log, warnings and up. */
function diagLogger(log: Logger): DiagLogger {
  // The SDK sometimes passes an Error where the message belongs.
  const text = (v: unknown) => (v instanceof Error ? v.message : typeof v === 'string' ? v : safeJson(v));
  const fields = (args: unknown[]) => (args.length ? { details: args.map(text) } : undefined);
  return {
    error: (msg, ...args) => log.warn(`opentelemetry: ${text(msg)}`, fields(args)),
    warn: (msg, ...args) => log.warn(`opentelemetry: ${text(msg)}`, fields(args)),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

export function attachOpenTelemetry(options: OtelOptions, metrics: ReaderMetrics, log: Logger): Promise<OtelHandle> {
  diag.setLogger(diagLogger(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  // Failed exports are dropped, not spooled to disk: metrics are periodic, the next export carries on.
  const exporter = new AzureMonitorMetricExporter({ connectionString: options.connectionString, disableOfflineStorage: true });
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: options.exportIntervalMs,
    exportTimeoutMillis: Math.min(30_000, options.exportIntervalMs),
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.instance.id': options.serviceInstanceId ?? hostname() }),
    readers: [reader],
  });
  const meter = provider.getMeter('pg-cdc-reader');
  const base: Attributes = { 'cdc.slot': options.slot };

  const changes = meter.createObservableCounter(METRIC_NAMES.changes, {
    description: 'Change events streamed to the broker, by table and op (snapshot rows not included)',
    unit: '{event}',
  });
  changes.addCallback((r) => {
    for (const bySchema of metrics.changesByTable.values()) {
      for (const t of bySchema.values()) {
        for (const op of Object.keys(t.byOp)) r.observe(t.byOp[op]!, { ...base, 'cdc.table': `${t.schema}.${t.table}`, 'cdc.op': op });
      }
    }
  });
  meter
    .createObservableGauge(METRIC_NAMES.changesPerSec, { description: 'Change events per second over the last second', unit: '{event}/s' })
    .addCallback((r) => r.observe(metrics.changesPerSec, base));
  meter
    .createObservableGauge(METRIC_NAMES.slotLagBytes, { description: 'pg_current_wal_lsn() - confirmed_flush_lsn of the slot', unit: 'By' })
    .addCallback((r) => {
      if (metrics.slotLagBytes !== null) r.observe(metrics.slotLagBytes, base);
    });
  meter
    .createObservableGauge(METRIC_NAMES.slotLagSeconds, { description: 'Age of the oldest commit not yet acknowledged by the broker', unit: 's' })
    .addCallback((r) => r.observe(metrics.slotLagSeconds, base));
  meter
    .createObservableGauge(METRIC_NAMES.inflightBytes, { description: 'Event bytes queued or in flight to the broker', unit: 'By' })
    .addCallback((r) => r.observe(metrics.inflightBytes, base));
  meter.createObservableGauge(METRIC_NAMES.snapshotRowsDone, { description: 'Snapshot rows delivered, by table', unit: '{row}' }).addCallback((r) => {
    for (const t of metrics.snapshotTables.values()) r.observe(t.rowsDone, { ...base, 'cdc.table': `${t.schema}.${t.table}`, 'cdc.snapshot.done': t.done });
  });
  meter
    .createObservableGauge(METRIC_NAMES.snapshotRowsTotal, {
      description: 'Snapshot rows to read, by table (planner estimate until the table is done)',
      unit: '{row}',
    })
    .addCallback((r) => {
      for (const t of metrics.snapshotTables.values()) r.observe(t.rowsTotal, { ...base, 'cdc.table': `${t.schema}.${t.table}`, 'cdc.snapshot.done': t.done });
    });
  meter
    .createObservableCounter(METRIC_NAMES.schemaChanges, {
      description: 'Schema changes seen (Relation messages differing from the previous one of their table), by table',
      unit: '{change}',
    })
    .addCallback((r) => {
      for (const [table, n] of metrics.schemaChangesByTable) r.observe(n, { ...base, 'cdc.table': table });
    });
  const ready = options.ready;
  if (ready !== undefined) {
    meter
      .createObservableGauge(METRIC_NAMES.ready, {
        description: 'Whether the reader is ready (streaming or snapshotting, broker reachable): 1 or 0',
        unit: '1',
      })
      .addCallback((r) => r.observe(ready() ? 1 : 0, base));
  }
  const latency = meter.createHistogram(METRIC_NAMES.commitToAckMs, {
    description: 'Commit time in PostgreSQL to broker acknowledgement of the whole transaction',
    unit: 'ms',
  });
  const unsubscribe = metrics.commitToAckMs.subscribe((v) => latency.record(v, base));

  log.info('Application Insights metric export on', {
    exportIntervalMs: options.exportIntervalMs,
    serviceName: options.serviceName,
    metrics: Object.values(METRIC_NAMES),
  });
  return Promise.resolve({
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      unsubscribe();
      await provider.shutdown();
    },
  });
}
