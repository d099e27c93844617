/**
 * Typed configuration helpers, the one set every component uses (after powertools' `envUtils`):
 * trim, default, and fail fast with a `ConfigError` that names the variable, what it expects and
 * what it got. One parsing rule per kind of setting:
 * - empty or blank counts as unset;
 * - integers are decimal digits (an optional leading `-`), nothing else: `0x10`, `1e3`, `1.5` and
 *   `10ms` are refused rather than guessed at;
 * - one-of values match case-insensitively and come back in their canonical spelling;
 * - booleans are true/false, 1/0, yes/no, on/off.
 */
import { ConfigError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function getString(env: Env, name: string, defaultValue?: string): string {
  const value = raw(env, name) ?? defaultValue;
  if (value === undefined) throw new ConfigError(name, 'a non-empty value', undefined);
  return value;
}

export function getOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function getInt(env: Env, name: string, defaultValue: number, range: { min?: number; max?: number } = {}): number {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  const { min, max } = range;
  const expected =
    min !== undefined && max !== undefined
      ? `an integer between ${min} and ${max}`
      : min !== undefined
        ? `an integer >= ${min}`
        : max !== undefined
          ? `an integer <= ${max}`
          : 'an integer';
  if (!/^-?\d+$/.test(value)) throw new ConfigError(name, expected, value);
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || (min !== undefined && parsed < min) || (max !== undefined && parsed > max)) throw new ConfigError(name, expected, value);
  return parsed;
}

export function getOneOf<T extends string>(env: Env, name: string, allowed: readonly T[], defaultValue: T): T {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  const hit = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
  if (hit === undefined) throw new ConfigError(name, `one of ${allowed.join(', ')}`, value);
  return hit;
}

export function getBool(env: Env, name: string, defaultValue: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  const lower = value.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(name, 'true or false', value);
}

export function getList(env: Env, name: string, defaultValue: readonly string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return [...defaultValue];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function getJson<T>(env: Env, name: string, defaultValue: T): T {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  try {
    return JSON.parse(value) as T;
  } catch (error) {
    throw new ConfigError(name, 'valid JSON', value, { cause: error });
  }
}

/** An http(s) URL without credentials in it, trailing slashes removed. */
export function getUrl(env: Env, name: string, defaultValue?: string): string {
  const value = getString(env, name, defaultValue);
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new ConfigError(name, 'an http(s) URL', value, { cause: error });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new ConfigError(name, 'an http(s) URL', value);
  if (url.username || url.password) throw new ConfigError(name, 'a URL without credentials in it', value, { secret: true });
  return value.replace(/\/+$/, '');
}
