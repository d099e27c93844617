/**
 * Smoke tests of the four real test services: each talks to the service over its own protocol
 * through the same client library the product uses.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { BlobServiceClient } from '@azure/storage-blob';
import { Client as ElasticsearchClient } from '@elastic/elasticsearch';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import { eventually, serviceEnv, uniqueName } from '../helpers/services.js';

const env = serviceEnv();
const pgConfig = { host: env.pg.host, port: env.pg.port, user: env.pg.user, database: env.pg.database };

describe('PostgreSQL test service', () => {
  const schema = uniqueName('smoke');
  const slot = uniqueName('smoke_slot');
  const sql = new pg.Client(pgConfig);

  afterAll(async () => {
    await sql.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1`, [slot]);
    await sql.query(`drop schema if exists ${schema} cascade`);
    await sql.query(`drop publication if exists ${schema}_pub`);
    await sql.end();
  });

  it('runs with wal_level=logical, creates a pgoutput slot and decodes an inserted row', async () => {
    await sql.connect();
    expect((await sql.query<{ wal_level: string }>('show wal_level')).rows[0]?.wal_level).toBe('logical');
    await sql.query(`create schema ${schema}; create table ${schema}.t (id int primary key, name text)`);
    await sql.query(`create publication ${schema}_pub for table ${schema}.t`);
    await sql.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    await sql.query(`insert into ${schema}.t values (1, 'smoke')`);

    const service = new LogicalReplicationService(pgConfig, { acknowledge: { auto: false, timeoutSeconds: 0 } });
    const inserts: Pgoutput.MessageInsert[] = [];
    service.on('data', (_lsn: string, msg: Pgoutput.Message) => {
      if (msg.tag === 'insert') inserts.push(msg);
    });
    service.on('error', () => undefined); // stop() below ends the stream; errors surface as a timeout
    void service.subscribe(new PgoutputPlugin({ protoVersion: 1, publicationNames: [`${schema}_pub`] }), slot);
    try {
      const insert = await eventually('the decoded insert', () => inserts[0]);
      expect(insert.relation.schema).toBe(schema);
      expect(insert.relation.name).toBe('t');
      expect(insert.new).toEqual({ id: 1, name: 'smoke' });
    } finally {
      await service.stop();
    }
  });
});

describe('Kafka test service', () => {
  it('accepts a produced record and delivers it to a consumer group', async () => {
    const topic = uniqueName('smoke_topic');
    const kafka = new Kafka({ brokers: env.kafkaBrokers, clientId: 'smoke', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId: uniqueName('smoke_group') });
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
      await producer.connect();
      const [ack] = await producer.send({ topic, acks: -1, messages: [{ key: 'k1', value: '{"hello":"kafka"}' }] });
      expect(ack?.errorCode).toBe(0);

      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received: { key: string; value: string }[] = [];
      await consumer.run({
        eachMessage: async ({ message }) => {
          received.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' });
          return Promise.resolve();
        },
      });
      await eventually('the consumed record', () => received[0]);
      expect(received).toEqual([{ key: 'k1', value: '{"hello":"kafka"}' }]);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe('Elasticsearch test service', () => {
  it('indexes a document and finds it by full-text search', async () => {
    const index = uniqueName('smoke_index');
    const es = new ElasticsearchClient({ node: env.elasticsearchUrl });
    try {
      await es.index({ index, id: '42', document: { name: 'Dwayne Johnson', city: 'Hayward' }, refresh: 'wait_for' });
      const res = await es.search<{ name: string; city: string }>({ index, query: { match: { name: 'dwayne' } } });
      expect(res.hits.hits.map((h) => [h._id, h._source])).toEqual([['42', { name: 'Dwayne Johnson', city: 'Hayward' }]]);
    } finally {
      await es.indices.delete({ index }, { ignore: [404] });
      await es.close();
    }
  });
});

describe('Azurite test service', () => {
  it('writes a blob and reads the same bytes back', async () => {
    const container = uniqueName('smoke').replace(/_/g, '-');
    const blobs = BlobServiceClient.fromConnectionString(env.azureStorageConnectionString).getContainerClient(container);
    await blobs.create();
    try {
      const body = Buffer.from('{"dead":"letter"}');
      await blobs.getBlockBlobClient('a/b.json').upload(body, body.length);
      const read = await blobs.getBlockBlobClient('a/b.json').downloadToBuffer();
      expect(read.equals(body)).toBe(true);
    } finally {
      await blobs.delete();
    }
  });
});
