/**
 * The reader's control events: logical messages (`op: 'm'`, `message.prefix: 'pg-cdc'`) that tell the
 * sinks about a table rather than a row, published to every partition of the table's topic so each
 * partition's consumer sees them in order with the table's changes (README "Schema changes"):
 * - `schema_change`: the table's relation changed; `source.lsn` is just below the first change with
 *   the new shape (every event after it has a higher version, every event before it a lower or equal one);
 * - `snapshot_started` / `snapshot_done`: an incremental snapshot of the table began / finished
 *   (`source.lsn` = its watermark); the rows in between are `op: 'r'`, `source.snapshot: 'incremental'`.
 * Anything else with `op: 'm'` (heartbeats, other prefixes) is not a control event.
 */
import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent } from './changeEvent.js';

export const CONTROL_PREFIX = 'pg-cdc';

export interface ColumnShape {
  name: string;
  /** `format_type` of the column: `integer`, `text`, `numeric(10,2)`, `timestamp with time zone`, `jsonb[]`, ... */
  type: string;
}

export interface SchemaChangeContent {
  /** `schema.table` as the events name it (`source.schema`.`source.table`). */
  table: string;
  columns: ColumnShape[];
  key: string[];
  previous: { columns: ColumnShape[]; key: string[] };
  added: string[];
  dropped: string[];
  /** `name: old -> new` */
  retyped: string[];
  /** Partitions of the table's topic: one copy of the event went to each. */
  partitions: number;
}

export interface SnapshotContent {
  table: string;
  /** The snapshot's signal id: `snapshot_started` and `snapshot_done` of one snapshot share it. */
  id: string;
  where: string | null;
  rows?: number;
}

/** The `message` of a control event (`ChangeEvent.message`), as the reader writes it. */
export type SchemaChangeMessage = { prefix: typeof CONTROL_PREFIX; kind: 'schema_change'; content: SchemaChangeContent };
export type SnapshotMessage = { prefix: typeof CONTROL_PREFIX; kind: 'snapshot_started' | 'snapshot_done'; content: SnapshotContent };

export type ControlMessage =
  { kind: 'schema_change'; lsn: number; content: SchemaChangeContent } | { kind: 'snapshot_started' | 'snapshot_done'; lsn: number; content: SnapshotContent };

const KINDS = new Set(['schema_change', 'snapshot_started', 'snapshot_done']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isColumns(value: unknown): value is ColumnShape[] {
  return Array.isArray(value) && value.every((c) => isObject(c) && typeof c.name === 'string' && typeof c.type === 'string');
}

function isNames(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((c) => typeof c === 'string');
}

/**
 * The control message an `op: 'm'` event carries, or null when it is none (a heartbeat, another
 * prefix, a kind this version does not know). A `pg-cdc` event of a known kind whose content is
 * malformed is a `PermanentRecordError` naming the field: it is dead-lettered, never half-applied.
 */
export function controlMessage(event: ChangeEvent): ControlMessage | null {
  if (event.op !== 'm') return null;
  const message = (event as unknown as { message?: unknown }).message;
  if (!isObject(message) || message.prefix !== CONTROL_PREFIX || typeof message.kind !== 'string' || !KINDS.has(message.kind)) return null;
  const fail = (what: string): never => {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `pg-cdc ${String(message.kind)} event: ${what}`);
  };
  const lsn = event.source.lsn;
  if (typeof lsn !== 'number' || !Number.isSafeInteger(lsn) || lsn < 0) return fail('source.lsn is not a non-negative safe integer');
  const content = message.content;
  if (!isObject(content) || typeof content.table !== 'string') return fail('message.content.table is missing');
  if (message.kind === 'schema_change') {
    const previous = content.previous;
    if (!isColumns(content.columns) || !isNames(content.key)) return fail('message.content needs columns [{name, type}] and key [names]');
    if (!isObject(previous) || !isColumns(previous.columns) || !isNames(previous.key)) return fail('message.content.previous needs columns and key');
    if (typeof content.partitions !== 'number' || !Number.isSafeInteger(content.partitions) || content.partitions < 1)
      return fail('message.content.partitions is not a positive integer');
    return {
      kind: 'schema_change',
      lsn,
      content: {
        table: content.table,
        columns: content.columns,
        key: content.key,
        previous: { columns: previous.columns, key: previous.key },
        added: isNames(content.added) ? content.added : [],
        dropped: isNames(content.dropped) ? content.dropped : [],
        retyped: isNames(content.retyped) ? content.retyped : [],
        partitions: content.partitions,
      },
    };
  }
  if (typeof content.id !== 'string') return fail('message.content.id is missing');
  const snapshot: SnapshotContent = { table: content.table, id: content.id, where: typeof content.where === 'string' ? content.where : null };
  if (typeof content.rows === 'number') snapshot.rows = content.rows;
  return { kind: message.kind as 'snapshot_started' | 'snapshot_done', lsn, content: snapshot };
}
