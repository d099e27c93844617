/**
 * Entry point of the sink worker: `node dist/src/worker/main.js` (or `npm run worker`). Runs the
 * configured sinks (Elasticsearch, change history, ADX) from Kafka / Event Hubs' Kafka endpoint,
 * one consumer group each, outside Azure Functions.
 * Exit codes: 0 stopped on SIGTERM/SIGINT, 1 failed (broker unreachable, credentials refused, topic
 * missing: the setting is named), 2 bad configuration.
 */
import { ConfigError } from '../shared/core/errors.js';
import { startHealthServer } from '../shared/core/health.js';
import { probeKafka } from '../shared/core/kafka.js';
import { createLogger, errorFields, type Logger } from '../shared/core/logger.js';
import { redact } from '../shared/core/redact.js';
import type { SinkDeps } from '../shared/sinks/registry.js';
import { statusSettingsFromEnv } from '../shared/status/collect.js';
import { statusFromEnv, statusRequestHandler } from '../shared/status/server.js';
import { loadWorkerConfig, secretsOf, type WorkerConfig } from './config.js';
import { Worker } from './worker.js';

function configFailure(log: Logger, err: unknown): number {
  log.error('invalid configuration', { ...errorFields(err), variable: err instanceof ConfigError ? err.variable : undefined });
  return 2;
}

async function main(): Promise<number> {
  let config: WorkerConfig;
  let statusEnabled: boolean;
  try {
    config = loadWorkerConfig();
    statusEnabled = statusSettingsFromEnv(process.env).enabled;
  } catch (err) {
    return configFailure(createLogger({ secrets: secretsOf() }), err);
  }
  const log = createLogger({ level: config.logLevel, secrets: secretsOf(), base: { component: 'worker' } });

  // Every sink is built now, so a missing or bad sink setting stops the worker here, named.
  const deps = new Map<string, SinkDeps>();
  try {
    for (const { definition } of config.sinks) deps.set(definition.name, definition.depsFromEnv(process.env, log.child({ sink: definition.name })));
  } catch (err) {
    // Not every bad value is caught as a ConfigError (a malformed storage connection string throws in
    // the SDK): anything thrown while building a sink is its configuration.
    return configFailure(log, err);
  }
  log.info('starting', {
    sinks: config.sinks.map((s) => ({ sink: s.definition.name, consumerGroup: s.consumerGroup })),
    topic: config.topic,
    brokers: config.kafka.brokers,
    securityProtocol: config.kafka.securityProtocol,
    saslMechanism: config.kafka.securityProtocol === 'PLAINTEXT' ? undefined : config.kafka.saslMechanism,
    maxBatchSize: config.maxBatchSize,
    maxBatchBytes: config.maxBatchBytes,
    maxWaitMs: config.maxWaitMs,
    retry: config.retry,
  });

  let signalled: string | undefined;
  let onSignal: (() => void) | undefined;
  const stopRequested = new Promise<void>((resolve) => (onSignal = resolve));
  const handle = (signal: string) => {
    if (signalled) return;
    signalled = signal;
    log.info('shutting down', { signal, shutdownTimeoutMs: config.shutdownTimeoutMs });
    onSignal?.();
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));

  const worker = new Worker({ config, deps: (definition) => deps.get(definition.name)!, logger: log });
  try {
    const partitions = await probeKafka(config.kafka, { name: config.topic, setting: 'CDC_TOPIC' });
    log.info('connected', { topic: config.topic, partitions });
    await worker.start();
  } catch (err) {
    log.error('cannot start', { ...errorFields(err), variable: (err as { variable?: unknown }).variable });
    return 1;
  }
  // The pipeline's status (README "Status") on the probe port: GET /status and the page at GET /.
  const status = config.healthPort > 0 && statusEnabled ? statusFromEnv(process.env) : null;
  status?.monitor.start();
  const health =
    config.healthPort > 0
      ? await startHealthServer(
          config.healthPort,
          { live: () => true, ready: () => !signalled && worker.ready, metrics: () => worker.metrics() },
          status ? statusRequestHandler(status.monitor) : undefined,
        )
      : null;
  log.info('running', { sinks: config.sinks.map((s) => s.definition.name) });

  await stopRequested;
  await worker.stop();
  health?.close();
  await status?.close();
  log.info('stopped', { signal: signalled });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(redact(`worker crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`) + '\n');
    process.exit(1);
  },
);
