/** The one error root: codes, canRetry, and configuration errors that never leak a secret. */
import { describe, expect, it } from '@jest/globals';
import { StartupError } from '../../../src/reader/errors.js';
import { canRetry, CdcError, ConfigError, describeError, ensureError, PermanentRecordError, TransientSinkError } from '../../../src/shared/core/errors.js';

describe('errors', () => {
  it('ConfigError names the variable and redacts secrets', () => {
    const plain = new ConfigError('PGPORT', 'an integer', 'abc');
    expect(plain).toBeInstanceOf(CdcError);
    expect(plain).toMatchObject({ code: 'INVALID_CONFIG', variable: 'PGPORT', canRetry: false, message: 'PGPORT: expected an integer, got "abc"' });
    expect(new ConfigError('KAFKA_SASL_PASSWORD', 'a password', 'hunter2', { secret: true }).message).not.toContain('hunter2');
    // A key pasted into a non-secret variable is still masked.
    expect(new ConfigError('X', 'a name', 'AccountName=a;AccountKey=abc123==').message).toBe('X: expected a name, got "AccountName=a;AccountKey=***"');
  });

  it('StartupError extends the same root and cannot be retried', () => {
    const error = new StartupError('SLOT_IN_USE', 'slot busy');
    expect(error).toBeInstanceOf(CdcError);
    expect(error).toMatchObject({ name: 'StartupError', code: 'SLOT_IN_USE', canRetry: false });
    expect(canRetry(error)).toBe(false);
  });

  it('tells transient from permanent; unknown failures are retried', () => {
    expect(canRetry(new TransientSinkError('down'))).toBe(true);
    expect(canRetry(new PermanentRecordError('NOT_JSON', 'bad'))).toBe(false);
    expect(canRetry(new Error('?'))).toBe(true);
  });

  it('normalises anything thrown and describes the cause chain', () => {
    expect(ensureError('x').message).toBe('x');
    expect(ensureError({ a: 1 }).message).toBe('{"a":1}');
    expect(describeError(new TransientSinkError('outer', new Error('inner')))).toBe('TransientSinkError: outer <- Error: inner');
  });
});
