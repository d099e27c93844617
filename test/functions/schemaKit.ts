/**
 * The schema-change end-to-end tests' kit (schemaEvolution*.test.ts): a schema of tables on the real
 * PostgreSQL, the reader on them with `CDC_SCHEMA_CHANGE_SNAPSHOT=auto` (its `schema_change` control
 * event on every partition, then its reconcile snapshot), a Kafka topic of `PARTITIONS` partitions
 * collected as it fills, and delivery of what arrived to a sink's handlers as the Functions host does.
 * Each test file brings its sink and its check of the sink against the table.
 */
import type pg from 'pg';
import type { ChangeEvent, RowImage } from '../../src/shared/events/changeEvent.js';
import { cleanup, pgClient, readerEnv, startReader, TopicCollector, uniqueName, type RunningReader } from '../reader/helpers.js';
import { createTopic, deleteTopic } from '../worker/helpers.js';
import { deliverAsHost, type DeliveryTarget } from './pipelineKit.js';

export const PARTITIONS = 3;

export const kindOf = (event: ChangeEvent): string | undefined => (event.op === 'm' ? event.message?.kind : undefined);

export class SchemaRun<Table extends string> {
  /** Events already handed to the targets by `deliver`. */
  private delivered = 0;

  private constructor(
    readonly name: string,
    readonly schema: string,
    readonly c: pg.Client,
    readonly topic: TopicCollector,
    private readonly tables: readonly Table[],
    private reader: RunningReader | undefined,
    private readonly topicName: string,
  ) {}

  /** Creates `${prefix}_<unique>_s` with `tables` (name → column definitions), the topic and the reader. */
  static async start<Table extends string>(prefix: string, tables: Record<Table, string>): Promise<SchemaRun<Table>> {
    const name = uniqueName(prefix);
    const schema = `${name}_s`;
    const topicName = `${name}_events`;
    const c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema}`);
    for (const [table, columns] of Object.entries<string>(tables)) await c.query(`CREATE TABLE ${schema}.${table} (${columns})`);
    await createTopic(topicName, PARTITIONS);
    const names = Object.keys(tables) as Table[];
    const run = new SchemaRun<Table>(name, schema, c, await TopicCollector.start([topicName]), names, undefined, topicName);
    await run.startReader();
    return run;
  }

  sql(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    return this.c.query(text, values);
  }

  /** Starts the reader (again, after `stopReader`) on every table of the run. */
  async startReader(): Promise<void> {
    this.reader = await startReader(
      readerEnv(this.name, {
        CDC_TABLES: this.tables.map((t) => `${this.schema}.${t}`).join(','),
        CDC_SNAPSHOT_MODE: 'never',
        CDC_SCHEMA_CHANGE_SNAPSHOT: 'auto',
      }),
    );
  }

  async stopReader(): Promise<void> {
    await this.reader?.stop();
    this.reader = undefined;
  }

  /** The table's events on the topic so far (control events included). */
  countOf(table: Table): number {
    return this.topic.items.filter((i) => i.event.source.table === table).length;
  }

  /** Waits until the topic holds `n` more events of `table` (control events included) than it did at `since`. */
  async arrived(table: Table, since: number, n: number): Promise<void> {
    await this.topic.waitFor(`${n} events of ${table}`, () => this.countOf(table) - since >= n, 30_000);
  }

  /** Waits for the reader's reconcile snapshot of `table`: started on every partition, and every one it started done. */
  async reconciled(table: Table): Promise<void> {
    const count = (kind: string) => this.topic.items.filter((i) => i.event.source.table === table && kindOf(i.event) === kind).length;
    await this.topic.waitFor(
      `the reconcile snapshot of ${table}`,
      () => count('snapshot_started') >= PARTITIONS && count('snapshot_done') === count('snapshot_started'),
      60_000,
    );
  }

  /**
   * Delivers what arrived on the topic since the last call to `targets`, per partition, as the host
   * does (with its retries); with `beforeSnapshotDoneOf`, only up to that table's first
   * `snapshot_done` not delivered yet (the sink's view until the snapshot is done).
   */
  async deliver(targets: readonly DeliveryTarget[], options: { beforeSnapshotDoneOf?: Table } = {}): Promise<void> {
    let items = this.topic.items.slice(this.delivered);
    const table = options.beforeSnapshotDoneOf;
    if (table !== undefined) {
      const done = items.findIndex((i) => i.event.source.table === table && kindOf(i.event) === 'snapshot_done');
      if (done >= 0) items = items.slice(0, done);
    }
    this.delivered += items.length;
    await deliverAsHost(items, targets);
  }

  /** The table's rows as PostgreSQL's JSON of them, ordered by `key`. */
  async tableRows(table: Table, key = 'id'): Promise<RowImage[]> {
    const { rows } = await this.c.query<{ j: RowImage }>(`SELECT to_jsonb(t) AS j FROM ${this.schema}.${table} t ORDER BY ${key}`);
    return rows.map((r) => r.j);
  }

  async close(): Promise<void> {
    await this.stopReader();
    await this.topic.close();
    await cleanup(this.c, this.name, [this.schema]);
    await this.c.end();
    await deleteTopic(this.topicName);
  }
}
