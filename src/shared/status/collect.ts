/**
 * `collectStatus`: every source at once, each bounded by the per-source timeout, each failure kept
 * in its own part; and `statusSourcesFromEnv`, which decides from the settings which sources are
 * configured and builds their clients once (a process collecting every few seconds reuses them).
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Client } from '@elastic/elasticsearch';
import { Admin } from '@platformatic/kafka';
import { bounded } from '../core/async.js';
import { blobServiceClient } from '../core/blobService.js';
import { getBool, getInt, getOneOf, getOptionalString, getString, getUrl, type Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';
import { EVENT_HUB_CONNECTION, eventHubNamespace } from '../core/eventHubs.js';
import { describeKafkaConnectError, kafkaClientOptions, kafkaSettingsFromEnv } from '../core/kafka.js';
import { pgSettingsFromEnv } from '../core/postgres.js';
import { redact } from '../core/redact.js';
import { deadLetterStoreFromEnv } from '../deadletter/blobDeadLetterStore.js';
import { elasticsearchClientFromEnv } from '../elasticsearch/client.js';
import { DEFAULT_HISTORY_INDEX } from '../history/historyIndex.js';
import { routerFromEnv } from '../routing/routes.js';
import { enabledSinks } from '../sinks/registry.js';
import { collectDeadLetterContainer } from './deadLetters.js';
import { collectElasticsearch } from './elasticsearch.js';
import { CHECKPOINT_CONTAINER, collectEventHubsHub, eventHubsPartitionSource, type PartitionSource } from './eventHubsHub.js';
import { collectKafkaHub, type GroupRef } from './kafkaHub.js';
import { collectPostgresWith } from './postgres.js';
import { collectReader } from './reader.js';
import {
  partValue,
  type DeadLetterStatus,
  type ElasticsearchStatus,
  type EndToEndStatus,
  type HubStatus,
  type Part,
  type PartError,
  type PipelineStatus,
  type PostgresStatus,
  type ReaderStatus,
} from './types.js';

/** A configured source collects its part; an unconfigured one is the message saying what turns it on. */
export type Source<T> = (() => Promise<T>) | PartError;

export interface StatusSources {
  postgres: Source<PostgresStatus>;
  reader: Source<ReaderStatus>;
  hub: Source<HubStatus>;
  elasticsearch: Source<ElasticsearchStatus>;
  deadLetters: Source<DeadLetterStatus>;
  /** Closes the clients the sources built. */
  close(): Promise<void>;
}

export interface CollectOptions {
  /** Longest one source may take (`STATUS_SOURCE_TIMEOUT_MS`). */
  timeoutMs: number;
  now?: () => Date;
}

const message = (error: unknown): string => redact(error instanceof Error ? error.message : String(error));

async function run<T>(name: string, source: Source<T>, timeoutMs: number): Promise<Part<T>> {
  if (typeof source !== 'function') return source;
  const settled = source().then(
    (value): Part<T> => value,
    (error: unknown): Part<T> => ({ error: message(error) }),
  );
  return (await bounded(settled, timeoutMs)) ?? { error: `${name} did not answer within ${timeoutMs} ms (STATUS_SOURCE_TIMEOUT_MS)` };
}

/** The newest committed change (the reader's commit time, else the hub's publish time) against the newest indexed one. */
export function endToEnd(reader: Part<ReaderStatus>, hub: Part<HubStatus>, elasticsearch: Part<ElasticsearchStatus>): EndToEndStatus {
  const fromReader = partValue(reader)?.lastPublishedCommitTime ?? null;
  const fromHub = partValue(hub)?.newestEventTime ?? null;
  const newestCommitted = fromReader ?? fromHub;
  const newestIndexed = partValue(elasticsearch)?.newestCommitTime ?? null;
  return {
    newestCommitted,
    newestCommittedSource: fromReader !== null ? 'reader' : fromHub !== null ? 'hub' : null,
    newestIndexed,
    lagMs: newestCommitted === null || newestIndexed === null ? null : Math.max(0, Date.parse(newestCommitted) - Date.parse(newestIndexed)),
  };
}

export async function collectStatus(sources: StatusSources, options: CollectOptions): Promise<PipelineStatus> {
  const collectedAt = (options.now?.() ?? new Date()).toISOString();
  const [postgres, reader, hub, elasticsearch, deadLetters] = await Promise.all([
    run('PostgreSQL', sources.postgres, options.timeoutMs),
    run("the reader's metrics", sources.reader, options.timeoutMs),
    run('the hub', sources.hub, options.timeoutMs),
    run('Elasticsearch', sources.elasticsearch, options.timeoutMs),
    run('the dead-letter store', sources.deadLetters, options.timeoutMs),
  ]);
  return { collectedAt, postgres, reader, hub, elasticsearch, deadLetters, endToEnd: endToEnd(reader, hub, elasticsearch) };
}

