/**
 * The shared Kafka connection: settings from the environment, client options per security protocol,
 * and start-up failures named by setting, against the real test broker where it can produce them.
 */
import { describe, expect, it } from '@jest/globals';
import { Admin, AuthenticationError, NetworkError } from '@platformatic/kafka';
import { ConfigError } from '../../../src/shared/core/errors.js';
import {
  describeKafkaConnectError,
  eventHubsScope,
  kafkaClientOptions,
  kafkaSettingsFromEnv,
  KafkaConnectError,
  KafkaTokenError,
  probeKafka,
} from '../../../src/shared/core/kafka.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';

const cs = 'Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0c2VjcmV0';
const settings = (env: Record<string, string>) => kafkaSettingsFromEnv(env, { clientId: 'test-client' });
const topic = { name: 'cdc-events', setting: 'CDC_TOPIC' };

function configError(env: Record<string, string>): ConfigError {
  try {
    settings(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('no ConfigError');
}

describe('Kafka settings', () => {
  it('defaults to PLAINTEXT with the component client id and Microsoft timeouts', () => {
    expect(settings({ KAFKA_BROKERS: 'a:9092, b:9092' })).toMatchObject({
      brokers: ['a:9092', 'b:9092'],
      brokersSetting: 'KAFKA_BROKERS',
      clientId: 'test-client',
      securityProtocol: 'PLAINTEXT',
      saslMechanism: 'PLAIN',
      requestTimeoutMs: 60_000,
      metadataMaxAgeMs: 180_000,
    });
  });

  it('takes brokers, SASL_SSL and PLAIN $ConnectionString from an Event Hubs connection string', () => {
    const s = settings({ EVENTHUBS_CONNECTION_STRING: cs });
    expect(s).toMatchObject({
      brokers: ['myns.servicebus.windows.net:9093'],
      brokersSetting: 'EVENTHUBS_CONNECTION_STRING',
      securityProtocol: 'SASL_SSL',
      saslUsername: '$ConnectionString',
      saslPassword: cs,
      saslPasswordSetting: 'EVENTHUBS_CONNECTION_STRING',
    });
  });

  it.each([
    [{}, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'nohostport' }, 'KAFKA_BROKERS'],
    [{ KAFKA_BROKERS: 'a:1', KAFKA_SECURITY_PROTOCOL: 'SSL' }, 'KAFKA_SECURITY_PROTOCOL'],
    [{ KAFKA_BROKERS: 'a:1', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_PASSWORD'],
    [{ KAFKA_BROKERS: 'a:1', KAFKA_SASL_MECHANISM: 'SCRAM' }, 'KAFKA_SASL_MECHANISM'],
    [{ KAFKA_BROKERS: 'a:1', KAFKA_REQUEST_TIMEOUT_MS: '1000' }, 'KAFKA_REQUEST_TIMEOUT_MS'],
    [{ EVENTHUBS_CONNECTION_STRING: 'SharedAccessKey=topsecret' }, 'EVENTHUBS_CONNECTION_STRING'],
  ])('%j is refused naming %s, without echoing a secret', (env, variable) => {
    const error = configError(env);
    expect(error.variable).toBe(variable);
    expect(error.message).not.toContain('topsecret');
  });
});

describe('Kafka client options', () => {
  it('PLAINTEXT: brokers, client id and timeouts only', async () => {
    const options = await kafkaClientOptions(settings({ KAFKA_BROKERS: 'a:9092' }));
    expect(options).toMatchObject({ clientId: 'test-client', bootstrapBrokers: ['a:9092'], requestTimeout: 60_000, metadataMaxAge: 180_000 });
    expect(options.tls).toBeUndefined();
    expect(options.sasl).toBeUndefined();
  });

  it('Event Hubs with a connection string: TLS and SASL PLAIN with $ConnectionString', async () => {
    const options = await kafkaClientOptions(settings({ EVENTHUBS_CONNECTION_STRING: cs }));
    expect(options.tls).toEqual({});
    expect(options.sasl).toEqual({ mechanism: 'PLAIN', username: '$ConnectionString', password: cs });
  });

  it('OAUTHBEARER: a token provider asking the credential for the namespace scope, failures marked', async () => {
    const scopes: string[] = [];
    const env = { KAFKA_BROKERS: 'myns.servicebus.windows.net:9093', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' };
    const options = await kafkaClientOptions(settings(env), {
      getToken: (scope) => {
        scopes.push(scope);
        return Promise.resolve({ token: 'jwt' });
      },
    });
    const token = options.sasl?.token;
    expect(options.sasl?.mechanism).toBe('OAUTHBEARER');
    expect(typeof token === 'function' ? await token() : token).toBe('jwt');
    expect(scopes).toEqual([eventHubsScope('myns.servicebus.windows.net:9093')]);
    expect(scopes).toEqual(['https://myns.servicebus.windows.net/.default']);

    const failing = await kafkaClientOptions(settings({ ...env, KAFKA_OAUTH_SCOPE: 'api://other/.default' }), { getToken: () => Promise.resolve(null) });
    const provider = failing.sasl?.token;
    if (typeof provider !== 'function') throw new Error('no token provider');
    await expect(Promise.resolve().then(provider)).rejects.toBeInstanceOf(KafkaTokenError);
  });
});

describe('start-up failures name the setting', () => {
  const brokers = serviceEnv().kafkaBrokers.join(',');

  it('an unreachable broker names KAFKA_BROKERS (or the connection string it came from)', async () => {
    const error = await probeKafka(settings({ KAFKA_BROKERS: '127.0.0.1:1' }), topic).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KafkaConnectError);
    expect(error).toMatchObject({ variable: 'KAFKA_BROKERS', message: expect.stringMatching(/cannot reach the broker .*ECONNREFUSED/) as unknown });
    const fromCs = describeKafkaConnectError(new NetworkError('Connection failed.'), settings({ EVENTHUBS_CONNECTION_STRING: cs }));
    expect(fromCs.variable).toBe('EVENTHUBS_CONNECTION_STRING');
    expect(fromCs.message).not.toContain('c2VjcmV0c2VjcmV0');
  });

  it('SASL against a listener without it names KAFKA_SASL_MECHANISM; TLS against a plain listener names KAFKA_SECURITY_PROTOCOL', async () => {
    const sasl = await probeKafka(settings({ KAFKA_BROKERS: brokers, KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: 'pw' }), topic).catch(
      (e: unknown) => e,
    );
    expect(sasl).toMatchObject({ variable: 'KAFKA_SASL_MECHANISM' });
    const tls = await probeKafka(settings({ KAFKA_BROKERS: brokers, KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: 'pw' }), topic).catch(
      (e: unknown) => e,
    );
    expect(tls).toMatchObject({ variable: 'KAFKA_SECURITY_PROTOCOL' });
  });

  it('a missing topic names its setting; an existing one answers with its partition count', async () => {
    const missing = { name: uniqueName('missing'), setting: 'CDC_TOPIC' };
    await expect(probeKafka(settings({ KAFKA_BROKERS: brokers }), missing)).rejects.toMatchObject({ variable: 'CDC_TOPIC' });

    const existing = uniqueName('probe');
    const admin = new Admin({ clientId: 'kafka-test', bootstrapBrokers: serviceEnv().kafkaBrokers });
    try {
      await admin.createTopics({ topics: [existing], partitions: 3, replicas: 1 });
      expect(await probeKafka(settings({ KAFKA_BROKERS: brokers }), { name: existing, setting: 'CDC_TOPIC' })).toBe(3);
    } finally {
      await admin.deleteTopics({ topics: [existing] }).catch(() => undefined);
      await admin.close();
    }
  });

  it('refused credentials and a failed token name the password and the scope', () => {
    // The test broker has no SASL listener: these are the errors the client raises for a refusal.
    const refused = new NetworkError('Connection to ns:9093 failed.', { cause: new AuthenticationError('SASL authentication failed.') });
    expect(describeKafkaConnectError(refused, settings({ EVENTHUBS_CONNECTION_STRING: cs }))).toMatchObject({
      variable: 'EVENTHUBS_CONNECTION_STRING',
      message: expect.stringContaining('refused the credentials') as unknown,
    });
    expect(
      describeKafkaConnectError(refused, settings({ KAFKA_BROKERS: 'a:1', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: 'pw' })).variable,
    ).toBe('KAFKA_SASL_PASSWORD');
    const token = new NetworkError('Connection failed.', {
      cause: new AuthenticationError('The SASL/OAUTHBEARER token provider threw an error.', { cause: new KafkaTokenError('https://ns/.default') }),
    });
    expect(
      describeKafkaConnectError(token, settings({ KAFKA_BROKERS: 'a:1', KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_MECHANISM: 'OAUTHBEARER' })),
    ).toMatchObject({
      variable: 'KAFKA_OAUTH_SCOPE',
      message: expect.stringContaining('no Entra ID token for https://ns/.default') as unknown,
    });
  });
});
