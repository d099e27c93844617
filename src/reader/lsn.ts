/**
 * PostgreSQL LSNs ("16/B374D848") as bigints. JSON carries them as decimal numbers (Debezium does the
 * same), which is exact below 2^53 bytes of WAL.
 */
export type Lsn = bigint;

export function parseLsn(text: string): Lsn {
  const slash = text.indexOf('/');
  if (slash <= 0) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) | BigInt(`0x${text.slice(slash + 1)}`);
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function lsnToNumber(lsn: Lsn): number {
  return Number(lsn);
}
