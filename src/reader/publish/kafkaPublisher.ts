/**
 * Publisher on @platformatic/kafka (chosen by measurement, see docs/reader.md "Kafka client").
 * Works against plain Kafka, the Event Hubs emulator (SASL_PLAINTEXT + PLAIN) and Event Hubs
 * (SASL_SSL + PLAIN `$ConnectionString`, or OAUTHBEARER with a DefaultAzureCredential token), with
 * Microsoft's recommended client settings: the connection is src/shared/core/kafka.ts.
 */
import { defaultPartitioner, Producer } from '@platformatic/kafka';
import type { MessageToProduce, PartitionerContext, ProducerOptions } from '@platformatic/kafka';
import { kafkaClientOptions, type TokenSource } from '../../shared/core/kafka.js';
import type { ReaderConfig } from '../config.js';
import type { BrokerCheck } from './brokerCheck.js';
import { brokerError } from './brokerCheck.js';
import type { OutRecord, Publisher } from './publisher.js';

/** The shared connection options (src/shared/core/kafka.ts) plus what a publisher needs. */
export async function producerOptions(kafka: ReaderConfig['kafka'], credential?: TokenSource): Promise<ProducerOptions<Buffer, Buffer, string, Buffer>> {
  return {
    ...(await kafkaClientOptions(kafka, credential)),
    acks: -1,
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

  async send(records: OutRecord[]): Promise<void> {
    try {
      await this.producer.send({
        // The records as they are (the client copies what it needs into its own message objects and
        // never writes to ours). A tombstone's null value goes through as null: the client writes a
        // null record value; its message schema requires the property to be present, which it is.
        messages: records as unknown as MessageToProduce<Buffer, Buffer, string, Buffer>[],
      });
    } catch (err) {
      throw brokerError(this.kafka, err);
    }
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
