import { afterAll, describe, expect, it } from '@jest/globals';
import { setupElasticsearch } from '../../src/shared/elasticsearch/setup.js';
import { Router } from '../../src/shared/routing/routes.js';
import { cleanup, testClient, testRoutes, uniqueIndex } from './esTestKit.js';

const client = testClient();
const index = uniqueIndex('setup');
const historyIndex = `${index}-history`;

afterAll(async () => {
  await cleanup(client, [index, `${index}-holding`, historyIndex]);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
  await client.close();
});

describe('es:setup', () => {
  it('creates the templates and indices, and is idempotent', async () => {
    const options = { router: new Router(testRoutes(index)), replicas: 0, historyIndex };
    const first = await setupElasticsearch(client, options);
    expect(first.created.sort()).toEqual([index, `${index}-holding`, historyIndex].sort());
    const second = await setupElasticsearch(client, options);
    expect(second.created).toEqual([]);
    const mapping = await client.indices.getMapping({ index: `${index}-holding` });
    expect(mapping[`${index}-holding`]?.mappings.properties?.holding_stock).toEqual({ type: 'keyword' });
    const history = await client.indices.getMapping({ index: historyIndex });
    expect(history[historyIndex]?.mappings.properties?.OldValueKnown).toEqual({ type: 'boolean' });
  });
});
