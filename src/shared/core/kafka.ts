/**
 * The one way a component connects to Kafka: plain Kafka, the Event Hubs emulator (SASL_PLAINTEXT +
 * PLAIN) and Event Hubs' Kafka endpoint (SASL_SSL + PLAIN with `$ConnectionString`, or OAUTHBEARER
 * with a `DefaultAzureCredential` token), with Microsoft's recommended client settings. The settings
 * are read from the same variables by every component (the reader publishes, the worker consumes),
 * and a connection failure is turned into an error naming the setting to fix.
 */
import { Admin, type BaseOptions } from '@platformatic/kafka';
import { getInt, getOneOf, getOptionalString, getString, type Env } from './env.js';
import { CdcError, ConfigError } from './errors.js';

export type SecurityProtocol = 'PLAINTEXT' | 'SASL_PLAINTEXT' | 'SASL_SSL';
export type SaslMechanism = 'PLAIN' | 'OAUTHBEARER';

export interface KafkaSettings {
  brokers: string[];
  /** The setting the brokers came from (`KAFKA_BROKERS` or `EVENTHUBS_CONNECTION_STRING`), for messages. */
  brokersSetting: 'KAFKA_BROKERS' | 'EVENTHUBS_CONNECTION_STRING';
  clientId: string;
  securityProtocol: SecurityProtocol;
  saslMechanism: SaslMechanism;
  saslUsername: string;
  saslPassword: string | undefined;
  /** The setting the SASL PLAIN password came from, for messages. */
  saslPasswordSetting: 'KAFKA_SASL_PASSWORD' | 'EVENTHUBS_CONNECTION_STRING';
  oauthScope: string | undefined;
  requestTimeoutMs: number;
  metadataMaxAgeMs: number;
}

function parseBrokers(raw: string, variable: string): string[] {
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0 || list.some((b) => !/^[^\s:]+:\d{1,5}$/.test(b))) throw new ConfigError(variable, 'host:port[,host:port...]', raw);
  return list;
}

/** Event Hubs connection string → the namespace's Kafka endpoint. */
function brokersFromConnectionString(cs: string): string[] {
  const m = /Endpoint=sb:\/\/([^/;]+)/i.exec(cs);
  if (!m)
    throw new ConfigError('EVENTHUBS_CONNECTION_STRING', 'an Event Hubs connection string with Endpoint=sb://<namespace>.servicebus.windows.net/', cs, {
      secret: true,
    });
  const host = m[1]!;
  return [host.includes(':') ? host : `${host}:9093`];
}

/**
 * `KAFKA_BROKERS` (or the namespace of `EVENTHUBS_CONNECTION_STRING`), `KAFKA_SECURITY_PROTOCOL`,
 * `KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`/`KAFKA_SASL_PASSWORD`, `KAFKA_OAUTH_SCOPE`,
 * `KAFKA_CLIENT_ID` (default: the component's own), `KAFKA_REQUEST_TIMEOUT_MS`, `KAFKA_METADATA_MAX_AGE_MS`.
 */
