/**
 * The Elasticsearch sinks' part: per routed table its index and `<index>-live` alias (soft-deleted
 * documents are in the index, not in the alias), with the commit time of the newest change each
 * holds (`__source_ts_ms`, from `CDC_UNWRAP_FIELDS`' default `source.ts_ms`), and the change-history
 * index. Index names come from the one catalogue (`CDC_ROUTES`), so they are the sink's own.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Router } from '../routing/routes.js';
import { patternOf } from '../elasticsearch/templates.js';
import type { ElasticsearchStatus, IndexStatus } from './types.js';

async function exists(client: Client, index: string): Promise<boolean> {
  return client.indices.exists({ index, allow_no_indices: false, ignore_unavailable: false, expand_wildcards: 'open' });
}

async function count(client: Client, index: string): Promise<number> {
  return (await client.count({ index, ignore_unavailable: true, allow_no_indices: true })).count;
}

async function newestCommit(client: Client, index: string): Promise<string | null> {
  const result = await client.search({
    index,
    size: 0,
    ignore_unavailable: true,
    allow_no_indices: true,
    aggs: { newest: { max: { field: '__source_ts_ms' } } },
  });
  const value = (result.aggregations?.newest as { value?: number | null } | undefined)?.value;
  return typeof value === 'number' && Number.isFinite(value) ? new Date(value).toISOString() : null;
}

async function indexStatus(client: Client, table: string, index: string): Promise<IndexStatus> {
  const liveAlias = `${index}-live`;
  const present = await exists(client, index);
  if (!present) return { table, index, exists: false, documents: 0, liveAlias, liveDocuments: 0, newestCommitTime: null };
  const [documents, liveDocuments, newestCommitTime] = await Promise.all([count(client, index), count(client, liveAlias), newestCommit(client, index)]);
  return { table, index, exists: true, documents, liveAlias, liveDocuments, newestCommitTime };
}

const latest = (times: (string | null)[]): string | null =>
  times
    .filter((t): t is string => t !== null)
    .sort()
    .at(-1) ?? null;

export async function collectElasticsearch(client: Client, router: Router, historyIndex: string): Promise<ElasticsearchStatus> {
  const targets = router.tables().flatMap(([table, route]) => (route.elasticsearch ? [{ table, index: route.elasticsearch.index }] : []));
  const wildcard = router.wildcard()?.elasticsearch?.index;
  if (wildcard !== undefined) targets.push({ table: '*', index: patternOf(wildcard) });
  const [indices, historyExists] = await Promise.all([Promise.all(targets.map((t) => indexStatus(client, t.table, t.index))), exists(client, historyIndex)]);
  const historyDocuments = historyExists ? await count(client, historyIndex) : 0;
  return {
    indices,
    history: { index: historyIndex, exists: historyExists, documents: historyDocuments },
    documents: indices.reduce((sum, i) => sum + i.documents, 0),
    newestCommitTime: latest(indices.map((i) => i.newestCommitTime)),
  };
}
