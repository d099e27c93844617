/**
 * What a bulk item's status means. Elasticsearch answers a bulk request with 200 and `errors: true`
 * when some items failed, so every item is read.
 */
export type ItemVerdict = 'ok' | 'retry' | 'deadLetter';

const BY_STATUS: Readonly<Record<number, ItemVerdict>> = {
  200: 'ok',
  201: 'ok',
  // version_conflict_engine_exception: this version (or a newer one) is already applied.
  409: 'ok',
  // Malformed document / mapping rejected it: it will never succeed.
  400: 'deadLetter',
  413: 'deadLetter',
  // Back-pressure and unavailability.
  429: 'retry',
  500: 'retry',
  502: 'retry',
  503: 'retry',
  504: 'retry',
};

/** Unknown statuses (403 blocks, 404 missing index...) are retried: an operator can fix them. */
export function itemVerdict(status: number): ItemVerdict {
  return BY_STATUS[status] ?? (status >= 200 && status < 300 ? 'ok' : 'retry');
}
