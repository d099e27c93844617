/** SQL quoting. Every identifier the reader sends goes through `quoteIdent`; every literal through `quoteLiteral`. */

export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('identifier contains a NUL byte');
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('literal contains a NUL byte');
  // standard_conforming_strings is on since PostgreSQL 9.1; E'' is avoided so backslashes stay literal.
  return `'${value.replace(/'/g, "''")}'`;
}

export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}
