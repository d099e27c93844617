import { describe, expect, it } from '@jest/globals';
import { boundedId, MAX_ID_BYTES } from '../../../src/shared/elasticsearch/documentIds.js';

describe('boundedId', () => {
  it('keeps ids up to 512 bytes unchanged, so existing documents keep their ids', () => {
    for (const id of ['1', '["a",2]', 'x'.repeat(512), 'ü'.repeat(256)]) expect(boundedId(id)).toBe(id);
  });

  it('shortens longer ids to a readable prefix plus the SHA-256 of the whole text, deterministically', () => {
    const long = 'k'.repeat(600);
    const id = boundedId(long);
    expect(Buffer.byteLength(id)).toBeLessThanOrEqual(MAX_ID_BYTES);
    expect(id).toMatch(/^k+~sha256:[0-9a-f]{64}$/);
    expect(boundedId(long)).toBe(id);
    expect(boundedId(`${'k'.repeat(599)}j`)).not.toBe(id);
  });

  it('cuts the prefix at a character boundary (multi-byte UTF-8)', () => {
    const id = boundedId('ü✓'.repeat(200));
    expect(Buffer.byteLength(id)).toBeLessThanOrEqual(MAX_ID_BYTES);
    expect(id.split('~sha256:')[0]).toMatch(/^(ü✓)+ü?$/);
  });

  it('shortens a short text that looks like a shortened id, so two keys never share an id', () => {
    const shortened = boundedId('k'.repeat(600));
    expect(boundedId(shortened)).not.toBe(shortened);
    expect(Buffer.byteLength(boundedId(shortened))).toBeLessThanOrEqual(MAX_ID_BYTES);
  });
});
