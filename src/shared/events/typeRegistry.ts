/**
 * Decoders by type OID: built-ins from the table in pgTypes.ts, everything else (arrays, domains,
 * enums, user types) resolved once from pg_type. Also the type names the event carries in
 * `source.types` (docs/reader.md "Column types"): the JSON value of a float, a numeric, a json, a
 * timestamp ... does not say what the column is, and sinks that map types (Elasticsearch) need it.
 */
import type { Decoder } from './pgTypes.js';
import type { DecoderSpec } from './pgTypes.js';
import { builtinDecoders, decoderOf } from './pgTypes.js';

export interface TypeRegistryOptions {
  /** json/jsonb as PostgreSQL's text instead of the JSON value (the Debezium format sends the text). */
  jsonAsText?: boolean;
}

export type Query = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

interface TypeRow {
  oid: number;
  typtype: string;
  typelem: number;
  typdelim: string;
  typbasetype: number;
  typcategory: string;
  typname: string;
  nspname: string;
}

interface TypeName {
  /** `float8`, `timestamptz`, `int4[]`, `myschema.mytype`; a domain has its base type's. */
  name: string;
  /** Listed in `source.types`: false when the JSON value already tells the type (boolean, int2/int4, text, enum labels). */
  listed: boolean;
}

/** Names of the built-ins that have a decoder (they are never looked up). */
const BUILTIN_NAMES: ReadonlyMap<number, TypeName> = new Map(
  (
    [
      [16, 'bool', false],
      [21, 'int2', false],
      [23, 'int4', false],
      [26, 'oid', false],
      [17, 'bytea', true],
      [20, 'int8', true],
      [114, 'json', true],
      [3802, 'jsonb', true],
      [700, 'float4', true],
      [701, 'float8', true],
      [1700, 'numeric', true],
      [790, 'money', true],
      [1082, 'date', true],
      [1083, 'time', true],
      [1114, 'timestamp', true],
      [1184, 'timestamptz', true],
      [1186, 'interval', true],
      [1266, 'timetz', true],
      [2950, 'uuid', true],
    ] as const
  ).map(([oid, name, listed]) => [oid, { name, listed }]),
);

/** Text-like built-ins (looked up from pg_type): plain strings, not listed. */
const TEXT_LIKE: ReadonlySet<string> = new Set(['text', 'varchar', 'bpchar', 'name', 'char']);

export class TypeRegistry {
  private readonly specs = new Map<number, DecoderSpec>([...builtinDecoders.keys()].map((oid) => [oid, oid]));
  private readonly names = new Map<number, TypeName>(BUILTIN_NAMES);

  constructor(
    private readonly query: Query,
    options: TypeRegistryOptions = {},
  ) {
    if (options.jsonAsText) for (const oid of [114, 3802]) this.specs.set(oid, 'text');
  }

  /** The type's name whether listed or not (`int4`, `numeric`, `text[]`, a domain's base type's): the Debezium encoder's switch. */
  baseTypeName(oid: number): string {
    return this.names.get(oid)?.name ?? 'unknown';
  }

  /** Synchronous lookup; call `ensure` first for OIDs that may be new. Unknown → text. */
  decoder(oid: number): Decoder {
    return decoderOf(this.decoderSpec(oid));
  }

  /** The decoder as data (`decoderOf` makes it again, in another thread too). */
  decoderSpec(oid: number): DecoderSpec {
    return this.specs.get(oid) ?? 'text';
  }

  /** The name `source.types` gives a column of this type, or null when the column is not listed. */
  typeName(oid: number): string | null {
    const type = this.names.get(oid);
    return type?.listed ? type.name : null;
  }

  /**
   * `source.types` for a column list: `{ column: type name }` of the listed columns (`{}` when none
   * is: present, it tells a sink the reader named every column that needs it). Built once per
   * relation (or snapshot chunk), so the envelope serialises it once.
   */
  columnTypes(columns: readonly { name: string; typeOid: number }[]): Record<string, string> {
    const types: Record<string, string> = {};
    for (const column of columns) {
      const name = this.typeName(column.typeOid);
      if (name !== null) types[column.name] = name;
    }
    return types;
  }

  async ensure(oids: readonly number[]): Promise<void> {
    const missing = [...new Set(oids)].filter((o) => !this.names.has(o));
    if (missing.length === 0) return;
    const { rows } = await this.query(
      'SELECT t.oid::int AS oid, t.typtype::text AS typtype, t.typelem::int AS typelem, t.typdelim::text AS typdelim, t.typbasetype::int AS typbasetype, ' +
        't.typcategory::text AS typcategory, t.typname::text AS typname, n.nspname::text AS nspname ' +
        'FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = ANY($1::oid[])',
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
        this.specs.set(oid, 'text');
        this.names.set(oid, { name: 'unknown', listed: true });
        continue;
      }
      const own = r.nspname === 'pg_catalog' ? r.typname : `${r.nspname}.${r.typname}`;
      if (r.typcategory === 'A' && r.typelem !== 0) {
        this.specs.set(oid, { array: this.decoderSpec(Number(r.typelem)), delimiter: r.typdelim || ',' });
        // Always listed: a JSON array does not say what its elements are.
        this.names.set(oid, { name: `${this.names.get(Number(r.typelem))?.name ?? 'unknown'}[]`, listed: true });
      } else if (r.typtype === 'd') {
        this.specs.set(oid, this.decoderSpec(Number(r.typbasetype)));
        this.names.set(oid, this.names.get(Number(r.typbasetype)) ?? { name: 'unknown', listed: true });
      } else {
        // enums, composites, ranges, geometric, network types: their text form; enum labels and
        // text-like types are plain strings, the others are listed by name.
        this.specs.set(oid, 'text');
        this.names.set(oid, { name: own, listed: !(r.typtype === 'e' || (r.nspname === 'pg_catalog' && TEXT_LIKE.has(r.typname))) });
      }
    }
  }
}
