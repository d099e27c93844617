import { describe, expect, it } from '@jest/globals';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../../../src/shared/deadletter/blobDeadLetterStore.js';

describe('blob dead-letter store configuration', () => {
  it('fails naming the settings when no storage is configured', () => {
    expect(() => deadLetterStoreFromEnv({})).toThrow(/^SINK_DEADLETTER_ACCOUNT_URL: expected a Blob service URL \(or SINK_DEADLETTER_CONNECTION_STRING/);
  });
  it('reads pointer events from the dead-letter account unless told otherwise', () => {
    expect(pointerResolverFromEnv({})).toBeUndefined();
    expect(pointerResolverFromEnv({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).toBeDefined();
  });
});
