/**
 * The publication, kept so that PostgreSQL never refuses a write because of it (docs/reader.md
 * "Publication"). PostgreSQL refuses UPDATE and DELETE on a table that a publication publishing them
 * covers when the table has no replica identity ("cannot update table … because it does not have a
 * replica identity and publishes updates"). So by default (`CDC_PUBLICATION_MODE=tables`) the publication
 * lists tables: CDC_TABLES, or, without a list, every table that has a usable replica identity, kept
 * current while the reader runs (`PublicationKeeper`); `FOR ALL TABLES` is an opt-in. Every
 * publication of the database is checked for tables it puts at risk, and each is named in the log.
 */
import type { Client } from 'pg';
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import { qualified, quoteIdent } from '../../shared/core/sql.js';
import type { PublicationMode } from '../config.js';
import type { CapturedTables } from './captured.js';

/**
 * SQL: why PostgreSQL would refuse UPDATE/DELETE on relation `c` (a pg_class alias) once a publication
 * publishing them covers it, or NULL when it would not: FULL, USING INDEX of an existing index, or DEFAULT
 * with a non-deferrable primary key are usable identities; NOTHING, DEFAULT without a primary key (or with
 * a DEFERRABLE one, which PostgreSQL cannot use), and USING INDEX of a dropped index (then NOTHING) are not.
 */
export const identityProblemSql = (c: string): string => `CASE
    WHEN ${c}.relreplident = 'f' THEN NULL
    WHEN ${c}.relreplident = 'n' THEN 'REPLICA IDENTITY NOTHING'
    WHEN ${c}.relreplident = 'i' THEN CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = ${c}.oid AND x.indisreplident) THEN NULL
      ELSE 'REPLICA IDENTITY USING INDEX of an index that no longer exists (PostgreSQL then treats it as NOTHING)' END
    WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = ${c}.oid AND x.indisprimary AND x.indimmediate) THEN NULL
    WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = ${c}.oid AND x.indisprimary) THEN 'a DEFERRABLE primary key, which PostgreSQL cannot use as replica identity'
    ELSE 'no primary key (REPLICA IDENTITY DEFAULT)' END`;

/**
 * SQL: the problem of a table or of a partitioned table (`c`): its own, else the first of its leaf
 * partitions' (PostgreSQL checks the identity of the partition a row is in).
 */
const treeProblemSql = (c: string): string => `COALESCE(${identityProblemSql(c)},
    (SELECT 'partition ' || lc.oid::regclass::text || ' has ' || ${identityProblemSql('lc')}
       FROM pg_catalog.pg_partition_tree(${c}.oid) l JOIN pg_catalog.pg_class lc ON lc.oid = l.relid
      WHERE ${c}.relkind = 'p' AND l.isleaf AND ${identityProblemSql('lc')} IS NOT NULL ORDER BY 1 LIMIT 1))`;

/** Schemas never captured: the system's, and the reader's own state. */
const USER_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'`;

export interface CandidateTable {
  oid: number;
  schema: string;
  table: string;
  /** Why it is not captured (null: it qualifies). */
  skip: string | null;
}

/** The fix for a table skipped because of `reason`. */
export function skipFix(name: string, reason: string): string {
  if (reason.startsWith('no SELECT')) return `GRANT SELECT ON ${name} TO <the reader's role>`;
  if (reason.startsWith('not owned'))
    return `ALTER TABLE ${name} OWNER TO <the reader's role>, or list the tables in CDC_TABLES and add them to the publication as their owner`;
  if (reason.includes('DEFERRABLE')) return `ALTER TABLE ${name} REPLICA IDENTITY FULL, or make its primary key NOT DEFERRABLE`;
  return `add a primary key (ALTER TABLE ${name} ADD PRIMARY KEY (...)) or ALTER TABLE ${name} REPLICA IDENTITY FULL`;
}

/**
 * Every table the reader could capture without a list (ordinary and partitioned tables, partitions
 * under their root, no temporary or unlogged ones: PostgreSQL never publishes those), each with why it
 * is skipped. `needOwnership`: adding a table to a listed publication needs its ownership.
 */
