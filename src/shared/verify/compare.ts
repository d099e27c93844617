/**
 * The comparison rule: two values are equal when their JSON texts are, with object members in a
 * fixed (sorted) order. Numbers compare as written, `JSON.rawJSON` values (json/jsonb numbers kept
 * exact, see events/exactJson.ts) by their source digits, so a difference beyond a double's precision
 * is still a difference and `2.50` is not `2.5`. Both sides come from the same kind of text (the
 * rendering of a row by the sink's own code, and the sink's stored document parsed losslessly), so no
 * other normalisation is applied: what differs in text is reported.
 */
import { createHash } from 'node:crypto';

const isRawJson = (JSON as unknown as { isRawJSON: (value: unknown) => boolean }).isRawJSON;

function sorted(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || isRawJson(value)) return value;
  if (Array.isArray(value)) return value.map(sorted);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sorted((value as Record<string, unknown>)[key]);
  return out;
}

/** JSON text with object members sorted; `undefined` stays undefined (an absent field). */
export function canonicalJson(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return JSON.stringify(sorted(value));
}

/**
 * A set of strings held as 64-bit hashes (8 bytes each, sorted once filled): what the checker keeps
 * of a table's keys to find the sink's entries that have no row, without holding the rows. Two keys
 * sharing a hash (about n²/2⁶⁵ for n keys) would hide one extra entry; nothing else depends on it.
 */
export class HashSet64 {
  #hashes = new BigUint64Array(1024);
  #size = 0;
  #sealed = false;

  static hash(text: string): bigint {
    return createHash('sha256').update(text, 'utf8').digest().readBigUInt64BE(0);
  }

  add(text: string): void {
    if (this.#sealed) throw new Error('HashSet64: add after seal');
    if (this.#size === this.#hashes.length) {
      const bigger = new BigUint64Array(this.#hashes.length * 2);
      bigger.set(this.#hashes);
      this.#hashes = bigger;
    }
    this.#hashes[this.#size++] = HashSet64.hash(text);
  }

  /** Sorts the hashes; returns how many were added more than once (keys shared by several rows). */
  seal(): number {
    this.#hashes = this.#hashes.slice(0, this.#size).sort();
    this.#sealed = true;
    let repeated = 0;
    for (let i = 1; i < this.#size; i++) if (this.#hashes[i] === this.#hashes[i - 1]) repeated++;
    return repeated;
  }

  has(text: string): boolean {
    if (!this.#sealed) throw new Error('HashSet64: has before seal');
    const h = HashSet64.hash(text);
    let lo = 0;
    let hi = this.#size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.#hashes[mid]!;
      if (v === h) return true;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  get size(): number {
    return this.#size;
  }
}
