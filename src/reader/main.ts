/**
 * Entry point of the reader container: `node dist/src/reader/main.js` (or `npm run reader`).
 * Exit codes: 0 stopped on SIGTERM/SIGINT (or initial_only finished), 1 failed, 2 bad configuration.
 */
import { ConfigError, loadConfig, secretsOf } from './config.js';
import type { ReaderConfig } from './config.js';
import { createLogger, errorFields } from '../shared/core/logger.js';
import { startHealthServer } from '../shared/core/health.js';
import { Reader } from './reader.js';
import { bounded } from '../shared/core/async.js';
import { KafkaPublisher } from './publish/kafkaPublisher.js';
import { BlobClaimCheckStore } from './publish/claimCheck.js';
import { attachOpenTelemetry } from './otel.js';
import { redact } from '../shared/core/redact.js';

async function main(): Promise<number> {
  let config: ReaderConfig;
  try {
    config = loadConfig();
  } catch (err) {
    const log = createLogger();
    log.error('invalid configuration', { ...errorFields(err), variable: err instanceof ConfigError ? err.variable : undefined });
    return 2;
  }
  const log = createLogger({ level: config.logLevel, secrets: secretsOf(config), base: { component: 'reader', slot: config.slotName } });
  const publisher = await KafkaPublisher.create(config.kafka);
  const claimCheckConfig = config.claimCheck;
  const claimCheck =
    claimCheckConfig.connectionString || claimCheckConfig.accountUrl
      ? await BlobClaimCheckStore.create({
          connectionString: claimCheckConfig.connectionString,
          accountUrl: claimCheckConfig.accountUrl,
          container: claimCheckConfig.container,
        })
      : null;
  if (!claimCheck) log.warn('no claim-check store configured (DEADLETTER_*): an event larger than the hub limit will stop the reader');
  const reader = new Reader({ config, log, publisher, broker: publisher, claimCheck });
  const otel = config.appInsightsConnectionString
    ? await attachOpenTelemetry(
        {
          connectionString: config.appInsightsConnectionString,
          exportIntervalMs: config.otel.exportIntervalMs,
          serviceName: config.otel.serviceName,
          slot: config.slotName,
          ready: () => reader.ready,
        },
        reader.metrics,
        log,
      )
    : null;
  if (!otel) log.info('APPLICATIONINSIGHTS_CONNECTION_STRING not set: metrics only on /metrics and in the logs');
  const health =
    config.healthPort > 0
      ? await startHealthServer(config.healthPort, {
          live: () => reader.phase !== 'failed',
          ready: () => reader.ready,
          metrics: () => reader.metrics.toJSON(),
          resetMetrics: () => reader.metrics.commitToAckMs.reset(),
        })
      : null;

  let signalled = false;
  const onSignal = (signal: string) => {
    if (signalled) return;
    signalled = true;
    log.info('shutting down', { signal });
    void reader.stop();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  let code = 0;
  try {
    await reader.run();
  } catch (err) {
    log.error('reader failed', {
      ...errorFields(err),
      ...(typeof (err as { code?: unknown }).code === 'string' ? { code: (err as { code: string }).code } : {}),
    });
    code = 1;
  }
  // The Kafka client, then the last metric export, each bounded: an unreachable broker or ingestion endpoint cannot hold the exit.
  await bounded(
    publisher.close().catch(() => undefined),
    5_000,
  );
  if (otel)
    await bounded(
      otel.shutdown().catch(() => undefined),
      5_000,
    );
  health?.close();
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(redact(`reader crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`) + '\n');
    process.exit(1);
  },
);
