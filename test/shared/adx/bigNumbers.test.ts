/** json/jsonb numbers beyond a double through the ADX path: decode → rows → JSON lines. */
import { describe, expect, it } from '@jest/globals';
import { adxRoutes } from '../../../src/shared/adx/config.js';
import { toJsonLines, toTableRow } from '../../../src/shared/adx/rows.js';
import { findNewColumns, inferKqlType } from '../../../src/shared/adx/schema.js';
import { decodeBody } from '../../../src/shared/events/decode.js';
import { DEFAULT_ROUTES, Router } from '../../../src/shared/routing/routes.js';
import { changeEvent } from '../../helpers/events.js';

describe('ADX JSON lines', () => {
  it('json/jsonb big numbers lose digits in the sinks: the JSON lines carry the exact digits', () => {
    const event = changeEvent({ op: 'c', after: { orderid: '1', doc: '@DOC@', n: '@N@' }, key: { orderid: '1' }, lsn: 10 });
    event.source.types = { doc: 'jsonb', n: 'json' };
    const body = Buffer.from(JSON.stringify(event).replace('"@DOC@"', '{"big":12345678901234567890,"x":[2.50]}').replace('"@N@"', '98765432109876543210'));
    const decoded = decodeBody(body);
    if (decoded.kind !== 'event') throw new Error('not an event');
    const row = toTableRow(decoded.event, adxRoutes(new Router(DEFAULT_ROUTES))[0]!);
    const line = toJsonLines([row!]).toString('utf8');
    expect(line).toContain('"doc":{"big":12345678901234567890,"x":[2.50]}');
    expect(line).toContain('"n":98765432109876543210');
    // A json value is `dynamic`, whatever its top-level shape (a big number too).
    expect(inferKqlType(row!.doc)).toBe('dynamic');
    expect(inferKqlType(row!.n)).toBe('dynamic');
    expect(findNewColumns([row!], new Set(['orderid']))).toEqual([
      { name: 'doc', type: 'dynamic' },
      { name: 'n', type: 'dynamic' },
    ]);
  });
});