export async function discoverTables(client: Client, excludeSchema: string, needOwnership: boolean): Promise<CandidateTable[]> {
  const { rows } = await client.query<{ oid: number; schema: string; table: string; problem: string | null; can_select: boolean; owned: boolean }>(
    `SELECT c.oid::int AS oid, n.nspname::text AS schema, c.relname::text AS table, ${treeProblemSql('c')} AS problem,
            has_table_privilege(c.oid, 'SELECT') AS can_select, pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p' AND ${USER_SCHEMAS} AND n.nspname <> $1
      ORDER BY 2, 3`,
    [excludeSchema],
  );
  return rows.map((r) => ({
    oid: Number(r.oid),
    schema: r.schema,
    table: r.table,
    skip:
      r.problem ??
      (!r.can_select
        ? "no SELECT privilege for the reader's role"
        : needOwnership && !r.owned
          ? "not owned by the reader's role (adding a table to a publication needs its ownership)"
          : null),
  }));
}

/** The problem of each given relation (a table, or a partitioned table through its partitions); absent = none. */
export async function identityProblems(client: Client, oids: number[]): Promise<Map<number, string>> {
  if (oids.length === 0) return new Map();
  const { rows } = await client.query<{ oid: number; problem: string | null }>(
    `SELECT c.oid::int AS oid, ${treeProblemSql('c')} AS problem FROM pg_catalog.pg_class c WHERE c.oid = ANY($1::oid[])`,
    [oids],
  );
  return new Map(rows.filter((r) => r.problem !== null).map((r) => [Number(r.oid), r.problem!]));
}

/** A table that a publication puts at risk: PostgreSQL refuses UPDATE/DELETE on it. */
export interface PublicationRisk {
  publication: string;
  allTables: boolean;
  /** The table as `regclass` text (quoted where needed). */
  table: string;
  problem: string;
}

/**
 * SQL: the tables publication `p` (a pg_publication alias) covers, as `relid`: from the catalog itself,
 * not the pg_publication_tables view, whose per-publication function fails for a publication dropped
 * while the query runs (other sessions create and drop publications at any time). FOR ALL TABLES: every
 * ordinary or partitioned permanent table outside the system schemas; else the listed tables and
 * (PostgreSQL 15+) the tables of the listed schemas.
 */
