/**
 * The signal table, `<CDC_STATE_SCHEMA>.signals` (docs/reader.md "Incremental snapshots"): rows written
 * there from any SQL client ask the reader for an incremental snapshot. It is in the publication, so
 * a signal reaches the reader through the WAL, in commit order with the changes around it. Its columns
 * and the `data` JSON are Debezium's (`id`, `type`, `data`; `execute-snapshot` with `data-collections`
 * and `additional-conditions`, `stop-snapshot`), so Debezium users' statements work as they are.
 *
 * Every signal is validated before it is acted on; a bad one is refused with the reason and the fix,
 * logged, and never stops the stream.
 */
import type { Client, QueryConfig } from 'pg';
import { qualified, quoteIdent } from '../../shared/core/sql.js';
import type { Query } from '../../shared/events/typeRegistry.js';
import { tableCatalog, tableCatalogByOid } from '../../shared/events/pgTables.js';
import type { TableCatalog } from '../../shared/events/pgTables.js';

export const SIGNALS_TABLE = 'signals';

/** A signal the reader refuses: what is wrong with it, and what to write instead. */
export class SignalError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
    this.name = 'SignalError';
  }
}

/** One table of an `execute-snapshot` signal, with its filter (Debezium's `additional-conditions`). */
export interface SnapshotTarget {
  /** As the signal names it, `schema.table`. */
  name: string;
  filter: string | null;
}

export type Signal =
  | { kind: 'execute-snapshot'; id: string; targets: SnapshotTarget[] }
  /** `tables` null: every running or queued incremental snapshot. */
  | { kind: 'stop-snapshot'; id: string; tables: string[] | null }
  /** Other Debezium signal types (log, pause, …): acknowledged in the log, nothing done. */
  | { kind: 'ignored'; id: string; type: string };

const EXAMPLE = `INSERT INTO <state schema>.signals (id, type, data) VALUES ('snap-1', 'execute-snapshot', '{"data-collections": ["public.orders"], "type": "incremental"}')`;

/** Creates the signal table (and the state schema) when missing. */
export async function ensureSignalTable(query: Query, schema: string): Promise<void> {
  await query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`, []);
  // `data` is text as in Debezium's table: JSON that does not parse reaches the reader and is refused with a reason.
  await query(`CREATE TABLE IF NOT EXISTS ${qualified(schema, SIGNALS_TABLE)} (id text PRIMARY KEY, type text NOT NULL, data text)`, []);
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string' && x.length > 0);

/** Reads a row of the signal table (text values). Throws a SignalError for a malformed one. */
export function parseSignal(row: Record<string, unknown>): Signal {
  const id = typeof row.id === 'string' ? row.id : null;
  if (id === null || id === '') throw new SignalError('signal without an id', `give every signal a unique id, e.g. ${EXAMPLE}`);
  const type = typeof row.type === 'string' ? row.type : '';
  if (type !== 'execute-snapshot' && type !== 'stop-snapshot') return { kind: 'ignored', id, type };
  const raw = row.data;
  let data: unknown;
  try {
    data = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch (err) {
    throw new SignalError(`signal ${id}: data is not JSON (${(err as Error).message})`, `write data as JSON, e.g. ${EXAMPLE}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new SignalError(`signal ${id}: data must be a JSON object`, `e.g. ${EXAMPLE}`);
  const d = data as Record<string, unknown>;
  const snapType = d.type ?? 'incremental';
  if (typeof snapType !== 'string' || snapType.toLowerCase() !== 'incremental')
    throw new SignalError(`signal ${id}: snapshot type ${JSON.stringify(snapType)} is not supported`, 'use "type": "incremental" (or leave it out)');
  const collections = d['data-collections'];
  if (type === 'stop-snapshot') {
    if (collections === undefined || (Array.isArray(collections) && collections.length === 0)) return { kind: 'stop-snapshot', id, tables: null };
    if (!isStringArray(collections)) throw new SignalError(`signal ${id}: data-collections must be an array of "schema.table" names`, `e.g. ${EXAMPLE}`);
    return { kind: 'stop-snapshot', id, tables: collections };
  }
  if (!isStringArray(collections) || collections.length === 0)
    throw new SignalError(`signal ${id}: data-collections must be a non-empty array of "schema.table" names`, `e.g. ${EXAMPLE}`);
  const conditions = d['additional-conditions'] ?? [];
  if (!Array.isArray(conditions))
    throw new SignalError(
      `signal ${id}: additional-conditions must be an array`,
      `e.g. "additional-conditions": [{"data-collection": "public.orders", "filter": "status = 'open'"}]`,
    );
  const filters = new Map<string, string>();
  for (const c of conditions as unknown[]) {
    const dc = (c as Record<string, unknown> | null)?.['data-collection'];
    const filter = (c as Record<string, unknown> | null)?.filter;
    if (typeof dc !== 'string' || typeof filter !== 'string' || filter.trim() === '')
      throw new SignalError(
        `signal ${id}: every additional condition needs "data-collection" and a non-empty "filter"`,
        `e.g. {"data-collection": "public.orders", "filter": "status = 'open'"}`,
      );
    if (!collections.includes(dc))
      throw new SignalError(`signal ${id}: additional condition for ${dc}, which is not in data-collections`, `add ${dc} to data-collections or fix the name`);
    filters.set(dc, filter);
  }
  return { kind: 'execute-snapshot', id, targets: collections.map((name) => ({ name, filter: filters.get(name) ?? null })) };
}

