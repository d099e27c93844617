/**
 * Control commands for the ADX side, generated as a pure function of the configuration. Every command
 * is idempotent, so `npm run adx:setup` can run on every deployment:
 * `.create-merge table` (adds missing columns, keeps data), `.create-or-alter ... mapping`,
 * `.alter ... policy`, `.create ifnotexists materialized-view` (an existing view is brought up to date
 * by `viewUpgradeCommands`), `.create-or-alter function`.
 */
import { kqlName, kqlString } from './kql.js';
import { HISTORY_COLUMNS, TRUNCATE_COLUMNS, tableColumns, truncatesMapping } from './schema.js';
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
 * from `currentFunctionCommand` filters it out.
 */
export function latestViewQuery(route: AdxTableRoute): string {
  const by = route.keys.map(kqlName).join(', ');
  return `${kqlName(route.table)} | summarize arg_max(${kqlName('__lsn')}, *) by ${by}`;
}

/**
 * `autoUpdateSchema=true`: the view is `arg_max(__lsn, *)`, the kind the option is documented for
 * (`arg_max(Timestamp, *)` / `arg_min` / `take_any(*)`), so a column `.alter-merge` adds to the source
 * table is added to the view. Without it, ADX *disables* an `arg_max(..., *)` view when its source
 * table's columns change (docs: `.alter materialized-view`, "Alter with no change to the query").
 */
export function latestViewCommand(route: AdxTableRoute, folder: string): AdxCommand {
  return {
    description: `materialized view ${route.latestView} (latest row per ${route.keys.join(', ')}; backfilled; autoUpdateSchema)`,
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
 * The body of the current-rows function: the latest row per key, without deletes and without rows
 * older than the table's latest truncate (`__lsn` below its `Lsn`; the versioning contract). A key
 * written again after the truncate has a higher `__lsn` and shows; a late event from before it does not.
 */
export function currentFunctionBody(route: AdxTableRoute, truncatesTable: string): string {
  return (
    `{ let truncatedBelow = toscalar(${kqlName(truncatesTable)} | where ${kqlName('Table')} == ${kqlString(route.table)} | summarize max(${kqlName('Lsn')})); ` +
    `${kqlName(route.latestView)} | where not(${kqlName('__deleted')}) and (isnull(truncatedBelow) or ${kqlName('__lsn')} >= truncatedBelow) }`
  );
}

export function currentFunctionCommand(route: AdxTableRoute, folder: string, truncatesTable: string): AdxCommand {
  return {
    description: `function ${route.currentFunction}() (current rows: latest per key, deletes and truncated rows excluded)`,
    text:
      `.create-or-alter function ${withProps(folder, `Current rows of ${route.source}: ${route.latestView} without deleted rows and rows older than the latest truncate in ${truncatesTable}`)} ` +
      `${kqlName(route.currentFunction)}() ${currentFunctionBody(route, truncatesTable)}`,
  };
}

/** The per-database truncates table, its mapping and batching policy (before the functions that read it). */
export function truncatesTableCommands(config: Pick<AdxConfig, 'batching' | 'folder' | 'truncatesTable'>): AdxCommand[] {
  const table = config.truncatesTable;
  return [
    createMergeTableCommand(table, TRUNCATE_COLUMNS, config.folder, 'TRUNCATEs of the routed tables: rows of Table with __lsn below Lsn are gone'),
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
