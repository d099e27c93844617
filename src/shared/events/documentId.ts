import { PermanentRecordError } from '../core/errors.js';
import { tableId, type ChangeEvent, type RowImage } from './changeEvent.js';

/**
 * The row's primary key (the envelope's `key`; for a delete without `key`, `before`): the one key rule
 * of every sink (Elasticsearch `_id`, change-history ids, ADX latest-state views). A row event whose
 * key is missing, empty or has a null column cannot be told apart from other rows — `null` would
 * become `_id "null"` for every such row — so it is a `PermanentRecordError('NO_KEY')` naming the
 * table (and the column), and every sink dead-letters it with the same reason. Truncates have no key;
 * callers do not ask for one.
 *
 * PostgreSQL never stores NULL in a primary-key or replica-identity-index column. A null here comes
 * from a table with `REPLICA IDENTITY FULL` and no primary key (the reader then uses every column as
 * the key) whose row holds a NULL, or from an event not written by the reader.
 */
export function keyOf(event: ChangeEvent): RowImage {
  const key = event.key ?? (event.op === 'd' ? event.before : null);
  if (!key || Object.keys(key).length === 0) {
    throw new PermanentRecordError('NO_KEY', `Event for ${tableId(event.source)} has no key (table without primary key or replica identity?)`);
  }
  for (const [column, value] of Object.entries(key)) {
    if (value === null || value === undefined) {
      throw new PermanentRecordError(
        'NO_KEY',
        `Event for ${tableId(event.source)} has key column ${JSON.stringify(column)} = ${String(value)} ` +
          '(a key column is never NULL in PostgreSQL: REPLICA IDENTITY FULL without a primary key and a NULL in the row, or an event not from the reader)',
      );
    }
  }
  return key;
}

export function keyText(key: RowImage): string {
  const values = Object.values(key);
  if (values.length === 1) {
    const [only] = values;
    return typeof only === 'string' ? only : JSON.stringify(only);
  }
  return JSON.stringify(values);
}

export function documentId(event: ChangeEvent): string {
  return keyText(keyOf(event));
}
