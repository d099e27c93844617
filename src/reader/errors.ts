/** Errors with a stable code and, where it helps, what to do about it. */
export type StartupErrorCode =
  | 'WAL_LEVEL_NOT_LOGICAL'
  | 'MISSING_REPLICATION_PRIVILEGE'
  | 'MISSING_SELECT_PRIVILEGE'
  | 'TABLE_NOT_FOUND'
  | 'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY'
  | 'SLOT_IN_USE'
  | 'SLOT_WRONG_PLUGIN'
  | 'PG_UNREACHABLE'
  | 'PG_AUTH_FAILED'
  | 'BROKER_UNREACHABLE'
  | 'BROKER_AUTH_FAILED'
  | 'BROKER_TOPIC_NOT_FOUND'
  | 'PUBLICATION_MISMATCH'
  | 'NO_TABLES';

export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly code: StartupErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Normalises anything thrown into an Error. */
export function ensureError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
