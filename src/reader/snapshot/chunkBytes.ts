/** `chunkBytes`' estimate: a row's array, and a cell's string header (a NULL: its slot). */
export const ROW_BYTES = 64;
export const CELL_BYTES = 24;
export const NULL_BYTES = 8;

/** Rough heap bytes of a chunk's text cells (V8 string header + one byte a character), for `ReadAhead` and the range size. */
export function chunkBytes(rows: readonly (readonly (string | null)[])[]): number {
  let bytes = 0;
  for (const row of rows) {
    bytes += ROW_BYTES;
    for (const v of row) bytes += v === null ? NULL_BYTES : CELL_BYTES + v.length;
  }
  return bytes;
}
