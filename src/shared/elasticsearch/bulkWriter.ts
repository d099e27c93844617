/**
 * Sends bulk operations, reads every item, retries the throttled/unavailable ones with exponential
 * backoff inside the invocation, and reports what is left per record. A request refused as a whole
 * with 400 or 413 is about some of its items, so it is split (see `send`); other whole-request
 * failures (connection refused, timeout) throw: the batch core turns them into a retry of every record.
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

/**
 * Only what is read back: each item's status and error. Its `_index` and `_id` are the op's own (the
 * items answer the ops in order), so they are not asked for: a third of the response's bytes, which
 * Elasticsearch writes and the client parses on every request.
 */
const BULK_FILTER = ['items.*.status', 'items.*.error'];

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type ItemAnswer = Pick<estypes.BulkResponseItem, 'status' | 'error'>;

/** The index and `_id` an op writes (for error texts). */
function targetOf(op: BulkOp): { _index: string; _id: string } {
  const target = Object.values(op.action)[0] as { _index?: string; _id?: string | null } | undefined;
  return { _index: target?._index ?? '?', _id: target?._id ?? '?' };
}

/** The HTTP status of an @elastic/elasticsearch client error (`meta.statusCode`), if it has one. */
export function statusOf(error: unknown): number | undefined {
  return (error as { meta?: { statusCode?: number } }).meta?.statusCode;
}

/** Why a request was refused as a whole: Elasticsearch's error object, else the body or message. */
function refusalOf(error: unknown): estypes.ErrorCause {
  const body = (error as { meta?: { body?: unknown } }).meta?.body;
  const cause = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  if (typeof cause === 'object' && cause !== null) return cause as estypes.ErrorCause;
  const text = typeof body === 'string' && body.trim() !== '' ? body.trim().slice(0, 500) : (error as Error).message;
  return { type: 'request_refused', reason: text };
}

/**
 * One bulk request for `ops`, answered per op, in order. Elasticsearch refuses some requests as a
 * whole: 400 when an action fails validation (an `_id` over 512 bytes, ...), 413 when the body is over
 * `http.max_content_length` (or a gateway's limit). Both are about items, not about the cluster, and
 * retrying the same request can never succeed, so the request is halved, recursively, until the
 * refused items stand alone; a lone refused item is answered with the refusal (400/413: dead-letter).
 * Any other whole-request failure (connection refused, timeout, 5xx after the client's retries)
 * throws: the cluster is the problem, retry later.
 */
async function send(client: Client, ops: readonly BulkOp[], refresh: BulkWriterOptions['refresh']): Promise<(ItemAnswer | undefined)[]> {
  const operations: unknown[] = [];
  for (const op of ops) {
    operations.push(op.action);
    if (op.document !== undefined) operations.push(op.document);
  }
  let response;
  try {
    response = await client.bulk({ operations, refresh: refresh ?? false, filter_path: BULK_FILTER });
  } catch (error) {
    const status = statusOf(error);
    if (status !== 400 && status !== 413) throw new TransientSinkError(`Elasticsearch bulk request failed: ${(error as Error).message}`, error);
    if (ops.length === 1) return [{ status, error: refusalOf(error) }];
    const half = Math.ceil(ops.length / 2);
    return [...(await send(client, ops.slice(0, half), refresh)), ...(await send(client, ops.slice(half), refresh))];
  }
  const items = response.items as typeof response.items | undefined;
  return ops.map((_, i) => {
    const item = items?.[i];
    return item ? Object.values(item)[0] : undefined;
  });
}

export async function writeBulk(client: Client, ops: readonly BulkOp[], options: BulkWriterOptions = {}): Promise<Map<number, RecordOutcome>> {
  const maxAttempts = options.maxAttempts ?? 3;
  const backoffMs = options.backoffMs ?? 200;
  const failures = new Map<number, RecordOutcome>();
  let pending = [...ops];

  for (let attempt = 1; pending.length > 0; attempt++) {
    const answers = await send(client, pending, options.refresh);
    const again: BulkOp[] = [];
    const lastErrors = new Map<BulkOp, string>();
    pending.forEach((op, i) => {
      const result = answers[i];
      if (!result) {
        again.push(op);
        lastErrors.set(op, 'missing item in bulk response');
        return;
      }
      const verdict = itemVerdict(result.status);
      if (verdict === 'ok') return;
      const target = targetOf(op);
      const text = `${result.status} ${errorText(result.error)} (index ${target._index}, id ${target._id})`;
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
