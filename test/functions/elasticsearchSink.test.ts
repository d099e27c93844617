/**
 * The elasticsearchSink handler with an InvocationContext and batches shaped as the Event Hubs
 * trigger delivers them, against real Elasticsearch and a Blob dead-letter container (Azurite).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Client } from '@elastic/elasticsearch';
import { BlobDeadLetterStore, BlobPointerResolver } from '../../src/shared/deadletter/blobDeadLetterStore.js';
import type { DeadLetterDocument } from '../../src/shared/deadletter/types.js';
import { BatchProcessingError } from '../../src/shared/core/errors.js';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { sinkTriggerOptions } from '../../src/functions/host/registerSinks.js';
import { sinkDefinition } from '../../src/shared/sinks/registry.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { serviceEnv, uniqueName } from '../helpers/services.js';
import { cleanup, getSource, testClient, testRoutes, testSink, uniqueIndex } from '../shared/esTestKit.js';
import { changeEvent, hostBody, order } from '../helpers/events.js';
import { triggerBatch } from './triggerBatch.js';

const client = testClient();
const index = uniqueIndex('es_handler');
const indices = [index, `${index}-holding`, `${index}-control`];
let container: ContainerClient;

async function deadLetters(): Promise<DeadLetterDocument[]> {
  const docs: DeadLetterDocument[] = [];
  for await (const blob of container.listBlobsFlat()) {
    const buffer = await container.getBlobClient(blob.name).downloadToBuffer();
    docs.push(JSON.parse(buffer.toString()) as DeadLetterDocument);
  }
  return docs;
}

beforeAll(() => {
  container = BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString).getContainerClient(uniqueName('dlq').replaceAll('_', '-'));
});
afterAll(async () => {
  await container.deleteIfExists();
  await cleanup(client, indices);
  await client.close();
});

const handler = () =>
  createEventHubBatchHandler(
    lazy(() => ({
      sink: testSink(client, testRoutes(index), { controlIndex: `${index}-control` }),
      deadLetters: new BlobDeadLetterStore(container),
      pointers: new BlobPointerResolver(BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString)),
    })),
  );

describe('elasticsearchSink handler', () => {
  it('writes a mixed batch of object, string, Buffer and {schema,payload} bodies and dead-letters the malformed ones with their positions', async () => {
    // Prepare
    const bodies = [
      hostBody(changeEvent({ after: order(1), lsn: 10 }), 'object'),
      hostBody(changeEvent({ after: order(2), lsn: 20 }), 'string'),
      Buffer.from('{"truncated'), // bytes that are not JSON
      hostBody(changeEvent({ after: order(3), lsn: 30 }), 'buffer'),
      hostBody(changeEvent({ after: order(4), lsn: 40 }), 'schemaPayload'),
      123, // "123" parsed by the host: JSON, not an envelope
      hostBody(changeEvent({ table: 'public.unrouted', after: { id: 1 }, key: { id: 1 } })),
      '', // Kafka tombstone
    ];
    const { messages, context, logs } = triggerBatch(bodies, { partitionId: '7', firstOffset: 1000, firstSequenceNumber: 50 });

    // Act
    const report = await handler()(messages, context);
    await client.indices.refresh({ index });

    // Assess
    expect(report).toMatchObject({ total: 8, ok: 4, skipped: 1, deadLettered: 3, retried: 0 });
    for (const id of ['1', '2', '3', '4']) expect(await getSource(client, index, id)).toBeDefined();
    const letters = (await deadLetters()).sort((a, b) => Number(a.sequenceNumber) - Number(b.sequenceNumber));
    expect(letters.map((l) => [l.partitionId, l.offset, l.sequenceNumber, l.bodyType])).toEqual([
      ['7', '2024', '52', 'buffer'],
      ['7', '3560', '55', 'json'],
      ['7', '4072', '56', 'json'],
    ]);
    expect(Buffer.from(letters[0]!.body, 'base64').toString()).toBe('{"truncated');
    expect(letters[0]).toMatchObject({
      functionName: 'elasticsearchSink',
      consumerGroup: 'elasticsearch-sink',
      eventHubName: 'pgcdc',
      reason: expect.stringMatching(/not JSON/) as unknown as string,
    });
    expect(letters[2]?.reason).toMatch(/No route for table public.unrouted/);
    expect(logs.some((l) => l.includes('3 dead-lettered'))).toBe(true);
  });

  it('overwrites rather than duplicates dead-letters when the host redelivers the batch', async () => {
    const { messages, context } = triggerBatch([Buffer.from('garbage')], { partitionId: '8', firstOffset: 1, firstSequenceNumber: 1 });
    await handler()(messages, context);
    const again = triggerBatch([Buffer.from('garbage')], { partitionId: '8', firstOffset: 1, firstSequenceNumber: 1, retryCount: 3 });
    await handler()(again.messages, again.context);
    expect(again.logs.some((l) => l.startsWith('warning: elasticsearchSink: retry 3 of partition 8'))).toBe(true);
    expect((await deadLetters()).filter((l) => l.partitionId === '8')).toHaveLength(1);
  });

  it('names that ignore which hub they came from: a recreated hub restarting at offset 1 does not overwrite the old hub dead-letter', async () => {
    const names = async () => {
      const found: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: 'test.servicebus.windows.net/pgcdc/elasticsearch-sink/elasticsearchSink/11/' }))
        found.push(blob.name);
      return found.sort();
    };
    const old = triggerBatch([Buffer.from('garbage from the old hub')], { partitionId: '11', firstOffset: 1, firstSequenceNumber: 1 });
    await handler()(old.messages, old.context);
    // The hub is deleted and created again: offsets and sequence numbers start over, enqueued times do not.
    const recreated = () =>
      triggerBatch([Buffer.from('garbage from the new hub')], {
        partitionId: '11',
        firstOffset: 1,
        firstSequenceNumber: 1,
        firstEnqueuedMs: 1_800_000_000_000,
      });
    await handler()(recreated().messages, recreated().context);
    const again = recreated();
    await handler()(again.messages, again.context); // a redelivery still overwrites its own dead-letter

    expect(await names()).toEqual([
      'test.servicebus.windows.net/pgcdc/elasticsearch-sink/elasticsearchSink/11/20231114T221320.000Z_00000000000000000001_1.json',
      'test.servicebus.windows.net/pgcdc/elasticsearch-sink/elasticsearchSink/11/20270115T080000.000Z_00000000000000000001_1.json',
    ]);
    const bodies = (await deadLetters()).filter((l) => l.partitionId === '11').map((l) => Buffer.from(l.body, 'base64').toString());
    expect(bodies.sort()).toEqual(['garbage from the new hub', 'garbage from the old hub']);
    expect((await deadLetters()).find((l) => l.partitionId === '11')?.namespace).toBe('test.servicebus.windows.net');
  });

  it('names that ignore which batch they came from: records beyond short trigger metadata keep their dead-letters across batches, with a warning', async () => {
    // Each batch's first record is placed (its own offset); the metadata says nothing about the second.
    const shortBatch = (invocationId: string, body: string, firstOffset: number) => {
      const b = triggerBatch([Buffer.from(`${body} 0`), Buffer.from(`${body} 1`)], {
        partitionId: '12',
        invocationId,
        firstOffset,
        firstSequenceNumber: firstOffset,
      });
      const meta = b.context.triggerMetadata as Record<string, unknown[]>;
      for (const name of ['offsetArray', 'sequenceNumberArray', 'enqueuedTimeUtcArray']) meta[name] = meta[name]!.slice(0, 1);
      return b;
    };
    const first = shortBatch('inv-a', 'first batch', 100);
    await handler()(first.messages, first.context);
    const second = shortBatch('inv-b', 'second batch', 101);
    await handler()(second.messages, second.context);

    const letters = (await deadLetters()).filter((l) => l.partitionId === '12');
    expect(letters.map((l) => Buffer.from(l.body, 'base64').toString()).sort()).toEqual(['first batch 0', 'first batch 1', 'second batch 0', 'second batch 1']);
    expect(letters.map((l) => l.unplacedId ?? 'placed').sort()).toEqual(['inv-a-1', 'inv-b-1', 'placed', 'placed']);
    expect(second.logs.some((l) => l.startsWith('warning: elasticsearchSink: 1 of 2 records of partition 12 have no offset'))).toBe(true);
  });

  it('throws a retryable error carrying the cause when Elasticsearch is down, after storing dead-letters', async () => {
    const down = new Client({ node: 'http://127.0.0.1:9', maxRetries: 0, requestTimeout: 500 });
    const h = createEventHubBatchHandlerFor(down);
    const { messages, context } = triggerBatch([hostBody(changeEvent({ lsn: 5 })), 'not json'], { partitionId: '9' });
    const error = await h(messages, context).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchProcessingError);
    expect((error as BatchProcessingError).canRetry).toBe(true);
    expect((await deadLetters()).filter((l) => l.partitionId === '9')).toHaveLength(1);
    await down.close();
  });

  it('writes an oversized event the reader sent as a pointer to a Blob', async () => {
    // Prepare: the reader stored the full event in its container and published a pointer.
    const full = changeEvent({ after: order(77, { city: 'c'.repeat(3000) }), lsn: 7700 });
    await container.createIfNotExists();
    const blob = 'pgcdc/retail/orders_info/7700.json';
    const text = JSON.stringify(full);
    await container.getBlockBlobClient(blob).upload(text, Buffer.byteLength(text));
    const pointer = { ...full, before: null, after: null, deadletter: { container: container.containerName, blob, bytes: text.length } };
    const { messages, context } = triggerBatch([Buffer.from(JSON.stringify(pointer))], { partitionId: '10' });
    // Act
    const report = await handler()(messages, context);
    await client.indices.refresh({ index });
    // Assess
    expect(report.ok).toBe(1);
    expect((await getSource(client, index, '77'))?.source.city).toHaveLength(3000);
    await container.deleteBlob(blob);
  });

  it('fails naming the variable when configuration is missing', async () => {
    const { handler } = sinkTriggerOptions(sinkDefinition('elasticsearchSink'), {});
    const { messages, context } = triggerBatch([hostBody(changeEvent())]);
    await expect(handler(messages, context)).rejects.toThrow(/ELASTICSEARCH_URL/);
  });
});

function createEventHubBatchHandlerFor(c: Client) {
  return createEventHubBatchHandler(
    lazy(() => ({ sink: testSink(c, testRoutes(index), { ensureTemplates: false }), deadLetters: new BlobDeadLetterStore(container) })),
  );
}
