import { describe, expect, it } from '@jest/globals';
import { decodeBody } from '../../../src/shared/events/decode.js';
import { changeEvent } from '../../helpers/events.js';

/** The event JSON as the reader puts it on the wire, with json values spliced in verbatim. */
function wire(jsonText: string, types: Record<string, string> | undefined): Buffer {
  const event = changeEvent({ table: 'public.docs', op: 'c', key: { id: 1 }, after: { id: 1, doc: '@DOC@' }, lsn: 100 });
  if (types) event.source.types = types;
  return Buffer.from(JSON.stringify(event).replace('"@DOC@"', jsonText));
}

describe('decodeBody: json/jsonb numbers keep their digits', () => {
  const text = '{"big":12345678901234567890,"long":0.1000000000000000055511151231257827,"scale":2.50,"small":1,"neg":-0,"e":1e400,"s":"12345678901234567890"}';

  it.each([
    ['with source.types naming a jsonb column', { doc: 'jsonb' }],
    ['without source.types (another producer)', undefined],
  ])('json/jsonb big numbers lose digits in the sinks: re-serialised exactly, %s', (_name, types) => {
    const decoded = decodeBody(wire(text, types));
    if (decoded.kind !== 'event') throw new Error('not an event');
    const doc = decoded.event.after?.doc;
    expect(JSON.stringify(doc)).toBe(text);
    // Numbers a double holds exactly stay plain numbers.
    expect((doc as { small: unknown }).small).toBe(1);
  });

  it('leaves events without json columns on the fast path (plain numbers)', () => {
    const event = changeEvent({ after: { orderid: 1, amount: 10.5 } });
    event.source.types = { amount: 'float8' };
    const decoded = decodeBody(Buffer.from(JSON.stringify(event)));
    expect(decoded).toEqual({ kind: 'event', event });
  });
});

describe('decodeBody: binary bodies', () => {
  it('reads a Buffer and a Uint8Array view into a larger buffer (dataType binary) as their own bytes only', () => {
    const event = changeEvent({ after: { orderid: 1, city: 'Zürich' } });
    const text = JSON.stringify(event);
    const bytes = Buffer.from(`xx${text}yy`);
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset + 2, bytes.length - 4);
    expect(decodeBody(view)).toEqual({ kind: 'event', event });
    expect(decodeBody(Buffer.from(view))).toEqual({ kind: 'event', event });
    expect(decodeBody(new Uint8Array(Buffer.from(text)))).toEqual({ kind: 'event', event });
  });
});
