/**
 * PostgreSQL LSNs ("16/B374D848") as bigints. JSON carries them as decimal numbers (Debezium does the
 * same), which is exact below 2^53 bytes of WAL.
 */
export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const slash = text.indexOf('/');
  if (slash <= 0) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  const hi = parseInt(text.slice(0, slash), 16);
  const lo = parseInt(text.slice(slash + 1), 16);
  if (Number.isNaN(hi) || Number.isNaN(lo)) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  // Hot path (every change): exact in double arithmetic below 2^53, else fall back to BigInt shifts.
  return hi < 0x200000 ? BigInt(hi * 4294967296 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function lsnToNumber(lsn: Lsn): number {
  return Number(lsn);
}
