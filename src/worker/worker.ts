/**
 * The worker: one `SinkConsumer` (one consumer group) per configured sink, started together and
 * stopped together, and what the probes report about them.
 */
import type { TokenSource } from '../shared/core/kafka.js';
import type { Logger } from '../shared/core/logger.js';
import type { SinkDefinition, SinkDeps } from '../shared/sinks/registry.js';
import type { WorkerConfig } from './config.js';
import { SinkConsumer } from './sinkConsumer.js';

export interface WorkerOptions {
  config: WorkerConfig;
  /** Each configured sink's dependencies (`definition.depsFromEnv` in production). */
  deps: (definition: SinkDefinition) => SinkDeps;
  logger: Logger;
  credential?: TokenSource;
}

export class Worker {
  readonly consumers: SinkConsumer[];
  private readonly config: WorkerConfig;

  constructor({ config, deps, logger, credential }: WorkerOptions) {
    this.config = config;
    this.consumers = config.sinks.map(
      ({ definition, consumerGroup }) =>
        new SinkConsumer({
          origin: { functionName: definition.name, namespace: config.namespace, consumerGroup, topic: config.topic },
          kafka: config.kafka,
          deps: deps(definition),
          maxBatchSize: config.maxBatchSize,
          maxBatchBytes: config.maxBatchBytes,
          maxWaitMs: config.maxWaitMs,
          retry: config.retry,
          sessionTimeoutMs: config.sessionTimeoutMs,
          logger: logger.child({ sink: definition.name, consumerGroup }),
          ...(credential ? { credential } : {}),
        }),
    );
  }

  /** Joins every sink's group; if one cannot, the others are stopped again and the error is thrown. */
  async start(): Promise<void> {
    const results = await Promise.allSettled(this.consumers.map((c) => c.start()));
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) {
      await this.stop();
      throw failure.reason;
    }
  }

  /** Graceful stop of every sink within `WORKER_SHUTDOWN_TIMEOUT_MS`, then each leaves its group. */
  async stop(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.stop(this.config.shutdownTimeoutMs)));
  }

  /** Every sink's consumer is in its group and reading. */
  get ready(): boolean {
    return this.consumers.every((c) => c.ready);
  }

  metrics(): Record<string, unknown> {
    const memory = process.memoryUsage();
    return {
      topic: this.config.topic,
      sinks: Object.fromEntries(this.consumers.map((c) => [c.name, c.metrics.toJSON()])),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal, arrayBuffersBytes: memory.arrayBuffers },
    };
  }
}
