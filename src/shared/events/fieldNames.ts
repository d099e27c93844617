/**
 * Column names as sink field names. PostgreSQL allows any column name; a sink does not:
 * Elasticsearch refuses metadata names (`_id`, `_source`, ...; `_doc_count` is even accepted and
 * then changes aggregation counts), empty and whitespace-only names, and reads dots as object paths,
 * so `x.y` next to `x` (or `.z`, `a..b`) fails every such row; and the sinks' own metadata
 * (`__op`, `__deleted`, `__version`, ...) would silently overwrite a column of the same name.
 *
 * One deterministic, injective escape (docs/sinks.md "Field names"), percent-style so it stays
 * readable and reversible:
 * - `%` → `%25` and `.` → `%2E`, everywhere in the name;
 * - a reserved name — starting with `__` (the sinks' metadata namespace) or an Elasticsearch metadata
 *   field — has its leading `_` written `%5F` (`_id` → `%5Fid`, `__op` → `%5F_op`);
 * - a whitespace-only name has its first character written `%XX` (`' '` → `%20`);
 * - the empty name becomes `%`.
 * Every other name (the overwhelming majority, `_private` included) is unchanged.
 */
import type { ChangeEvent } from './changeEvent.js';

/** Elasticsearch's metadata fields (8.x/9.x, server and X-Pack, plus removed ones older clusters know). */
const METADATA_FIELDS: ReadonlySet<string> = new Set([
  '_id',
  '_index',
  '_source',
  '_routing',
  '_version',
  '_seq_no',
  '_primary_term',
  '_ignored',
  '_ignored_source',
  '_field_names',
  '_doc_count',
  '_tier',
  '_nested_path',
  '_data_stream_timestamp',
  '_tsid',
  '_ts_routing_hash',
  '_feature',
  '_inference_fields',
  '_meta',
  '_type',
  '_uid',
  '_all',
  '_parent',
  '_timestamp',
  '_ttl',
  '_size',
]);

const UNDERSCORE = 95;
/** JavaScript's whitespace plus the separators U+001C–U+001F, which Java (Elasticsearch) counts too. */
// eslint-disable-next-line no-control-regex -- the separators are the point
const BLANK = /^[\s\u001c-\u001f]+$/;

function hex(char: string): string {
  return [...Buffer.from(char, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** The sink field name of a column (see the header for the rule). */
export function fieldName(column: string): string {
  if (column === '') return '%';
  let name = column.includes('%') || column.includes('.') ? column.replaceAll('%', '%25').replaceAll('.', '%2E') : column;
  if (name.charCodeAt(0) === UNDERSCORE) {
    if (name.charCodeAt(1) === UNDERSCORE || METADATA_FIELDS.has(name)) name = `%5F${name.slice(1)}`;
  } else if (BLANK.test(name)) {
    const [first = ''] = name;
    name = hex(first) + name.slice(first.length);
  }
  return name;
}

/** Whether `fieldName` changes the name (the fast path: most rows need no copy). */
function needsEscape(column: string): boolean {
  if (column === '' || column.includes('.') || column.includes('%')) return true;
  const first = column.charCodeAt(0);
  if (first === UNDERSCORE) return column.charCodeAt(1) === UNDERSCORE || METADATA_FIELDS.has(column);
  return first <= 32 || first === 160 || first >= 0x1680 ? BLANK.test(column) : false;
}

/** The event with the column names of its row images (`before`, `after`, `key`) through `fieldName`. */
export function withFieldNames(event: ChangeEvent): ChangeEvent {
  const before = escapeFieldNames(event.before);
  const after = escapeFieldNames(event.after);
  const key = escapeFieldNames(event.key);
  return before === event.before && after === event.after && key === event.key ? event : { ...event, before, after, key };
}

/** A row image with every column name through `fieldName`; the same object when none changes. */
export function escapeFieldNames<T extends Record<string, unknown> | null | undefined>(row: T): T {
  if (!row) return row;
  let changed = false;
  for (const column of Object.keys(row)) {
    if (needsEscape(column)) {
      changed = true;
      break;
    }
  }
  if (!changed) return row;
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) out[fieldName(column)] = value;
  return out as T;
}

/**
 * ADX (Kusto) column names: the same rule, then what an ADX identifier cannot hold. KQL identifiers
 * take letters, digits, `_`, `.`, `-` and spaces only (no `%`, `:`, `;`, quotes, symbols, ...), and
 * KQL reserves names that start or end with `__`. So, on the field name above:
 * - every `%HH` escape is written `_xHH_` (`__op` → `%5F_op` → `_x5F__op`, `a.b` → `_x2E_`);
 * - every other character an identifier cannot hold is written as its UTF-8 bytes, `_xHH_` each
 *   (`x:y` → `x_x3A_y`);
 * - a `_` that would read as such an escape (followed by `x` and two upper-case hex digits), and the
 *   last `_` of a name ending in `__`, are written `_x5F_`;
 * - the empty name (field name `%`) is `_x00_` (PostgreSQL names never hold a NUL).
 * Reversible like the field name: replace each `_xHH_` by `%HH` and percent-decode. Every name the
 * field-name rule leaves alone and ADX accepts (the overwhelming majority) is unchanged.
 */
const ADX_CHAR = /^[\p{L}\p{Nd}_ .-]$/u;
/** Names that certainly need nothing: the fast path of `adxColumnName`. */
const ADX_PLAIN = /^[A-Za-z0-9][A-Za-z0-9_]*$/;
const LITERAL_ESCAPE = /^x[0-9A-F]{2}/;

function adxHex(char: string): string {
  return [...Buffer.from(char, 'utf8')].map((b) => `_x${b.toString(16).toUpperCase().padStart(2, '0')}_`).join('');
}

/** The ADX column name of a column (see above). */
export function adxColumnName(column: string): string {
  if (ADX_PLAIN.test(column) && !column.endsWith('__') && !column.includes('_x')) return column;
  const field = fieldName(column);
  if (field === '%') return '_x00_';
  let name = '';
  for (let i = 0; i < field.length;) {
    const char = String.fromCodePoint(field.codePointAt(i) ?? 0);
    if (char === '%') {
      name += `_x${field.slice(i + 1, i + 3)}_`;
      i += 3;
      continue;
    }
    if (char === '_') name += LITERAL_ESCAPE.test(field.slice(i + 1, i + 4)) ? '_x5F_' : '_';
    else name += ADX_CHAR.test(char) ? char : adxHex(char);
    i += char.length;
  }
  return name.endsWith('__') ? `${name.slice(0, -1)}_x5F_` : name;
}
