/**
 * Control commands for the ADX side, generated as a pure function of the configuration. Every command
 * is idempotent, so `npm run adx:setup` can run on every deployment:
 * `.create-merge table` (adds missing columns, keeps data), `.create-or-alter ... mapping`,
 * `.alter ... policy`, `.create ifnotexists materialized-view` (an existing view is brought up to date
 * by `viewUpgradeCommands`), `.create-or-alter function`.
 */
import { kqlName, kqlString } from './kql.js';
import { rawColumnName } from './columnTypes.js';
import { CDC_COLUMN_NAMES, HISTORY_COLUMNS, TRUNCATE_COLUMNS, tableColumns, truncatesMapping, type MarkKind } from './schema.js';
import type { AdxConfig, AdxTableRoute, ColumnDef, IngestionBatchingPolicy } from './types.js';

export interface AdxCommand {
  /** What the command does, for `--dry-run` output and logs. */
  description: string;
  text: string;
  /**
   * Set on a route's materialized-view command: `adx:setup` first brings an existing view of that
   * name up to date (`viewUpgradeCommands`), since `.create ifnotexists` leaves it untouched.
   */
  route?: AdxTableRoute;
  /**
   * Set on a route's current-rows function: its text depends on the table's columns, so `adx:setup`
   * generates it again from the table's schema as ADX reports it (`currentFunctionCommand`).
   */
  currentOf?: AdxTableRoute;
}

function columnList(columns: readonly ColumnDef[]): string {
  return columns.map((c) => `${kqlName(c.name)}:${c.type}`).join(', ');
}

/** JSON mapping text: each column from the same-named top-level property of the JSON line. */
export function jsonMapping(columns: readonly ColumnDef[]): string {
  return JSON.stringify(columns.map((c) => ({ column: c.name, datatype: c.type, Properties: { Path: jsonPath(c.name) } })));
}

