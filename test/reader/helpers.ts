/** Test helpers for the reader: PostgreSQL sessions, an in-process reader, a topic collector. */
import pg from 'pg';
import { Consumer, stringDeserializers } from '@platformatic/kafka';
import { serviceEnv, uniqueName, eventually } from '../helpers/services.js';
import { loadConfig } from '../../src/reader/config.js';
import type { ReaderConfig } from '../../src/reader/config.js';
import { Reader } from '../../src/reader/reader.js';
import { KafkaPublisher } from '../../src/reader/publish/kafkaPublisher.js';
import { BlobDeadLetterStore } from '../../src/reader/publish/deadLetter.js';
import { memoryLogger } from '../../src/reader/logger.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';

export { uniqueName, eventually };

export async function pgClient(): Promise<pg.Client> {
  const env = serviceEnv();
  const c = new pg.Client({ ...env.pg });
  await c.connect();
  return c;
}

/** Environment for a reader with unique slot, publication, topic and state schema. */
export function readerEnv(name: string, extra: Record<string, string> = {}): Record<string, string> {
  const env = serviceEnv();
  return {
    PGHOST: env.pg.host,
    PGPORT: String(env.pg.port),
    PGUSER: env.pg.user,
    PGDATABASE: env.pg.database,
    KAFKA_BROKERS: env.kafkaBrokers.join(','),
    CDC_SLOT: name,
    CDC_PUBLICATION: `${name}_pub`,
    CDC_TOPIC: `${name}_events`,
    CDC_STATE_SCHEMA: `${name}_state`,
    CDC_STATUS_INTERVAL_MS: '500',
    AZURE_STORAGE_CONNECTION_STRING: env.azureStorageConnectionString,
    DEADLETTER_CONTAINER: name.replace(/_/g, '-').slice(0, 63),
    HEALTH_PORT: '0',
    ...extra,
  };
}

export interface RunningReader {
  reader: Reader;
  config: ReaderConfig;
  log: ReturnType<typeof memoryLogger>;
  run: Promise<void>;
  stop(): Promise<void>;
}

export async function startReader(env: Record<string, string>, waitFor: 'streaming' | 'none' = 'streaming'): Promise<RunningReader> {
  const config = loadConfig(env);
  const log = memoryLogger();
  const publisher = await KafkaPublisher.create(config.kafka);
  const deadLetter = await BlobDeadLetterStore.create({ connectionString: config.deadLetter.connectionString, container: config.deadLetter.container });
  const reader = new Reader({ config, log, publisher, deadLetter });
  const run = reader.run();
  run.catch(() => undefined);
  const stop = async () => {
    await reader.stop();
    await run.catch(() => undefined);
    await publisher.close().catch(() => undefined);
  };
  if (waitFor === 'streaming') {
    await Promise.race([
      eventually('reader streaming', () => (reader.phase === 'streaming' ? true : undefined), 60_000),
      run.then(() => {
        throw new Error('reader stopped before streaming');
      }),
    ]);
  }
  return { reader, config, log, run, stop };
}

/** Drops the slot (waiting for it to become inactive), publication and state schema of a test. */
export async function cleanup(c: pg.Client, name: string, schemas: string[] = []): Promise<void> {
  await eventually('slot inactive', async () => {
    const r = await c.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]);
    return r.rows.length === 0 || !(r.rows[0] as { active: boolean }).active ? true : undefined;
  }, 20_000);
  await c.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [name]);
  await c.query(`DROP PUBLICATION IF EXISTS "${name}_pub"`);
  await c.query(`DROP SCHEMA IF EXISTS "${name}_state" CASCADE`);
  for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s.replace(/"/g, '""')}" CASCADE`);
}

export interface Collected {
  key: string | undefined;
  raw: string;
  event: ChangeEvent;
  partition: number;
  offset: bigint;
}

/** Reads a topic from the beginning into memory. */
export class TopicCollector {
  readonly items: Collected[] = [];
  private consumer: Consumer<string, string, string, string> | null = null;
  private stream: { close(): Promise<void> } | null = null;

  static async start(topics: string[]): Promise<TopicCollector> {
    const c = new TopicCollector();
    const env = serviceEnv();
    c.consumer = new Consumer({
      groupId: uniqueName('g'),
      clientId: 'reader-test',
      bootstrapBrokers: env.kafkaBrokers,
      deserializers: stringDeserializers,
      maxWaitTime: 200,
      autocreateTopics: true,
    });
    const stream = await c.consumer.consume({ topics, mode: 'earliest', autocommit: false, sessionTimeout: 10_000, heartbeatInterval: 500 });
    c.stream = stream;
    stream.on('data', (m: { key: string | undefined; value: string; partition: number; offset: bigint }) => {
      c.items.push({ key: m.key || undefined, raw: m.value, event: JSON.parse(m.value) as ChangeEvent, partition: m.partition, offset: m.offset });
    });
    return c;
  }

  events(filter?: (e: ChangeEvent) => boolean): ChangeEvent[] {
    return this.items.map((i) => i.event).filter((e) => (filter ? filter(e) : true));
  }

  async waitFor(what: string, predicate: (events: ChangeEvent[]) => boolean, timeoutMs = 30_000): Promise<ChangeEvent[]> {
    return eventually(what, () => (predicate(this.events()) ? this.events() : undefined), timeoutMs);
  }

  async close(): Promise<void> {
    await this.stream?.close().catch(() => undefined);
    await this.consumer?.close(true).catch(() => undefined);
  }
}
