/**
 * The change mix of the orders workload: inserts, updates and deletes as three weights (`70:25:5`).
 * The kinds are dealt by smooth weighted round-robin (nginx's upstream balancing), not drawn at
 * random, so every prefix of the sequence follows the mix as closely as integers allow: 100 changes at
 * 70:25:5 are exactly 70 inserts, 25 updates and 5 deletes, and a batch of 20 is already close to it.
 */
import { ConfigError } from '../core/errors.js';

export type ChangeKind = 'insert' | 'update' | 'delete';
export const CHANGE_KINDS: readonly ChangeKind[] = ['insert', 'update', 'delete'];

export interface Mix {
  insert: number;
  update: number;
  delete: number;
}

export const DEFAULT_MIX: Mix = { insert: 70, update: 25, delete: 5 };

const EXPECTED = 'three non-negative integers inserts:updates:deletes with a sum > 0, e.g. 70:25:5';

/** Parses `inserts:updates:deletes`; `variable` names the setting (or flag) in the error. */
export function parseMix(text: string, variable: string): Mix {
  const parts = text.trim().split(':');
  if (parts.length !== 3 || !parts.every((p) => /^\d+$/.test(p.trim()))) throw new ConfigError(variable, EXPECTED, text);
  const [insert, update, del] = parts.map((p) => Number(p.trim())) as [number, number, number];
  if (![insert, update, del].every((n) => Number.isSafeInteger(n)) || insert + update + del === 0) throw new ConfigError(variable, EXPECTED, text);
  return { insert, update, delete: del };
}

export function formatMix(mix: Mix): string {
  return `${mix.insert}:${mix.update}:${mix.delete}`;
}

/** Deals change kinds in the proportions of a mix, spread evenly (smooth weighted round-robin). */
export class MixDealer {
  readonly #mix: Mix;
  readonly #total: number;
  readonly #current: Mix = { insert: 0, update: 0, delete: 0 };

  constructor(mix: Mix) {
    this.#mix = mix;
    this.#total = mix.insert + mix.update + mix.delete;
  }

  next(): ChangeKind {
    let best: ChangeKind = 'insert';
    for (const kind of CHANGE_KINDS) {
      this.#current[kind] += this.#mix[kind];
      if (this.#current[kind] > this.#current[best]) best = kind;
    }
    this.#current[best] -= this.#total;
    return best;
  }

  /** How many of each kind the next `n` changes are. */
  deal(n: number): Mix {
    const counts: Mix = { insert: 0, update: 0, delete: 0 };
    for (let i = 0; i < n; i++) counts[this.next()]++;
    return counts;
  }
}