function jsonPath(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `$.${name}` : `$['${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
}

function withProps(folder: string, docstring: string): string {
  return `with (folder=${kqlString(folder)}, docstring=${kqlString(docstring)})`;
}

export function createMergeTableCommand(table: string, columns: readonly ColumnDef[], folder: string, docstring: string): AdxCommand {
  return {
    description: `table ${table} (create or add missing columns)`,
    text: `.create-merge table ${kqlName(table)} (${columnList(columns)}) ${withProps(folder, docstring)}`,
  };
}

export function mappingCommand(table: string, mapping: string, columns: readonly ColumnDef[]): AdxCommand {
  return {
    description: `JSON ingestion mapping ${mapping} on ${table}`,
    text: `.create-or-alter table ${kqlName(table)} ingestion json mapping ${kqlString(mapping)} ${kqlString(jsonMapping(columns))}`,
  };
}

export function batchingPolicyCommand(table: string, policy: IngestionBatchingPolicy): AdxCommand {
  return {
    description: `ingestion batching policy on ${table}`,
    text: `.alter table ${kqlName(table)} policy ingestionbatching ${kqlString(JSON.stringify(policy))}`,
  };
}

/**
 * Latest row per key. A materialized view must end in its `summarize`, so deleted rows cannot be
 * filtered inside it: the delete is the latest row of its key (flag `__deleted`), and the function
 * from `currentFunctionCommand` filters it out. Grouped by `__key` (the event's key as one string,
 * `keyJson`), not by the route's key columns: after a primary-key change the events carry the new
 * key, whose columns the route does not name, and a delete's row holds only them.
 */
export function latestViewQuery(route: AdxTableRoute): string {
  return `${kqlName(route.table)} | summarize arg_max(${kqlName('__lsn')}, *) by ${kqlName('__key')}`;
}

/**
 * `autoUpdateSchema=true`: the view is `arg_max(__lsn, *)`, the kind the option is documented for
 * (`arg_max(Timestamp, *)` / `arg_min` / `take_any(*)`), so a column `.alter-merge` adds to the source
 * table is added to the view. Without it, ADX *disables* an `arg_max(..., *)` view when its source
 * table's columns change (docs: `.alter materialized-view`, "Alter with no change to the query").
 */
export function latestViewCommand(route: AdxTableRoute, folder: string): AdxCommand {
  return {
    description: `materialized view ${route.latestView} (latest row per __key; backfilled; autoUpdateSchema)`,
    text:
      `.create async ifnotexists materialized-view with (backfill=true, autoUpdateSchema=true, folder=${kqlString(folder)}, ` +
      `docstring=${kqlString(`Latest change per key of ${route.table} (deleted rows flagged by __deleted)`)}) ` +
      `${kqlName(route.latestView)} on table ${kqlName(route.table)} { ${latestViewQuery(route)} }`,
    route,
  };
}

/** `.show materialized-views`: `Name`, `IsEnabled`, `AutoUpdateSchema`, ... of every view of the database. */
export function showMaterializedViewsCommand(): AdxCommand {
  return { description: 'materialized views of the database', text: '.show materialized-views' };
}

/** What `adx:setup` knows of an existing view (from `.show materialized-views`). */
export interface ExistingView {
  isEnabled: boolean;
  autoUpdateSchema: boolean;
  /** The view's query, when `.show materialized-views` gave it. */
  query?: string;
}

/**
 * Why an existing latest-state view cannot be brought up to date in place, or null: a view created
 * before `__key` groups by the route's key columns, and ADX cannot change a materialized view's
 * group-by keys with `.alter materialized-view`. The fix is in the message (docs/adx.md "Key changes").
 */
export function viewMigrationNeeded(route: AdxTableRoute, existing: ExistingView): string | null {
  if (existing.query === undefined || /\bby\s+(\['__key'\]|__key)\s*$/.test(existing.query.trim())) return null;
  return (
    `materialized view ${route.latestView} groups by the route's key columns (created by an earlier version), ` +
    `not by __key, and ADX cannot change a view's group-by keys in place: run ` +
    `.drop materialized-view ${kqlName(route.latestView)}, then npm run adx:setup again (it creates the view by __key, backfilled), ` +
    `then npm run snapshot -- --table ${route.source} (rows ingested before __key existed are left out of ${route.currentFunction}() until the snapshot writes them again)`
  );
}

/**
 * An existing latest-state view created before `autoUpdateSchema` (or disabled): re-align its schema
 * with the table's (`.alter materialized-view` with the same query, the documented fix after a
 * source-table schema change), turn `autoUpdateSchema` on, and enable it again if it was disabled
 * (materialization resumes where it stopped; no record is skipped). Nothing for an up-to-date view.
 */
export function viewUpgradeCommands(route: AdxTableRoute, existing: ExistingView): AdxCommand[] {
  if (existing.autoUpdateSchema && existing.isEnabled) return [];
  const commands: AdxCommand[] = [];
  if (!existing.autoUpdateSchema) {
    commands.push(
      {
        description: `re-align materialized view ${route.latestView} with the columns of ${route.table}`,
        text: `.alter materialized-view ${kqlName(route.latestView)} on table ${kqlName(route.table)} { ${latestViewQuery(route)} }`,
      },
      {
        description: `autoUpdateSchema on materialized view ${route.latestView}`,
        text: `.alter materialized-view ${kqlName(route.latestView)} autoUpdateSchema true`,
      },
    );
  }
  if (!existing.isEnabled) {
    commands.push({ description: `enable materialized view ${route.latestView}`, text: `.enable materialized-view ${kqlName(route.latestView)}` });
  }
  return commands;
}

