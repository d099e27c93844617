/**
 * Endpoints of the real test services (see test/services/services.mjs) and helpers that keep
 * parallel test runs apart.
 */
import { randomBytes } from 'node:crypto';

export interface ServiceEnv {
  /** libpq-style connection settings for the private PostgreSQL (wal_level=logical, superuser). */
  pg: { host: string; port: number; user: string; database: string };
  /** Comma-separated host:port list of the Kafka brokers. */
  kafkaBrokers: string[];
  elasticsearchUrl: string;
  azureStorageConnectionString: string;
}

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') {
    throw new Error(
      `${name} is not set: the test services were not started. Run the tests with \`npm test\` ` +
        '(its globalSetup starts them) or start them with `npm run services:up`.',
    );
  }
  return value.trim();
}

export function serviceEnv(): ServiceEnv {
  return {
    pg: {
      host: required('PGHOST'),
      port: Number(process.env.PGPORT ?? '5432'),
      user: process.env.PGUSER ?? 'postgres',
      database: process.env.PGDATABASE ?? 'postgres',
    },
    kafkaBrokers: required('KAFKA_BROKERS')
      .split(',')
      .map((b) => b.trim()),
    elasticsearchUrl: required('ELASTICSEARCH_URL'),
    azureStorageConnectionString: required('AZURE_STORAGE_CONNECTION_STRING'),
  };
}

/**
 * A name no other test run uses: lower case letters, digits and underscores only, so it is valid as
 * a PostgreSQL identifier, replication slot, Kafka topic, Elasticsearch index and (with `-` for `_`)
 * a Blob container name.
 */
export function uniqueName(prefix: string): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `${safe}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
