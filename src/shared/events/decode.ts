/**
 * From an Event Hubs body to a `ChangeEvent`. The Functions host hands bodies over as already
 * `JSON.parse`d values, as strings (when the text is not JSON, or with `dataType: 'string'`) or as
 * Buffers (`dataType: 'binary'`), so all three are accepted. The Debezium envelope may be wrapped as
 * `{ schema, payload }` (`schemas.enable=true`). Debezium's own events (an existing Debezium connector's)
 * are recognised by the missing `key` field and turned into the native event (fromDebezium.ts).
 */
import { PermanentRecordError } from '../core/errors.js';
import type { ChangeEvent, ChangeOp } from './changeEvent.js';
import { parseJsonLossless } from './exactJson.js';
import { DEBEZIUM_INPUT_DEFAULTS, fromDebezium, isDebeziumValue, type DebeziumInputOptions } from './fromDebezium.js';

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

/** What decoding may need besides the body: the record's Kafka key, and how Debezium's events are read. */
export interface DecodeOptions {
  /** The Kafka record key as the host handed it over (the worker has it; the Functions trigger does not). */
  recordKey?: unknown;
  debezium?: DebeziumInputOptions;
}

export function decodeBody(body: unknown, options: DecodeOptions = {}): Decoded {
  let value: unknown = body;
  if (value === null || value === undefined) return { kind: 'tombstone' };
  // A view, not `Buffer.from(value)`: that copies every body before decoding it.
  if (value instanceof Uint8Array) value = (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)).toString('utf8');
  if (typeof value === 'string') {
    if (value.trim() === '') return { kind: 'tombstone' };
    value = parseText(value);
    if (value === null) return { kind: 'tombstone' };
  }
  if (!isObject(value)) {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Body is JSON but not an object (${Array.isArray(value) ? 'array' : typeof value})`);
  }
  let schema: unknown;
  if ('payload' in value && 'schema' in value) {
    if (value.payload === null) return { kind: 'tombstone' };
    schema = value.schema;
    value = value.payload;
    if (!isObject(value)) throw new PermanentRecordError('NOT_AN_ENVELOPE', 'Envelope payload is not an object');
  }
  // Debezium's own events (no `key` field): turned into the native event first (fromDebezium.ts).
  const envelope = isDebeziumValue(value) ? fromDebezium(value, schema, options.recordKey, options.debezium ?? DEBEZIUM_INPUT_DEFAULTS) : value;
  const event = validateEnvelope(envelope);
  return event.op === 'm' ? { kind: 'message', event } : { kind: 'event', event };
}

/** What a field held, for the reason: `missing`, `NaN`, `"abc"`, `[1,2]` (cut at 60 characters). */
function held(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A WAL position: a JSON number that is a non-negative integer and exact in JavaScript. */
function isLsn(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks every field a sink reads, so a malformed event is dead-lettered here with a reason naming the
 * field, instead of throwing somewhere in a sink (`new Date(ts_ms).toISOString()`) or being written
 * with a version or key it does not have. Row ops must carry `source.lsn`: every sink versions rows by
 * it (docs/reader.md "Versioning contract for sinks").
 */
function validateEnvelope(value: Record<string, unknown>): ChangeEvent {
  const fail = (field: string, got: unknown, expected: string): never => {
    throw new PermanentRecordError('NOT_AN_ENVELOPE', `Not a change-event envelope: ${field} is ${held(got)} (expected ${expected})`);
  };
  const { op, source, before, after, key } = value;
  if (typeof op !== 'string' || !OPS.has(op)) return fail('op', op, 'one of c, u, d, r, t, m');
  if (!isObject(source)) return fail('source', source, 'an object');
  if (op === 'm') return value as unknown as ChangeEvent;
  if (typeof value.ts_ms !== 'number' || !Number.isFinite(value.ts_ms)) fail('ts_ms', value.ts_ms, 'a finite number of ms since the epoch');
  if (typeof source.ts_ms !== 'number' || !Number.isFinite(source.ts_ms)) fail('source.ts_ms', source.ts_ms, 'a finite number of ms since the epoch');
  if (typeof source.schema !== 'string' || source.schema === '') fail('source.schema', source.schema, 'a non-empty string');
  if (typeof source.table !== 'string' || source.table === '') fail('source.table', source.table, 'a non-empty string');
  if (!isLsn(source.lsn)) fail('source.lsn', source.lsn, 'a non-negative safe integer (every sink versions rows by it)');
  if (source.commit_lsn !== undefined && source.commit_lsn !== null && !isLsn(source.commit_lsn))
    fail('source.commit_lsn', source.commit_lsn, 'a non-negative safe integer or null');
  if (source.txId !== null && (typeof source.txId !== 'number' || !Number.isSafeInteger(source.txId))) fail('source.txId', source.txId, 'an integer or null');
  const toast = source.unchanged_toast;
  if (toast !== undefined && (!Array.isArray(toast) || !toast.every((c) => typeof c === 'string')))
    fail('source.unchanged_toast', toast, 'an array of column names');
  if (before !== undefined && before !== null && !isObject(before)) fail('before', before, 'an object or null');
  if (after !== undefined && after !== null && !isObject(after)) fail('after', after, 'an object or null');
  // Key columns and their values are checked by `keyOf`, the one key rule of every sink.
  if (key !== undefined && key !== null && !isObject(key)) fail('key', key, 'an object of key columns or null');
  const pointer = value.deadletter;
  if (pointer !== undefined && pointer !== null) {
    // A pointer event: the full event (too large for the hub) is in a Blob; row images are null here.
    if (!isObject(pointer) || typeof pointer.container !== 'string' || typeof pointer.blob !== 'string')
      fail('deadletter', pointer, 'a pointer with container and blob');
  } else {
    if ((op === 'c' || op === 'u' || op === 'r') && !isObject(after)) fail('after', after, `the new row for op ${op}`);
    if (op === 'd' && !isObject(before) && !isObject(key)) fail('before', before, 'the old row or a key for a delete');
  }
  return value as unknown as ChangeEvent;
}