const coveredSql = (withSchemas: boolean): string => `
    SELECT c.oid AS relid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE p.puballtables AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND ${USER_SCHEMAS}
    UNION SELECT pr.prrelid FROM pg_catalog.pg_publication_rel pr WHERE NOT p.puballtables AND pr.prpubid = p.oid
    ${
      withSchemas
        ? `UNION SELECT c.oid FROM pg_catalog.pg_publication_namespace pn JOIN pg_catalog.pg_class c ON c.relnamespace = pn.pnnspid
            WHERE NOT p.puballtables AND pn.pnpubid = p.oid AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'`
        : ''
    }`;

/**
 * Every publication of the database (not only the reader's) that publishes updates or deletes and
 * covers a table without a usable replica identity, with that table (a partitioned table's partitions
 * are checked one by one); and every FOR ALL TABLES publication, which puts each table created later
 * without a key at risk too.
 */
export async function publicationRisks(client: Client): Promise<{ risks: PublicationRisk[]; allTablesPublications: string[] }> {
  const version = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  const withSchemas = Number(version.rows[0]?.v ?? 0) >= 150000;
  const risks = await client.query<{ publication: string; all_tables: boolean; table: string; problem: string }>(
    `SELECT DISTINCT p.pubname::text AS publication, p.puballtables AS all_tables, lc.oid::regclass::text AS table, pr.problem
       FROM pg_catalog.pg_publication p
       CROSS JOIN LATERAL (${coveredSql(withSchemas)}) covered
       JOIN pg_catalog.pg_class c ON c.oid = covered.relid
       CROSS JOIN LATERAL (SELECT c.oid AS relid WHERE c.relkind <> 'p'
                           UNION ALL SELECT t.relid FROM pg_catalog.pg_partition_tree(c.oid) t WHERE c.relkind = 'p' AND t.isleaf) l
       JOIN pg_catalog.pg_class lc ON lc.oid = l.relid
       CROSS JOIN LATERAL (SELECT ${identityProblemSql('lc')} AS problem) pr
      WHERE (p.pubupdate OR p.pubdelete) AND pr.problem IS NOT NULL
      ORDER BY 1, 3`,
  );
  const all = await client.query<{ pubname: string }>(
    'SELECT pubname::text FROM pg_catalog.pg_publication WHERE puballtables AND (pubupdate OR pubdelete) ORDER BY 1',
  );
  return {
    risks: risks.rows.map((r) => ({ publication: r.publication, allTables: r.all_tables, table: r.table, problem: r.problem })),
    allTablesPublications: all.rows.map((r) => r.pubname),
  };
}

/** The relations a listed publication names, by oid (a partitioned table itself, not its partitions). */
export async function publicationMembers(client: Client, name: string): Promise<Set<number>> {
  const version = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  const { rows } = await client.query<{ oid: number }>(
    `SELECT covered.relid::int AS oid FROM pg_catalog.pg_publication p CROSS JOIN LATERAL (${coveredSql(Number(version.rows[0]?.v ?? 0) >= 150000)}) covered
      WHERE p.pubname = $1`,
    [name],
  );
  return new Set(rows.map((r) => Number(r.oid)));
}

export type PublicationState = 'created' | 'updated' | 'converted' | 'unchanged';

/**
 * Creates the publication when missing, in the configured mode; adds listed tables missing from an
 * existing one. An existing publication of the other kind (a FOR ALL TABLES one in `tables` mode, as
 * an earlier version of the reader made it, or a listed one in `all-tables` mode) is replaced in one
 * transaction (DROP and CREATE under the same name): the WAL decoded before that commit still sees the
 * old publication and the WAL after it the new one, so the slot never meets a moment without it.
 *
 * Always with `publish_via_partition_root = true` (an existing publication without it is altered): a
 * partitioned table's changes are then published under the parent's name, as its snapshot rows are
 * (`SELECT` from the parent), instead of under each partition's name, so every event of the table has one
 * schema.table and sinks route them together. (PostgreSQL 13+.)
 */
export async function ensurePublication(
  client: Client,
  name: string,
  mode: PublicationMode,
  tables: { oid: number; relation: string }[],
): Promise<PublicationState> {
  const { rows } = await client.query<{ puballtables: boolean; pubviaroot: boolean }>(
    'SELECT puballtables, pubviaroot FROM pg_catalog.pg_publication WHERE pubname = $1',
    [name],
  );
  const options = 'WITH (publish_via_partition_root = true)';
  const create =
    mode === 'all-tables'
      ? `CREATE PUBLICATION ${quoteIdent(name)} FOR ALL TABLES ${options}`
      : tables.length === 0
        ? `CREATE PUBLICATION ${quoteIdent(name)} ${options}` // tables are added as they appear
        : `CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${tables.map((t) => t.relation).join(', ')} ${options}`;
  if (!rows[0]) {
    await client.query(create);
    return 'created';
  }
  if (rows[0].puballtables !== (mode === 'all-tables')) {
    await client.query('BEGIN');
    try {
      await client.query(`DROP PUBLICATION ${quoteIdent(name)}`);
      await client.query(create);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    }
    return 'converted';
  }
  let state: PublicationState = 'unchanged';
  if (!rows[0].pubviaroot) {
    await client.query(`ALTER PUBLICATION ${quoteIdent(name)} SET (publish_via_partition_root = true)`);
    state = 'updated';
  }
  if (mode === 'all-tables') return state;
  const have = await publicationMembers(client, name);
  const missing = tables.filter((t) => !have.has(t.oid));
  if (missing.length === 0) return state;
  await client.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLE ${missing.map((t) => t.relation).join(', ')}`);
  return 'updated';
}

