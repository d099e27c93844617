/** Quoting for generated KQL: every name is bracket-quoted, every literal single-quoted and escaped. */

/** `['name']`: valid for any table, column, view or function name, reserved words included. */
export function kqlName(name: string): string {
  return `['${escape(name)}']`;
}

/** A KQL string literal: `'text'` with backslash escapes. */
export function kqlString(value: string): string {
  return `'${escape(value)}'`;
}

function escape(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/** Names the sink generates must be plain identifiers (they also end up in mapping and tag text). */
export function isPlainName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]{0,1023}$/.test(name);
}
