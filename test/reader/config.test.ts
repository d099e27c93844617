import { describe, expect, test } from '@jest/globals';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig, parseDebeziumSettings, parseTableList, secretsOf } from '../../src/reader/config.js';
import { DEBEZIUM_DEFAULTS } from '../../src/reader/encode/debezium.js';
import { createLogger } from '../../src/shared/core/logger.js';

const base = { KAFKA_BROKERS: 'localhost:9092' };

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      slotName: 'pg_cdc_reader',
      publicationName: 'pg_cdc_publication',
      tables: null,
      publicationMode: 'tables',
      publicationRefreshMs: 60_000,
      snapshotMode: 'initial',
      topic: 'cdc-events',
      topicTemplate: null,
    });
    expect(c.kafka).toMatchObject({
      brokers: ['localhost:9092'],
      securityProtocol: 'PLAINTEXT',
      maxMessageBytes: 1_000_000,
      requestTimeoutMs: 60_000,
      metadataMaxAgeMs: 180_000,
    });
  });

  test('CDC_SNAPSHOT_PARALLELISM: the available cores by default (at most 32), or as set', () => {
    expect(loadConfig(base).snapshotParallelism).toBe(Math.min(32, availableParallelism()));
    expect(loadConfig({ ...base, CDC_SNAPSHOT_PARALLELISM: '3' }).snapshotParallelism).toBe(3);
  });

  test('CDC_SNAPSHOT_READER_THREADS: none by default, or as set; CDC_SNAPSHOT_ENCODERS, which it replaced, is refused with the new name', () => {
    expect(loadConfig(base).snapshotReaderThreads).toBe(0);
    expect(loadConfig({ ...base, CDC_SNAPSHOT_READER_THREADS: '2' }).snapshotReaderThreads).toBe(2);
    expect(loadConfig({ ...base, CDC_SNAPSHOT_ENCODERS: '0' }).snapshotReaderThreads).toBe(0);
    expect(() => loadConfig({ ...base, CDC_SNAPSHOT_ENCODERS: '2' })).toThrow(
      /CDC_SNAPSHOT_ENCODERS: expected unset: it was replaced by CDC_SNAPSHOT_READER_THREADS/,
    );
  });

  test.each([
    [{}, 'KAFKA_BROKERS'],
    [{ ...base, CDC_SNAPSHOT_READER_THREADS: '9' }, 'CDC_SNAPSHOT_READER_THREADS'],
    [{ ...base, KAFKA_BROKERS: 'nohostport' }, 'KAFKA_BROKERS'],
    [{ ...base, CDC_SNAPSHOT_MODE: 'sometimes' }, 'CDC_SNAPSHOT_MODE'],
    [{ ...base, CDC_SNAPSHOT_PARALLELISM: '0' }, 'CDC_SNAPSHOT_PARALLELISM'],
    [{ ...base, CDC_SNAPSHOT_PARALLELISM: 'all' }, 'CDC_SNAPSHOT_PARALLELISM'],
    [{ ...base, CDC_SNAPSHOT_PARALLELISM: '33' }, 'CDC_SNAPSHOT_PARALLELISM'],
    [{ ...base, CDC_SLOT: 'Bad-Slot' }, 'CDC_SLOT'],
    [{ ...base, PGPORT: 'x' }, 'PGPORT'],
    [{ ...base, KAFKA_MAX_MESSAGE_BYTES: '2000000' }, 'KAFKA_MAX_MESSAGE_BYTES'],
    [{ ...base, KAFKA_REQUEST_TIMEOUT_MS: '1000' }, 'KAFKA_REQUEST_TIMEOUT_MS'],
    [{ ...base, CDC_TOPIC_TEMPLATE: '{prefix}.{schema}' }, 'CDC_TOPIC_TEMPLATE'],
    [{ ...base, KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_PASSWORD'],
    [{ ...base, CDC_TABLES: 'nodot' }, 'CDC_TABLES'],
    [{ ...base, DEADLETTER_CONTAINER: 'Bad_Name' }, 'DEADLETTER_CONTAINER'],
    [{ ...base, CDC_EVENT_FORMAT: 'avro' }, 'CDC_EVENT_FORMAT'],
    [{ ...base, CDC_DEBEZIUM_SETTINGS: 'decimal.handling.mode=string' }, 'CDC_DEBEZIUM_SETTINGS'],
  ])('invalid %j names %s', (env, variable) => {
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message).toContain(variable);
    expect((err as Error).message).toMatch(/expected/);
  });

  test('Event Hubs connection string: brokers, SASL_SSL/PLAIN, redacted', () => {
    const cs = 'Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0c2VjcmV0';
    const c = loadConfig({ EVENTHUBS_CONNECTION_STRING: cs });
    expect(c.kafka).toMatchObject({
      brokers: ['myns.servicebus.windows.net:9093'],
      securityProtocol: 'SASL_SSL',
      saslMechanism: 'PLAIN',
      saslUsername: '$ConnectionString',
      saslPassword: cs,
    });
    expect(secretsOf(c)).toContain(cs);
    const lines: string[] = [];
    const log = createLogger({ secrets: secretsOf(c), write: (l) => lines.push(l) });
    log.error('failed', { error: `connect failed with ${cs}` });
    expect(lines.join('\n')).not.toContain('c2VjcmV0c2VjcmV0');
  });

  test('a secret in a bad value is not echoed', () => {
    expect(() => loadConfig({ EVENTHUBS_CONNECTION_STRING: 'SharedAccessKey=topsecret' })).toThrow(/redacted/);
  });

  test('CDC_PUBLICATION_MODE: tables by default; all-tables only without a table list, refused with one naming why', () => {
    expect(loadConfig({ ...base, CDC_PUBLICATION_MODE: 'all-tables' }).publicationMode).toBe('all-tables');
    expect(loadConfig({ ...base, CDC_PUBLICATION_MODE: 'all-tables', CDC_TABLES: '*' }).tables).toBeNull();
    expect(() => loadConfig({ ...base, CDC_PUBLICATION_MODE: 'all-tables', CDC_TABLES: 'app.t' })).toThrow(
      /CDC_PUBLICATION_MODE.*when CDC_TABLES lists tables/,
    );
    expect(() => loadConfig({ ...base, CDC_PUBLICATION_MODE: 'all' })).toThrow(ConfigError);
    expect(loadConfig({ ...base, CDC_PUBLICATION_REFRESH_MS: '0' }).publicationRefreshMs).toBe(0);
    expect(() => loadConfig({ ...base, CDC_PUBLICATION_REFRESH_MS: 'soon' })).toThrow(/CDC_PUBLICATION_REFRESH_MS/);
  });

  test('table list: quoting, case folding, weird names', () => {
    expect(parseTableList('retail.orders_info, Bank.Holding')).toEqual([
      { schema: 'retail', table: 'orders_info' },
      { schema: 'bank', table: 'holding' },
    ]);
    expect(parseTableList('"My Schema"."Weird Name","s"."x;drop table y"')).toEqual([
      { schema: 'My Schema', table: 'Weird Name' },
      { schema: 's', table: 'x;drop table y' },
    ]);
    expect(parseTableList('"a""b".c')).toEqual([{ schema: 'a"b', table: 'c' }]);
    expect(() => parseTableList('a.b.c')).toThrow(ConfigError);
  });

  test('native by default: no topic template, Debezium settings at their defaults', () => {
    const c = loadConfig(base);
    expect(c.eventFormat).toBe('native');
    expect(c.topicTemplate).toBeNull();
    expect(c.debezium).toEqual(DEBEZIUM_DEFAULTS);
  });

  test('debezium: Debezium topic naming unless a template is set', () => {
    expect(loadConfig({ ...base, CDC_EVENT_FORMAT: 'debezium' })).toMatchObject({ eventFormat: 'debezium', topicTemplate: '{prefix}.{schema}.{table}' });
    expect(loadConfig({ ...base, CDC_EVENT_FORMAT: 'Debezium', CDC_TOPIC_TEMPLATE: 'all.{table}' }).topicTemplate).toBe('all.{table}');
  });

  test('CDC_DEBEZIUM_SETTINGS: one line or properties form, Debezium names and defaults', () => {
    expect(parseDebeziumSettings(undefined)).toEqual(DEBEZIUM_DEFAULTS);
    const oneLine = parseDebeziumSettings(
      'decimal.handling.mode=string, time.precision.mode=isostring,interval.handling.mode=string,binary.handling.mode=base64,skipped.operations=none',
    );
    expect(oneLine).toEqual({
      ...DEBEZIUM_DEFAULTS,
      decimalHandlingMode: 'string',
      timePrecisionMode: 'isostring',
      intervalHandlingMode: 'string',
      binaryHandlingMode: 'base64',
      skippedOperations: new Set(),
    });
    const props = parseDebeziumSettings(
      '# from connector.properties\ntombstones.on.delete=false\nskipped.operations=t,d\nunavailable.value.placeholder=__gone',
    );
    expect(props).toEqual({ ...DEBEZIUM_DEFAULTS, tombstonesOnDelete: false, skippedOperations: new Set(['t', 'd']), unavailableValuePlaceholder: '__gone' });
    // a comma-separated value followed by another property on the same line
    expect(parseDebeziumSettings('skipped.operations=c,u,decimal.handling.mode=string')).toMatchObject({
      skippedOperations: new Set(['c', 'u']),
      decimalHandlingMode: 'string',
    });
    // the converters' schema switches, by their Connect names
    expect(parseDebeziumSettings('value.converter.schemas.enable=true,key.converter.schemas.enable=TRUE')).toEqual({
      ...DEBEZIUM_DEFAULTS,
      valueSchemasEnable: true,
      keySchemasEnable: true,
    });
    expect(parseDebeziumSettings('value.converter.schemas.enable=true')).toMatchObject({ valueSchemasEnable: true, keySchemasEnable: false });
  });

  test.each([
    ['decimal.handling.mode=double', /decimal\.handling\.mode one of precise, string.*got "double"/],
    ['time.precision.mode=connect', /time\.precision\.mode one of adaptive, isostring/],
    ['interval.handling.mode=iso', /interval\.handling\.mode one of numeric, string/],
    ['binary.handling.mode=hex', /binary\.handling\.mode one of bytes, base64/],
    ['tombstones.on.delete=maybe', /tombstones\.on\.delete one of true, false/],
    ['value.converter.schemas.enable=yes', /value\.converter\.schemas\.enable one of false, true/],
    ['skipped.operations=x', /skipped\.operations none or a list of c, u, d, t/],
    ['snapshot.mode=never', /supported properties only .*got "snapshot\.mode"/],
    ['justtext', /property=value/],
  ])('CDC_DEBEZIUM_SETTINGS %s is refused, naming the setting and the supported values', (raw, message) => {
    let err: unknown;
    try {
      loadConfig({ ...base, CDC_EVENT_FORMAT: 'debezium', CDC_DEBEZIUM_SETTINGS: raw });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe('CDC_DEBEZIUM_SETTINGS');
    expect((err as Error).message).toMatch(message);
  });
});