export function kafkaSettingsFromEnv(env: Env, defaults: { clientId: string }): KafkaSettings {
  const ehConnectionString = getOptionalString(env, 'EVENTHUBS_CONNECTION_STRING');
  const brokersRaw = getOptionalString(env, 'KAFKA_BROKERS');
  let brokers: string[];
  if (brokersRaw) brokers = parseBrokers(brokersRaw, 'KAFKA_BROKERS');
  else if (ehConnectionString) brokers = brokersFromConnectionString(ehConnectionString);
  else throw new ConfigError('KAFKA_BROKERS', 'host:port[,host:port...] (or set EVENTHUBS_CONNECTION_STRING)', undefined);

  const securityProtocol = getOneOf<SecurityProtocol>(
    env,
    'KAFKA_SECURITY_PROTOCOL',
    ['PLAINTEXT', 'SASL_PLAINTEXT', 'SASL_SSL'],
    ehConnectionString ? 'SASL_SSL' : 'PLAINTEXT',
  );
  const saslMechanism = getOneOf<SaslMechanism>(env, 'KAFKA_SASL_MECHANISM', ['PLAIN', 'OAUTHBEARER'], 'PLAIN');
  const explicitPassword = getOptionalString(env, 'KAFKA_SASL_PASSWORD');
  const saslPassword = explicitPassword ?? ehConnectionString;
  if (securityProtocol !== 'PLAINTEXT' && saslMechanism === 'PLAIN' && !saslPassword) {
    throw new ConfigError(
      'KAFKA_SASL_PASSWORD',
      `a password (for Event Hubs: the namespace connection string) when KAFKA_SECURITY_PROTOCOL=${securityProtocol} and KAFKA_SASL_MECHANISM=PLAIN`,
      undefined,
    );
  }
  return {
    brokers,
    brokersSetting: brokersRaw ? 'KAFKA_BROKERS' : 'EVENTHUBS_CONNECTION_STRING',
    clientId: getString(env, 'KAFKA_CLIENT_ID', defaults.clientId),
    securityProtocol,
    saslMechanism,
    saslUsername: getString(env, 'KAFKA_SASL_USERNAME', '$ConnectionString'),
    saslPassword,
    saslPasswordSetting: explicitPassword === undefined && ehConnectionString !== undefined ? 'EVENTHUBS_CONNECTION_STRING' : 'KAFKA_SASL_PASSWORD',
    oauthScope: getOptionalString(env, 'KAFKA_OAUTH_SCOPE'),
    // Event Hubs: request.timeout.ms >= 20000 (60000 recommended); idle connections are closed at
    // 240 s, so metadata (and with it the connections) is refreshed every 180 s.
    requestTimeoutMs: getInt(env, 'KAFKA_REQUEST_TIMEOUT_MS', 60_000, { min: 20_000, max: 600_000 }),
    metadataMaxAgeMs: getInt(env, 'KAFKA_METADATA_MAX_AGE_MS', 180_000, { min: 1_000, max: 3_600_000 }),
  };
}

/** Entra ID scope of an Event Hubs namespace: `https://<host>/.default`. */
export function eventHubsScope(broker: string): string {
  const host = broker.replace(/:\d+$/, '');
  return `https://${host}/.default`;
}

/** What OAUTHBEARER needs from a credential (`DefaultAzureCredential` by default). */
export type TokenSource = { getToken(scope: string): Promise<{ token: string } | null> };

/** Thrown by the OAUTHBEARER token provider: no Entra ID token for the scope. */
export class KafkaTokenError extends CdcError {
  constructor(scope: string, cause?: unknown) {
    super('KAFKA_OAUTH_TOKEN', `no Entra ID token for ${scope}`, { canRetry: true, cause });
  }
}

/**
 * The connection part of every client's options (producer, consumer): brokers, client id,
 * Microsoft's timeouts, TLS and SASL. Each component adds its own (acks, groups, serialisers).
 */
export async function kafkaClientOptions(settings: KafkaSettings, credential?: TokenSource): Promise<BaseOptions> {
  const opts: BaseOptions = {
    clientId: settings.clientId,
    bootstrapBrokers: settings.brokers,
    requestTimeout: settings.requestTimeoutMs,
    connectTimeout: 30_000,
    metadataMaxAge: settings.metadataMaxAgeMs,
    retries: 3,
    retryDelay: 500,
  };
  if (settings.securityProtocol === 'SASL_SSL') opts.tls = {};
  if (settings.securityProtocol !== 'PLAINTEXT') {
    if (settings.saslMechanism === 'PLAIN') {
      opts.sasl = { mechanism: 'PLAIN', username: settings.saslUsername, password: settings.saslPassword ?? '' };
    } else {
      const scope = settings.oauthScope ?? eventHubsScope(settings.brokers[0]!);
      let cred = credential;
      if (!cred) {
        const { DefaultAzureCredential } = await import('@azure/identity');
        cred = new DefaultAzureCredential();
      }
      const source = cred;
      opts.sasl = {
        mechanism: 'OAUTHBEARER',
        token: async () => {
          let t: { token: string } | null;
          try {
            t = await source.getToken(scope);
          } catch (error) {
            throw new KafkaTokenError(scope, error);
          }
          if (!t) throw new KafkaTokenError(scope);
          return t.token;
        },
      };
    }
  }
  return opts;
}

/** What kind of failure: a broker out of reach, refused credentials or rights, a missing topic, or another request failure. */
export type KafkaFailure = 'unreachable' | 'auth' | 'topic' | 'request';

/** A connection failure that names the setting to fix; never carries a secret in its message. */
export class KafkaConnectError extends CdcError {
  readonly variable: string;
  readonly failure: KafkaFailure;

