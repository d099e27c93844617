/** The reader's control events as the sinks read them (src/shared/events/controlMessage.ts). */
import { describe, expect, it } from '@jest/globals';
import { PermanentRecordError } from '../../../src/shared/core/errors.js';
import type { ChangeEvent } from '../../../src/shared/events/changeEvent.js';
import { controlMessage } from '../../../src/shared/events/controlMessage.js';
import { fieldTypeOf, typeNameOf } from '../../../src/shared/elasticsearch/typeMappings.js';
import { changeEvent } from '../../helpers/events.js';

const message = (body: unknown, lsn: number | null = 500): ChangeEvent =>
  ({ ...changeEvent({ op: 'm', after: null, key: null, lsn }), message: body }) as unknown as ChangeEvent;

const content = {
  table: 'app.t',
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'a', type: 'text' },
  ],
  key: ['id'],
  previous: { columns: [{ name: 'id', type: 'integer' }], key: ['id'] },
  added: ['a'],
  dropped: [],
  retyped: [],
  partitions: 3,
};

describe('controlMessage', () => {
  it('reads a schema_change and the snapshot boundaries', () => {
    expect(controlMessage(message({ prefix: 'pg-cdc', kind: 'schema_change', content }))).toEqual({ kind: 'schema_change', lsn: 500, content });
    expect(controlMessage(message({ prefix: 'pg-cdc', kind: 'snapshot_done', content: { table: 'app.t', id: 's1', where: null, rows: 7 } }))).toEqual({
      kind: 'snapshot_done',
      lsn: 500,
      content: { table: 'app.t', id: 's1', where: null, rows: 7 },
    });
  });

  it('is null for what is no control event: a row event, another prefix, an unknown kind, no message', () => {
    expect(controlMessage(changeEvent({ op: 'c' }))).toBeNull();
    expect(controlMessage(message({ prefix: 'other', kind: 'schema_change', content }))).toBeNull();
    expect(controlMessage(message({ prefix: 'pg-cdc', kind: 'heartbeat', content: {} }))).toBeNull();
    expect(controlMessage(message(undefined))).toBeNull();
  });

  it('refuses a malformed pg-cdc event with the field named (dead-lettered, never half-applied)', () => {
    const bad = (body: unknown, lsn?: number | null) => () => controlMessage(message(body, lsn));
    expect(bad({ prefix: 'pg-cdc', kind: 'schema_change', content: { ...content, partitions: 0 } })).toThrow(/partitions is not a positive integer/);
    expect(bad({ prefix: 'pg-cdc', kind: 'schema_change', content: { ...content, previous: null } })).toThrow(/previous needs columns and key/);
    expect(bad({ prefix: 'pg-cdc', kind: 'schema_change', content }, null)).toThrow(PermanentRecordError);
    expect(bad({ prefix: 'pg-cdc', kind: 'snapshot_started', content: { table: 'app.t' } })).toThrow(/content.id is missing/);
  });
});

describe('the Elasticsearch field type of a format_type', () => {
  it('follows the explicit mappings of source.types, else the dynamic ones', () => {
    expect(
      [
        'integer',
        'bigint',
        'numeric(10,2)',
        'double precision',
        'timestamp with time zone',
        'jsonb',
        'jsonb[]',
        'boolean',
        'text',
        'character varying(20)',
        'uuid',
      ].map(fieldTypeOf),
    ).toEqual(['long', 'long', 'double', 'double', 'date', 'object', 'object', 'boolean', 'keyword', 'keyword', 'keyword']);
    expect(typeNameOf('integer[]')).toBe('int4[]');
    expect(typeNameOf('timestamp(3) without time zone')).toBe('timestamp');
  });
});
