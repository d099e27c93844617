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

/** A connection failure that names the setting to fix; never carries a secret in its message. */
export class KafkaConnectError extends CdcError {
  readonly variable: string;

  constructor(variable: string, message: string, cause: unknown) {
    super('KAFKA_CONNECT_FAILED', message, { canRetry: true, cause });
    this.variable = variable;
  }
}

/** Every error in a chain: `cause`s and the `errors` of aggregates (the Kafka client nests both). */
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

const field = (e: unknown, name: 'code' | 'message'): string => {
  const v = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v : '';
};

/**
 * Turns what the Kafka client reports when it cannot connect (nested `MultipleErrors`,
 * `NetworkError`s, `AuthenticationError`s) into one error that says which setting is wrong and how to
 * fix it. `topic` names the topic's setting when the broker answered but does not have it.
 */
export function describeKafkaConnectError(error: unknown, settings: KafkaSettings, topic?: { name: string; setting: string }): KafkaConnectError {
  const chain = errorChain(error);
  const has = (test: (e: unknown) => boolean) => chain.find(test);
  const where = `Kafka ${settings.brokers.join(',')} (${settings.securityProtocol}${settings.securityProtocol === 'PLAINTEXT' ? '' : ` ${settings.saslMechanism}`})`;
  const innermost = chain
    .map((e) => field(e, 'message'))
    .filter(Boolean)
    .at(-1);

  const token = has((e) => field(e, 'code') === 'KAFKA_OAUTH_TOKEN');
  if (token) {
    return new KafkaConnectError(
      'KAFKA_OAUTH_SCOPE',
      `${where}: ${field(token, 'message')} (${innermost ?? 'no detail'}); check the identity DefaultAzureCredential finds (managed identity, AZURE_CLIENT_ID, az login), its "Azure Event Hubs Data Receiver/Sender" role on the namespace, and KAFKA_OAUTH_SCOPE`,
      error,
    );
  }
  if (has((e) => field(e, 'code') === 'PLT_KFK_AUTHENTICATION' && /SASL authentication failed/i.test(field(e, 'message')))) {
    const fix =
      settings.saslMechanism === 'PLAIN'
        ? `check KAFKA_SASL_USERNAME (${settings.saslUsername}) and ${settings.saslPasswordSetting} (for Event Hubs: user $ConnectionString, password the namespace connection string with a Listen/Send policy)`
        : 'check the token identity and its role on the namespace, and KAFKA_OAUTH_SCOPE';
    return new KafkaConnectError(
      settings.saslMechanism === 'PLAIN' ? settings.saslPasswordSetting : 'KAFKA_OAUTH_SCOPE',
      `${where}: the broker refused the credentials; ${fix}`,
      error,
    );
  }
  if (has((e) => field(e, 'code') === 'PLT_KFK_AUTHENTICATION')) {
    return new KafkaConnectError(
      'KAFKA_SASL_MECHANISM',
      `${where}: SASL negotiation failed (${innermost ?? 'no detail'}); the listener does not offer ${settings.saslMechanism}: check KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_MECHANISM (a PLAINTEXT listener takes KAFKA_SECURITY_PROTOCOL=PLAINTEXT)`,
      error,
    );
  }
  if (has((e) => /TLS handshake|secure TLS connection|certificate|SSL routines/i.test(field(e, 'message')))) {
    return new KafkaConnectError(
      'KAFKA_SECURITY_PROTOCOL',
      `${where}: TLS failed (${innermost ?? 'no detail'}); check KAFKA_SECURITY_PROTOCOL (SASL_SSL for Event Hubs, PLAINTEXT or SASL_PLAINTEXT for a listener without TLS)`,
      error,
    );
  }
  if (topic && has((e) => /unknown topic|UNKNOWN_TOPIC_OR_PARTITION/i.test(`${field(e, 'message')} ${field(e, 'code')}`))) {
    return new KafkaConnectError(
      topic.setting,
      `${where}: the topic ${topic.name} does not exist; create it (an event hub of that name) or start the reader first, or fix ${topic.setting}`,
      error,
    );
  }
  if (
    has(
      (e) =>
        /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET/.test(`${field(e, 'code')} ${field(e, 'message')}`) ||
        field(e, 'code') === 'PLT_KFK_NETWORK',
    )
  ) {
    return new KafkaConnectError(
      settings.brokersSetting,
      `${where}: cannot reach the broker (${innermost ?? 'no detail'}); check ${settings.brokersSetting} and that the broker accepts connections from here (Event Hubs: port 9093, firewall and private endpoints)`,
      error,
    );
  }
  return new KafkaConnectError(settings.brokersSetting, `${where}: ${innermost ?? String(error)}`, error);
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
