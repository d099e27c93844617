import { describe, expect, it } from '@jest/globals';
import { decodeBody, bodyBytes } from '../../src/shared/events/decode.js';
import { documentId } from '../../src/shared/events/documentId.js';
import { rowVersion } from '../../src/shared/events/rowVersion.js';
import { parseMetadataFields, unwrap } from '../../src/shared/events/unwrap.js';
import { PermanentRecordError } from '../../src/shared/core/errors.js';
import { changeEvent, hostBody, order, type BodyShape } from '../helpers/events.js';

describe('decodeBody', () => {
  const event = changeEvent({ after: order(7) });

  it.each<BodyShape>(['object', 'string', 'buffer', 'schemaPayload'])('accepts a %s body', (shape) => {
    const decoded = decodeBody(hostBody(event, shape));
    expect(decoded).toEqual({ kind: 'event', event });
  });

  it.each([
    ['null', null],
    ['empty string', ''],
    ['empty buffer', Buffer.alloc(0)],
    ['schema/payload with null payload', { schema: {}, payload: null }],
    ['"null" text', 'null'],
  ])('treats %s as a tombstone', (_name, body) => {
    expect(decodeBody(body)).toEqual({ kind: 'tombstone' });
  });

  it.each([
    ['text that is not JSON', 'hello {', 'NOT_JSON'],
    ['bytes that are not JSON', Buffer.from([0xff, 0x00, 0x7b]), 'NOT_JSON'],
    ['a number (host-parsed "123")', 123, 'NOT_AN_ENVELOPE'],
    ['an array', [1, 2], 'NOT_AN_ENVELOPE'],
    ['an object without op', { source: {} }, 'NOT_AN_ENVELOPE'],
    ['an update without after', { ...changeEvent({ op: 'u' }), after: null }, 'NOT_AN_ENVELOPE'],
    ['a string lsn', { ...changeEvent(), source: { ...changeEvent().source, lsn: '12' } }, 'NOT_AN_ENVELOPE'],
  ])('rejects %s permanently', (_name, body, code) => {
    expect(() => decodeBody(body)).toThrow(PermanentRecordError);
    try {
      decodeBody(body);
    } catch (error) {
      expect((error as PermanentRecordError).code).toBe(code);
      expect((error as PermanentRecordError).canRetry).toBe(false);
    }
  });

  it('passes heartbeats (op m) as messages', () => {
    expect(decodeBody({ op: 'm', source: {}, ts_ms: 1 }).kind).toBe('message');
  });

  it('recovers the original bytes of each body shape', () => {
    expect(bodyBytes(Buffer.from('abc'))).toEqual(Buffer.from('abc'));
    expect(bodyBytes('abc').toString()).toBe('abc');
    expect(JSON.parse(bodyBytes({ a: 1 }).toString())).toEqual({ a: 1 });
  });
});

describe('unwrap (ExtractNewRecordState)', () => {
  it('returns the after image plus the default metadata fields', () => {
    const event = changeEvent({ op: 'u', before: order(1, { amount: 1 }), after: order(1, { amount: 2 }), lsn: 500, tsMs: 1234 });
    expect(unwrap(event)).toEqual({
      kind: 'upsert',
      row: { ...order(1, { amount: 2 }), __op: 'u', __table: 'orders_info', __lsn: 500, __source_ts_ms: 1234, __deleted: false },
    });
  });

  it('rewrites a delete as the before image flagged __deleted', () => {
    const event = changeEvent({ op: 'd', before: order(3), lsn: 900 });
    const result = unwrap(event, { fields: ['op', 'lsn', 'deleted', 'version'] });
    expect(result).toEqual({ kind: 'delete', row: { ...order(3), __op: 'd', __lsn: 900, __deleted: true, __version: 900 } });
  });

  it('falls back to the key for a delete without before image (REPLICA IDENTITY DEFAULT)', () => {
    const event = changeEvent({ op: 'd', before: null, key: { orderid: 4 } });
    expect(unwrap(event, { fields: ['deleted'] })).toEqual({ kind: 'delete', row: { orderid: 4, __deleted: true } });
  });

  it('makes truncates explicit', () => {
    expect(unwrap(changeEvent({ op: 't' }))).toEqual({ kind: 'truncate' });
  });

  it('parses field lists in Debezium spelling and rejects unknown ones naming the setting', () => {
    expect(parseMetadataFields(['op', '__table', 'source.ts_ms', 'lsn'])).toEqual(['op', 'table', 'source_ts_ms', 'lsn']);
    expect(() => parseMetadataFields(['nope'])).toThrow(/CDC_UNWRAP_FIELDS.*nope/);
  });
});

describe('rowVersion and documentId', () => {
  it('uses the LSN as the version', () => {
    expect(rowVersion(changeEvent({ lsn: 42 }))).toBe(42);
  });
  it('rejects an event without LSN permanently', () => {
    expect(() => rowVersion(changeEvent({ lsn: null }))).toThrow(PermanentRecordError);
  });
  it('builds ids from one or several key columns', () => {
    expect(documentId(changeEvent({ key: { orderid: 5 } }))).toBe('5');
    expect(documentId(changeEvent({ key: { code: 'A' } }))).toBe('A');
    expect(documentId(changeEvent({ key: { a: 1, b: 'x' } }))).toBe('[1,"x"]');
    expect(() => documentId(changeEvent({ key: null }))).toThrow(/no key/);
  });
});