export interface StatusSettings {
  /** Whether a long-running component (the worker) serves the status on its probe port (`STATUS_ENABLED`). */
  enabled: boolean;
  timeoutMs: number;
  /** How often a status server samples for its throughput chart; 0 = only when asked. */
  sampleIntervalMs: number;
}

export function statusSettingsFromEnv(env: Env): StatusSettings {
  return {
    enabled: getBool(env, 'STATUS_ENABLED', true),
    timeoutMs: getInt(env, 'STATUS_SOURCE_TIMEOUT_MS', 5_000, { min: 100, max: 120_000 }),
    sampleIntervalMs: getInt(env, 'STATUS_SAMPLE_INTERVAL_MS', 10_000, { min: 0, max: 600_000 }),
  };
}

/** Most dead-letter blobs listed per container, and how many of the newest are read for their reasons. */
export const DEAD_LETTER_LIST_LIMIT = 10_000;
export const DEAD_LETTER_NEWEST = 10;

const notConfigured = (error: string): PartError => ({ error: `not configured: ${error}`, configured: false });

/** Builds a source, turning a bad setting into that source's error instead of failing every part. */
function guarded<T>(build: () => Source<T>): Source<T> {
  try {
    return build();
  } catch (error) {
    return { error: message(error) };
  }
}

export interface SourceOverrides {
  /** Event Hubs' partition properties (tests: the AMQP endpoint is out of reach). */
  partitionSource?: PartitionSource;
}

/** The consumer group of every sink the hosts run (`WORKER_SINKS`, `*_CONSUMER_GROUP`). */
export function sinkGroupsFromEnv(env: Env): GroupRef[] {
  return enabledSinks(env).map((d) => ({ sink: d.name, consumerGroup: getString(env, d.consumerGroupSetting, d.defaultConsumerGroup) }));
}

/** The Functions host's storage (`AzureWebJobsStorage`, or its identity-based `__blobServiceUri` / `__accountName`). */
function webJobsContainer(env: Env): ContainerClient {
  const accountName = getOptionalString(env, 'AzureWebJobsStorage__accountName');
  const service = blobServiceClient({
    connectionString: getOptionalString(env, 'AzureWebJobsStorage'),
    accountUrl: getOptionalString(env, 'AzureWebJobsStorage__blobServiceUri') ?? (accountName ? `https://${accountName}.blob.core.windows.net` : undefined),
  });
  if (!service) {
    throw new ConfigError(
      'AzureWebJobsStorage',
      "the Functions host's storage (a connection string, or AzureWebJobsStorage__blobServiceUri with an identity), where its checkpoints are",
      undefined,
    );
  }
  return service.getContainerClient(CHECKPOINT_CONTAINER);
}

/**
 * Which sources are configured, from the settings every component already reads: PostgreSQL from
 * `PGHOST` (slot `CDC_SLOT`, publication `CDC_PUBLICATION`, state schema `CDC_STATE_SCHEMA`: the reader's names), the reader from
 * `READER_METRICS_URL`, the hub from `STATUS_HUB` (`auto`: Event Hubs with the Functions host's
 * checkpoints when `EventHubConnection*` is set, else Kafka when `KAFKA_BROKERS` or
 * `EVENTHUBS_CONNECTION_STRING` is), Elasticsearch from `ELASTICSEARCH_URL` (indices from
 * `CDC_ROUTES`), the dead letters from the sinks' dead-letter store settings.
 */