/** `schema.table`, each part optionally double-quoted (`"My Schema"."Orders"`). */
export function splitTableName(name: string): { schema: string; table: string } | null {
  const m = /^\s*(?:"((?:[^"]|"")+)"|([^."]+))\.(?:"((?:[^"]|"")+)"|([^."]+))\s*$/.exec(name);
  if (!m) return null;
  const part = (quoted: string | undefined, plain: string | undefined) => (quoted !== undefined ? quoted.replace(/""/g, '"') : plain!);
  return { schema: part(m[1], m[2]), table: part(m[3], m[4]) };
}

/**
 * The catalog entry of a table a signal names, checked to be captured: it exists (under that name, or
 * under the name the slot captured it under before a rename, `capturedOid`) and the publication covers it.
 */
export async function resolveSignalTable(
  query: Query,
  name: string,
  opts: { members: Set<number>; capturedOid: (schema: string, table: string) => number | undefined; stateSchema: string },
): Promise<TableCatalog> {
  const parts = splitTableName(name);
  if (!parts) throw new SignalError(`table name ${JSON.stringify(name)} is not schema.table`, 'name the table as schema.table, e.g. public.orders');
  if (parts.schema === opts.stateSchema) throw new SignalError(`${name} is one of the reader's own state tables`, 'name a captured table');
  let cat = await tableCatalog(query, parts.schema, parts.table);
  if (!cat) {
    const oid = opts.capturedOid(parts.schema, parts.table);
    cat = oid === undefined ? undefined : await tableCatalogByOid(query, oid);
  }
  if (!cat) throw new SignalError(`table ${name} does not exist`, 'check the name (schema.table; quote parts with upper case: "My Schema"."Orders")');
  if (!opts.members.has(cat.oid))
    throw new SignalError(
      `table ${name} is not captured (not in the reader's publication)`,
      'add it to CDC_TABLES (or give it a replica identity, without CDC_TABLES) and restart the reader: a table added to CDC_TABLES is snapshotted incrementally by itself',
    );
  if (cat.relreplident === 'f' && cat.primaryKey.length === 0)
    throw new SignalError(
      `table ${name} has no primary key (REPLICA IDENTITY FULL): an incremental snapshot reads by key, and without one a snapshot row cannot be told apart from a changed one`,
      `add a primary key (ALTER TABLE ${qualified(cat.schema, cat.table)} ADD PRIMARY KEY (...)), or re-read the table with a new CDC_SLOT and CDC_SNAPSHOT_MODE=initial`,
    );
  if (!cat.canSelect) throw new SignalError(`no SELECT privilege on ${name}`, `GRANT SELECT ON ${qualified(cat.schema, cat.table)} TO <the reader's role>`);
  return cat;
}

/**
 * Checks a filter (user SQL run on the source) without reading rows: planned, not executed, in a READ
 * ONLY transaction, as one statement of the extended protocol (no `;`-separated second statement).
 */
export async function checkFilter(client: Client, relation: string, filter: string): Promise<void> {
  await client.query('BEGIN READ ONLY');
  try {
    const config: QueryConfig & { queryMode: 'extended' } = { text: `EXPLAIN SELECT 1 FROM ${relation} WHERE (${filter}\n)`, queryMode: 'extended' };
    await client.query(config);
  } catch (err) {
    throw new SignalError(
      `filter ${JSON.stringify(filter)} is not a valid condition on ${relation}: ${(err as Error).message}`,
      'write a boolean SQL expression over the table\'s columns, without ";", e.g. "status = \'open\' AND id > 1000"',
    );
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/** Inserts an `execute-snapshot` signal (Debezium's format) for `table`, with an optional filter; returns its id. */
export async function insertSnapshotSignal(client: Client, stateSchema: string, table: string, filter: string | null): Promise<string> {
  const id = `snapshot-${new Date().toISOString()}-${Math.random().toString(36).slice(2, 8)}`;
  const data: Record<string, unknown> = { 'data-collections': [table], type: 'incremental' };
  if (filter !== null) data['additional-conditions'] = [{ 'data-collection': table, filter }];
  await client.query(`INSERT INTO ${qualified(stateSchema, SIGNALS_TABLE)} (id, type, data) VALUES ($1, 'execute-snapshot', $2)`, [id, JSON.stringify(data)]);
  return id;
}
