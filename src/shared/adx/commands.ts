/**
 * Control commands for the ADX side, generated as a pure function of the configuration. Every command
 * is idempotent, so `npm run adx:setup` can run on every deployment:
 * `.create-merge table` (adds missing columns, keeps data), `.create-or-alter ... mapping`,
 * `.alter ... policy`, `.create ifnotexists materialized-view` (an existing view is brought up to date
 * by `viewUpgradeCommands`), `.create-or-alter function`.
 */
import { kqlName, kqlString } from './kql.js';
import { rawColumnName } from './columnTypes.js';
import { CDC_COLUMN_NAMES, HISTORY_COLUMNS, TRUNCATE_COLUMNS, tableColumns, truncatesMapping } from './schema.js';
import type { AdxConfig, AdxTableRoute, ColumnDef, IngestionBatchingPolicy, KqlType } from './types.js';

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
 *
 * Unchanged TOAST values (docs/adx.md "Unchanged TOAST values"): a latest row that lists columns in
 * `__unchanged_toast` (the reader could not send them; the row holds null there) gets each listed
 * column, and its `__raw_<column>`, from the key's latest earlier row that carries the column (not a
 * delete, not listing it), but only from the key's current lineage: rows at or after its latest
 * insert or snapshot read (`c`/`r`, which carry every column), so a key deleted and used again never
 * takes a value of its earlier life. When that insert is the `c` of a primary-key change which itself
 * lacks the column, the value comes the same way from the old key (`__old_key`) before the change.
 * What cannot be found (the earlier row not ingested yet, or two key changes in a row without the
 * column being written) stays null and stays listed in `__unchanged_toast`: the function's rows list
 * exactly the columns whose value is not the real one. `columns` are the table's columns (default:
 * the declared ones and the CDC columns); the fill covers those.
 */
export function currentFunctionBody(route: AdxTableRoute, truncatesTable: string, columns: readonly ColumnDef[] = tableColumns(route)): string {
  const q = kqlName;
  const truncated =
    `let truncatedBelow = toscalar(${q(truncatesTable)} | where ${q('Table')} == ${kqlString(route.table)} | summarize max(${q('Lsn')})); ` +
    `let latestRows = ${q(route.latestView)} | where not(${q('__deleted')}) and (isnull(truncatedBelow) or ${q('__lsn')} >= truncatedBelow);`;
  const names = new Set(columns.map((c) => c.name));
  const keySet = new Set(route.keys);
  const targets = columns.filter((c) => !keySet.has(c.name) && !CDC_COLUMN_NAMES.has(c.name) && !c.name.startsWith(RAW_PREFIX));
  const typed = new Map(columns.map((c) => [c.name, c.type]));
  // A dynamic key cannot be joined on: such rows keep their listed columns (docs/adx.md).
  const keyTypes = route.keys.map((k) => typed.get(k) ?? 'string');
  if (targets.length === 0 || keyTypes.includes('dynamic')) return `{ ${truncated} latestRows }`;
  const keys = route.keys.map(q).join(', ');
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
  const partial = `let partialRows = latestRows | where array_length(${q('__unchanged_toast')}) > 0 | project ${keys}, __at = ${q('__lsn')};`;
  const own =
    `let ownFills = partialRows | join kind=inner (${q(route.table)}) on ${keys} | where ${q('__lsn')} <= __at ` +
    `| summarize (__start, __start_old) = arg_max(${start}, ${q('__old_key')}), ${latestCarried('__')} by ${keys}, __at;`;
  const oldKey = route.keys.map((k, i) => `${q(`__j_${k}`)} = ${CONVERT[keyTypes[i] as Exclude<KqlType, 'dynamic'>]}(__start_old[${kqlString(k)}])`).join(', ');
  const hop =
    `let hopFills = ownFills | where __start >= 0 and isnotnull(__start_old) | project ${keys}, __at, __start, ${oldKey} ` +
    `| join kind=inner (${q(route.table)}) on ${route.keys.map((k) => `$left.${q(`__j_${k}`)} == $right.${q(k)}`).join(', ')} ` +
    `| where ${q('__lsn')} < __start | summarize __jstart = max(${start}), ${latestCarried('__h')} by ${keys}, __at;`;
  const fills = `let fills = ownFills | lookup kind=leftouter hopFills on ${keys}, __at | project-rename ${q('__lsn')} = __at;`;
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
    `{ ${truncated} ${partial} ${own} ${hop} ${fills} ` +
    `latestRows | lookup kind=leftouter fills on ${keys}, ${q('__lsn')} | extend ${decided} | extend ${filled}, __left = set_difference(${q('__unchanged_toast')}, ${done}) ` +
    `| extend ${q('__unchanged_toast')} = iff(array_length(__left) > 0, __left, dynamic(null)) | project-away ${intermediates.map(q).join(', ')} }`
  );
}

/** The conversion of a `dynamic` (an `__old_key` value) to a key column's type, for the join. */
const CONVERT: Record<Exclude<KqlType, 'dynamic'>, string> = {
  bool: 'tobool',
  datetime: 'todatetime',
  decimal: 'todecimal',
  guid: 'toguid',
  int: 'toint',
  long: 'tolong',
  real: 'toreal',
  string: 'tostring',
  timespan: 'totimespan',
};

const RAW_PREFIX = rawColumnName('');

/**
 * `columns`: the table's columns (as ADX reports them: `adx:setup` reads the schema first), which the
 * function fills unchanged TOAST values of; default the declared ones.
 */
export function currentFunctionCommand(route: AdxTableRoute, folder: string, truncatesTable: string, columns?: readonly ColumnDef[]): AdxCommand {
  return {
    description: `function ${route.currentFunction}() (current rows: latest per key, deletes and truncated rows excluded, unchanged TOAST values filled)`,
    text:
      `.create-or-alter function ${withProps(folder, `Current rows of ${route.source}: ${route.latestView} without deleted rows and rows older than the latest truncate in ${truncatesTable}; unchanged TOAST values from earlier rows (__unchanged_toast lists what is missing)`)} ` +
      `${kqlName(route.currentFunction)}() ${currentFunctionBody(route, truncatesTable, columns)}`,
    currentOf: route,
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
