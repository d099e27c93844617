/**
 * Reading stored documents back (the sink's unchanged-TOAST fill): a document Elasticsearch cannot
 * read is a transient failure, never "not found". Found by the e2e suite: after Elasticsearch was
 * stopped for 30 s and started again, an `mget` answered 200 with a per-document error while the
 * shards recovered, the sink took the rows for absent and wrote updates without their unchanged
 * TOAST values (`__unchanged_toast`). Here the per-document error is made by closing the index.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { TransientSinkError } from '../../../src/shared/core/errors.js';
import { storedDocumentList } from '../../../src/shared/elasticsearch/storedDocuments.js';
import { testClient } from '../esTestKit.js';
import { uniqueName } from '../../helpers/services.js';

const client = testClient();
const index = uniqueName('stored-docs').replaceAll('_', '-');

afterAll(async () => {
  await client.indices.delete({ index, ignore_unavailable: true });
  await client.close();
});

describe('storedDocumentList', () => {
  it('finds the stored documents, and nothing in a missing index', async () => {
    await client.index({ index, id: '1', document: { a: 1 }, refresh: true });
    const found = await storedDocumentList(
      client,
      [
        { _index: index, _id: '1' },
        { _index: index, _id: '2' },
        { _index: `${index}-none`, _id: '1' },
      ],
      'test',
    );
    expect(found.map((d) => [d._id, d._source])).toEqual([['1', { a: 1 }]]);
  });

  it('throws a transient error when Elasticsearch cannot read a document (index closed), instead of taking it for absent', async () => {
    await client.indices.close({ index });
    try {
      await expect(storedDocumentList(client, [{ _index: index, _id: '1' }], 'fill unchanged TOAST columns')).rejects.toThrow(TransientSinkError);
      await expect(storedDocumentList(client, [{ _index: index, _id: '1' }], 'fill unchanged TOAST columns')).rejects.toThrow(/index_closed_exception/);
    } finally {
      await client.indices.open({ index });
    }
  });
});
