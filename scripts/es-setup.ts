/**
 * `npm run es:setup`: index templates and indices for every table routed to Elasticsearch
 * (CDC_ROUTES) and for the change history (HISTORY_INDEX). Safe to run again.
 */
import { elasticsearchClientFromEnv } from '../src/shared/elasticsearch/client.js';
import { setupElasticsearch, setupOptionsFromEnv } from '../src/shared/elasticsearch/setup.js';
import { describeError } from '../src/shared/core/errors.js';

const client = elasticsearchClientFromEnv(process.env);
try {
  const result = await setupElasticsearch(client, setupOptionsFromEnv(process.env));
  process.stdout.write(
    `es:setup: templates ${result.templates.join(', ')}\n` +
      `es:setup: created ${result.created.join(', ') || '-'}; already there ${result.existing.join(', ') || '-'}\n`,
  );
} catch (error) {
  process.stderr.write(`es:setup failed: ${describeError(error)}\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