/**
 * The body of the current-rows function: the latest row per `__key`, without deletes and without the
 * rows a mark in the truncates table hides (`__lsn` below it; the versioning contract):
 * - the table's latest truncate (`Kind` `truncate`, or empty in rows from before `Kind`): a key
 *   written again after it has a higher `__lsn` and shows; a late event from before it does not;
 * - the table's latest key change (`key_change` at the schema change's LSN) that a full incremental
 *   snapshot started after it (`snapshot_started` above its `Lsn`) has completed on all its
 *   `Partitions` (one `snapshot_done` per partition): every current row has then been written again
 *   with the new key, so the rows keyed by the old key (deleted rows included) are gone. Until then
 *   they stay (docs/adx.md "Key changes").
 * Rows without `__key` (ingested before the column existed) are left out.
 *
 * Unchanged TOAST values (docs/adx.md "Unchanged TOAST values"): a latest row that lists columns in
 * `__unchanged_toast` (the reader could not send them; the row holds null there) gets each listed
 * column, and its `__raw_<column>`, from the key's latest earlier row that carries the column (not a
 * delete, not listing it), but only from the key's current lineage: rows at or after its latest
 * insert or snapshot read (`c`/`r`, which carry every column), so a key deleted and used again never
 * takes a value of its earlier life. When that insert is the `c` of a primary-key change which itself
 * lacks the column, the value comes the same way from the old key (`__from_key`, the old key's
 * `__key`) before the change. What cannot be found (the earlier row not ingested yet, or two key
 * changes in a row without the column being written) stays null and stays listed in
 * `__unchanged_toast`: the function's rows list exactly the columns whose value is not the real one.
 * `columns` are the table's columns (default: the declared ones and the CDC columns); the fill covers those.
 */
