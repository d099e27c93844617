import { Client, type ClientOptions } from '@elastic/elasticsearch';
import { getInt, getOptionalString, getString, type Env } from '../core/env.js';

/**
 * `ELASTICSEARCH_URL` (required), then `ELASTICSEARCH_API_KEY` or
 * `ELASTICSEARCH_USERNAME`/`ELASTICSEARCH_PASSWORD`; `ELASTICSEARCH_REQUEST_TIMEOUT_MS` (30000).
 */
export function elasticsearchClientFromEnv(env: Env): Client {
  const options: ClientOptions = {
    node: getString(env, 'ELASTICSEARCH_URL'),
    requestTimeout: getInt(env, 'ELASTICSEARCH_REQUEST_TIMEOUT_MS', 30_000, { min: 1 }),
    maxRetries: 2,
  };
  const apiKey = getOptionalString(env, 'ELASTICSEARCH_API_KEY');
  const username = getOptionalString(env, 'ELASTICSEARCH_USERNAME');
  if (apiKey) options.auth = { apiKey };
  else if (username) options.auth = { username, password: getString(env, 'ELASTICSEARCH_PASSWORD') };
  return new Client(options);
}
