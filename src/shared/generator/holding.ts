/**
 * The `bank.holding` workload of the per-field history demo (Debezium → a parser pivoting each change
 * into old/new value per field). Its SQL script, per user:
 *
 *     insert into bank.holding values (1002, 3, 'SP500', 1, now(), now());      -- buy
 *     delete from bank.holding where user_id = 3;                               -- sell everything
 *     insert into bank.holding values (1003, 3, 'VTSAX', 100, now(), now());    -- buy again
 *     update bank.holding set holding_quantity = 10 where holding_id=1003;      -- sell part
 *
 * (plus `update ... set holding_quantity = 100 where holding_id=1000` on user 1's holding), and the
 * questions it answers count how often a user changed stock type or quantity. So one episode, for a
 * random user, is the script's sequence with a stock-type change at the end:
 *
 *   1. buy: insert a holding (stock A, quantity q1)
 *   2. change quantity: update holding_quantity to q2 ≠ q1
 *   3. sell: delete where user_id = the user (every holding the user has, as the script does)
 *   4. buy: insert a second holding (stock B, quantity q3)
 *   5. change quantity: update holding_quantity to q4 ≠ q3
 *   6. change stock type: update holding_stock to C ≠ B
 *
 * Episodes follow each other; every update also sets datetime_updated (the question "most sold stock
 * between two dates" reads it). The table is REPLICA IDENTITY FULL, so each update and delete carries
 * the whole old row and the history gets an old and a new value for every field.
 */
import type pg from 'pg';
import { pick, randomInt, type Random } from './random.js';
import type { ChangeCounts, Workload } from './workload.js';

/** The source script's stocks (VFIAX, SP500, VTSAX) and a few more, all within varchar(8). */
export const STOCKS = ['VFIAX', 'SP500', 'VTSAX', 'VTIAX', 'VBTLX', 'VOO', 'QQQ', 'BND'] as const;
/** Users 1..USERS: few enough that a user comes back and builds up a history to ask about. */
export const USERS = 100;

export type HoldingStep = 'buy' | 'quantity' | 'sell' | 'stock';
/** The steps of one episode, in order. */
export const EPISODE: readonly HoldingStep[] = ['buy', 'quantity', 'sell', 'buy', 'quantity', 'stock'];

/** The table as deploy/local/postgres-init/001-demo-schema.sql declares it (test/shared/generator/schema.test.ts holds them equal). */
export function createHoldingTableSql(table: string): string {
  const [schema] = table.split('.');
  return (
    `CREATE SCHEMA IF NOT EXISTS ${schema}; ` +
    `CREATE TABLE IF NOT EXISTS ${table} (holding_id int, user_id int, holding_stock varchar(8), holding_quantity int, ` +
    `datetime_created timestamp, datetime_updated timestamp, primary key (holding_id)); ` +
    `ALTER TABLE ${table} REPLICA IDENTITY FULL`
  );
}

interface Episode {
  user: number;
  step: number;
  holdingId: number;
  stock: string;
  quantity: number;
}

export class HoldingWorkload implements Workload {
  readonly name = 'holding';
  #episode: Episode | undefined;
  /** The next holding_id to use; read from the table (max + 1) before the first batch and after a failure. */
  #nextId: number | undefined;

  constructor(
    readonly table: string,
    private readonly random: Random = Math.random,
  ) {}

  #otherStock(than: string): string {
    const others = STOCKS.filter((s) => s !== than) as unknown as [string, ...string[]];
    return pick(this.random, others);
  }

  #otherQuantity(than: number): number {
    const q = randomInt(this.random, 1, 499);
    return q >= than ? q + 1 : q;
  }

  /** The SQL of the next step. All values are integers made here or members of STOCKS, so literals are safe. */
  #nextStatement(): string {
    let episode = this.#episode;
    if (episode === undefined || episode.step === EPISODE.length) {
      episode = { user: randomInt(this.random, 1, USERS), step: 0, holdingId: 0, stock: '', quantity: 0 };
      this.#episode = episode;
    }
    const step = EPISODE[episode.step++];
    switch (step) {
      case 'buy': {
        episode.holdingId = this.#nextId ?? 1;
        this.#nextId = episode.holdingId + 1;
        episode.stock = pick(this.random, STOCKS);
        episode.quantity = randomInt(this.random, 1, 500);
        return `INSERT INTO ${this.table} VALUES (${episode.holdingId}, ${episode.user}, '${episode.stock}', ${episode.quantity}, now(), now())`;
      }
      case 'quantity':
        episode.quantity = this.#otherQuantity(episode.quantity);
        return `UPDATE ${this.table} SET holding_quantity = ${episode.quantity}, datetime_updated = now() WHERE holding_id = ${episode.holdingId}`;
      case 'sell':
        return `DELETE FROM ${this.table} WHERE user_id = ${episode.user}`;
      case 'stock':
      default:
        episode.stock = this.#otherStock(episode.stock);
        return `UPDATE ${this.table} SET holding_stock = '${episode.stock}', datetime_updated = now() WHERE holding_id = ${episode.holdingId}`;
    }
  }

  async runBatch(client: pg.ClientBase, n: number): Promise<ChangeCounts> {
    if (this.#nextId === undefined) {
      const { rows } = await client.query<{ next: number }>(`SELECT coalesce(max(holding_id), 0) + 1 AS next FROM ${this.table}`);
      this.#nextId = rows[0]?.next ?? 1;
    }
    const statements = Array.from({ length: n }, () => this.#nextStatement());
    // One simple-protocol query of n statements: one round trip, and PostgreSQL runs it as one
    // transaction (all or none), keeping each user's steps in order.
    const result = (await client.query(statements.join(';\n'))) as pg.QueryResult | pg.QueryResult[];
    const counts: ChangeCounts = { inserts: 0, updates: 0, deletes: 0 };
    for (const r of Array.isArray(result) ? result : [result]) {
      if (r.command === 'INSERT') counts.inserts += r.rowCount ?? 0;
      else if (r.command === 'UPDATE') counts.updates += r.rowCount ?? 0;
      else if (r.command === 'DELETE') counts.deletes += r.rowCount ?? 0;
    }
    return counts;
  }

  reset(): void {
    // The rolled-back batch may have bought holdings the episode now refers to, or taken ids another
    // generator has since used: start a new episode and read the next id again.
    this.#episode = undefined;
    this.#nextId = undefined;
  }
}