export function currentFunctionBody(route: AdxTableRoute, truncatesTable: string, columns: readonly ColumnDef[] = tableColumns(route)): string {
  const q = kqlName;
  const marks = `${q(truncatesTable)} | where ${q('Table')} == ${kqlString(route.table)}`;
  const kind = (k: MarkKind) => `${q('Kind')} == ${kqlString(k)}`;
  const hidden =
    `let truncatedBelow = toscalar(${marks} | where isempty(${q('Kind')}) or ${kind('truncate')} | summarize max(${q('Lsn')})); ` +
    `let snapshotsDone = ${marks} | where ${kind('snapshot_started')} | summarize __started = min(${q('Lsn')}) by ${q('Snapshot')} ` +
    `| join kind=inner (${marks} | where ${kind('snapshot_done')} | summarize __done = array_length(make_set(${q('Partition')})) by ${q('Snapshot')}) on ${q('Snapshot')} ` +
    `| extend __all = 1; ` +
    `let rekeyedBelow = toscalar(${marks} | where ${kind('key_change')} | extend __all = 1 | join kind=inner (snapshotsDone) on __all ` +
    `| where __started > ${q('Lsn')} and __done >= ${q('Partitions')} | summarize max(${q('Lsn')})); ` +
    `let hiddenBelow = max_of(coalesce(truncatedBelow, long(-1)), coalesce(rekeyedBelow, long(-1))); ` +
    `let latestRows = ${q(route.latestView)} | where isnotempty(${q('__key')}) and not(${q('__deleted')}) and ${q('__lsn')} >= hiddenBelow;`;
  const names = new Set(columns.map((c) => c.name));
  const keySet = new Set(route.keys);
  const targets = columns.filter((c) => !keySet.has(c.name) && !CDC_COLUMN_NAMES.has(c.name) && !c.name.startsWith(RAW_PREFIX));
  if (targets.length === 0) return `{ ${hidden} latestRows }`;
  const key = q('__key');
  const listed = (column: string) => `(isnotnull(${q('__unchanged_toast')}) and set_has_element(${q('__unchanged_toast')}, ${kqlString(column)}))`;
  const start = `iff(${q('__op')} in ('c', 'r'), ${q('__lsn')}, long(-1))`;
  const carried = (column: string) => `iff(${q('__op')} != 'd' and not${listed(column)}, ${q('__lsn')}, long(-1))`;
  const raw = (column: string) => (names.has(rawColumnName(column)) ? rawColumnName(column) : undefined);
  /** Per column: `(lsn, value[, raw]) = arg_max(lsn where the row carries it, value[, raw])`, prefixed. */
  const latestCarried = (prefix: string) =>
    targets
      .map((c) => {
        const r = raw(c.name);
        const outputs = [q(`${prefix}l_${c.name}`), q(`${prefix}v_${c.name}`), ...(r ? [q(`${prefix}w_${c.name}`)] : [])];
        return `(${outputs.join(', ')}) = arg_max(${carried(c.name)}, ${[q(c.name), ...(r ? [q(r)] : [])].join(', ')})`;
      })
      .join(', ');
  const partial = `let partialRows = latestRows | where array_length(${q('__unchanged_toast')}) > 0 | project ${key}, __at = ${q('__lsn')};`;
  const own =
    `let ownFills = partialRows | join kind=inner (${q(route.table)}) on ${key} | where ${q('__lsn')} <= __at ` +
    `| summarize (__start, __start_old) = arg_max(${start}, ${q('__from_key')}), ${latestCarried('__')} by ${key}, __at;`;
  const hop =
    `let hopFills = ownFills | where __start >= 0 and isnotempty(__start_old) | project ${key}, __at, __start, __old = __start_old ` +
    `| join kind=inner (${q(route.table)}) on $left.__old == $right.${key} ` +
    `| where ${q('__lsn')} < __start | summarize __jstart = max(${start}), ${latestCarried('__h')} by ${key}, __at;`;
  const fills = `let fills = ownFills | lookup kind=leftouter hopFills on ${key}, __at | project-rename ${q('__lsn')} = __at;`;
  const fromOwn = (c: string) => `${listed(c)} and ${q(`__l_${c}`)} >= 0 and ${q(`__l_${c}`)} >= __start`;
  const fromHop = (c: string) => `${listed(c)} and ${q(`__hl_${c}`)} >= 0 and ${q(`__hl_${c}`)} >= __jstart`;
  const decided = targets.map((c) => `${q(`__own_${c.name}`)} = ${fromOwn(c.name)}, ${q(`__hop_${c.name}`)} = ${fromHop(c.name)}`).join(', ');
  const filled = targets
    .map((c) => {
      const pick = (v: string, column: string) =>
        `case(${q(`__own_${c.name}`)}, ${q(`__${v}_${c.name}`)}, ${q(`__hop_${c.name}`)}, ${q(`__h${v}_${c.name}`)}, ${q(column)})`;
      const r = raw(c.name);
      return `${q(c.name)} = ${pick('v', c.name)}${r ? `, ${q(r)} = ${pick('w', r)}` : ''}`;
    })
    .join(', ');
  const done = `array_concat(${targets.map((c) => `iff(${q(`__own_${c.name}`)} or ${q(`__hop_${c.name}`)}, pack_array(${kqlString(c.name)}), dynamic([]))`).join(', ')})`;
  const intermediates = [
    '__start',
    '__start_old',
    '__jstart',
    '__left',
    ...targets.flatMap((c) => {
      const withRaw = raw(c.name) !== undefined;
      return ['l', 'v', ...(withRaw ? ['w'] : []), 'hl', 'hv', ...(withRaw ? ['hw'] : []), 'own', 'hop'].map((p) => `__${p}_${c.name}`);
    }),
  ];
  return (
    `{ ${hidden} ${partial} ${own} ${hop} ${fills} ` +
    `latestRows | lookup kind=leftouter fills on ${key}, ${q('__lsn')} | extend ${decided} | extend ${filled}, __left = set_difference(${q('__unchanged_toast')}, ${done}) ` +
    `| extend ${q('__unchanged_toast')} = iff(array_length(__left) > 0, __left, dynamic(null)) | project-away ${intermediates.map(q).join(', ')} }`
  );
}

const RAW_PREFIX = rawColumnName('');

/**
 * `columns`: the table's columns (as ADX reports them: `adx:setup` reads the schema first), which the
 * function fills unchanged TOAST values of; default the declared ones.
 */
