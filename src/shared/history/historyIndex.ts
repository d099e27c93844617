/**
 * The change-history index in Elasticsearch: one document per history row, `_id` from
 * (table, key, LSN, column), written with `create` so a redelivery answers 409 (already there).
 * Values are stored as text (`OldValue`/`NewValue` keyword; JSON for non-strings) because one field
 * holds values of every column type.
 */
import type { Client } from '@elastic/elasticsearch';
import { boundedId } from '../elasticsearch/documentIds.js';
import { escapeFieldNames } from '../events/fieldNames.js';
import type { HistoryRow } from './pivot.js';

export const DEFAULT_HISTORY_INDEX = 'cdc-change-history';

export function historyTemplate(index: string, replicas = 1) {
  return {
    name: `cdc-history-${index}`,
    index_patterns: [index],
    priority: 300,
    template: {
      settings: { number_of_shards: 1, number_of_replicas: replicas },
      mappings: {
        dynamic: 'strict' as const,
        properties: {
          SourceTable: { type: 'keyword' },
          Key: { type: 'object', dynamic: true },
          KeyText: { type: 'keyword' },
          Column: { type: 'keyword' },
          OldValue: { type: 'keyword', ignore_above: 8191 },
          NewValue: { type: 'keyword', ignore_above: 8191 },
          OldValueKnown: { type: 'boolean' },
          Op: { type: 'keyword' },
          CommitTime: { type: 'date' },
          Lsn: { type: 'long' },
          TxId: { type: 'long' },
          Context: { type: 'object', dynamic: true },
        },
        // Key and Context hold columns of every table: one column name can be a number in one table
        // and text in another, so every scalar under them is a keyword (a term query on a number
        // still matches: Elasticsearch compares its text form).
        dynamic_templates: (['Key', 'Context'] as const).flatMap((field) =>
          (['string', 'long', 'double', 'boolean'] as const).map((type) => ({
            [`${field.toLowerCase()}_${type}`]: { path_match: `${field}.*`, match_mapping_type: type, mapping: { type: 'keyword', ignore_above: 1024 } },
          })),
        ),
      },
    },
    _meta: { managed_by: 'pg-cdc-functions' },
  };
}

export async function putHistoryTemplate(client: Client, index: string, replicas = 1): Promise<void> {
  await client.indices.putIndexTemplate(historyTemplate(index, replicas));
}

function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** `table|key|lsn|column`, bounded to Elasticsearch's 512 bytes like every generated `_id` (`boundedId`). */
export function historyDocumentId(row: HistoryRow): string {
  return boundedId(`${row.SourceTable}|${row.KeyText ?? ''}|${row.Lsn}|${row.Column ?? '*'}`);
}

export function historyDocument(row: HistoryRow): Record<string, unknown> {
  // Key and Context hold column names as field names: escaped like the latest-state documents'.
  return { ...row, Key: escapeFieldNames(row.Key), Context: escapeFieldNames(row.Context), OldValue: asText(row.OldValue), NewValue: asText(row.NewValue) };
}
