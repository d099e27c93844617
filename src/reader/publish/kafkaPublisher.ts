/**
 * Publisher on @platformatic/kafka (chosen by measurement, see docs/reader.md "Kafka client").
 * Works against plain Kafka, the Event Hubs emulator (SASL_PLAINTEXT + PLAIN) and Event Hubs
 * (SASL_SSL + PLAIN `$ConnectionString`, or OAUTHBEARER with a DefaultAzureCredential token), with
 * Microsoft's recommended client settings: the connection is src/shared/core/kafka.ts.
 */
import { defaultPartitioner, Producer, Writer } from '@platformatic/kafka';
import type { Broker, ClusterMetadata, Connection, PartitionerContext, ProducerOptions, ResponseParser } from '@platformatic/kafka';
import { kafkaClientOptions, type TokenSource } from '../../shared/core/kafka.js';
import type { ReaderConfig } from '../config.js';
import type { BrokerCheck } from './brokerCheck.js';
import { brokerError } from './brokerCheck.js';
import { CLIENT_PRODUCE_APIS, encodeProduceRequest, MAX_PRODUCE_VERSION, MIN_PRODUCE_VERSION, type TopicRecords } from './produceRequest.js';
import type { OutRecord, Publisher } from './publisher.js';

// acks=all: a batch is confirmed once every in-sync replica has it.
const ACKS_ALL = -1;
// How long the broker may wait for the replicas before answering a produce request (the client's default).
const PRODUCE_TIMEOUT_MS = 5_000;
const PRODUCE_API_KEY = 0;
const FIRST_FLEXIBLE_PRODUCE_VERSION = 9;
// The largest request body kept for reuse (`RequestScratch`); a larger one gets a buffer of its own.
const SCRATCH_MAX_BYTES = 4 * 1024 * 1024;

/** The shared connection options (src/shared/core/kafka.ts) plus what a publisher needs. */
export async function producerOptions(kafka: ReaderConfig['kafka'], credential?: TokenSource): Promise<ProducerOptions<Buffer, Buffer, string, Buffer>> {
  return {
    ...(await kafkaClientOptions(kafka, credential)),
    acks: ACKS_ALL,
    timeout: PRODUCE_TIMEOUT_MS,
    autocreateTopics: true,
    partitioner: partitionFor,
    serializers: { headerKey: (k?: string) => (k === undefined ? undefined : Buffer.from(k)) },
  };
}

let keylessNext = 0;

/**
 * The client's default partitioner (murmur2 of the key, as Kafka's Java client; keyless records spread
 * over the partitions), except that a topic the client knows to have one partition gets partition 0
 * without hashing: murmur2 was 3-4 % of the reader's CPU on one-partition topics. The client takes the
 * result modulo the partition count either way, so a key's partition is the default one whenever the
 * topic has more than one.
 */
export function partitionFor(message: { topic: string }, key: Buffer | undefined, context: PartitionerContext): number {
  if (context.metadata?.topics.get(message.topic)?.partitionsCount === 1) return 0;
  if (key !== undefined) return defaultPartitioner(message as never, key);
  return keylessNext++ & 0x7fffffff;
}

// Metadata attempts for a topic: a broker that auto-creates topics answers "unknown" until it has.
const TOPIC_METADATA_RETRIES = 10;

export class KafkaPublisher implements Publisher, BrokerCheck {
  private constructor(
    private readonly kafka: ReaderConfig['kafka'],
    private readonly producer: Producer<Buffer, Buffer, string, Buffer>,
  ) {}

  static async create(kafka: ReaderConfig['kafka'], credential?: TokenSource): Promise<KafkaPublisher> {
    return new KafkaPublisher(kafka, new Producer(await producerOptions(kafka, credential)));
  }

  /** The Produce version for this broker: the highest that both it and the client implement. */
  private produceVersion?: number;
  /** A reused request-body buffer per partition leader (`RequestScratch`). */
  private readonly scratches = new Map<number, RequestScratch>();