export interface KeeperDeps {
  client: Client;
  log: Logger;
  publication: string;
  mode: PublicationMode;
  /** The configured tables' oids (CDC_TABLES), null when the reader discovers them. */
  configured: number[] | null;
  stateSchema: string;
  captured: CapturedTables;
  /** Called with every table added while the reader runs, and whether it held rows then. */
  onAdded?: (table: string, oid: number, hadRows: boolean) => void | Promise<void>;
}

/**
 * Keeps the publication current while the reader runs (and reports at start-up, `start()`):
 * - `tables` mode without a list: adds every new table that qualifies, and names each table it skips
 *   and why, once per reason;
 * - `tables` mode: removes a member that lost its replica identity (PostgreSQL would refuse its
 *   UPDATE/DELETE), and adds it back once it has one again;
 * - every mode: warns about each publication of the database that puts a table at risk, once per
 *   publication and table.
 */
export class PublicationKeeper {
  private readonly reportedSkips = new Map<string, string>();
  private readonly reportedRisks = new Set<string>();
  private readonly reportedAllTables = new Set<string>();
  private running = false;
  /** Set by the reader once streaming (the incremental snapshots of tables added while it runs). */
  onAdded: KeeperDeps['onAdded'];

  constructor(private readonly deps: KeeperDeps) {
    this.onAdded = deps.onAdded;
  }

  /**
   * At start-up: logs the skipped tables (discovery), removes members at risk, logs the risky
   * publications. A failure here is logged, not fatal: the publication itself is in place, and the
   * next refresh tries again.
   */
  async startUp(candidates: CandidateTable[] | null): Promise<void> {
    if (candidates) this.reportSkips(candidates, 'at start-up');
    await this.refresh();
  }

