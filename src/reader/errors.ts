/** The reader's start-up failures: a stable code and a message that says how to fix it. */
import { CdcError } from '../shared/core/errors.js';

export type StartupErrorCode =
  | 'WAL_LEVEL_NOT_LOGICAL'
  | 'MISSING_REPLICATION_PRIVILEGE'
  | 'MISSING_SELECT_PRIVILEGE'
  | 'TABLE_NOT_FOUND'
  | 'NO_PRIMARY_KEY_OR_REPLICA_IDENTITY'
  | 'SLOT_IN_USE'
  | 'SLOT_WRONG_PLUGIN'
  | 'PG_UNREACHABLE'
  | 'PG_TLS_FAILED'
  | 'PG_AUTH_FAILED'
  | 'BROKER_UNREACHABLE'
  | 'BROKER_AUTH_FAILED'
  | 'BROKER_TOPIC_NOT_FOUND'
  | 'PUBLICATION_MISMATCH'
  | 'NO_TABLES';

/** A start-up check failed; retrying the same configuration cannot help until the cause is fixed. */
export class StartupError extends CdcError {
  declare readonly code: StartupErrorCode;

  constructor(code: StartupErrorCode, message: string, cause?: unknown) {
    super(code, message, { canRetry: false, cause });
  }
}
