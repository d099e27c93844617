/**
 * The questions of the Debezium per-field history demo (its `holding_pivot`) as ready Elasticsearch queries over the change-history index
 * (the KQL versions are in queries/holding-*.kql). Both count a "change" as: an update whose old and
 * new values differ, or a delete, of a row whose old value is known (REPLICA IDENTITY FULL).
 */
import type { Client, estypes } from '@elastic/elasticsearch';

const changedOrDeleted = (column: string): estypes.QueryDslQueryContainer[] => [
  { term: { Column: column } },
  { term: { OldValueKnown: true } },
  { exists: { field: 'OldValue' } },
  { terms: { Op: ['u', 'd'] } },
];

/** How many times did the rows of `context` (e.g. `{ user_id: 1 }`) change (or delete) `column`? */
export function changeCountQuery(table: string, column: string, context: Record<string, string | number>): estypes.CountRequest {
  return {
    query: {
      bool: {
        filter: [
          { term: { SourceTable: table } },
          ...changedOrDeleted(column),
          ...Object.entries(context).map(([name, value]) => ({ term: { [`Context.${name}`]: value } })),
        ],
      },
    },
  };
}

/** Between two times, the most common old value of `column` (bank.holding: the most sold stock). */
export function mostCommonOldValueQuery(table: string, column: string, from: string, to: string): estypes.SearchRequest {
  return {
    size: 0,
    query: { bool: { filter: [{ term: { SourceTable: table } }, ...changedOrDeleted(column), { range: { CommitTime: { gte: from, lte: to } } }] } },
    aggs: { values: { terms: { field: 'OldValue', size: 1, order: [{ _count: 'desc' }, { _key: 'asc' }] } } },
  };
}

/** How many times did the rows of `context` change (or delete) `column`? */
export async function changeCount(client: Client, index: string, table: string, column: string, context: Record<string, string | number>): Promise<number> {
  return (await client.count({ index, ...changeCountQuery(table, column, context) })).count;
}

/** How many times did user X change stock type (updates with a different stock, and deletes)? */
export async function stockTypeChangesOfUser(client: Client, index: string, userId: number, table = 'bank.holding'): Promise<number> {
  const response = await client.count({ index, ...changeCountQuery(table, 'holding_stock', { user_id: userId }) });
  return response.count;
}

/** Most commonly sold stock between two dates (ISO 8601), with how often; undefined when none. */
export async function mostSoldStock(
  client: Client,
  index: string,
  from: string,
  to: string,
  table = 'bank.holding',
): Promise<{ stock: string; count: number } | undefined> {
  const response = await client.search({ index, ...mostCommonOldValueQuery(table, 'holding_stock', from, to) });
  const buckets = (response.aggregations?.values as estypes.AggregationsStringTermsAggregate | undefined)?.buckets;
  const top = Array.isArray(buckets) ? buckets[0] : undefined;
  return top ? { stock: String(top.key), count: top.doc_count } : undefined;
}
