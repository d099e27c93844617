import { PermanentRecordError } from '../core/errors.js';
import { tableId, type ChangeEvent, type RowImage } from './changeEvent.js';

/**
 * A stable identifier of the row from its primary key (the envelope's `key`; for a delete without
 * `key`, `before`): the value itself for a one-column key, a JSON array of the values otherwise.
 */
export function keyOf(event: ChangeEvent): RowImage {
  const key = event.key ?? (event.op === 'd' ? event.before : null);
  if (!key || Object.keys(key).length === 0) {
    throw new PermanentRecordError('NO_KEY', `Event for ${tableId(event.source)} has no key (table without primary key or replica identity?)`);
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
