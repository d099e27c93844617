/**
 * The `schema_change` control event (src/shared/events/controlMessage.ts): when a captured table's
 * relation changed, one copy goes to every partition of the table's topic, ahead of the table's
 * next change, so each partition's consumer learns of it before it sees a row of the new shape
 * (README "Schema changes"). Native event format only: Debezium consumers have no such event.
 */
import type { ChangeEvent } from '../../shared/events/changeEvent.js';
import { CONTROL_PREFIX, type ColumnShape, type SchemaChangeContent } from '../../shared/events/controlMessage.js';
import { READER_VERSION } from '../encode/envelope.js';
import type { Lsn } from '../lsn.js';
import type { RelationShape } from './captured.js';
import type { SchemaChange } from './schemaChanges.js';

export interface SchemaChangeEventInput {
  change: SchemaChange;
  /** The captured name the table's events carry. */
  schema: string;
  table: string;
  /** WAL position of the first change with the new shape: the event takes the one below it. */
  lsn: Lsn;
  serverName: string;
  db: string;
  txId: number | null;
  commitTimeMs: number;
  partitions: number;
  nowMs: number;
}

const columnsOf = (shape: RelationShape): ColumnShape[] => shape.columns.map((c) => ({ name: c.name, type: c.type }));

export function schemaChangeEvent(input: SchemaChangeEventInput): ChangeEvent & { message: { kind: 'schema_change'; content: SchemaChangeContent } } {
  const { change } = input;
  const had = new Map(change.before.columns.map((c) => [c.name, c.type]));
  const has = new Set(change.after.columns.map((c) => c.name));
  const content: SchemaChangeContent = {
    table: `${input.schema}.${input.table}`,
    columns: columnsOf(change.after),
    key: change.after.key,
    previous: { columns: columnsOf(change.before), key: change.before.key },
    added: change.after.columns.filter((c) => !had.has(c.name)).map((c) => c.name),
    dropped: change.before.columns.filter((c) => !has.has(c.name)).map((c) => c.name),
    retyped: change.after.columns.filter((c) => had.has(c.name) && had.get(c.name) !== c.type).map((c) => `${c.name}: ${had.get(c.name)} -> ${c.type}`),
    partitions: input.partitions,
  };
  return {
    before: null,
    after: null,
    source: {
      version: READER_VERSION,
      connector: 'postgresql',
      name: input.serverName,
      ts_ms: input.commitTimeMs,
      snapshot: 'false',
      db: input.db,
      schema: input.schema,
      table: input.table,
      txId: input.txId,
      // Every event of the new shape has a higher version, every earlier one a lower or equal one.
      lsn: Number(input.lsn - 1n),
      sequence: null,
    },
    op: 'm',
    ts_ms: input.nowMs,
    key: null,
    message: { prefix: CONTROL_PREFIX, kind: 'schema_change', content },
  };
}
