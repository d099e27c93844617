import { expect } from '@jest/globals';
/** Test helpers for the reader: PostgreSQL sessions, an in-process reader, a topic collector. */
import pg from 'pg';
import { Consumer, stringDeserializers } from '@platformatic/kafka';
import { serviceEnv, uniqueName, eventually } from '../helpers/services.js';
import { loadConfig } from '../../src/reader/config.js';
import type { ReaderConfig } from '../../src/reader/config.js';
import { Reader } from '../../src/reader/reader.js';
import { spawnEntryPoint, type ChildRun } from '../helpers/childProcess.js';
import { freePort, startPostgres, stopPostgres } from '../services/services.mjs';
import { StartupError } from '../../src/reader/errors.js';
import { KafkaPublisher } from '../../src/reader/publish/kafkaPublisher.js';
import type { BrokerCheck } from '../../src/reader/publish/brokerCheck.js';
import type { OutRecord, Publisher } from '../../src/reader/publish/publisher.js';
import { BlobClaimCheckStore } from '../../src/reader/publish/claimCheck.js';
import { memoryLogger } from '../../src/shared/core/logger.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** Parts of the reader a test replaces (closed by the test, not by `stop()`). */
export interface ReaderOverrides {
  publisher?: Publisher;
  broker?: BrokerCheck;
  shutdownTimeoutMs?: number;
}

