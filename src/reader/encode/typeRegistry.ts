/**
 * Decoders by type OID: built-ins from the table in pgTypes.ts, everything else (arrays, domains,
 * enums, user types) resolved once from pg_type.
 */
import type { Decoder } from './pgTypes.js';
import { builtinDecoders, decodeText, parseArray } from './pgTypes.js';

export type Query = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

interface TypeRow {
  oid: number;
  typtype: string;
  typelem: number;
  typdelim: string;
  typbasetype: number;
  typcategory: string;
}

export class TypeRegistry {
  private readonly decoders = new Map<number, Decoder>(builtinDecoders);

  constructor(private readonly query: Query) {}

  /** Synchronous lookup; call `ensure` first for OIDs that may be new. Unknown → text. */
  decoder(oid: number): Decoder {
    return this.decoders.get(oid) ?? decodeText;
  }

  async ensure(oids: readonly number[]): Promise<void> {
    const missing = [...new Set(oids)].filter((o) => !this.decoders.has(o));
    if (missing.length === 0) return;
    const { rows } = await this.query(
      'SELECT oid::int AS oid, typtype::text AS typtype, typelem::int AS typelem, typdelim::text AS typdelim, typbasetype::int AS typbasetype, typcategory::text AS typcategory FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])',
      [missing],
    );
    const byOid = new Map((rows as unknown as TypeRow[]).map((r) => [Number(r.oid), r]));
    const deps: number[] = [];
    for (const r of byOid.values()) {
      if (r.typcategory === 'A' && r.typelem !== 0) deps.push(Number(r.typelem));
      if (r.typtype === 'd') deps.push(Number(r.typbasetype));
    }
    if (deps.length > 0) await this.ensure(deps);
    for (const oid of missing) {
      const r = byOid.get(oid);
      if (!r) {
        this.decoders.set(oid, decodeText);
        continue;
      }
      if (r.typcategory === 'A' && r.typelem !== 0) {
        const elem = this.decoder(Number(r.typelem));
        const delim = r.typdelim || ',';
        this.decoders.set(oid, (t) => parseArray(t, elem, delim));
      } else if (r.typtype === 'd') {
        this.decoders.set(oid, this.decoder(Number(r.typbasetype)));
      } else {
        // enums, composites, ranges, geometric, network types: their text form
        this.decoders.set(oid, decodeText);
      }
    }
  }
}
