/**
 * The broker connection, checked and explained. `BrokerCheck` is what the reader asks before it creates
 * the slot (preflight) and periodically while streaming (so /readyz shows a broker that went away);
 * `brokerError` turns a Kafka client failure into an error that names the broker(s), the security
 * protocol and the likely fix, instead of the client's "metadata failed 4 times".
 */
import type { ReaderConfig } from '../config.js';
import { CdcError } from '../../shared/core/errors.js';
import { describeKafkaConnectError, type KafkaFailure, type KafkaSettings } from '../../shared/core/kafka.js';

export interface BrokerCheck {
  /**
   * Connects and authenticates (metadata from the broker, never from a cache), then fetches the
   * metadata of `topics`, creating them where the broker auto-creates topics. Rejects with a BrokerError.
   */
  check(topics: string[]): Promise<void>;
}

export type BrokerFailureCode = 'BROKER_UNREACHABLE' | 'BROKER_AUTH_FAILED' | 'BROKER_TOPIC_NOT_FOUND' | 'BROKER_REQUEST_FAILED';

/** A broker failure with a stable code and a message that names the broker and the fix; `cause` is the client's error. */
export class BrokerError extends CdcError {
  declare readonly code: BrokerFailureCode;

  constructor(code: BrokerFailureCode, message: string, options: { cause: unknown }) {
    // A broker can come back; start-up turns the lasting ones into a StartupError (preflight.ts).
    super(code, message, { canRetry: true, cause: options.cause });
  }
}

/** The topics preflight checks: the one topic; with a per-table template none (they are created on first send). */
export function brokerCheckTopics(config: Pick<ReaderConfig, 'topic' | 'topicTemplate'>): string[] {
  return config.topicTemplate === null ? [config.topic] : [];
}

const CODES: Record<KafkaFailure, BrokerFailureCode> = {
  unreachable: 'BROKER_UNREACHABLE',
  auth: 'BROKER_AUTH_FAILED',
  topic: 'BROKER_TOPIC_NOT_FOUND',
  request: 'BROKER_REQUEST_FAILED',
};

/** The client's failure explained by the one describer every component uses (src/shared/core/kafka.ts), with the reader's code. */
export function brokerError(kafka: KafkaSettings, err: unknown): BrokerError {
  const described = describeKafkaConnectError(err, kafka);
  return new BrokerError(CODES[described.failure], described.message, { cause: err });
}