  /** One round; never throws (logged), never two at once. */
  async refresh(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.keep();
      await this.reportRisks();
    } catch (err) {
      this.deps.log.warn('publication check failed; retried at the next one', errorFields(err));
    } finally {
      this.running = false;
    }
  }

  private async keep(): Promise<void> {
    const { client, log, publication, mode, configured } = this.deps;
    if (mode === 'all-tables') return;
    const members = await publicationMembers(client, publication);
    // A member without a usable identity makes PostgreSQL refuse the application's UPDATE/DELETE on it.
    for (const [oid, problem] of await identityProblems(client, [...members])) {
      const name = await this.currentName(oid);
      if (name === null) continue;
      await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} DROP TABLE ${name}`);
      log.error('table removed from the publication: it lost its replica identity', {
        table: name,
        problem,
        why: 'PostgreSQL refuses UPDATE and DELETE on a published table without a replica identity',
        consequence: 'its changes are not captured until it has one again; the reader then adds it back (rows changed meanwhile are not streamed)',
        fix: skipFix(name, problem),
      });
    }
    const wanted: CandidateTable[] = [];
    if (configured === null) {
      const candidates = await discoverTables(client, this.deps.stateSchema, true);
      this.reportSkips(candidates, 'while running');
      wanted.push(...candidates.filter((t) => t.skip === null && !members.has(t.oid)));
    } else {
      const missing = configured.filter((oid) => !members.has(oid));
      const problems = await identityProblems(client, missing);
      for (const oid of missing) {
        const r = await client.query<{ schema: string; table: string }>(
          `SELECT n.nspname::text AS schema, c.relname::text AS table FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`,
          [oid],
        );
        if (r.rows[0] && !problems.has(oid)) wanted.push({ oid, schema: r.rows[0].schema, table: r.rows[0].table, skip: null });
      }
    }
    for (const t of wanted) await this.add(t);
  }

  private async add(t: CandidateTable): Promise<void> {
    const { client, log, publication } = this.deps;
    const name = qualified(t.schema, t.table);
    // Registered first, so its events carry this name from its first Relation message on, renamed or not.
    await this.deps.captured.register(t.oid, t.schema, t.table);
    try {
      await client.query(`ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${name}`);
    } catch (err) {
      // Dropped, renamed or changed since it was listed: the next round sees it as it is.
      log.warn('could not add a table to the publication; retried at the next check', { table: `${t.schema}.${t.table}`, ...errorFields(err) });
      return;
    }
    // Rows written before the ALTER committed are not in the stream (their WAL was decoded without the
    // table in the publication); a fresh table has none.
    const rows = await client.query<{ e: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${name}) AS e`);
    const fields = { table: `${t.schema}.${t.table}`, oid: t.oid };
    const hadRows = rows.rows[0]?.e === true;
    if (hadRows)
      log.warn('table added to the publication; rows it held before are not streamed', {
        ...fields,
        why: 'a table added while the reader runs is streamed from then on; its earlier rows come from an incremental snapshot',
        fix: this.onAdded
          ? 'none needed: the reader snapshots it incrementally (not with CDC_SNAPSHOT_MODE=never)'
          : `npm run snapshot -- --table ${t.schema}.${t.table}`,
      });
    else log.info('table added to the publication', fields);
    await this.onAdded?.(`${t.schema}.${t.table}`, t.oid, hadRows);
  }

  private async currentName(oid: number): Promise<string | null> {
    const r = await this.deps.client.query<{ name: string }>('SELECT $1::oid::regclass::text AS name FROM pg_catalog.pg_class WHERE oid = $1', [oid]);
    return r.rows[0]?.name ?? null;
  }

  /** Names each skipped table and why, once per table and reason. */
  private reportSkips(candidates: CandidateTable[], when: string): void {
    const fresh = candidates.filter((t) => t.skip !== null && this.reportedSkips.get(`${t.oid}`) !== t.skip);
    for (const t of candidates) if (t.skip !== null) this.reportedSkips.set(`${t.oid}`, t.skip);
    if (fresh.length === 0) return;
    this.deps.log.warn(`tables not captured (${when})`, {
      skipped: fresh.map((t) => ({ table: `${t.schema}.${t.table}`, reason: t.skip, fix: skipFix(qualified(t.schema, t.table), t.skip!) })),
      why: 'publishing a table without a replica identity would make PostgreSQL refuse UPDATE and DELETE on it',
      note: 'the reader adds such a table once it qualifies (checked every CDC_PUBLICATION_REFRESH_MS)',
    });
  }

  /** Warns about each publication and table at risk (once), and each FOR ALL TABLES publication (once). */
  private async reportRisks(): Promise<void> {
    const { risks, allTablesPublications } = await publicationRisks(this.deps.client);
    for (const p of allTablesPublications) {
      if (this.reportedAllTables.has(p)) continue;
      this.reportedAllTables.add(p);
      this.deps.log.warn('a FOR ALL TABLES publication puts every table without a replica identity at risk', {
        publication: p,
        ours: p === this.deps.publication,
        why: 'PostgreSQL refuses UPDATE and DELETE on a table without a replica identity that such a publication covers, including tables created later',
        fix:
          p === this.deps.publication
            ? 'unset CDC_PUBLICATION_MODE (default tables): the reader then lists the tables with a replica identity'
            : `ALTER PUBLICATION ... or recreate ${quoteIdent(p)} FOR TABLE <tables with a primary key>, or give every table a primary key`,
      });
    }
    const fresh = risks.filter((r) => !this.reportedRisks.has(`${r.publication}\u0000${r.table}`));
    for (const r of fresh) this.reportedRisks.add(`${r.publication}\u0000${r.table}`);
    if (fresh.length === 0) return;
    this.deps.log.warn('publications make PostgreSQL refuse UPDATE and DELETE on these tables', {
      atRisk: fresh.map((r) => ({
        publication: r.publication,
        ours: r.publication === this.deps.publication,
        table: r.table,
        problem: r.problem,
        fix: skipFix(r.table, r.problem),
      })),
    });
  }
}