  /**
   * One produce request per partition leader (one leader on a one-broker cluster or Event Hubs), its
   * body encoded by `encodeProduceRequest` in one buffer, sent on the client's own connection to that
   * broker (authenticated and TLS as configured); the client parses the response and turns a partition's
   * error code into an error. The client's `Producer.send` is not used for the records: its per-record
   * encoding was the largest cost of the reader after its own (docs/reader.md, "Benchmark", run 13).
   * With several leaders the requests go out together and the send settles once all have answered, as
   * the client's own send does; the caller's retry of a failed send therefore never overlaps an attempt
   * still in flight.
   */
  async send(records: OutRecord[]): Promise<void> {
    try {
      const metadata = await this.producer.metadata({ topics: [...new Set(records.map((r) => r.topic))], autocreateTopics: true });
      const version = await this.version();
      const timestamp = BigInt(Date.now());
      const results = await Promise.allSettled(
        [...byLeader(records, metadata)].map(async ([leader, topics]) => {
          const broker = metadata.brokers.get(leader);
          if (!broker) throw new Error(`the broker metadata has no broker ${leader}, the leader of a partition`);
          const connection = await this.connection(broker);
          const scratch = this.scratchFor(leader);
          await produce(connection, version, () =>
            encodeProduceRequest(version, ACKS_ALL, PRODUCE_TIMEOUT_MS, topics, timestamp, (size) => scratch.take(size)),
          );
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        // A new leader, a restarted broker: the next attempt asks the broker again.
        this.producer.clearMetadata();
        throw failed.reason;
      }
    } catch (err) {
      throw brokerError(this.kafka, err);
    }
  }

  private scratchFor(leader: number): RequestScratch {
    let scratch = this.scratches.get(leader);
    if (!scratch) this.scratches.set(leader, (scratch = new RequestScratch()));
    return scratch;
  }

  private async version(): Promise<number> {
    if (this.produceVersion === undefined) {
      const produce = (await this.producer.listApis()).find((api) => api.apiKey === PRODUCE_API_KEY);
      const version = Math.min(produce?.maxVersion ?? -1, MAX_PRODUCE_VERSION);
      if (!produce || version < Math.max(produce.minVersion, MIN_PRODUCE_VERSION))
        throw new Error(
          `the broker supports Produce versions ${produce ? `${produce.minVersion}-${produce.maxVersion}` : 'none'}, the client ${MIN_PRODUCE_VERSION}-${MAX_PRODUCE_VERSION}`,
        );
      this.produceVersion = version;
    }
    return this.produceVersion;
  }

  private connection(broker: Broker): Promise<Connection> {
    return new Promise((resolve, reject) =>
      this.producer.connections.get(broker, (err, connection) =>
        connection ? resolve(connection) : reject(err ?? new Error(`no connection to broker ${broker.host}:${broker.port}`)),
      ),
    );
  }

  async partitions(topic: string): Promise<number> {
    try {
      const metadata = await this.producer.metadata({ topics: [topic], autocreateTopics: true, retries: TOPIC_METADATA_RETRIES });
      const count = metadata.topics.get(topic)?.partitionsCount;
      if (count === undefined || count < 1) throw new Error(`the broker reports no partitions for topic ${topic}`);
      return count;
    } catch (err) {
      throw brokerError(this.kafka, err);
    }
  }

  async check(topics: string[]): Promise<void> {
    try {
      await this.producer.metadata({ topics: [], forceUpdate: true });
      if (topics.length > 0) await this.producer.metadata({ topics, autocreateTopics: true, retries: TOPIC_METADATA_RETRIES });
    } catch (err) {
      throw brokerError(this.kafka, err);
    }
  }

  async close(): Promise<void> {
    await this.producer.close();
  }
}

/** The records grouped by their partition's leader, then by topic and partition (ascending, as the client orders them), each in send order. */
export function byLeader(records: OutRecord[], metadata: ClusterMetadata): Map<number, TopicRecords[]> {
  const leaders = new Map<number, Map<string, Map<number, OutRecord[]>>>();
  for (const record of records) {
    const topic = metadata.topics.get(record.topic);
    if (!topic) throw new Error(`the broker metadata has no topic ${record.topic}`);
    // As the client: the record's own partition, else the partitioner's; modulo the partition count.
    const partition = (record.partition ?? partitionFor(record, record.key, { metadata })) % topic.partitionsCount;
    const leader = topic.partitions[partition]?.leader;
    if (leader === undefined) throw new Error(`the broker metadata has no leader for partition ${partition} of topic ${record.topic}`);
    let topics = leaders.get(leader);
    if (!topics) leaders.set(leader, (topics = new Map<string, Map<number, OutRecord[]>>()));
    let partitions = topics.get(record.topic);
    if (!partitions) topics.set(record.topic, (partitions = new Map<number, OutRecord[]>()));
    const list = partitions.get(partition);
    if (list) list.push(record);
    else partitions.set(partition, [record]);
  }
  const out = new Map<number, TopicRecords[]>();
  for (const [leader, topics] of leaders)
    out.set(
      leader,
      [...topics].map(([topic, partitions]) => ({
        topic,
        partitions: [...partitions].sort(([a], [b]) => a - b).map(([partition, records]) => ({ partition, records })),
      })),
    );
  return out;
}

/** One Produce request on `connection`: the client adds the header and size, and parses the answer (an error for any partition's error code). */
function produce(connection: Connection, version: number, body: () => Buffer): Promise<void> {
  const parse = (CLIENT_PRODUCE_APIS as Record<number, { parseResponse: ResponseParser<unknown> } | undefined>)[version]?.parseResponse;
  if (!parse) return Promise.reject(new Error(`no response parser for Produce version ${version}`));
  const flexible = version >= FIRST_FLEXIBLE_PRODUCE_VERSION;
  return new Promise((resolve, reject) =>
    connection.send(
      PRODUCE_API_KEY,
      version,
      () => Writer.create().append(body()),
      parse,
      flexible,
      flexible,
      (err) => (err ? reject(err) : resolve()),
    ),
  );
}

/**
 * A request-body buffer reused from one request to the next on one connection. Safe because a body
 * is never read once the next one is encoded: the publisher has one request per leader in flight and
 * the next send starts after every one has answered, and the client copies the body into its own
 * request buffer (header, body, `Buffer.concat` in `Connection.send`) in the step that asks for it.
 * Why: a fresh ~1 MB body per request is external memory that only a collection frees, and with less
 * garbage per row (this encoder) collections came less often and the snapshot's peak RSS rose
 * (docs/reader.md, "Run 13").
 */
export class RequestScratch {
  private buffer = Buffer.alloc(0);

  take(size: number): Buffer {
    if (size > SCRATCH_MAX_BYTES) return Buffer.allocUnsafe(size);
    if (this.buffer.length < size) this.buffer = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX_BYTES, Math.max(size, 2 * this.buffer.length)));
    return this.buffer.subarray(0, size);
  }
}