  constructor(failure: KafkaFailure, variable: string, message: string, cause: unknown) {
    super('KAFKA_CONNECT_FAILED', message, { canRetry: true, cause });
    this.failure = failure;
    this.variable = variable;
  }
}

/**
 * Every error in a chain: `cause`s and the `errors` of aggregates (the Kafka client nests both).
 * Duck-typed, not `instanceof Error`: socket errors come from Node's own realm, which differs from the
 * caller's under a VM context (Jest).
 */
function errorChain(error: unknown, out: unknown[] = [], depth = 0): unknown[] {
  if (error === undefined || error === null || depth > 8) return out;
  out.push(error);
  if (typeof error === 'object') {
    const { cause, errors } = error as { cause?: unknown; errors?: unknown };
    if (Array.isArray(errors)) for (const e of errors) errorChain(e, out, depth + 1);
    errorChain(cause, out, depth + 1);
  }
  return out;
}

const field = (e: unknown, name: 'code' | 'message' | 'apiId'): string => {
  const v = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v : '';
};

const NETWORK = /ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|Cannot connect to any broker/;
// Kafka protocol errors (apiId) meaning: this listener does not do SASL, or not this mechanism.
const SASL_NOT_OFFERED = new Set(['ILLEGAL_SASL_STATE', 'UNSUPPORTED_SASL_MECHANISM']);
const NOT_AUTHORIZED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
]);

/**
 * The one explanation of a Kafka client failure (nested `MultipleErrors`, `NetworkError`s,
 * `AuthenticationError`s, protocol errors) for every component: it names the broker(s), the security
 * protocol, the setting to fix and the likely fix (Event Hubs' endpoint and SASL settings, or a plain
 * Kafka listener). `topic` names the topic's setting when the broker answered but does not have it.
 */
