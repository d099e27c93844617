/**
 * OpenTelemetry export to Application Insights. Not wired: the exporter packages
 * (@azure/monitor-opentelemetry-exporter, @opentelemetry/sdk-metrics) are not dependencies yet, so
 * with APPLICATIONINSIGHTS_CONNECTION_STRING set the reader says so and keeps the in-process metrics
 * (/metrics on the health port, and a `reader metrics` log line every minute).
 */
import type { Logger } from './logger.js';
import type { ReaderMetrics } from './metrics.js';

export function attachOpenTelemetry(_connectionString: string, _metrics: ReaderMetrics, log: Logger): Promise<{ shutdown(): Promise<void> } | null> {
  log.warn('APPLICATIONINSIGHTS_CONNECTION_STRING is set but Application Insights export is not implemented yet; metrics are on /metrics and in the logs');
  return Promise.resolve(null);
}
