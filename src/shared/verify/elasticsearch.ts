/**
 * Elasticsearch latest state against its table. Each row is rendered by the Elasticsearch sink's own
 * `prepare` (a snapshot event of the row: field-name escaping, `__json` copies, bounded `_id`s, all
 * as the sink does them), and the stored document of that `_id` is read back losslessly (one `mget`
 * per chunk). Compared: every column field and the `__json` copies (`canonicalJson`); reported: a row
 * without a document or with a soft-deleted one (`missing`), a field whose value differs or that only
 * one side has (`field`; a field the document lacks equals a null column), a document still listing unchanged TOAST columns (`unfilled`), a document
 * whose `_version` is not its `__version` (`version`). Then the `-live` documents are scanned
 * (point in time, `_shard_doc` order): a live `_id` that no row has is `extra` (e.g. a delete that never
 * arrived). The table's ids are kept as 64-bit hashes only (`HashSet64`), not the rows.
 */
import type { Client } from '@elastic/elasticsearch';
import { describeError } from '../core/errors.js';
import type { ChangeEvent } from '../events/changeEvent.js';
import type { ElasticsearchItem, ElasticsearchSink } from '../elasticsearch/elasticsearchSink.js';
import { statusOf } from '../elasticsearch/bulkWriter.js';
import { storedDocumentList } from '../elasticsearch/storedDocuments.js';
import { LIVE_FILTER } from '../elasticsearch/templates.js';
import { canonicalJson, HashSet64 } from './compare.js';
import type { StoreSummary, VerifyReport } from './report.js';

const SCAN_PAGE = 1000;

/** The fields compared: the columns (every field not starting with `__`) and the json text copies. */
function compared(document: Record<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [field, value] of Object.entries(document)) if (!field.startsWith('__') || field === '__json') out.set(field, value);
  return out;
}

export class ElasticsearchTableCheck {
  readonly #ids = new HashSet64();
  #indexMissing = false;

  constructor(
    private readonly client: Client,
    private readonly sink: ElasticsearchSink,
    private readonly report: VerifyReport,
    private readonly summary: StoreSummary,
    readonly index: string,
  ) {}

  /** Compares the documents of one chunk of rows (their snapshot events, `events`). */
  async chunk(events: readonly ChangeEvent[]): Promise<void> {
    const items: { event: ChangeEvent; item: Extract<ElasticsearchItem, { kind: 'write' }> }[] = [];
    for (const event of events) {
      this.summary.rows++;
      let item: ElasticsearchItem | null;
      try {
        item = this.sink.prepare(event);
      } catch (error) {
        // The sink would dead-letter this row's events (e.g. a one-column key holding NULL: NO_KEY).
        this.report.add(this.summary, { kind: 'missing', key: JSON.stringify(event.key), detail: `the sink cannot write this row: ${describeError(error)}` });
        continue;
      }
      if (item === null || item.kind !== 'write') continue;
      this.#ids.add(item.id);
      items.push({ event, item });
    }
    if (items.length === 0) return;
    const stored = new Map(
      (
        await storedDocumentList(
          this.client,
          items.map(({ item }) => ({ _index: this.index, _id: item.id })),
          'verify them',
        )
      ).map((d) => [d._id, d]),
    );
    if (stored.size === 0 && !this.#indexMissing && !(await this.client.indices.exists({ index: this.index }))) {
      this.#indexMissing = true;
      this.summary.notes.push(`index ${this.index} does not exist`);
    }
    for (const { item } of items) {
      const found = stored.get(item.id);
      const key = item.id;
      if (found === undefined) {
        this.report.add(this.summary, { kind: 'missing', key, detail: `no document ${JSON.stringify(item.id)} in ${this.index}` });
        continue;
      }
      const doc = found._source;
      if (doc.__deleted === true) {
        const why = typeof doc.__rejected === 'string' ? `a rejection marker: ${doc.__rejected}` : `soft-deleted by op ${String(doc.__op)}`;
        this.report.add(this.summary, { kind: 'missing', key, detail: `not in ${this.index}-live: ${why} at version ${String(doc.__version)}` });
        continue;
      }
      if (found._version !== undefined && found._version !== doc.__version) {
        this.report.add(this.summary, {
          kind: 'version',
          key,
          expected: String(doc.__version),
          actual: String(found._version),
          detail: '_version is not the row version the document carries',
        });
      }
      if (Array.isArray(doc.__unchanged_toast) && doc.__unchanged_toast.length > 0) {
        this.report.add(this.summary, {
          kind: 'unfilled',
          key,
          detail: `unchanged TOAST columns never filled: ${doc.__unchanged_toast.map(String).join(', ')}`,
        });
      }
      const expected = compared(item.document);
      const actual = compared(doc);
      for (const field of new Set([...expected.keys(), ...actual.keys()])) {
        const e = canonicalJson(expected.get(field));
        const a = canonicalJson(actual.get(field));
        if (e === a) continue;
        // A field the document lacks is null to Elasticsearch (`exists`, aggregations, sorting): a
        // column added since the row's last change (nullable, no default) is null in the table and
        // absent from its document, which is no difference. A non-null value is one.
        if (a === undefined && e === 'null') continue;
        const detail = e === undefined ? 'the document has a field the row has not' : a === undefined ? 'the document lacks the field' : 'values differ';
        this.report.add(this.summary, {
          kind: 'field',
          key,
          field,
          ...(e === undefined ? {} : { expected: e }),
          ...(a === undefined ? {} : { actual: a }),
          detail,
        });
      }
    }
  }

  /** After every chunk: rows sharing a key, then the live documents no row has. */
  async finish(): Promise<void> {
    const repeated = this.#ids.seal();
    if (repeated > 0) {
      this.report.add(this.summary, {
        kind: 'collapsed',
        key: null,
        detail: `${repeated} rows share their key with another row, so the index holds one document for them (a table without a unique key: docs/sinks.md "Tables without a primary key")`,
      });
    }
    if (this.#indexMissing) return;
    const markers = await this.client.count({ index: this.index, query: { exists: { field: '__rejected' } }, ignore_unavailable: true });
    if (markers.count > 0) this.summary.notes.push(`${markers.count} rejection markers (versions Elasticsearch refused, each dead-lettered)`);
    let pit: string;
    try {
      pit = (await this.client.openPointInTime({ index: this.index, keep_alive: '2m' })).id;
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw error;
    }
    try {
      let after: unknown[] | undefined;
      for (;;) {
        const page = await this.client.search<Record<string, unknown>>({
          pit: { id: pit, keep_alive: '2m' },
          size: SCAN_PAGE,
          query: LIVE_FILTER,
          sort: [{ _shard_doc: 'asc' }],
          _source: false,
          ...(after ? { search_after: after as never } : {}),
        });
        const hits = page.hits.hits;
        for (const hit of hits) {
          const id = hit._id ?? '';
          if (!this.#ids.has(id))
            this.report.add(this.summary, { kind: 'extra', key: id, detail: `live in ${this.index}-live, but the table has no such row` });
        }
        if (hits.length < SCAN_PAGE) break;
        after = hits[hits.length - 1]!.sort;
        pit = page.pit_id ?? pit;
      }
    } finally {
      await this.client.closePointInTime({ id: pit }).catch(() => undefined);
    }
  }
}
