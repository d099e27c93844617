const MASK = '***';

// Key=value secrets inside connection strings (Azure SAS, storage keys, passwords in URLs).
const patterns: RegExp[] = [
  /(SharedAccessKey|AccountKey|SharedAccessSignature|password|pwd|InstrumentationKey)=([^;"'\s&]+)/gi,
  /(\/\/[^:/@\s"']+:)([^@\s"']+)(@)/g,
];

/** Masks every configured secret value and every recognisable credential in `text`. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join(MASK);
  }
  out = out.replace(patterns[0]!, (_m, k: string) => `${k}=${MASK}`);
  out = out.replace(patterns[1]!, (_m, a: string, _p: string, c: string) => `${a}${MASK}${c}`);
  return out;
}