export function statusSourcesFromEnv(env: Env, overrides: SourceOverrides = {}): StatusSources {
  const closers: (() => Promise<unknown>)[] = [];
  const timeoutMs = statusSettingsFromEnv(env).timeoutMs;
  const topic = getString(env, 'CDC_TOPIC', 'cdc-events');

  const postgres = guarded<PostgresStatus>(() => {
    if (getOptionalString(env, 'PGHOST') === undefined)
      return notConfigured("set PGHOST (and PGPORT, PGUSER, PGPASSWORD, PGDATABASE) to the source database, CDC_SLOT to the reader's slot");
    const settings = pgSettingsFromEnv(env);
    const names = {
      slotName: getString(env, 'CDC_SLOT', 'pg_cdc_reader'),
      publicationName: getString(env, 'CDC_PUBLICATION', 'pg_cdc_publication'),
      stateSchema: getString(env, 'CDC_STATE_SCHEMA', 'cdc_reader'),
    };
    return () => collectPostgresWith(settings, names);
  });

  const reader = guarded<ReaderStatus>(() => {
    if (getOptionalString(env, 'READER_METRICS_URL') === undefined)
      return notConfigured("set READER_METRICS_URL to the reader's http://<host>:<HEALTH_PORT>/metrics");
    const url = getUrl(env, 'READER_METRICS_URL');
    return () => collectReader(url, timeoutMs);
  });

  const hub = guarded<HubStatus>(() => {
    const groups = sinkGroupsFromEnv(env);
    const eventHubsConfigured = getOptionalString(env, EVENT_HUB_CONNECTION) ?? getOptionalString(env, `${EVENT_HUB_CONNECTION}__fullyQualifiedNamespace`);
    const kafkaConfigured = getOptionalString(env, 'KAFKA_BROKERS') ?? getOptionalString(env, 'EVENTHUBS_CONNECTION_STRING');
    const mode = getOneOf(env, 'STATUS_HUB', ['auto', 'kafka', 'eventhubs'], 'auto');
    const kind = mode !== 'auto' ? mode : eventHubsConfigured !== undefined ? 'eventhubs' : kafkaConfigured !== undefined ? 'kafka' : undefined;
    if (kind === undefined) {
      return notConfigured(
        'set KAFKA_BROKERS (or EVENTHUBS_CONNECTION_STRING) for the worker, or EventHubConnection (or EventHubConnection__fullyQualifiedNamespace) for the Functions host',
      );
    }
    if (kind === 'kafka') {
      const settings = kafkaSettingsFromEnv(env, { clientId: 'pg-cdc-status' });
      let admin: Promise<Admin> | undefined;
      closers.push(async () => (await admin)?.close());
      return async () => {
        admin ??= kafkaClientOptions(settings).then((options) => new Admin({ ...options, retries: 1 }));
        try {
          return await collectKafkaHub(await admin, topic, groups);
        } catch (error) {
          throw describeKafkaConnectError(error, settings, { name: topic, setting: 'CDC_TOPIC' });
        }
      };
    }
    const namespace = eventHubNamespace(env);
    if (namespace === undefined) {
      throw new ConfigError(
        `${EVENT_HUB_CONNECTION}__fullyQualifiedNamespace`,
        '<namespace>.servicebus.windows.net (or EventHubConnection, a connection string with Endpoint=sb://...)',
        undefined,
      );
    }
    const container = webJobsContainer(env);
    const connectionString = getOptionalString(env, EVENT_HUB_CONNECTION);
    let partitions: Promise<PartitionSource> | undefined = overrides.partitionSource ? Promise.resolve(overrides.partitionSource) : undefined;
    closers.push(async () => (await partitions)?.close?.());
    return async () => {
      partitions ??= eventHubsPartitionSource(connectionString !== undefined ? { connectionString } : { namespace }, topic);
      return collectEventHubsHub(await partitions, container, { namespace, eventHub: topic }, groups);
    };
  });

  const elasticsearch = guarded<ElasticsearchStatus>(() => {
    if (getOptionalString(env, 'ELASTICSEARCH_URL') === undefined) return notConfigured('set ELASTICSEARCH_URL');
    const client: Client = elasticsearchClientFromEnv(env);
    closers.push(() => client.close());
    const router = routerFromEnv(env);
    const historyIndex = getString(env, 'HISTORY_INDEX', DEFAULT_HISTORY_INDEX);
    const url = getString(env, 'ELASTICSEARCH_URL');
    return async () => {
      try {
        return await collectElasticsearch(client, router, historyIndex);
      } catch (error) {
        throw new Error(`Elasticsearch at ${url} (ELASTICSEARCH_URL): ${message(error)}`, { cause: error });
      }
    };
  });

  const deadLetters = guarded<DeadLetterStatus>(() => {
    let container: ContainerClient;
    try {
      container = deadLetterStoreFromEnv(env).container;
    } catch (error) {
      if (error instanceof ConfigError) return notConfigured(error.message);
      throw error;
    }
    return async () => {
      try {
        const part = await collectDeadLetterContainer(container, { listLimit: DEAD_LETTER_LIST_LIMIT, newest: DEAD_LETTER_NEWEST });
        return { containers: [part], total: part.count };
      } catch (error) {
        throw new Error(`the dead-letter container ${container.containerName} at ${container.url.split('?')[0]}: ${message(error)}`, { cause: error });
      }
    };
  });

  return {
    postgres,
    reader,
    hub,
    elasticsearch,
    deadLetters,
    close: async () => {
      await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
    },
  };
}