export function describeKafkaConnectError(error: unknown, settings: KafkaSettings, topic?: { name: string; setting: string }): KafkaConnectError {
  const chain = errorChain(error);
  const has = (test: (e: unknown) => boolean) => chain.find(test);
  const apiIds = new Set(chain.map((e) => field(e, 'apiId')).filter(Boolean));
  const hasApi = (set: Set<string>) => [...set].some((id) => apiIds.has(id));
  // The innermost messages say what happened ("connect ECONNREFUSED 127.0.0.1:9092"); the wrappers repeat it.
  const leaves = chain
    .filter((e) => typeof e === 'object' && e !== null && (e as { cause?: unknown }).cause === undefined && !Array.isArray((e as { errors?: unknown }).errors))
    .map((e) => field(e, 'message').replace(/\.$/, ''))
    .filter(Boolean);
  const reason = [...new Set(leaves.length > 0 ? leaves : [String(error)])].slice(0, 3).join('; ');
  const brokers = settings.brokers.join(',');
  const as = `KAFKA_SECURITY_PROTOCOL=${settings.securityProtocol}${settings.securityProtocol === 'PLAINTEXT' ? '' : ` and KAFKA_SASL_MECHANISM=${settings.saslMechanism}`}`;
  const eventHubsFix =
    'Azure Event Hubs: the broker is <namespace>.servicebus.windows.net:9093 (port 9093), KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=PLAIN, ' +
    'KAFKA_SASL_USERNAME=$ConnectionString and KAFKA_SASL_PASSWORD the namespace connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=...), ' +
    'or just EVENTHUBS_CONNECTION_STRING; the namespace needs the Standard tier or above';
  const eventHubs = settings.brokers.some((b) => /\.servicebus\.windows\.net(:\d+)?$/i.test(b));
  const kafkaFix = `plain Kafka: ${settings.brokersSetting} must name a listener of the broker (host:port as in its advertised.listeners) whose security protocol is ${settings.securityProtocol}`;
  const fix = eventHubs ? `${eventHubsFix}.` : `${kafkaFix}; ${eventHubsFix}.`;
  const fail = (failure: KafkaFailure, variable: string, message: string) => new KafkaConnectError(failure, variable, message, error);

  const token = has((e) => field(e, 'code') === 'KAFKA_OAUTH_TOKEN');
  if (token) {
    return fail(
      'auth',
      'KAFKA_OAUTH_SCOPE',
      `the Kafka broker(s) ${brokers} (${as}): ${field(token, 'message')} (${reason}). Fix: check the identity DefaultAzureCredential finds (managed identity, ` +
        'AZURE_CLIENT_ID, az login), its "Azure Event Hubs Data Receiver/Sender" role on the namespace, and KAFKA_OAUTH_SCOPE.',
    );
  }
  if (hasApi(SASL_NOT_OFFERED) || has((e) => field(e, 'code') === 'PLT_KFK_AUTHENTICATION' && !/SASL authentication failed/i.test(field(e, 'message')))) {
    return fail(
      'auth',
      'KAFKA_SASL_MECHANISM',
      `the Kafka broker(s) ${brokers} do not accept SASL ${settings.saslMechanism} on this listener (${as}): ${reason}. ` +
        `Fix: KAFKA_SECURITY_PROTOCOL=PLAINTEXT if this listener needs no authentication, or the broker's SASL listener; ${fix}`,
    );
  }
  if (apiIds.has('SASL_AUTHENTICATION_FAILED') || has((e) => field(e, 'code') === 'PLT_KFK_AUTHENTICATION')) {
    const plain = settings.saslMechanism === 'PLAIN';
    const user = plain ? `KAFKA_SASL_USERNAME=${settings.saslUsername} and ${settings.saslPasswordSetting}` : 'the Entra ID token (OAUTHBEARER)';
    return fail(
      'auth',
      plain ? settings.saslPasswordSetting : 'KAFKA_OAUTH_SCOPE',
      `the Kafka broker(s) ${brokers} refused the credentials (${as}, ${user}): ${reason}. Fix: check the SASL user and password; ${eventHubsFix} (with a policy that has the Send or Listen claim).`,
    );
  }
  if (hasApi(NOT_AUTHORIZED)) {
    return fail(
      'auth',
      settings.saslPasswordSetting,
      `the Kafka broker(s) ${brokers} authenticated the client but do not allow the request (${as}): ${reason}. ` +
        'Fix: grant Write/Read (and Describe) on the topic and the consumer group; Event Hubs: a shared access policy with the Send or Listen claim, or the Data Sender/Receiver role.',
    );
  }
  if (has((e) => /TLS handshake|Broker requires TLS|secure TLS connection|certificate|SSL routines/i.test(field(e, 'message')))) {
    return fail(
      'unreachable',
      'KAFKA_SECURITY_PROTOCOL',
      `TLS with the Kafka broker(s) ${brokers} failed (${as}): ${reason}. ` +
        `Fix: KAFKA_SECURITY_PROTOCOL must match the listener: SASL_SSL only on a TLS listener, SASL_PLAINTEXT or PLAINTEXT on one without TLS; ${fix}`,
    );
  }
  if (has((e) => /unknown topic|UNKNOWN_TOPIC_OR_PARTITION/i.test(`${field(e, 'message')} ${field(e, 'code')} ${field(e, 'apiId')}`))) {
    const name = topic ? ` ${topic.name}` : '';
    const setting = topic?.setting ?? 'CDC_TOPIC';
    return fail(
      'topic',
      setting,
      `the topic${name} does not exist on the Kafka broker(s) ${brokers} and was not created (${reason}). ` +
        `Fix: create it (Event Hubs: an event hub of that name in the namespace; Event Hubs does not create hubs on demand), enable auto.create.topics.enable on the broker, or fix ${setting}.`,
    );
  }
  if (has((e) => NETWORK.test(`${field(e, 'code')} ${field(e, 'message')}`) || ['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT'].includes(field(e, 'code')))) {
    return fail(
      'unreachable',
      settings.brokersSetting,
      `cannot reach the broker at ${brokers} (${as}): ${reason}. Fix: check the host and port in ${settings.brokersSetting}; ${fix}`,
    );
  }
  return fail('request', settings.brokersSetting, `the Kafka broker(s) ${brokers} failed the request (${as}): ${reason}.`);
}

/**
 * Connects once and reads the topic's metadata: the start-up check of a component, so that an
 * unreachable broker, refused credentials or a missing topic stop it with the setting named rather
 * than with retries in the background. Resolves to the topic's partition count.
 */
export async function probeKafka(settings: KafkaSettings, topic: { name: string; setting: string }, credential?: TokenSource): Promise<number> {
  const admin = new Admin({ ...(await kafkaClientOptions(settings, credential)), retries: 1 });
  try {
    const metadata = await admin.metadata({ topics: [topic.name] });
    return metadata.topics.get(topic.name)?.partitionsCount ?? 0;
  } catch (error) {
    throw describeKafkaConnectError(error, settings, topic);
  } finally {
    await admin.close().catch(() => undefined);
  }
}