export function currentFunctionCommand(route: AdxTableRoute, folder: string, truncatesTable: string, columns?: readonly ColumnDef[]): AdxCommand {
  return {
    description: `function ${route.currentFunction}() (current rows: latest per key, deletes and rows hidden by a truncate or a key change excluded, unchanged TOAST values filled)`,
    text:
      `.create-or-alter function ${withProps(folder, `Current rows of ${route.source}: ${route.latestView} without deleted rows and rows older than the latest truncate or completed key change in ${truncatesTable}; unchanged TOAST values from earlier rows (__unchanged_toast lists what is missing)`)} ` +
      `${kqlName(route.currentFunction)}() ${currentFunctionBody(route, truncatesTable, columns)}`,
    currentOf: route,
  };
}

/** The per-database truncates table, its mapping and batching policy (before the functions that read it). */
export function truncatesTableCommands(config: Pick<AdxConfig, 'batching' | 'folder' | 'truncatesTable'>): AdxCommand[] {
  const table = config.truncatesTable;
  return [
    createMergeTableCommand(
      table,
      TRUNCATE_COLUMNS,
      config.folder,
      'Marks that hide older rows of the routed tables: TRUNCATEs (rows of Table with __lsn below Lsn are gone), key changes and the incremental snapshots that complete them',
    ),
    mappingCommand(table, truncatesMapping(table), TRUNCATE_COLUMNS),
    batchingPolicyCommand(table, config.batching),
  ];
}

/** Every command for one routed table, in execution order. */
export function routeSetupCommands(route: AdxTableRoute, config: Pick<AdxConfig, 'batching' | 'folder' | 'truncatesTable'>): AdxCommand[] {
  const columns = tableColumns(route);
  const commands: AdxCommand[] = [
    createMergeTableCommand(route.table, columns, config.folder, `Change events of ${route.source} (row image + CDC columns)`),
    mappingCommand(route.table, route.mapping, columns),
    batchingPolicyCommand(route.table, config.batching),
  ];
  if (route.historyTable !== null && route.historyMapping !== null) {
    commands.push(
      createMergeTableCommand(route.historyTable, HISTORY_COLUMNS, config.folder, `Per-column change history of ${route.source}`),
      mappingCommand(route.historyTable, route.historyMapping, HISTORY_COLUMNS),
      batchingPolicyCommand(route.historyTable, config.batching),
    );
  }
  commands.push(latestViewCommand(route, config.folder), currentFunctionCommand(route, config.folder, config.truncatesTable));
  return commands;
}

/** `npm run adx:setup`: the truncates table, then every configured table. */
export function setupCommands(config: Pick<AdxConfig, 'routes' | 'batching' | 'folder' | 'truncatesTable'>): AdxCommand[] {
  return [...truncatesTableCommands(config), ...config.routes.flatMap((route) => routeSetupCommands(route, config))];
}

/**
 * A new source column reached the sink: add it to the table and rewrite the mapping with every
 * known column, before the batch that carries it is ingested. (`AdxSink` builds the mapping from the
 * table's schema as ADX reports it after the alter, see `showSchemaCommand`.)
 */
export function addColumnsCommands(route: AdxTableRoute, known: readonly ColumnDef[], added: readonly ColumnDef[]): AdxCommand[] {
  return [alterMergeCommand(route, added), mappingCommand(route.table, route.mapping, tableColumns(route, [...known, ...added]))];
}

export function alterMergeCommand(route: AdxTableRoute, added: readonly ColumnDef[]): AdxCommand {
  return {
    description: `add columns ${added.map((c) => c.name).join(', ')} to ${route.table}`,
    text: `.alter-merge table ${kqlName(route.table)} (${columnList(added)})`,
  };
}

/** The table's columns as ADX has them (`Schema` is JSON with `OrderedColumns[{Name, CslType}]`). */
export function showSchemaCommand(table: string): AdxCommand {
  return { description: `schema of ${table}`, text: `.show table ${kqlName(table)} schema as json` };
}
