import { getOptionalString, type Env } from '../core/env.js';

/** Settings whose values must never reach a log line: the Kafka password, the sinks' credentials, and PostgreSQL's password (npm run verify reads the source). */
const SECRET_SETTINGS = [
  'PGPASSWORD',
  'KAFKA_SASL_PASSWORD',
  'EVENTHUBS_CONNECTION_STRING',
  'ELASTICSEARCH_API_KEY',
  'ELASTICSEARCH_PASSWORD',
  'ADX_CLIENT_SECRET',
  'SINK_DEADLETTER_CONNECTION_STRING',
  'READER_DEADLETTER_CONNECTION_STRING',
  'AZURE_STORAGE_CONNECTION_STRING',
  'AzureWebJobsStorage',
];

/** The values to mask in every log line; read from the environment, so also usable when the configuration is invalid. */
export function secretsOf(env: Env = process.env): string[] {
  return SECRET_SETTINGS.map((name) => getOptionalString(env, name)).filter((v): v is string => v !== undefined);
}
