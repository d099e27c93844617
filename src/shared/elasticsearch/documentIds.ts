/**
 * Every `_id` the sinks generate goes through `boundedId`. Elasticsearch refuses an `_id` over 512
 * bytes, and not per item: the whole bulk request fails validation (400), so one long key would fail
 * every batch it is in. Keys are row data (a 600-byte text primary key is legal in PostgreSQL), so
 * rejecting them would lose rows; instead a long id is shortened deterministically:
 * - up to 512 bytes: the text itself, unchanged (existing indices keep their ids);
 * - longer: the longest prefix that fits (whole characters) + `~sha256:` + the SHA-256 (hex) of the
 *   whole text. Still readable, still the same id for the same key on every delivery.
 * A short text that already ends like a shortened id (`~sha256:` + 64 hex digits) is shortened too, so
 * no short id can ever equal another key's shortened id (only a SHA-256 collision could map two keys
 * to one id).
 */
import { createHash } from 'node:crypto';

export const MAX_ID_BYTES = 512;
const MARK = '~sha256:';
const HASH_HEX = 64;
const LOOKS_SHORTENED = /~sha256:[0-9a-f]{64}$/;

export function boundedId(text: string): string {
  // Three bytes per UTF-16 unit at most: short texts skip the byte count.
  const fits = text.length * 3 <= MAX_ID_BYTES || Buffer.byteLength(text) <= MAX_ID_BYTES;
  if (fits && !(text.length >= MARK.length + HASH_HEX && LOOKS_SHORTENED.test(text))) return text;
  const hash = createHash('sha256').update(text, 'utf8').digest('hex');
  const budget = MAX_ID_BYTES - MARK.length - HASH_HEX;
  let prefix = '';
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char);
    if (bytes + size > budget) break;
    prefix += char;
    bytes += size;
  }
  return `${prefix}${MARK}${hash}`;
}
