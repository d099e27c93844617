/**
 * What `npm run es:setup` does (idempotent): the component and index templates of every routed table
 * and of the change history, then the indices themselves (with their `-live` aliases).
 */
import type { Client } from '@elastic/elasticsearch';
import { getInt, getString, type Env } from '../core/env.js';
import { DEFAULT_HISTORY_INDEX, putHistoryTemplate } from '../history/historyIndex.js';
import { routerFromEnv, type Router } from '../routing/routes.js';
import { createIndexIfMissing, putTableTemplates } from './templates.js';

export interface SetupOptions {
  router: Router;
  replicas: number;
  historyIndex: string;
}

export interface SetupResult {
  templates: string[];
  created: string[];
  existing: string[];
}

export async function setupElasticsearch(client: Client, options: SetupOptions): Promise<SetupResult> {
  const templates = await putTableTemplates(client, options.router, { replicas: options.replicas }, options.router.wildcard()?.elasticsearch?.index);
  await putHistoryTemplate(client, options.historyIndex, options.replicas);
  templates.push(`cdc-history-${options.historyIndex}`);
  const indices = [...options.router.tables().flatMap(([, route]) => (route.elasticsearch ? [route.elasticsearch.index] : [])), options.historyIndex];
  const result: SetupResult = { templates, created: [], existing: [] };
  for (const index of indices) ((await createIndexIfMissing(client, index)) ? result.created : result.existing).push(index);
  return result;
}

export function setupOptionsFromEnv(env: Env): SetupOptions {
  return {
    router: routerFromEnv(env),
    replicas: getInt(env, 'ES_NUMBER_OF_REPLICAS', 1, { min: 0 }),
    historyIndex: getString(env, 'HISTORY_INDEX', DEFAULT_HISTORY_INDEX),
  };
}
