import { describe, expect, test } from '@jest/globals';
import { redact } from '../../../src/shared/core/redact.js';

describe('redaction', () => {
  test('connection-string keys and URL passwords', () => {
    expect(redact('AccountName=x;AccountKey=abc123==;Endpoint')).toBe('AccountName=x;AccountKey=***;Endpoint');
    expect(redact('postgres://user:hunter2@host/db')).toBe('postgres://user:***@host/db');
    expect(redact('the value is s3cr3tvalue', ['s3cr3tvalue'])).toBe('the value is ***');
  });
});
