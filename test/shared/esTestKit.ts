/** Elasticsearch test kit: a client on the test service, unique indices, cleanup. */
import { Client } from '@elastic/elasticsearch';
import { ElasticsearchSink, type ElasticsearchSinkOptions } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import { DEFAULT_ROUTES, Router, type RoutesConfig } from '../../src/shared/routing/routes.js';
import { serviceEnv, uniqueName } from '../helpers/services.js';

export function testClient(): Client {
  return new Client({ node: serviceEnv().elasticsearchUrl });
}

export function uniqueIndex(prefix: string): string {
  return uniqueName(prefix).replaceAll('_', '-');
}

/** Routes `retail.orders_info` and `bank.holding` to fresh indices with the default mappings. */
export function testRoutes(ordersIndex: string, holdingIndex = `${ordersIndex}-holding`): RoutesConfig {
  return {
    'retail.orders_info': {
      ...DEFAULT_ROUTES['retail.orders_info'],
      elasticsearch: { ...DEFAULT_ROUTES['retail.orders_info']!.elasticsearch!, index: ordersIndex },
    },
    'bank.holding': { ...DEFAULT_ROUTES['bank.holding'], elasticsearch: { ...DEFAULT_ROUTES['bank.holding']!.elasticsearch!, index: holdingIndex } },
  };
}

export function testSink(client: Client, routes: RoutesConfig, options: Partial<ElasticsearchSinkOptions> = {}): ElasticsearchSink {
  return new ElasticsearchSink({
    client,
    router: new Router(routes),
    bulk: { maxAttempts: 2, backoffMs: 10 },
    templates: { replicas: 0 },
    ...options,
  });
}

/** Deletes the test's indices and the index templates created for them. */
export async function cleanup(client: Client, indices: string[]): Promise<void> {
  await client.indices.delete({ index: indices, ignore_unavailable: true, allow_no_indices: true }).catch(() => undefined);
  for (const index of indices) await client.indices.deleteIndexTemplate({ name: `cdc-table-${index}` }).catch(() => undefined);
}

export async function getSource(client: Client, index: string, id: string): Promise<{ source: Record<string, unknown>; version: number } | undefined> {
  const doc = await client.get<Record<string, unknown>>({ index, id }, { ignore: [404] });
  return doc.found && doc._source ? { source: doc._source, version: doc._version ?? -1 } : undefined;
}
