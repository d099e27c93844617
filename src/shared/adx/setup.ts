/**
 * `npm run adx:setup`: runs the generated commands in order against the engine, or prints them
 * (`--dry-run`). Every command is idempotent; the first failure stops the run, naming the command.
 * Before a route's materialized view, an existing view of that name is brought up to date
 * (`viewUpgradeCommands`: `autoUpdateSchema`, re-enable), which `.create ifnotexists` would not do.
 * A route's current-rows function is generated from the table's schema as ADX reports it (so it fills
 * the unchanged TOAST values of the columns the sink added at run time too; `--dry-run`: the declared).
 */
import {
  currentFunctionCommand,
  setupCommands,
  showMaterializedViewsCommand,
  showSchemaCommand,
  viewMigrationNeeded,
  viewUpgradeCommands,
  type AdxCommand,
  type ExistingView,
} from './commands.js';
import { CdcError } from '../core/errors.js';
import { toAdxSinkError } from './errors.js';
import type { ControlClient } from './clients.js';
import { parseSchemaRows } from './schema.js';
import type { AdxConfig } from './types.js';

export interface AdxSetupResult {
  executed: AdxCommand[];
  /** Operation ids of async commands (the backfilling materialized views): follow with `.show operations`. */
  operations: { command: AdxCommand; operationId: string }[];
}

function flag(value: unknown): boolean {
  return value === true || (typeof value === 'string' && value.toLowerCase() === 'true');
}

/** The views `.show materialized-views` lists, by lower-cased name (ADX names are case-insensitive). */
export function parseMaterializedViews(rows: readonly Record<string, unknown>[]): Map<string, ExistingView> {
  const views = new Map<string, ExistingView>();
  for (const row of rows) {
    if (typeof row.Name !== 'string') continue;
    const view: ExistingView = { isEnabled: flag(row.IsEnabled), autoUpdateSchema: flag(row.AutoUpdateSchema) };
    if (typeof row.Query === 'string') view.query = row.Query;
    views.set(row.Name.toLowerCase(), view);
  }
  return views;
}

export async function runAdxSetup(
  config: Pick<AdxConfig, 'routes' | 'batching' | 'folder' | 'truncatesTable'>,
  control: ControlClient | null,
  write: (line: string) => void,
): Promise<AdxSetupResult> {
  const commands = setupCommands(config);
  const result: AdxSetupResult = { executed: [], operations: [] };
  const execute = async (command: AdxCommand): Promise<Record<string, unknown>[]> => {
    try {
      return await (control as ControlClient).execute(command.text);
    } catch (error) {
      throw toAdxSinkError(error, `adx:setup: ${command.description}`);
    }
  };
  const existing = control === null ? new Map<string, ExistingView>() : parseMaterializedViews(await execute(showMaterializedViewsCommand()));
  for (const command of commands) {
    if (control === null) {
      if (command.route !== undefined) {
        const upgrade = viewUpgradeCommands(command.route, { isEnabled: false, autoUpdateSchema: false });
        write(`// only if ${command.route.latestView} exists without autoUpdateSchema or disabled (adx:setup checks .show materialized-views):\n`);
        write(upgrade.map((c) => `//   ${c.text}\n`).join('') + '\n');
      }
      write(`// ${command.description}\n${command.text}\n\n`);
      continue;
    }
    const view = command.route === undefined ? undefined : existing.get(command.route.latestView.toLowerCase());
    const migration = command.route === undefined || view === undefined ? null : viewMigrationNeeded(command.route, view);
    if (migration !== null) throw new CdcError('ADX_VIEW_MIGRATION', `adx:setup: ${migration}`, { canRetry: false });
    let toRun = command.route !== undefined && view !== undefined ? [...viewUpgradeCommands(command.route, view), command] : [command];
    if (command.currentOf !== undefined) {
      const columns = parseSchemaRows(await execute(showSchemaCommand(command.currentOf.table)));
      if (columns.length > 0) toRun = [currentFunctionCommand(command.currentOf, config.folder, config.truncatesTable, columns)];
    }
    for (const c of toRun) {
      const rows = await execute(c);
      result.executed.push(c);
      const operationId = rows[0]?.OperationId;
      if (typeof operationId === 'string') {
        result.operations.push({ command: c, operationId });
        write(`ok   ${c.description} (operation ${operationId}: .show operations ${operationId})\n`);
      } else {
        write(`ok   ${c.description}\n`);
      }
    }
  }
  return result;
}
