/**
 * Sends bulk operations, reads every item, retries the throttled/unavailable ones with exponential
 * backoff inside the invocation, and reports what is left per record. Whole-request failures
 * (connection refused, timeout) throw: the batch core turns them into a retry of every record.
 */
import type { Client } from '@elastic/elasticsearch';
import type { estypes } from '@elastic/elasticsearch';
import { PermanentRecordError, TransientSinkError } from '../core/errors.js';
import type { RecordOutcome } from '../batch/types.js';
import { itemVerdict } from './bulkItemOutcome.js';

export interface BulkOp {
  /** Index of the batch record the operation belongs to. */
  recordIndex: number;
  action: estypes.BulkOperationContainer;
  /** Document (index/create actions); absent for delete. */
  document?: Record<string, unknown>;
}

export interface BulkWriterOptions {
  /** Attempts for throttled/unavailable items before the invocation is failed (default 3). */
  maxAttempts?: number;
  /** First backoff in ms, doubled each attempt (default 200). */
  backoffMs?: number;
  refresh?: boolean | 'wait_for';
}

function errorText(error: estypes.ErrorCause | undefined): string {
  if (!error) return 'unknown error';
  const reason = error.reason ?? '';
  const cause = error.caused_by ? ` (caused by ${error.caused_by.type}: ${error.caused_by.reason ?? ''})` : '';
  return `${error.type}: ${reason}${cause}`;
}

const BULK_FILTER = ['items.*.status', 'items.*.error', 'items.*._id', 'items.*._index'];

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function writeBulk(client: Client, ops: readonly BulkOp[], options: BulkWriterOptions = {}): Promise<Map<number, RecordOutcome>> {
  const maxAttempts = options.maxAttempts ?? 3;
  const backoffMs = options.backoffMs ?? 200;
  const failures = new Map<number, RecordOutcome>();
  let pending = [...ops];

  for (let attempt = 1; pending.length > 0; attempt++) {
    const operations: unknown[] = [];
    for (const op of pending) {
      operations.push(op.action);
      if (op.document !== undefined) operations.push(op.document);
    }
    let response;
    try {
      // Only what is read back: smaller responses for ES to write and for us to parse.
      response = await client.bulk({ operations, refresh: options.refresh ?? false, filter_path: BULK_FILTER });
    } catch (error) {
      throw new TransientSinkError(`Elasticsearch bulk request failed: ${(error as Error).message}`, error);
    }
    const again: BulkOp[] = [];
    const lastErrors = new Map<BulkOp, string>();
    pending.forEach((op, i) => {
      const item = (response.items as typeof response.items | undefined)?.[i];
      const result = item ? Object.values(item)[0] : undefined;
      if (!result) {
        again.push(op);
        lastErrors.set(op, 'missing item in bulk response');
        return;
      }
      const verdict = itemVerdict(result.status);
      if (verdict === 'ok') return;
      const text = `${result.status} ${errorText(result.error)} (index ${result._index}, id ${result._id ?? '?'})`;
      if (verdict === 'deadLetter') {
        const error = new PermanentRecordError('REJECTED_BY_SINK', `Elasticsearch rejected the document: ${text}`);
        failures.set(op.recordIndex, { status: 'deadLetter', reason: error.message, error });
      } else {
        again.push(op);
        lastErrors.set(op, text);
      }
    });
    if (again.length === 0) break;
    if (attempt >= maxAttempts) {
      for (const op of again) {
        if (failures.get(op.recordIndex)?.status === 'deadLetter') continue;
        failures.set(op.recordIndex, {
          status: 'retry',
          error: new TransientSinkError(`Elasticsearch item still failing after ${attempt} attempts: ${lastErrors.get(op) ?? ''}`),
        });
      }
      break;
    }
    await delay(backoffMs * 2 ** (attempt - 1));
    pending = again;
  }
  return failures;
}
