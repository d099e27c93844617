/** The one set of env helpers: one parsing rule per kind of setting, errors that name the variable. */
import { describe, expect, it } from '@jest/globals';
import { getBool, getInt, getJson, getList, getOneOf, getString, getUrl } from '../../../src/shared/core/env.js';
import { ConfigError } from '../../../src/shared/core/errors.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('env helpers', () => {
  it('fail fast naming the variable, what it expects and what it got', () => {
    expect(errorOf(() => getString({}, 'ELASTICSEARCH_URL')).message).toBe('ELASTICSEARCH_URL: expected a non-empty value, got (unset)');
    expect(errorOf(() => getInt({ N: '0' }, 'N', 1, { min: 1 })).message).toBe('N: expected an integer >= 1, got "0"');
    expect(errorOf(() => getInt({ N: '70000' }, 'N', 1, { min: 1, max: 65535 })).message).toBe('N: expected an integer between 1 and 65535, got "70000"');
    expect(errorOf(() => getBool({ B: 'maybe' }, 'B', false)).message).toBe('B: expected true or false, got "maybe"');
    expect(errorOf(() => getJson({ J: '{' }, 'J', {})).message).toBe('J: expected valid JSON, got "{"');
    expect(errorOf(() => getOneOf({ M: 'fast' }, 'M', ['queued', 'inline'], 'queued')).message).toBe('M: expected one of queued, inline, got "fast"');
    expect(errorOf(() => getString({}, 'X')).variable).toBe('X');
  });

  it('parse integers as decimal digits only: no hex, exponents, fractions or units', () => {
    for (const bad of ['0x10', '1e3', '1.5', '10ms', '+5', '5 5']) expect(() => getInt({ N: bad }, 'N', 1)).toThrow(ConfigError);
    expect(getInt({ N: '-5' }, 'N', 1)).toBe(-5);
    expect(() => getInt({ N: '-5' }, 'N', 1, { min: 0 })).toThrow(ConfigError);
    expect(() => getInt({ N: '99999999999999999999' }, 'N', 1)).toThrow(ConfigError);
    expect(getInt({ N: ' 42 ' }, 'N', 1)).toBe(42);
  });

  it('match one-of values case-insensitively and return the canonical spelling', () => {
    expect(getOneOf({ P: 'sasl_ssl' }, 'P', ['PLAINTEXT', 'SASL_SSL'], 'PLAINTEXT')).toBe('SASL_SSL');
    expect(getOneOf({}, 'P', ['PLAINTEXT', 'SASL_SSL'], 'PLAINTEXT')).toBe('PLAINTEXT');
  });

  it('trim, default and split; blank counts as unset', () => {
    expect(getString({ A: '  x ' }, 'A')).toBe('x');
    expect(getString({ A: '   ' }, 'A', 'd')).toBe('d');
    expect(getInt({ N: ' ' }, 'N', 3)).toBe(3);
    expect(getList({ L: 'a, b,,c' }, 'L', [])).toEqual(['a', 'b', 'c']);
    expect(getBool({ B: 'YES' }, 'B', false)).toBe(true);
    expect(getBool({ B: 'off' }, 'B', true)).toBe(false);
  });

  it('accept http(s) URLs without credentials, and never echo credentials', () => {
    expect(getUrl({ U: 'https://x.kusto.windows.net/' }, 'U')).toBe('https://x.kusto.windows.net');
    expect(() => getUrl({ U: 'ftp://x' }, 'U')).toThrow(/U: expected an http\(s\) URL/);
    const error = errorOf(() => getUrl({ U: 'https://user:hunter2@x' }, 'U'));
    expect(error.message).toBe('U: expected a URL without credentials in it, got (redacted)');
  });
});
