/**
 * `npm run adx:setup`: runs the generated commands in order against the engine, or prints them
 * (`--dry-run`). Every command is idempotent; the first failure stops the run, naming the command.
 */
import { setupCommands, type AdxCommand } from './commands.js';
import { toAdxSinkError } from './errors.js';
import type { ControlClient } from './clients.js';
import type { AdxConfig } from './types.js';

export interface SetupResult {
  executed: AdxCommand[];
  /** Operation ids of async commands (the backfilling materialized views): follow with `.show operations`. */
  operations: { command: AdxCommand; operationId: string }[];
}

export async function runAdxSetup(
  config: Pick<AdxConfig, 'routes' | 'batching' | 'folder'>,
  control: ControlClient | null,
  write: (line: string) => void,
): Promise<SetupResult> {
  const commands = setupCommands(config);
  const result: SetupResult = { executed: [], operations: [] };
  for (const command of commands) {
    if (control === null) {
      write(`// ${command.description}\n${command.text}\n\n`);
      continue;
    }
    let rows: Record<string, unknown>[];
    try {
      rows = await control.execute(command.text);
    } catch (error) {
      throw toAdxSinkError(error, `adx:setup: ${command.description}`);
    }
    result.executed.push(command);
    const operationId = rows[0]?.OperationId;
    if (typeof operationId === 'string') {
      result.operations.push({ command, operationId });
      write(`ok   ${command.description} (operation ${operationId}: .show operations ${operationId})\n`);
    } else {
      write(`ok   ${command.description}\n`);
    }
  }
  return result;
}
