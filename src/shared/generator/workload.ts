/** What the generator drives: a workload turns "n changes now" into one transaction on its table. */
import type pg from 'pg';

/** Rows changed, as PostgreSQL counted them (what the reader will see as change events). */
export interface ChangeCounts {
  inserts: number;
  updates: number;
  deletes: number;
}

export const WORKLOADS = ['orders', 'holding'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface Workload {
  readonly name: WorkloadName;
  readonly table: string;
  /** Makes `n` changes in one transaction (all or none) and returns the rows changed. */
  runBatch(client: pg.ClientBase, n: number): Promise<ChangeCounts>;
  /** After a failed batch: forget in-memory state that the rolled-back transaction may have left wrong. */
  reset(): void;
}

/** `schema.table` in lower case: the only table names the generator accepts, so they can be spliced into SQL. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/;
