/**
 * The broker connection, checked and explained. `BrokerCheck` is what the reader asks before it creates
 * the slot (preflight) and periodically while streaming (so /readyz shows a broker that went away);
 * `brokerError` turns a Kafka client failure into an error that names the broker(s), the security
 * protocol and the likely fix, instead of the client's "metadata failed 4 times".
 */
import type { ReaderConfig } from '../config.js';

export interface BrokerCheck {
  /**
   * Connects and authenticates (metadata from the broker, never from a cache), then fetches the
   * metadata of `topics`, creating them where the broker auto-creates topics. Rejects with a BrokerError.
   */
  check(topics: string[]): Promise<void>;
}

export type BrokerFailureCode = 'BROKER_UNREACHABLE' | 'BROKER_AUTH_FAILED' | 'BROKER_TOPIC_NOT_FOUND' | 'BROKER_REQUEST_FAILED';

/** A broker failure with a stable code and a message that names the broker and the fix; `cause` is the client's error. */
export class BrokerError extends Error {
  override readonly name = 'BrokerError';
  constructor(
    readonly code: BrokerFailureCode,
    message: string,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

/** The topics preflight checks: the one topic; with a per-table template none (they are created on first send). */
export function brokerCheckTopics(config: Pick<ReaderConfig, 'topic' | 'topicTemplate'>): string[] {
  return config.topicTemplate === null ? [config.topic] : [];
}

// Network failures of the socket itself, and the Kafka client's wrappers of them.
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
const CLIENT_NETWORK_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT']);
// Kafka protocol errors (apiId) meaning: this listener does not do SASL, or not this mechanism.
const SASL_NOT_OFFERED = new Set(['ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM']);
const NOT_AUTHORIZED = new Set(['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);

/**
 * The error and everything it wraps (`errors` of an aggregate, `cause`), depth-first. Duck-typed, not
 * `instanceof Error`: socket errors come from Node's own realm, which differs from the caller's under
 * a VM context (Jest).
 */
function* chain(err: unknown, depth = 0): Generator<Error & { code?: unknown; apiId?: unknown }> {
  if (typeof err !== 'object' || err === null || typeof (err as { message?: unknown }).message !== 'string' || depth > 10) return;
  yield err as Error;
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner)) for (const e of inner) yield* chain(e, depth + 1);
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined) yield* chain(cause, depth + 1);
}

export function brokerError(kafka: ReaderConfig['kafka'], err: unknown): BrokerError {
  const all = [...chain(err)];
  // The innermost messages say what happened ("connect ECONNREFUSED 127.0.0.1:9092"); the wrappers repeat it.
  const leaves = all.filter((e) => e.cause === undefined && !Array.isArray((e as { errors?: unknown }).errors)).map((e) => e.message);
  const reason = [...new Set((leaves.length > 0 ? leaves : [String(err)]).map((m) => m.replace(/\.$/, '')))].slice(0, 3).join('; ');
  const apiIds = new Set(all.map((e) => e.apiId).filter((x): x is string => typeof x === 'string'));
  const has = (set: Set<string>) => [...set].some((id) => apiIds.has(id));
  const brokers = kafka.brokers.join(',');
  const eventHubs = kafka.brokers.some((b) => /\.servicebus\.windows\.net(:\d+)?$/i.test(b));
  const sasl = kafka.securityProtocol === 'PLAINTEXT' ? '' : ` and KAFKA_SASL_MECHANISM=${kafka.saslMechanism}`;
  const as = `KAFKA_SECURITY_PROTOCOL=${kafka.securityProtocol}${sasl}`;
  const user = kafka.saslMechanism === 'PLAIN' ? `KAFKA_SASL_USERNAME=${kafka.saslUsername} and KAFKA_SASL_PASSWORD` : 'the Entra ID token (OAUTHBEARER)';
  const eventHubsFix =
    'Azure Event Hubs: the broker is <namespace>.servicebus.windows.net:9093 (port 9093), KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=PLAIN, ' +
    'KAFKA_SASL_USERNAME=$ConnectionString and KAFKA_SASL_PASSWORD the namespace connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...), ' +
    'or just EVENTHUBS_CONNECTION_STRING; the namespace needs the Standard tier or above';
  const kafkaFix = `plain Kafka: KAFKA_BROKERS must name a listener of the broker (host:port as in its advertised.listeners) whose security protocol is ${kafka.securityProtocol}`;
  const fix = eventHubs ? `${eventHubsFix}.` : `${kafkaFix}; ${eventHubsFix}.`;

  const fail = (code: BrokerFailureCode, message: string) => new BrokerError(code, message, { cause: err });
  if (all.some((e) => e.code === 'PLT_KFK_AUTHENTICATION') || has(SASL_NOT_OFFERED) || apiIds.has('SASL_AUTHENTICATION_FAILED')) {
    if (has(SASL_NOT_OFFERED)) {
      return fail(
        'BROKER_AUTH_FAILED',
        `the Kafka broker(s) ${brokers} do not accept SASL ${kafka.saslMechanism} on this listener (${as}): ${reason}. ` +
          `Fix: KAFKA_SECURITY_PROTOCOL=PLAINTEXT if this listener needs no authentication, or the broker's SASL listener; ${fix}`,
      );
    }
    return fail(
      'BROKER_AUTH_FAILED',
      `the Kafka broker(s) ${brokers} refused the credentials (${as}, ${user}): ${reason}. ` +
        `Fix: check the SASL user and password; ${eventHubsFix} (with a policy that has the Send claim).`,
    );
  }
  if (has(NOT_AUTHORIZED)) {
    return fail(
      'BROKER_AUTH_FAILED',
      `the Kafka broker(s) ${brokers} authenticated the reader but do not allow it to write (${as}): ${reason}. ` +
        'Fix: grant the reader Write (and Describe) on the topic; Event Hubs: a shared access policy with the Send claim.',
    );
  }
  if (all.some((e) => /^Unknown topic/.test(e.message))) {
    return fail(
      'BROKER_TOPIC_NOT_FOUND',
      `the topic does not exist on the Kafka broker(s) ${brokers} and was not created (${reason}). ` +
        'Fix: create it (Event Hubs: an event hub named as CDC_TOPIC in the namespace; Event Hubs does not create hubs on demand), ' +
        'or enable auto.create.topics.enable on the broker.',
    );
  }
  if (all.some((e) => /TLS handshake failed|Broker requires TLS/i.test(e.message))) {
    return fail(
      'BROKER_UNREACHABLE',
      `TLS with the Kafka broker(s) ${brokers} failed (${as}): ${reason}. ` +
        `Fix: KAFKA_SECURITY_PROTOCOL must match the listener: SASL_SSL only on a TLS listener, SASL_PLAINTEXT or PLAINTEXT on one without TLS; ${fix}`,
    );
  }
  if (
    all.some(
      (e) => (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || CLIENT_NETWORK_CODES.has(e.code))) || /Cannot connect to any broker/.test(e.message),
    )
  ) {
    return fail('BROKER_UNREACHABLE', `cannot reach the Kafka broker(s) ${brokers} (${as}): ${reason}. Fix: check the host and port; ${fix}`);
  }
  return fail('BROKER_REQUEST_FAILED', `the Kafka broker(s) ${brokers} failed the request (${as}): ${reason}.`);
}
