/**
 * `npm run es:questions -- [userId] [from] [to]`: the per-field history demo's questions answered from the
 * change-history index (HISTORY_INDEX) of ELASTICSEARCH_URL, with the request bodies, for Kibana.
 * Defaults: user 1, the last 30 days.
 */
import { elasticsearchClientFromEnv } from '../src/shared/elasticsearch/client.js';
import { describeError } from '../src/shared/core/errors.js';
import { DEFAULT_HISTORY_INDEX } from '../src/shared/history/historyIndex.js';
import { changeCount, changeCountQuery, mostCommonOldValueQuery, mostSoldStock } from '../src/shared/history/queries.js';

const [userArg, fromArg, toArg] = process.argv.slice(2);
const userId = Number(userArg ?? 1);
const to = toArg ?? new Date().toISOString();
const from = fromArg ?? new Date(Date.parse(to) - 30 * 86_400_000).toISOString();
const index = process.env.HISTORY_INDEX ?? DEFAULT_HISTORY_INDEX;
const table = process.env.HISTORY_TABLE ?? 'bank.holding';
const client = elasticsearchClientFromEnv(process.env);
const out = (line: string) => process.stdout.write(`${line}\n`);
try {
  out(`# ${index}, table ${table}`);
  out(`stock type changes of user ${userId}: ${await changeCount(client, index, table, 'holding_stock', { user_id: userId })}`);
  out(`  GET ${index}/_count ${JSON.stringify(changeCountQuery(table, 'holding_stock', { user_id: userId }))}`);
  out(`stock quantity changes of user ${userId}: ${await changeCount(client, index, table, 'holding_quantity', { user_id: userId })}`);
  const sold = await mostSoldStock(client, index, from, to, table);
  out(`most sold stock ${from} .. ${to}: ${sold ? `${sold.stock} (${sold.count})` : 'none'}`);
  out(`  GET ${index}/_search ${JSON.stringify(mostCommonOldValueQuery(table, 'holding_stock', from, to))}`);
} catch (error) {
  process.stderr.write(`es:questions failed: ${describeError(error)}\n`);
  process.exitCode = 1;
} finally {
  await client.close();
}