export async function startReader(
  env: Record<string, string>,
  waitFor: 'streaming' | 'none' = 'streaming',
  overrides: ReaderOverrides = {},
): Promise<RunningReader> {
  const config = loadConfig(env);
  const log = memoryLogger();
  const kafka = await KafkaPublisher.create(config.kafka);
  const claimCheck = await BlobClaimCheckStore.create({ connectionString: config.claimCheck.connectionString, container: config.claimCheck.container });
  const reader = new Reader({
    config,
    log,
    publisher: overrides.publisher ?? kafka,
    broker: overrides.broker ?? kafka,
    claimCheck,
    shutdownTimeoutMs: overrides.shutdownTimeoutMs,
  });
  const run = reader.run();
  run.catch(() => undefined);
  const stop = async () => {
    await reader.stop();
    await run.catch(() => undefined);
    await kafka.close().catch(() => undefined);
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

/**
 * A broker connection that a test can point elsewhere mid-run ("the broker went away"): publisher and
 * broker check delegate to whichever real Kafka client is current.
 */
export class SwitchableBroker implements Publisher, BrokerCheck {
  constructor(public current: KafkaPublisher) {}
  send(records: OutRecord[]): Promise<void> {
    return this.current.send(records);
  }
  partitions(topic: string): Promise<number> {
    return this.current.partitions(topic);
  }
  check(topics: string[]): Promise<void> {
    return this.current.check(topics);
  }
  close(): Promise<void> {
    return this.current.close();
  }
}

/** Drops the slot (waiting for it to become inactive), publication and state schema of a test. */
export async function cleanup(c: pg.Client, name: string, schemas: string[] = []): Promise<void> {
  await eventually(
    'slot inactive',
    async () => {
      const r = await c.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [name]);
      return r.rows.length === 0 || !(r.rows[0] as { active: boolean }).active ? true : undefined;
    },
    20_000,
  );
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

/** A record as it is on the topic: `value` null for a tombstone. */
export interface RawRecord {
  key: string | undefined;
  value: string | null;
  partition: number;
  offset: bigint;
}

/** Reads a topic from the beginning into memory. */
export class TopicCollector {
  /** Events (records with a value). */
  readonly items: Collected[] = [];
  /** Every record in arrival order, tombstones included (not with `keysOnly`). */
  readonly records: RawRecord[] = [];
  /** With `keysOnly`: distinct record keys seen, and the message count. */
  readonly keys = new Set<string>();
  count = 0;
  private consumer: Consumer<string, string, string, string> | null = null;
  private stream: { close(): Promise<void> } | null = null;

  static async start(topics: string[], opts: { keysOnly?: boolean } = {}): Promise<TopicCollector> {
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
    stream.on('data', (m: { key: string | undefined; value: string | undefined; partition: number; offset: bigint }) => {
      c.count++;
      if (opts.keysOnly) {
        if (m.key) c.keys.add(m.key);
        return;
      }
      // The string deserializer turns a null value (a tombstone) into undefined.
      c.records.push({ key: m.key || undefined, value: m.value ?? null, partition: m.partition, offset: m.offset });
      if (m.value === undefined) return;
      c.items.push({ key: m.key || undefined, raw: m.value, event: JSON.parse(m.value) as ChangeEvent, partition: m.partition, offset: m.offset });
    });
    return c;
  }

  /** The change events (the reader's control events, `op: 'm'`, are in `controlEvents`). */
  events(filter?: (e: ChangeEvent) => boolean): ChangeEvent[] {
    return this.items.map((i) => i.event).filter((e) => e.op !== 'm' && (filter ? filter(e) : true));
  }

  /** The reader's control events (`op: 'm'`, `message.prefix: 'pg-cdc'`: schema changes), with their partitions. */
  controlEvents(filter?: (e: ChangeEvent) => boolean): Collected[] {
    return this.items.filter((i) => i.event.op === 'm' && (filter ? filter(i.event) : true));
  }

  async waitFor(what: string, predicate: (events: ChangeEvent[]) => boolean, timeoutMs = 30_000): Promise<ChangeEvent[]> {
    return eventually(what, () => (predicate(this.events()) ? this.events() : undefined), timeoutMs);
  }

  /** Every event, the reader's control events included, in arrival order. */
  allEvents(): ChangeEvent[] {
    return this.items.map((i) => i.event);
  }

  /** `waitFor` over every event, the reader's control events included. */
  async waitForAll(what: string, predicate: (events: ChangeEvent[]) => boolean, timeoutMs = 30_000): Promise<ChangeEvent[]> {
    return eventually(what, () => (predicate(this.allEvents()) ? this.allEvents() : undefined), timeoutMs);
  }

  async close(): Promise<void> {
    await this.stream?.close().catch(() => undefined);
    await this.consumer?.close(true).catch(() => undefined);
  }
}

export type ChildReader = ChildRun;

/** Runs the real entry point (src/reader/main.ts) as a child process. */
export function spawnReader(env: Record<string, string>): ChildReader {
  return spawnEntryPoint('src/reader/main.ts', env);
}

export async function slotInactive(c: pg.Client, slot: string): Promise<void> {
  await eventually(
    'slot inactive',
    async () => {
      const r = await c.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      return r.rows.length === 0 || !(r.rows[0] as { active: boolean }).active ? true : undefined;
    },
    20_000,
  );
}

/** Final state per key under the sink versioning rule: the event with the highest source.lsn wins. */
export function converge(events: ChangeEvent[], keyColumn: string): Map<string, Record<string, unknown> | null> {
  const best = new Map<string, { v: number; after: Record<string, unknown> | null }>();
  for (const e of events) {
    if (e.op === 't' || !e.key) continue;
    const k = JSON.stringify(e.key[keyColumn]);
    const v = e.source.lsn ?? 0;
    const cur = best.get(k);
    if (!cur || v > cur.v) best.set(k, { v, after: e.op === 'd' ? null : (e.after ?? null) });
  }
  return new Map([...best].map(([k, x]) => [k, x.after]));
}

/**
 * What a key-addressed sink ends with when it applies the events in the order they arrived (per key
 * that is WAL order: one key, one partition): the latest op of a key wins, a delete removes the key,
 * a truncate removes every key of its table. Keyed by `schema.table` and the key's JSON.
 */
export function applyPerKey(items: Collected[]): Map<string, Record<string, unknown>> {
  const rows = new Map<string, Record<string, unknown>>();
  for (const { event: e } of items) {
    const table = `${e.source.schema}.${e.source.table}`;
    if (e.op === 'm') continue; // a control event (a schema change, an incremental snapshot's start or end): no row
    if (e.op === 't') {
      for (const k of [...rows.keys()]) if (k.startsWith(`${table}\u0000`)) rows.delete(k);
      continue;
    }
    if (!e.key) throw new Error(`${e.op} event of ${table} without a key`);
    const k = `${table}\u0000${JSON.stringify(e.key)}`;
    if (e.op === 'd') rows.delete(k);
    else rows.set(k, e.after ?? {});
  }
  return rows;
}

/** A port nothing listens on (taken from the OS, then released): connections to it are refused. */
export const closedPort = freePort;

export interface PasswordPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  stop(): Promise<void>;
}

/**
 * A private PostgreSQL that authenticates with passwords (scram-sha-256). The shared test server
 * trusts every local connection (initdb -A trust), so it never asks for a password and cannot show a
 * wrong one; this one is initialised with a password and no trust line, and stopped by `stop()`.
 */
export async function startPasswordPostgres(): Promise<PasswordPostgres> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-cdc-password-'));
  chmodSync(dir, 0o755); // the server runs as the services' user when we are root
  const password = `pw-${uniqueName('x')}`;
  const server = await startPostgres(dir, { password, extraConf: ['shared_buffers = 16MB', 'max_connections = 20'] });
  return {
    host: server.endpoint.PGHOST,
    port: Number(server.endpoint.PGPORT),
    user: server.endpoint.PGUSER,
    password,
    stop: async () => {
      await stopPostgres(server);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a reader that must fail at start-up, and returns its StartupError. */
export async function startupError(env: Record<string, string>): Promise<StartupError> {
  const r = await startReader(env, 'none');
  const err = await r.run.then(
    () => new Error('reader started'),
    (e: unknown) => e,
  );
  await r.stop();
  expect(err).toBeInstanceOf(StartupError);
  return err as StartupError;
}

/**
 * A database of its own on the shared server, for tests of the reader without a table list or with a
 * FOR ALL TABLES publication: those cover every table of their database, and other tests' tables (some
 * keyless) must not be put at risk or streamed. `drop()` drops its slots, then the database.
 */
export interface PrivateDatabase {
  name: string;
  /** A session in it. */
  client: pg.Client;
  drop(): Promise<void>;
}

export async function privateDatabase(prefix: string): Promise<PrivateDatabase> {
  const name = uniqueName(prefix);
  const admin = await pgClient();
  await admin.query(`CREATE DATABASE "${name}"`);
  const client = new pg.Client({ ...serviceEnv().pg, database: name });
  await client.connect();
  return {
    name,
    client,
    drop: async () => {
      await client.end().catch(() => undefined);
      await eventually(
        'slots of the database inactive',
        async () => {
          const r = await admin.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1 AND active', [name]);
          return (r.rows[0] as { n: number }).n === 0 ? true : undefined;
        },
        20_000,
      );
      await admin.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [name]);
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** A publisher whose sends wait while held (a broker holding the reader back: the reader then lags behind the WAL). */
export class GatedPublisher implements Publisher, BrokerCheck {
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;
  constructor(readonly inner: KafkaPublisher) {}
  hold(): void {
    this.gate ??= new Promise<void>((resolve) => (this.openGate = resolve));
  }
  release(): void {
    this.openGate?.();
    this.gate = null;
    this.openGate = null;
  }
  async send(records: OutRecord[]): Promise<void> {
    while (this.gate) await this.gate;
    return this.inner.send(records);
  }
  partitions(topic: string): Promise<number> {
    return this.inner.partitions(topic);
  }
  check(topics: string[]): Promise<void> {
    return this.inner.check(topics);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
