/**
 * From an Event Hubs body to a `ChangeEvent`. The Functions host hands bodies over as already
 * `JSON.parse`d values, as strings (when the text is not JSON, or with `dataType: 'string'`) or as
 * Buffers (`dataType: 'binary'`), so all three are accepted. The Debezium envelope may be wrapped as
 * `{ schema, payload }` (`schemas.enable=true`).
 */
import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent, ChangeOp } from './changeEvent.js';
import { parseJsonLossless } from './exactJson.js';

export type Decoded =
  | { kind: 'event'; event: ChangeEvent }
  /** Kafka tombstone (null value after a delete): nothing to do. */
  | { kind: 'tombstone' }
  /** Logical message / heartbeat (`op: 'm'`): nothing to write. */
  | { kind: 'message'; event: ChangeEvent };

const OPS: ReadonlySet<string> = new Set<ChangeOp>(['c', 'u', 'd', 'r', 't', 'm']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function parseText(text: string): unknown {
  try {
    // Lossless where the contract promises exact digits (json/jsonb numbers): see exactJson.ts.
    return parseJsonLossless(text);
  } catch (error) {
    throw new PermanentRecordError('NOT_JSON', `Body is not JSON: ${JSON.stringify(text.slice(0, 80))}`, error);
  }
}

/** The body's original bytes, as well as they can be recovered (for the dead-letter store). */
export function bodyBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body === undefined) return Buffer.alloc(0);
  // The host already parsed the JSON text: re-serialising gives equivalent JSON, not the same bytes.
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function decodeBody(body: unknown): Decoded {
  let value: unknown = body;
  if (value === null || value === undefined) return { kind: 'tombstone' };
  if (value instanceof Uint8Array) value = Buffer.from(value).toString('utf8');
  if (typeof value === 'string') {
    if (value.trim() === '') return { kind: 'tombstone' };
    value = parseText(value);
    if (value === null) return { kind: 'tombstone' };
  }
  if (!isObject(value)) {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Body is JSON but not an object (${Array.isArray(value) ? 'array' : typeof value})`);
  }
  if ('payload' in value && 'schema' in value) {
    if (value.payload === null) return { kind: 'tombstone' };
    value = value.payload;
    if (!isObject(value)) throw new PermanentRecordError('NOT_AN_ENVELOPE', 'Envelope payload is not an object');
  }
  const event = validateEnvelope(value);
  return event.op === 'm' ? { kind: 'message', event } : { kind: 'event', event };
}

function validateEnvelope(value: Record<string, unknown>): ChangeEvent {
  const fail = (what: string): never => {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Not a change-event envelope: ${what}`);
  };
  const { op, source, before, after, key } = value;
  if (typeof op !== 'string' || !OPS.has(op)) fail(`op is ${JSON.stringify(op)}`);
  if (!isObject(source)) return fail('source is missing');
  if (op === 'm') return value as unknown as ChangeEvent;
  if (typeof source.schema !== 'string' || typeof source.table !== 'string') fail('source.schema/source.table missing');
  if (before !== undefined && before !== null && !isObject(before)) fail('before is not an object');
  if (after !== undefined && after !== null && !isObject(after)) fail('after is not an object');
  if (key !== undefined && key !== null && !isObject(key)) fail('key is not an object');
  const pointer = value.deadletter;
  if (pointer !== undefined && pointer !== null) {
    // A pointer event: the full event (too large for the hub) is in a Blob; row images are null here.
    if (!isObject(pointer) || typeof pointer.container !== 'string' || typeof pointer.blob !== 'string') fail('deadletter pointer without container/blob');
  } else {
    if ((op === 'c' || op === 'u' || op === 'r') && !isObject(after)) fail(`op ${op} without after`);
    if (op === 'd' && !isObject(before) && !isObject(key)) fail('delete without before or key');
  }
  if (source.lsn !== undefined && source.lsn !== null && typeof source.lsn !== 'number') fail('source.lsn is not a number');
  return value as unknown as ChangeEvent;
}
