/** Kafka records as the sinks get them: the shape the Functions host builds from its trigger metadata. */
import { describe, expect, it } from '@jest/globals';
import { Consumer, Producer } from '@platformatic/kafka';
import { decodeBody } from '../../src/shared/events/decode.js';
import { batchInfo, toEventRecord, type KafkaMessage } from '../../src/worker/records.js';
import { serviceEnv, uniqueName } from '../helpers/services.js';
import { createTopic, deleteTopic } from './helpers.js';

async function roundTrip(topic: string): Promise<KafkaMessage[]> {
  const brokers = serviceEnv().kafkaBrokers;
  const producer = new Producer({ clientId: 'records-test', bootstrapBrokers: brokers, idempotent: true });
  await producer.send({
    messages: [
      {
        topic,
        partition: 0,
        key: Buffer.from('{"orderid":1}'),
        value: Buffer.from('{"op":"c"}'),
        headers: new Map([[Buffer.from('origin'), Buffer.from('reader')]]),
      },
      { topic, partition: 0, key: Buffer.from('{"orderid":1}') }, // a tombstone: no value
    ],
  });
  await producer.close();
  const consumer = new Consumer({ groupId: uniqueName('records'), clientId: 'records-test', bootstrapBrokers: brokers, autocommit: false, maxWaitTime: 200 });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
  const messages: KafkaMessage[] = [];
  for await (const message of stream) {
    messages.push(message);
    if (messages.length === 2) break;
  }
  await stream.close();
  await consumer.close(true);
  return messages;
}

describe('records', () => {
  it('gives the original bytes, the record key, the offset as offset and sequence number, the record time and the headers as properties', async () => {
    const topic = uniqueName('w_records');
    await createTopic(topic, 1);
    try {
      const [event, tombstone] = (await roundTrip(topic)) as [KafkaMessage, KafkaMessage];
      const record = toEventRecord(event);
      expect(record).toEqual({
        body: Buffer.from('{"op":"c"}'),
        partitionId: '0',
        offset: '0',
        sequenceNumber: '0',
        enqueuedTimeUtc: new Date(Number(event.timestamp)).toISOString(),
        properties: { origin: 'reader' },
        // the record key, which Debezium's events carry only there
        key: Buffer.from('{"orderid":1}'),
      });
      const empty = toEventRecord(tombstone);
      expect(empty).toMatchObject({ body: Buffer.alloc(0), offset: '1', sequenceNumber: '1' });
      expect(empty.properties).toBeUndefined();
      expect(decodeBody(empty.body)).toEqual({ kind: 'tombstone' });

      expect(
        batchInfo({ functionName: 'elasticsearchSink', namespace: 'ns.servicebus.windows.net', consumerGroup: 'g', topic }, [record, empty], 'inv-1'),
      ).toEqual({
        functionName: 'elasticsearchSink',
        invocationId: 'inv-1',
        namespace: 'ns.servicebus.windows.net',
        consumerGroup: 'g',
        eventHubName: topic,
        partitionId: '0',
        firstOffset: '0',
        lastOffset: '1',
      });
    } finally {
      await deleteTopic(topic);
    }
  });
});
