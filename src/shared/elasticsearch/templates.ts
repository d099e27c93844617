/**
 * Index templates: a component template with the CDC metadata fields, the string/number conventions
 * (after the `user_data` index of the Debezium → Elasticsearch demo: keyword/text/date/number) and the `<index>-live`
 * alias that hides soft-deleted documents; then one index template per routed table with its
 * explicit column mapping. Indices are created from them by `npm run es:setup` or by the first bulk
 * write (auto-create applies the template).
 */
import type { Client } from '@elastic/elasticsearch';
import type { Router } from '../routing/routes.js';

export const COMMON_COMPONENT_TEMPLATE = 'cdc-common';

export interface TemplateOptions {
  /** `index.number_of_replicas` (default 1; 0 on a single node). */
  replicas?: number;
  shards?: number;
}

/** Fields the sinks add, whatever `CDC_UNWRAP_FIELDS` says. */
export const METADATA_PROPERTIES: Record<string, unknown> = {
  __op: { type: 'keyword' },
  __table: { type: 'keyword' },
  __schema: { type: 'keyword' },
  __table_id: { type: 'keyword' },
  __db: { type: 'keyword' },
  __lsn: { type: 'long' },
  __commit_lsn: { type: 'long' },
  __version: { type: 'long' },
  __source_ts_ms: { type: 'date', format: 'epoch_millis' },
  __ts_ms: { type: 'date', format: 'epoch_millis' },
  __txId: { type: 'long' },
  __snapshot: { type: 'keyword' },
  __deleted: { type: 'boolean' },
  __unchanged_toast: { type: 'keyword' },
  /** JSON text of json/jsonb columns (their values are stored, not indexed): keyword + `.text` by the strings template. */
  __json: { type: 'object', dynamic: true },
  /** Why Elasticsearch refused this version (a marker: the event is in the dead-letter store). */
  __rejected: { type: 'text' },
};

/** Filter of the `-live` alias: everything not soft-deleted. */
export const LIVE_FILTER = { bool: { must_not: [{ term: { __deleted: true } }] } };

export function commonComponentTemplate(options: TemplateOptions = {}) {
  return {
    name: COMMON_COMPONENT_TEMPLATE,
    template: {
      settings: { number_of_shards: options.shards ?? 1, number_of_replicas: options.replicas ?? 1 },
      mappings: {
        // A text column whose first value looks like a date would otherwise become a date field and
        // reject (400, dead-letter) its next non-date value; dates are mapped explicitly per table.
        date_detection: false,
        dynamic_templates: [
          // Strings: exact-match keyword with a full-text sub-field.
          { strings: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 1024, fields: { text: { type: 'text' } } } } },
          { decimals: { match_mapping_type: 'double', mapping: { type: 'double' } } },
        ],
        properties: METADATA_PROPERTIES,
      },
      aliases: { '{index}-live': { filter: LIVE_FILTER } },
    },
  };
}

/** The indices a `"*"` route's index template can produce, as an index pattern (`{schema}`, `{table}` → `*`). */
export function patternOf(index: string): string {
  return index.replaceAll('{schema}', '*').replaceAll('{table}', '*');
}

export function tableIndexTemplate(index: string, properties: Record<string, unknown> | undefined, wildcard = false) {
  return {
    name: `cdc-table-${patternOf(index).replaceAll('*', '_')}`,
    index_patterns: [patternOf(index)],
    priority: wildcard ? 100 : 200,
    composed_of: [COMMON_COMPONENT_TEMPLATE],
    template: { mappings: { properties: properties ?? {} } },
    _meta: { managed_by: 'pg-cdc-functions' },
  };
}

/** Puts the component template and one index template per routed table (idempotent). */
export async function putTableTemplates(client: Client, routes: Router, options: TemplateOptions = {}, wildcardIndex?: string): Promise<string[]> {
  await client.cluster.putComponentTemplate(commonComponentTemplate(options));
  const names: string[] = [];
  const entries: [string, Record<string, unknown> | undefined, boolean][] = [];
  for (const [, route] of routes.tables()) if (route.elasticsearch) entries.push([route.elasticsearch.index, route.elasticsearch.properties, false]);
  if (wildcardIndex) entries.push([wildcardIndex, undefined, true]);
  for (const [index, properties, wildcard] of entries) {
    const template = tableIndexTemplate(index, properties, wildcard);
    await client.indices.putIndexTemplate(template);
    names.push(template.name);
  }
  return names;
}

/** Creates an index if missing (templates must be in place). */
export async function createIndexIfMissing(client: Client, index: string): Promise<boolean> {
  try {
    await client.indices.create({ index });
    return true;
  } catch (error) {
    const type = (error as { meta?: { body?: { error?: { type?: string } } } }).meta?.body?.error?.type;
    if (type === 'resource_already_exists_exception') return false;
    // After a schema change moved it to a new version, the table's index name is an alias (README "Schema changes").
    if (type === 'invalid_index_name_exception' && (await client.indices.existsAlias({ name: index }))) return false;
    throw error;
  }
}
