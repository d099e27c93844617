import { PermanentRecordError } from '../core/errors.js';
import { tableId, type ChangeEvent, type RowImage } from './changeEvent.js';

/**
 * The row's primary key (the envelope's `key`; for a delete without `key`, `before`): the one key rule
 * of every sink (Elasticsearch `_id`, change-history ids, ADX latest-state views). A row event whose
 * key is missing or empty cannot be told apart from other rows, so it is a
 * `PermanentRecordError('NO_KEY')` naming the table, and every sink dead-letters it with the same
 * reason. Truncates have no key; callers do not ask for one.
 *
 * A null key column: PostgreSQL never stores NULL in a primary-key or replica-identity-index column,
 * but a table with `REPLICA IDENTITY FULL` and no primary key is keyed by every column, and its rows
 * may hold NULLs. With two or more columns the key text is a JSON array, in which null is a value
 * like any other (`[1,null]` names one row), so such keys are kept. A one-column key that is null
 * would be the text `null`, the same as the string `"null"`, so it is `NO_KEY`.
 */
export function keyOf(event: ChangeEvent): RowImage {
  const key = event.key ?? (event.op === 'd' ? event.before : null);
  const columns = key ? Object.keys(key) : [];
  if (!key || columns.length === 0) {
    throw new PermanentRecordError('NO_KEY', `Event for ${tableId(event.source)} has no key (table without primary key or replica identity?)`);
  }
  if (columns.length === 1) {
    const [column] = columns as [string];
    const value = key[column];
    if (value === null || value === undefined) {
      throw new PermanentRecordError(
        'NO_KEY',
        `Event for ${tableId(event.source)} has key column ${JSON.stringify(column)} = ${String(value)} ` +
          '(a primary-key or replica-identity column is never NULL in PostgreSQL: an event not from the reader, or a one-column table with REPLICA IDENTITY FULL holding a NULL)',
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
